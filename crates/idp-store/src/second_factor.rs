//! [`SecondFactorRepository`] on sea-orm: TOTP secrets
//! (`second_factor_totp`, sealed by [`KeyCipher`] under the row name
//! `totp:<account id>`), recovery codes (`recovery_codes`, SHA-256 only)
//! passkeys (`passkeys`) and trusted devices (`trusted_devices`, the
//! SHA-256 of their token only).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};

use idp_core::Result;
use idp_core::second_factor::{SecondFactorRepository, StoredPasskey, TotpRecord, TotpSecret};
use idp_core::secret::Secret;
use idp_core::trusted_devices::TrustedDevice;

use crate::at_rest::KeyCipher;
use crate::storage;

mod totp {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "second_factor_totp")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: i64,
        pub secret: String,
        pub last_step: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod recovery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub account_id: i64,
        pub code_hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod passkey {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "passkeys")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub account_id: i64,
        pub credential_id: String,
        pub name: String,
        pub data: String,
        pub created_at: DateTimeUtc,
        pub sign_count: i64,
        pub last_used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

mod trusted {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "trusted_devices")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub account_id: i64,
        pub token_hash: String,
        pub label: String,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Second factors in the SQL database.
pub struct SqlSecondFactors {
    db: DatabaseConnection,
    cipher: Arc<KeyCipher>,
}

impl SqlSecondFactors {
    pub fn new(db: DatabaseConnection, cipher: Arc<KeyCipher>) -> Self {
        Self { db, cipher }
    }
}

fn row_name(account_id: i64) -> String {
    format!("totp:{account_id}")
}

#[async_trait]
impl SecondFactorRepository for SqlSecondFactors {
    async fn totp(&self, account_id: i64) -> Result<Option<TotpRecord>> {
        let Some(row) = totp::Entity::find_by_id(account_id).one(&self.db).await.map_err(storage)? else {
            return Ok(None);
        };
        let (clear, _) = self.cipher.open(&row_name(account_id), &row.secret)?;
        let secret =
            TotpSecret::from_base32(clear.expose()).ok_or_else(|| storage("a stored TOTP secret is not base32"))?;
        Ok(Some(TotpRecord { secret, last_step: row.last_step, created_at: row.created_at }))
    }

    async fn set_totp(
        &self,
        account_id: i64,
        secret: &TotpSecret,
        last_step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = self.cipher.seal(&row_name(account_id), &Secret::new(secret.base32()))?;
        let txn = self.db.begin().await.map_err(storage)?;
        totp::Entity::delete_by_id(account_id).exec(&txn).await.map_err(storage)?;
        recovery::Entity::delete_many()
            .filter(recovery::Column::AccountId.eq(account_id))
            .exec(&txn)
            .await
            .map_err(storage)?;
        totp::ActiveModel {
            account_id: Set(account_id),
            secret: Set(sealed),
            last_step: Set(last_step),
            created_at: Set(at),
        }
        .insert(&txn)
        .await
        .map_err(storage)?;
        insert_recovery_codes(&txn, account_id, recovery_hashes).await?;
        txn.commit().await.map_err(storage)
    }

    async fn set_recovery_codes(&self, account_id: i64, recovery_hashes: &[String]) -> Result<()> {
        let txn = self.db.begin().await.map_err(storage)?;
        recovery::Entity::delete_many()
            .filter(recovery::Column::AccountId.eq(account_id))
            .exec(&txn)
            .await
            .map_err(storage)?;
        insert_recovery_codes(&txn, account_id, recovery_hashes).await?;
        txn.commit().await.map_err(storage)
    }

    async fn use_step(&self, account_id: i64, step: i64) -> Result<bool> {
        // One conditional update: of two requests with the same code, only
        // one moves the step.
        let done = totp::Entity::update_many()
            .col_expr(totp::Column::LastStep, Expr::value(step))
            .filter(totp::Column::AccountId.eq(account_id))
            .filter(totp::Column::LastStep.lt(step))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected == 1)
    }

    async fn use_recovery_code(&self, account_id: i64, hash: &str) -> Result<bool> {
        let done = recovery::Entity::delete_many()
            .filter(recovery::Column::AccountId.eq(account_id))
            .filter(recovery::Column::CodeHash.eq(hash))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected > 0)
    }

    async fn recovery_codes_left(&self, account_id: i64) -> Result<u64> {
        recovery::Entity::find()
            .filter(recovery::Column::AccountId.eq(account_id))
            .count(&self.db)
            .await
            .map_err(storage)
    }

    async fn remove_all(&self, account_id: i64) -> Result<bool> {
        let txn = self.db.begin().await.map_err(storage)?;
        let a = totp::Entity::delete_by_id(account_id).exec(&txn).await.map_err(storage)?.rows_affected;
        recovery::Entity::delete_many()
            .filter(recovery::Column::AccountId.eq(account_id))
            .exec(&txn)
            .await
            .map_err(storage)?;
        let b = passkey::Entity::delete_many()
            .filter(passkey::Column::AccountId.eq(account_id))
            .exec(&txn)
            .await
            .map_err(storage)?
            .rows_affected;
        trusted::Entity::delete_many()
            .filter(trusted::Column::AccountId.eq(account_id))
            .exec(&txn)
            .await
            .map_err(storage)?;
        txn.commit().await.map_err(storage)?;
        Ok(a + b > 0)
    }

    async fn passkeys(&self, account_id: i64) -> Result<Vec<StoredPasskey>> {
        let rows = passkey::Entity::find()
            .filter(passkey::Column::AccountId.eq(account_id))
            .order_by_asc(passkey::Column::Id)
            .all(&self.db)
            .await
            .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|r| StoredPasskey {
                id: r.id,
                credential_id: r.credential_id,
                name: r.name,
                data: r.data,
                counter: u32::try_from(r.sign_count).unwrap_or(u32::MAX),
                created_at: r.created_at,
                last_used_at: r.last_used_at,
            })
            .collect())
    }

    async fn add_passkey(&self, account_id: i64, passkey: &StoredPasskey) -> Result<bool> {
        // The credential id is unique: a key registered twice (or to two
        // accounts) is told apart from a failing database by a look first,
        // the unique index deciding between two requests at once.
        let taken = passkey::Entity::find()
            .filter(passkey::Column::CredentialId.eq(passkey.credential_id.as_str()))
            .count(&self.db)
            .await
            .map_err(storage)?;
        if taken > 0 {
            return Ok(false);
        }
        passkey::ActiveModel {
            account_id: Set(account_id),
            credential_id: Set(passkey.credential_id.clone()),
            name: Set(passkey.name.clone()),
            data: Set(passkey.data.clone()),
            created_at: Set(passkey.created_at),
            sign_count: Set(i64::from(passkey.counter)),
            last_used_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(storage)?;
        Ok(true)
    }

    async fn use_passkey(
        &self,
        account_id: i64,
        credential_id: &str,
        counter: u32,
        data: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        // One conditional update: a counter that did not move forward (a
        // cloned key) changes nothing; an authenticator without a counter
        // sends 0 every time.
        let moved = if counter == 0 {
            passkey::Column::SignCount.eq(0)
        } else {
            passkey::Column::SignCount.lt(i64::from(counter))
        };
        let done = passkey::Entity::update_many()
            .col_expr(passkey::Column::Data, Expr::value(data))
            .col_expr(passkey::Column::SignCount, Expr::value(i64::from(counter)))
            .col_expr(passkey::Column::LastUsedAt, Expr::value(at))
            .filter(passkey::Column::AccountId.eq(account_id))
            .filter(passkey::Column::CredentialId.eq(credential_id))
            .filter(moved)
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected == 1)
    }

    async fn remove_passkey(&self, account_id: i64, id: i64) -> Result<bool> {
        let done = passkey::Entity::delete_many()
            .filter(passkey::Column::AccountId.eq(account_id))
            .filter(passkey::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected > 0)
    }

    async fn add_trusted_device(
        &self,
        account_id: i64,
        token_hash: &str,
        label: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        trusted::ActiveModel {
            account_id: Set(account_id),
            token_hash: Set(token_hash.to_owned()),
            label: Set(label.chars().take(64).collect()),
            created_at: Set(at),
            last_used_at: Set(None),
            expires_at: Set(expires_at),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn use_trusted_device(
        &self,
        account_id: i64,
        token_hash: &str,
        now: DateTime<Utc>,
        valid_after: DateTime<Utc>,
    ) -> Result<bool> {
        // One update decides: the row must be this account's and live.
        let done = trusted::Entity::update_many()
            .col_expr(trusted::Column::LastUsedAt, Expr::value(now))
            .filter(trusted::Column::AccountId.eq(account_id))
            .filter(trusted::Column::TokenHash.eq(token_hash))
            .filter(trusted::Column::ExpiresAt.gt(now))
            .filter(trusted::Column::CreatedAt.gte(valid_after))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected == 1)
    }

    async fn trusted_devices(&self, account_id: i64) -> Result<Vec<TrustedDevice>> {
        let rows = trusted::Entity::find()
            .filter(trusted::Column::AccountId.eq(account_id))
            .order_by_asc(trusted::Column::Id)
            .all(&self.db)
            .await
            .map_err(storage)?;
        Ok(rows
            .into_iter()
            .map(|r| TrustedDevice {
                id: r.id,
                label: r.label,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                expires_at: r.expires_at,
            })
            .collect())
    }

    async fn remove_trusted_devices(&self, account_id: i64, id: Option<i64>) -> Result<u64> {
        let mut delete = trusted::Entity::delete_many().filter(trusted::Column::AccountId.eq(account_id));
        if let Some(id) = id {
            delete = delete.filter(trusted::Column::Id.eq(id));
        }
        Ok(delete.exec(&self.db).await.map_err(storage)?.rows_affected)
    }
}

async fn insert_recovery_codes(txn: &sea_orm::DatabaseTransaction, account_id: i64, hashes: &[String]) -> Result<()> {
    for hash in hashes {
        recovery::ActiveModel { account_id: Set(account_id), code_hash: Set(hash.clone()), ..Default::default() }
            .insert(txn)
            .await
            .map_err(storage)?;
    }
    Ok(())
}
