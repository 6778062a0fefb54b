//! [`AccountRepository`] on sea-orm.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, Set, SqlErr,
    TransactionTrait,
};
use std::collections::BTreeMap;
use std::sync::Arc;

use idp_core::account::{Account, AccountState, Login, NewAccount, Profile};
use idp_core::clock::Clock;
use idp_core::ports::AccountRepository;
use idp_core::{Error, Result};

use crate::entities::account::{self, Entity as Accounts};
use crate::storage;

/// Accounts in the SQL database.
pub struct SqlAccounts {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl SqlAccounts {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }
}

fn to_domain(m: account::Model) -> Result<Account> {
    Ok(Account {
        id: m.id,
        login: Login::parse(&m.login)?,
        profile: Profile::parse(&m.profile)?,
        given_name: m.given_name,
        family_name: m.family_name,
        email: m.email,
        schools: serde_json::from_str(&m.schools).map_err(Error::Json)?,
        state: AccountState::parse(&m.state)?,
        password_hash: m.password_hash,
        provisional_hash: m.provisional_hash,
        provisional_set_at: m.provisional_set_at,
        cgu_version: m.cgu_version,
        cgu_accepted_at: m.cgu_accepted_at,
        sessions_valid_after: m.sessions_valid_after,
        failed_logins: m.failed_logins,
        attributes: serde_json::from_str::<BTreeMap<String, Vec<String>>>(&m.attributes).map_err(Error::Json)?,
        created_at: m.created_at,
        updated_at: m.updated_at,
        last_login_at: m.last_login_at,
    })
}

fn to_row(a: &Account) -> Result<account::Model> {
    Ok(account::Model {
        id: a.id,
        login: a.login.as_str().to_owned(),
        login_canonical: a.login.canonical(),
        profile: a.profile.as_str().to_owned(),
        given_name: a.given_name.clone(),
        family_name: a.family_name.clone(),
        email: a.email.clone(),
        schools: serde_json::to_string(&a.schools).map_err(Error::Json)?,
        state: a.state.as_str().to_owned(),
        password_hash: a.password_hash.clone(),
        provisional_hash: a.provisional_hash.clone(),
        provisional_set_at: a.provisional_set_at,
        cgu_version: a.cgu_version.clone(),
        cgu_accepted_at: a.cgu_accepted_at,
        sessions_valid_after: a.sessions_valid_after,
        failed_logins: a.failed_logins,
        attributes: serde_json::to_string(&a.attributes).map_err(Error::Json)?,
        created_at: a.created_at,
        updated_at: a.updated_at,
        last_login_at: a.last_login_at,
    })
}

fn new_row(n: NewAccount, now: DateTime<Utc>) -> Result<account::ActiveModel> {
    let provisional_set_at = n.provisional_hash.as_ref().map(|_| now);
    let cgu_accepted_at = n.cgu_version.as_ref().map(|_| now);
    Ok(account::ActiveModel {
        login: Set(n.login.as_str().to_owned()),
        login_canonical: Set(n.login.canonical()),
        profile: Set(n.profile.as_str().to_owned()),
        given_name: Set(n.given_name),
        family_name: Set(n.family_name),
        email: Set(n.email),
        schools: Set(serde_json::to_string(&n.schools).map_err(Error::Json)?),
        state: Set(n.state.as_str().to_owned()),
        password_hash: Set(n.password_hash),
        provisional_hash: Set(n.provisional_hash),
        provisional_set_at: Set(provisional_set_at),
        cgu_version: Set(n.cgu_version),
        cgu_accepted_at: Set(cgu_accepted_at),
        // No session can predate the account.
        sessions_valid_after: Set(DateTime::<Utc>::UNIX_EPOCH),
        failed_logins: Set(0),
        attributes: Set(serde_json::to_string(&n.attributes).map_err(Error::Json)?),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(None),
        ..Default::default()
    })
}

fn conflict_or_storage(login: &Login) -> impl Fn(sea_orm::DbErr) -> Error + '_ {
    move |e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(format!("account '{login}' already exists")),
        _ => storage(e),
    }
}

#[async_trait]
impl AccountRepository for SqlAccounts {
    async fn find_by_login(&self, login: &Login) -> Result<Option<Account>> {
        Accounts::find()
            .filter(account::Column::LoginCanonical.eq(login.canonical()))
            .one(&self.db)
            .await
            .map_err(storage)?
            .map(to_domain)
            .transpose()
    }

    async fn find_by_id(&self, id: i64) -> Result<Option<Account>> {
        Accounts::find_by_id(id).one(&self.db).await.map_err(storage)?.map(to_domain).transpose()
    }

    async fn create(&self, new: NewAccount) -> Result<Account> {
        let login = new.login.clone();
        let row = new_row(new, self.clock.now())?;
        let model = row.insert(&self.db).await.map_err(conflict_or_storage(&login))?;
        to_domain(model)
    }

    async fn update(&self, account: &Account) -> Result<()> {
        let row = to_row(account)?.into_active_model().reset_all();
        row.update(&self.db).await.map_err(conflict_or_storage(&account.login))?;
        Ok(())
    }

    async fn delete(&self, login: &Login) -> Result<bool> {
        let done = Accounts::delete_many()
            .filter(account::Column::LoginCanonical.eq(login.canonical()))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected > 0)
    }

    async fn apply_batch(&self, create: Vec<NewAccount>, update: Vec<Account>) -> Result<()> {
        let now = self.clock.now();
        let txn = self.db.begin().await.map_err(storage)?;
        for new in create {
            let login = new.login.clone();
            new_row(new, now)?.insert(&txn).await.map_err(conflict_or_storage(&login))?;
        }
        for account in &update {
            to_row(account)?
                .into_active_model()
                .reset_all()
                .update(&txn)
                .await
                .map_err(conflict_or_storage(&account.login))?;
        }
        txn.commit().await.map_err(storage)
    }

    async fn record_failed_login(&self, id: i64) -> Result<i32> {
        Accounts::update_many()
            .col_expr(account::Column::FailedLogins, Expr::col(account::Column::FailedLogins).add(1))
            .filter(account::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(self.find_by_id(id).await?.map(|a| a.failed_logins).unwrap_or(0))
    }

    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        Accounts::update_many()
            .col_expr(account::Column::FailedLogins, Expr::value(0))
            .col_expr(account::Column::LastLoginAt, Expr::value(at))
            .filter(account::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        Ok(())
    }
}
