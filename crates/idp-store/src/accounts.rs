//! [`AccountRepository`] on sea-orm, with a per-node copy of the accounts
//! read by id (the SSO and validation hot path reads an account by id at
//! every ticket).
//!
//! The copy is tagged with the version of the `accounts` registry, which
//! every write of an account's row bumps in its transaction (updates,
//! deletes, imports: whatever changes a state, a name or an attribute), and
//! is dropped whole when the version moves, as [`Changes`] tells at memory
//! speed on a SQLite file: a disabled account gets no new ticket from the
//! next request on. Creating an account needs no bump: only accounts that
//! exist are kept. The login counters (`record_login`,
//! `record_failed_login`) change nothing the ticket path reads and do not
//! bump the version; the writing node drops its own copy of that account,
//! another node's copy keeps the old counters until the next change.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    NotSet, QueryFilter, QuerySelect, Set, SqlErr, TransactionTrait,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use idp_core::account::{Account, AccountState, Login, NewAccount, Profile};
use idp_core::clock::Clock;
use idp_core::ports::AccountRepository;
use idp_core::{Error, Result};

use crate::changes::{Changes, bump};
use crate::entities::account::{self, Entity as Accounts};
use crate::memory::lock;
use crate::storage;

/// Accounts in the SQL database.
pub struct SqlAccounts {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    changes: Arc<Changes>,
    cache: Mutex<Cache>,
}

/// The row of `registry_versions` that counts changes to accounts.
pub(crate) const ACCOUNTS: &str = "accounts";

/// At most this many accounts are kept; past it the copy starts over (a
/// plain map is enough: the whole copy goes at every change anyway).
const CACHE_LIMIT: usize = 200_000;

/// Accounts read by id, as of a version of the accounts registry.
#[derive(Default)]
struct Cache {
    version: i64,
    /// Moves at every drop, so that a read that started before a drop does
    /// not put back what it read.
    generation: u64,
    by_id: HashMap<i64, Account>,
}

impl Cache {
    fn drop_all(&mut self) {
        self.by_id.clear();
        self.generation += 1;
    }
}

impl SqlAccounts {
    /// The accounts of `db`, whose changes `changes` watches.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, changes: Arc<Changes>) -> Self {
        Self { db, clock, changes, cache: Mutex::new(Cache::default()) }
    }

    async fn read_by_id(&self, id: i64) -> Result<Option<Account>> {
        Accounts::find_by_id(id).one(&self.db).await.map_err(storage)?.map(to_domain).transpose()
    }

    /// After a write of this node that does not bump the version.
    fn forget(&self, id: i64) {
        let mut cache = lock(&self.cache);
        cache.by_id.remove(&id);
        cache.generation += 1;
    }
}

pub(crate) fn to_domain(m: account::Model) -> Result<Account> {
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
        version: m.version,
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
        version: a.version,
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
        version: Set(0),
        ..Default::default()
    })
}

/// Writes `account` over its row if the row still has the version it was
/// read with, and bumps that version.
async fn write_if_unchanged(db: &impl ConnectionTrait, account: &Account) -> Result<()> {
    let mut row = to_row(account)?.into_active_model().reset_all();
    row.id = NotSet;
    row.version = NotSet;
    let done = Accounts::update_many()
        .set(row)
        .col_expr(account::Column::Version, Expr::col(account::Column::Version).add(1))
        .filter(account::Column::Id.eq(account.id))
        .filter(account::Column::Version.eq(account.version))
        .exec(db)
        .await
        .map_err(conflict_or_storage(&account.login))?;
    if done.rows_affected > 0 {
        return Ok(());
    }
    match Accounts::find_by_id(account.id).one(db).await.map_err(storage)? {
        Some(_) => Err(Error::Conflict(format!("account '{}' changed since it was read", account.login))),
        None => Err(Error::NotFound(format!("account '{}'", account.login))),
    }
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
        let version = self.changes.version(ACCOUNTS).await?;
        let generation = {
            let mut cache = lock(&self.cache);
            if cache.version != version {
                cache.drop_all();
                cache.version = version;
            }
            if let Some(account) = cache.by_id.get(&id) {
                return Ok(Some(account.clone()));
            }
            cache.generation
        };
        // Read after the version: a change committed meanwhile moves the
        // version, and the next lookup drops what is put here.
        let found = self.read_by_id(id).await?;
        if let Some(account) = &found {
            let mut cache = lock(&self.cache);
            if cache.generation == generation {
                if cache.by_id.len() >= CACHE_LIMIT {
                    cache.drop_all();
                }
                cache.by_id.insert(id, account.clone());
            }
        }
        Ok(found)
    }

    async fn find_candidates(&self, needle: &str) -> Result<Vec<Account>> {
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let condition =
            Condition::any().add(account::Column::Email.eq(needle)).add(account::Column::Attributes.contains(needle));
        let rows = Accounts::find().filter(condition).limit(50).all(&self.db).await.map_err(storage)?;
        rows.into_iter().map(to_domain).collect()
    }

    async fn create(&self, new: NewAccount) -> Result<Account> {
        let login = new.login.clone();
        let row = new_row(new, self.clock.now())?;
        let model = row.insert(&self.db).await.map_err(conflict_or_storage(&login))?;
        to_domain(model)
    }

    async fn update(&self, account: &Account) -> Result<()> {
        let txn = self.db.begin().await.map_err(storage)?;
        write_if_unchanged(&txn, account).await?;
        bump(&txn, ACCOUNTS).await?;
        txn.commit().await.map_err(storage)?;
        lock(&self.cache).drop_all();
        Ok(())
    }

    async fn delete(&self, login: &Login) -> Result<bool> {
        let txn = self.db.begin().await.map_err(storage)?;
        let done = Accounts::delete_many()
            .filter(account::Column::LoginCanonical.eq(login.canonical()))
            .exec(&txn)
            .await
            .map_err(storage)?;
        bump(&txn, ACCOUNTS).await?;
        txn.commit().await.map_err(storage)?;
        lock(&self.cache).drop_all();
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
            write_if_unchanged(&txn, account).await?;
        }
        bump(&txn, ACCOUNTS).await?;
        txn.commit().await.map_err(storage)?;
        lock(&self.cache).drop_all();
        Ok(())
    }

    async fn record_failed_login(&self, id: i64) -> Result<i32> {
        Accounts::update_many()
            .col_expr(account::Column::FailedLogins, Expr::col(account::Column::FailedLogins).add(1))
            .filter(account::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        self.forget(id);
        Ok(self.read_by_id(id).await?.map(|a| a.failed_logins).unwrap_or(0))
    }

    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        Accounts::update_many()
            .col_expr(account::Column::FailedLogins, Expr::value(0))
            .col_expr(account::Column::LastLoginAt, Expr::value(at))
            .filter(account::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        self.forget(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idp_core::clock::FixedClock;

    async fn repository() -> SqlAccounts {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let changes = Arc::new(Changes::new(db.clone(), "sqlite::memory:"));
        SqlAccounts::new(db, Arc::new(FixedClock::new(DateTime::<Utc>::UNIX_EPOCH)), changes)
    }

    fn new_account(login: &str) -> NewAccount {
        NewAccount {
            login: Login::parse(login).unwrap(),
            profile: Profile::Eleve,
            given_name: "Léa".into(),
            family_name: "Petit".into(),
            email: None,
            schools: Vec::new(),
            state: AccountState::Active,
            password_hash: Some("$argon2id$chosen".into()),
            provisional_hash: None,
            cgu_version: None,
            attributes: BTreeMap::new(),
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(seconds, 0).unwrap()
    }

    #[tokio::test]
    async fn a_write_from_an_older_read_is_refused() {
        let repo = repository().await;
        let created = repo.create(new_account("l.petit")).await.unwrap();
        let login = created.login.clone();
        // Two reads of the same row: an operator's reset, and a password
        // change that read the account before the reset was written.
        let mut operator = repo.find_by_login(&login).await.unwrap().unwrap();
        let mut person = repo.find_by_login(&login).await.unwrap().unwrap();
        operator.reset("$argon2id$provisional".into(), at(100));
        repo.update(&operator).await.unwrap();
        person.password_hash = Some("$argon2id$new".into());
        let refused = repo.update(&person).await.unwrap_err();
        assert!(matches!(refused, Error::Conflict(_)), "{refused}");
        let stored = repo.find_by_login(&login).await.unwrap().unwrap();
        assert_eq!(stored.state, AccountState::Reset);
        assert_eq!(stored.password_hash, None, "the reset stays");
        assert_eq!(stored.version, created.version + 1);
        // A fresh read writes again.
        let mut again = stored.clone();
        again.given_name = "Lea".into();
        repo.update(&again).await.unwrap();
        assert!(matches!(repo.update(&again).await, Err(Error::Conflict(_))), "the same snapshot twice");
    }

    #[tokio::test]
    async fn an_import_does_not_revert_an_account_changed_meanwhile() {
        let repo = repository().await;
        let created = repo.create(new_account("l.petit")).await.unwrap();
        let mut imported = created.clone();
        imported.family_name = "Petit-Martin".into();
        let mut disabled = created.clone();
        disabled.disable(at(100));
        repo.update(&disabled).await.unwrap();
        let refused = repo.apply_batch(vec![new_account("t.durand")], vec![imported]).await.unwrap_err();
        assert!(matches!(refused, Error::Conflict(_)), "{refused}");
        let stored = repo.find_by_login(&created.login).await.unwrap().unwrap();
        assert_eq!((stored.state, stored.family_name.as_str()), (AccountState::Disabled, "Petit"));
        assert!(repo.find_by_login(&Login::parse("t.durand").unwrap()).await.unwrap().is_none(), "all or nothing");
    }

    #[tokio::test]
    async fn updating_a_deleted_account_is_not_found() {
        let repo = repository().await;
        let created = repo.create(new_account("l.petit")).await.unwrap();
        repo.delete(&created.login).await.unwrap();
        assert!(matches!(repo.update(&created).await, Err(Error::NotFound(_))));
    }
}
