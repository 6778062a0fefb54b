//! The account life cycle: secret questions and e-mail
//! validation per account, login history, and the mail queue.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountSecurity::Table)
                    .if_not_exists()
                    .col(big_integer(AccountSecurity::AccountId).primary_key())
                    .col(string_len_null(AccountSecurity::EmailVerified, 254))
                    .col(timestamp_with_time_zone_null(AccountSecurity::EmailVerifiedAt))
                    // JSON: the two questions and the argon2id hashes of the answers.
                    .col(text_null(AccountSecurity::Questions))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountSecurity::Table, AccountSecurity::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LoginHistory::Table)
                    .if_not_exists()
                    .col(big_pk_auto(LoginHistory::Id))
                    .col(big_integer(LoginHistory::AccountId))
                    .col(timestamp_with_time_zone(LoginHistory::At))
                    .col(string_len(LoginHistory::Source, 64))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LoginHistory::Table, LoginHistory::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_history_account")
                    .table(LoginHistory::Table)
                    .col(LoginHistory::AccountId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailQueue::Table)
                    .if_not_exists()
                    .col(big_pk_auto(MailQueue::Id))
                    .col(string_len(MailQueue::Recipient, 254))
                    // The whole RFC 5322 message.
                    .col(text(MailQueue::Message))
                    .col(integer(MailQueue::Attempts).default(0))
                    .col(timestamp_with_time_zone(MailQueue::NextAttemptAt))
                    .col(text_null(MailQueue::LastError))
                    .col(timestamp_with_time_zone(MailQueue::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MailQueue::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(LoginHistory::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(AccountSecurity::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AccountSecurity {
    Table,
    AccountId,
    EmailVerified,
    EmailVerifiedAt,
    Questions,
}

#[derive(DeriveIden)]
enum LoginHistory {
    Table,
    Id,
    AccountId,
    At,
    Source,
}

#[derive(DeriveIden)]
enum MailQueue {
    Table,
    Id,
    Recipient,
    Message,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
}
