//! The accounts table.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Accounts::Id))
                    .col(string_len(Accounts::Login, 64))
                    .col(string_len_uniq(Accounts::LoginCanonical, 64))
                    .col(string_len(Accounts::Profile, 16))
                    .col(string_len(Accounts::GivenName, 128))
                    .col(string_len(Accounts::FamilyName, 128))
                    .col(string_len_null(Accounts::Email, 254))
                    // JSON array of UAI codes.
                    .col(text(Accounts::Schools))
                    .col(string_len(Accounts::State, 16))
                    .col(text_null(Accounts::PasswordHash))
                    .col(text_null(Accounts::ProvisionalHash))
                    .col(timestamp_with_time_zone_null(Accounts::ProvisionalSetAt))
                    .col(string_len_null(Accounts::CguVersion, 32))
                    .col(timestamp_with_time_zone_null(Accounts::CguAcceptedAt))
                    .col(timestamp_with_time_zone(Accounts::SessionsValidAfter))
                    .col(integer(Accounts::FailedLogins).default(0))
                    // JSON object: attribute name -> list of values.
                    .col(text(Accounts::Attributes))
                    .col(timestamp_with_time_zone(Accounts::CreatedAt))
                    .col(timestamp_with_time_zone(Accounts::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Accounts::LastLoginAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Accounts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Login,
    LoginCanonical,
    Profile,
    GivenName,
    FamilyName,
    Email,
    Schools,
    State,
    PasswordHash,
    ProvisionalHash,
    ProvisionalSetAt,
    CguVersion,
    CguAcceptedAt,
    SessionsValidAfter,
    FailedLogins,
    Attributes,
    CreatedAt,
    UpdatedAt,
    LastLoginAt,
}
