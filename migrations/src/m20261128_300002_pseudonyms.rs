//! Per-service pseudonymous identifiers: one random value per (service,
//! account), removed with the account.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Pseudonyms::Table)
                    .if_not_exists()
                    .col(string_len(Pseudonyms::ServiceId, 64))
                    .col(big_integer(Pseudonyms::AccountId))
                    .col(string_len_uniq(Pseudonyms::Value, 64))
                    .col(timestamp_with_time_zone(Pseudonyms::CreatedAt))
                    .primary_key(Index::create().col(Pseudonyms::ServiceId).col(Pseudonyms::AccountId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Pseudonyms::Table, Pseudonyms::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Pseudonyms::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Pseudonyms {
    Table,
    ServiceId,
    AccountId,
    Value,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}
