//! [`PseudonymStore`] on sea-orm: one row per (service, account), created
//! on first use with `INSERT … ON CONFLICT DO NOTHING`, so that two nodes
//! racing keep one value. Rows go with their account (foreign key, cascade).
//!
//! A pseudonym never changes once stored: each node keeps those it read,
//! dropped with the accounts' copy when the accounts registry version moves
//! (a deleted account takes its pseudonyms with it).

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use idp_core::clock::Clock;
use idp_core::pseudonym::PseudonymStore;
use idp_core::{Error, Result};

use crate::accounts::ACCOUNTS;
use crate::changes::Changes;
use crate::entities::pseudonym::{self, Entity as Pseudonyms};
use crate::memory::lock;
use crate::storage;

/// Pseudonyms in the SQL database.
pub struct SqlPseudonyms {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    changes: Arc<Changes>,
    /// The pseudonyms read, as of a version of the accounts registry.
    cache: Mutex<(i64, Values)>,
}

/// Pseudonyms by (service key, account id).
type Values = HashMap<(String, i64), String>;

/// At most this many pseudonyms are kept; past it the copy starts over.
const CACHE_LIMIT: usize = 200_000;

impl SqlPseudonyms {
    /// The pseudonyms of `db`, whose changes `changes` watches.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, changes: Arc<Changes>) -> Self {
        Self { db, clock, changes, cache: Mutex::new((0, HashMap::new())) }
    }

    /// The stored pseudonym, from memory when the accounts did not change.
    fn cached(&self, version: i64, key: &(String, i64)) -> Option<String> {
        let mut cache = lock(&self.cache);
        if cache.0 != version {
            *cache = (version, HashMap::new());
        }
        cache.1.get(key).cloned()
    }

    fn keep(&self, version: i64, key: (String, i64), value: &str) {
        let mut cache = lock(&self.cache);
        if cache.0 == version {
            if cache.1.len() >= CACHE_LIMIT {
                cache.1.clear();
            }
            cache.1.insert(key, value.to_owned());
        }
    }
}

#[async_trait]
impl PseudonymStore for SqlPseudonyms {
    async fn get_or_create_keyed(&self, key: &str, account_id: i64, candidate: String) -> Result<String> {
        let key = (key.to_owned(), account_id);
        let version = self.changes.version(ACCOUNTS).await?;
        if let Some(value) = self.cached(version, &key) {
            return Ok(value);
        }
        if let Some(row) = Pseudonyms::find_by_id(key.clone()).one(&self.db).await.map_err(storage)? {
            self.keep(version, key, &row.value);
            return Ok(row.value);
        }
        let row = pseudonym::ActiveModel {
            service_id: Set(key.0.clone()),
            account_id: Set(account_id),
            value: Set(candidate),
            created_at: Set(self.clock.now()),
        };
        Pseudonyms::insert(row)
            .on_conflict_do_nothing_on([pseudonym::Column::ServiceId, pseudonym::Column::AccountId])
            .exec(&self.db)
            .await
            .map_err(storage)?;
        let row = Pseudonyms::find_by_id(key.clone()).one(&self.db).await.map_err(storage)?;
        let value = row.map(|r| r.value).ok_or_else(|| Error::storage("pseudonym not stored"))?;
        self.keep(version, key, &value);
        Ok(value)
    }
}
