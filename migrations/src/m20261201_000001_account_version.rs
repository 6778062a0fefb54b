//! A version per account row, bumped by every write of the row, so that a
//! write made from an older read is refused instead of undoing a change
//! made meanwhile (an operator's reset during a password change).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Accounts::Table).add_column(big_integer(Accounts::Version).default(0)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Accounts::Table).drop_column(Accounts::Version).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Version,
}
