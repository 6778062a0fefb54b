//! The registered services table.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Services::Table)
                    .if_not_exists()
                    .col(string_len(Services::Id, 64).primary_key())
                    .col(string_len(Services::Name, 128))
                    .col(text(Services::UrlPattern))
                    // JSON array of released attribute names.
                    .col(text(Services::Attributes))
                    .col(text_null(Services::LogoutUrl))
                    .col(integer(Services::EvaluationOrder).default(0))
                    .col(timestamp_with_time_zone(Services::CreatedAt))
                    .col(timestamp_with_time_zone(Services::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Services::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Services {
    Table,
    Id,
    Name,
    UrlPattern,
    Attributes,
    LogoutUrl,
    EvaluationOrder,
    CreatedAt,
    UpdatedAt,
}
