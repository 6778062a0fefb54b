//! A version counter for the accounts table, next to the services one: every
//! change to an account's state, names or attributes bumps it, so that a
//! node can serve accounts from memory and see at once what the CLI or
//! another node changed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let insert = Query::insert()
            .into_table(RegistryVersions::Table)
            .columns([RegistryVersions::Name, RegistryVersions::Version])
            .values_panic(["accounts".into(), 0i64.into()])
            .to_owned();
        manager.exec_stmt(insert).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let delete = Query::delete()
            .from_table(RegistryVersions::Table)
            .and_where(Expr::col(RegistryVersions::Name).eq("accounts"))
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
