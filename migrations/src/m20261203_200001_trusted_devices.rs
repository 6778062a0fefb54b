//! Trusted devices: a browser where the person ticked « Faire confiance à
//! cet appareil pendant 30 jours » after a right second factor. Only the
//! SHA-256 of the cookie's random token is kept, with a short label
//! guessed from the User-Agent and the dates shown in Mon compte. Rows go
//! with their account.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TrustedDevices::Table)
                    .if_not_exists()
                    .col(big_pk_auto(TrustedDevices::Id))
                    .col(big_integer(TrustedDevices::AccountId))
                    .col(string_len_uniq(TrustedDevices::TokenHash, 64))
                    .col(string_len(TrustedDevices::Label, 64))
                    .col(timestamp_with_time_zone(TrustedDevices::CreatedAt))
                    .col(timestamp_with_time_zone_null(TrustedDevices::LastUsedAt))
                    .col(timestamp_with_time_zone(TrustedDevices::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TrustedDevices::Table, TrustedDevices::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_trusted_devices_account")
                    .table(TrustedDevices::Table)
                    .col(TrustedDevices::AccountId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TrustedDevices::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum TrustedDevices {
    Table,
    Id,
    AccountId,
    TokenHash,
    Label,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}
