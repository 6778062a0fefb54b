//! OpenID Connect: registered clients and signing keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OidcClients::Table)
                    .if_not_exists()
                    .col(string_len(OidcClients::Id, 64).primary_key())
                    .col(string_len(OidcClients::Name, 128))
                    // SHA-256 (hex) of the secret; NULL for a public client.
                    .col(string_len_null(OidcClients::SecretHash, 64))
                    // JSON arrays of strings.
                    .col(text(OidcClients::RedirectUris))
                    .col(text(OidcClients::PostLogoutRedirectUris))
                    .col(text(OidcClients::Scopes))
                    .col(text_null(OidcClients::BackchannelLogoutUri))
                    .col(boolean(OidcClients::RequireConsent).default(false))
                    .col(timestamp_with_time_zone(OidcClients::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OidcKeys::Table)
                    .if_not_exists()
                    .col(string_len(OidcKeys::Kid, 64).primary_key())
                    .col(string_len(OidcKeys::Alg, 16))
                    .col(text(OidcKeys::PrivatePem))
                    .col(timestamp_with_time_zone(OidcKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(OidcKeys::RetiredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(OidcKeys::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(OidcClients::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum OidcClients {
    Table,
    Id,
    Name,
    SecretHash,
    RedirectUris,
    PostLogoutRedirectUris,
    Scopes,
    BackchannelLogoutUri,
    RequireConsent,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OidcKeys {
    Table,
    Kid,
    Alg,
    PrivatePem,
    CreatedAt,
    RetiredAt,
}
