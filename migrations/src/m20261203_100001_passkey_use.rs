//! Passkeys: the signature counter of each (the last one accepted, moved
//! by one conditional update so that a cloned key's older counter is
//! refused, even by two nodes at once) and when it was last used (shown in
//! Mon compte).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Passkeys::Table)
                    .add_column(big_integer(Passkeys::SignCount).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Passkeys::Table)
                    .add_column(timestamp_with_time_zone_null(Passkeys::LastUsedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Passkeys::Table).drop_column(Passkeys::LastUsedAt).to_owned()).await?;
        manager.alter_table(Table::alter().table(Passkeys::Table).drop_column(Passkeys::SignCount).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    SignCount,
    LastUsedAt,
}
