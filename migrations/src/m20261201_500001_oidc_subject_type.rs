//! The kind of subject identifier an OIDC client gets: `public` (one opaque
//! value per account, the same for every client) or `pairwise` (one per
//! client and account).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = string_len(OidcClients::SubjectType, 16).default("public").to_owned();
        manager.alter_table(Table::alter().table(OidcClients::Table).add_column(column).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(OidcClients::Table).drop_column(OidcClients::SubjectType).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum OidcClients {
    Table,
    SubjectType,
}
