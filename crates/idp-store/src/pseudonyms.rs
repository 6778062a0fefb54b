//! [`PseudonymStore`] on sea-orm: one row per (service, account), created
//! on first use with `INSERT … ON CONFLICT DO NOTHING`, so that two nodes
//! racing keep one value. Rows go with their account (foreign key, cascade).

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use std::sync::Arc;

use idp_core::clock::Clock;
use idp_core::pseudonym::PseudonymStore;
use idp_core::{Error, Result};

use crate::entities::pseudonym::{self, Entity as Pseudonyms};
use crate::storage;

/// Pseudonyms in the SQL database.
pub struct SqlPseudonyms {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl SqlPseudonyms {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }
}

#[async_trait]
impl PseudonymStore for SqlPseudonyms {
    async fn get_or_create_keyed(&self, key: &str, account_id: i64, candidate: String) -> Result<String> {
        let key = (key.to_owned(), account_id);
        if let Some(row) = Pseudonyms::find_by_id(key.clone()).one(&self.db).await.map_err(storage)? {
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
        let row = Pseudonyms::find_by_id(key).one(&self.db).await.map_err(storage)?;
        row.map(|r| r.value).ok_or_else(|| Error::storage("pseudonym not stored"))
    }
}
