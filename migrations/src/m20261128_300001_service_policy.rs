//! Services get a policy column: access rules, single sign-on, user
//! identifier and proxy rights, as one JSON text (NULL: the default policy).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Services::Table).add_column(text_null(Services::Policy)).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Services::Table).drop_column(Services::Policy).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Services {
    Table,
    Policy,
}
