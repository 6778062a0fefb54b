//! Second factors: a TOTP secret per account (sealed at rest), its
//! single-use recovery codes (SHA-256) and WebAuthn passkeys. They go with
//! their account.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn to_account(table: impl IntoIden + Copy, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Accounts::Table, Accounts::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SecondFactorTotp::Table)
                    .if_not_exists()
                    .col(big_integer(SecondFactorTotp::AccountId).primary_key())
                    // Sealed with the key-encryption key (`v1:` ...).
                    .col(text(SecondFactorTotp::Secret))
                    // The last time step whose code was accepted: a code of
                    // that step or an earlier one is refused.
                    .col(big_integer(SecondFactorTotp::LastStep))
                    .col(timestamp_with_time_zone(SecondFactorTotp::CreatedAt))
                    .foreign_key(&mut to_account(SecondFactorTotp::Table, SecondFactorTotp::AccountId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RecoveryCodes::Id))
                    .col(big_integer(RecoveryCodes::AccountId))
                    .col(string_len(RecoveryCodes::CodeHash, 64))
                    .foreign_key(&mut to_account(RecoveryCodes::Table, RecoveryCodes::AccountId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_account")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::AccountId)
                    .col(RecoveryCodes::CodeHash)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Passkeys::Id))
                    .col(big_integer(Passkeys::AccountId))
                    .col(string_len_uniq(Passkeys::CredentialId, 1024))
                    .col(string_len(Passkeys::Name, 64))
                    .col(text(Passkeys::Data))
                    .col(timestamp_with_time_zone(Passkeys::CreatedAt))
                    .foreign_key(&mut to_account(Passkeys::Table, Passkeys::AccountId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Passkeys::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RecoveryCodes::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(SecondFactorTotp::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SecondFactorTotp {
    Table,
    AccountId,
    Secret,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RecoveryCodes {
    Table,
    Id,
    AccountId,
    CodeHash,
}

#[derive(DeriveIden, Clone, Copy)]
enum Passkeys {
    Table,
    Id,
    AccountId,
    CredentialId,
    Name,
    Data,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}
