//! The school help desk: who administers which schools, and the trail of
//! what they did in the console. A role goes with its account.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AdminRoles::Table)
                    .if_not_exists()
                    .col(big_integer(AdminRoles::AccountId).primary_key())
                    .col(boolean(AdminRoles::Global))
                    // The UAIs as a JSON array (empty for a global role).
                    .col(text(AdminRoles::Schools))
                    .col(timestamp_with_time_zone(AdminRoles::GrantedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AdminRoles::Table, AdminRoles::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AdminAudit::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AdminAudit::Id))
                    .col(timestamp_with_time_zone(AdminAudit::At))
                    .col(string_len(AdminAudit::Actor, 64))
                    .col(string_len(AdminAudit::Action, 32))
                    .col(string_len(AdminAudit::Target, 64))
                    .col(string_len(AdminAudit::Source, 64))
                    .col(text(AdminAudit::Detail))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_admin_audit_at")
                    .table(AdminAudit::Table)
                    .col(AdminAudit::At)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AdminAudit::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(AdminRoles::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AdminRoles {
    Table,
    AccountId,
    Global,
    Schools,
    GrantedAt,
}

#[derive(DeriveIden)]
enum AdminAudit {
    Table,
    Id,
    At,
    Actor,
    Action,
    Target,
    Source,
    Detail,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}
