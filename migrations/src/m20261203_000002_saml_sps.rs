//! SAML service providers registered with our identity provider, and their
//! registry version counter (so every node sees a change at once).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const REGISTRY: &str = "saml_sps";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SamlSps::Table)
                    .if_not_exists()
                    .col(string_len(SamlSps::Id, 64).primary_key())
                    .col(string_len(SamlSps::Name, 128))
                    .col(string_len_uniq(SamlSps::EntityId, 1024))
                    .col(text(SamlSps::Metadata))
                    // JSON: NameID, encryption, signed requests, IdP-initiated.
                    .col(text(SamlSps::Options))
                    // JSON array of release rules.
                    .col(text(SamlSps::Attributes))
                    .col(text_null(SamlSps::Policy))
                    .col(timestamp_with_time_zone(SamlSps::CreatedAt))
                    .col(timestamp_with_time_zone(SamlSps::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        let insert = Query::insert()
            .into_table(RegistryVersions::Table)
            .columns([RegistryVersions::Name, RegistryVersions::Version])
            .values_panic([REGISTRY.into(), 0i64.into()])
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(RegistryVersions::Table)
            .and_where(Expr::col(RegistryVersions::Name).eq(REGISTRY))
            .to_owned();
        manager.exec_stmt(delete).await?;
        manager.drop_table(Table::drop().table(SamlSps::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SamlSps {
    Table,
    Id,
    Name,
    EntityId,
    Metadata,
    Options,
    Attributes,
    Policy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RegistryVersions {
    Table,
    Name,
    Version,
}
