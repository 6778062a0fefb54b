//! A version counter per registry, bumped in the same transaction as every
//! change to the registry's table, so that a node can keep the table in
//! memory and check with one tiny read that its copy is current.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RegistryVersions::Table)
                    .if_not_exists()
                    .col(string_len(RegistryVersions::Name, 32).primary_key())
                    .col(big_integer(RegistryVersions::Version).default(0))
                    .to_owned(),
            )
            .await?;
        let insert = Query::insert()
            .into_table(RegistryVersions::Table)
            .columns([RegistryVersions::Name, RegistryVersions::Version])
            .values_panic(["services".into(), 0i64.into()])
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RegistryVersions::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum RegistryVersions {
    Table,
    Name,
    Version,
}
