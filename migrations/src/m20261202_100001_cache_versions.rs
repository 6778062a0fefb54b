//! Version counters for the accounts, OIDC clients and signing keys tables,
//! next to the services one: every change bumps its table's counter, so
//! that a node can serve them from memory and see at once what the CLI or
//! another node changed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAMES: [&str; 3] = ["accounts", "clients", "keys"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in NAMES {
            let insert = Query::insert()
                .into_table(RegistryVersions::Table)
                .columns([RegistryVersions::Name, RegistryVersions::Version])
                .values_panic([name.into(), 0i64.into()])
                .to_owned();
            manager.exec_stmt(insert).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(RegistryVersions::Table)
            .and_where(Expr::col(RegistryVersions::Name).is_in(NAMES))
            .to_owned();
        manager.exec_stmt(delete).await
    }
}

#[derive(DeriveIden)]
enum RegistryVersions {
    Table,
    Name,
    Version,
}
