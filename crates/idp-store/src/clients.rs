//! [`ClientRegistry`] and [`KeyStore`] on sea-orm. Each node keeps both
//! tables in memory (a few clients, a few keys: token, introspection and
//! userinfo requests read them every time), tagged with the version rows
//! `clients` and `keys` that every change bumps in its transaction; a
//! lookup asks [`Changes`] first, so that a client registered or a key
//! rotated by the CLI is seen at once by every running node. Private keys
//! are stored encrypted ([`crate::at_rest`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set, SqlErr,
    TransactionTrait,
};
use std::sync::{Arc, Mutex};

use idp_core::oidc::{ClientId, ClientRegistry, KeyStore, OidcClient, StoredKey, SubjectType};
use idp_core::secret::Secret;
use idp_core::{Error, Result};

use crate::at_rest::KeyCipher;
use crate::changes::{Changes, bump};
use crate::entities::oidc_client::{self, Entity as Clients};
use crate::entities::oidc_key::{self, Entity as Keys};
use crate::memory::lock;
use crate::storage;

/// Registered OIDC clients in the SQL database.
pub struct SqlClients {
    db: DatabaseConnection,
    changes: Arc<Changes>,
    /// Every client, by id order, as of a version of the `clients` row.
    snapshot: Snapshot<OidcClient>,
}

/// The rows of `registry_versions` that count changes to clients and keys.
const CLIENTS: &str = "clients";
const KEYS: &str = "keys";

/// A table's rows in memory, as of a version.
type Snapshot<T> = Mutex<Option<(i64, Arc<Vec<T>>)>>;

fn cached<T>(snapshot: &Snapshot<T>, version: i64) -> Option<Arc<Vec<T>>> {
    lock(snapshot).as_ref().filter(|(v, _)| *v == version).map(|(_, rows)| rows.clone())
}

impl SqlClients {
    /// The clients of `db`, whose changes `changes` watches.
    pub fn new(db: DatabaseConnection, changes: Arc<Changes>) -> Self {
        Self { db, changes, snapshot: Mutex::new(None) }
    }

    /// Every client, from memory while the table did not change. The
    /// version is read before the rows: a change in between makes the next
    /// lookup read them again.
    async fn all(&self) -> Result<Arc<Vec<OidcClient>>> {
        let version = self.changes.version(CLIENTS).await?;
        if let Some(rows) = cached(&self.snapshot, version) {
            return Ok(rows);
        }
        let rows = Clients::find().order_by_asc(oidc_client::Column::Id).all(&self.db).await.map_err(storage)?;
        let rows = Arc::new(rows.into_iter().map(to_domain).collect::<Result<Vec<_>>>()?);
        *lock(&self.snapshot) = Some((version, rows.clone()));
        Ok(rows)
    }
}

fn list_of(json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json).map_err(Error::Json)
}

fn to_domain(m: oidc_client::Model) -> Result<OidcClient> {
    Ok(OidcClient {
        id: ClientId::parse(&m.id)?,
        name: m.name,
        secret_hash: m.secret_hash,
        redirect_uris: list_of(&m.redirect_uris)?,
        post_logout_redirect_uris: list_of(&m.post_logout_redirect_uris)?,
        backchannel_logout_uri: m.backchannel_logout_uri,
        scopes: list_of(&m.scopes)?,
        require_consent: m.require_consent,
        subject_type: SubjectType::parse(&m.subject_type)?,
        created_at: m.created_at,
    })
}

/// The row of a client, every column set.
fn to_row(c: &OidcClient) -> Result<oidc_client::ActiveModel> {
    let json = |v: &Vec<String>| serde_json::to_string(v).map_err(Error::Json);
    Ok(oidc_client::ActiveModel {
        id: Set(c.id.as_str().to_owned()),
        name: Set(c.name.clone()),
        secret_hash: Set(c.secret_hash.clone()),
        redirect_uris: Set(json(&c.redirect_uris)?),
        post_logout_redirect_uris: Set(json(&c.post_logout_redirect_uris)?),
        scopes: Set(json(&c.scopes)?),
        backchannel_logout_uri: Set(c.backchannel_logout_uri.clone()),
        require_consent: Set(c.require_consent),
        subject_type: Set(c.subject_type.as_str().to_owned()),
        created_at: Set(c.created_at),
    })
}

#[async_trait]
impl ClientRegistry for SqlClients {
    async fn get(&self, id: &ClientId) -> Result<Option<OidcClient>> {
        Ok(self.all().await?.iter().find(|c| c.id == *id).cloned())
    }

    async fn list(&self) -> Result<Vec<OidcClient>> {
        Ok(self.all().await?.as_ref().clone())
    }

    async fn add(&self, c: OidcClient) -> Result<()> {
        let row = to_row(&c)?;
        let txn = self.db.begin().await.map_err(storage)?;
        Clients::insert(row).exec(&txn).await.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(format!("client '{}' already exists", c.id)),
            _ => storage(e),
        })?;
        bump(&txn, CLIENTS).await?;
        txn.commit().await.map_err(storage)
    }

    async fn update(&self, c: OidcClient) -> Result<()> {
        let txn = self.db.begin().await.map_err(storage)?;
        let found = Clients::find_by_id(c.id.as_str().to_owned()).one(&txn).await.map_err(storage)?;
        if found.is_none() {
            return Err(Error::NotFound(format!("client '{}'", c.id)));
        }
        to_row(&c)?.update(&txn).await.map_err(storage)?;
        bump(&txn, CLIENTS).await?;
        txn.commit().await.map_err(storage)
    }

    async fn remove(&self, id: &ClientId) -> Result<bool> {
        let txn = self.db.begin().await.map_err(storage)?;
        let done = Clients::delete_by_id(id.as_str().to_owned()).exec(&txn).await.map_err(storage)?;
        bump(&txn, CLIENTS).await?;
        txn.commit().await.map_err(storage)?;
        Ok(done.rows_affected > 0)
    }
}

/// Signing keys in the SQL database, their private part encrypted.
pub struct SqlKeys {
    db: DatabaseConnection,
    cipher: Arc<KeyCipher>,
    changes: Arc<Changes>,
    /// Every key, opened, as of a version of the `keys` row.
    snapshot: Snapshot<StoredKey>,
}

impl SqlKeys {
    /// The keys of `db`, opened with `cipher`, whose changes `changes`
    /// watches.
    pub fn new(db: DatabaseConnection, cipher: Arc<KeyCipher>, changes: Arc<Changes>) -> Self {
        Self { db, cipher, changes, snapshot: Mutex::new(None) }
    }

    /// Replaces a private key stored in clear by an earlier version with
    /// its encrypted form (unless another process did it first).
    async fn encrypt_in_place(&self, kid: &str, clear: &str) -> Result<()> {
        let sealed = self.cipher.seal(kid, &Secret::new(clear))?;
        Keys::update_many()
            .col_expr(oidc_key::Column::PrivatePem, Expr::value(sealed))
            .filter(oidc_key::Column::Kid.eq(kid))
            .filter(oidc_key::Column::PrivatePem.eq(clear))
            .exec(&self.db)
            .await
            .map_err(storage)?;
        tracing::info!(kid, "OIDC signing key encrypted at rest");
        Ok(())
    }
}

#[async_trait]
impl KeyStore for SqlKeys {
    async fn list(&self) -> Result<Vec<StoredKey>> {
        let version = self.changes.version(KEYS).await?;
        if let Some(keys) = cached(&self.snapshot, version) {
            return Ok(keys.as_ref().clone());
        }
        let rows = Keys::find().order_by_asc(oidc_key::Column::CreatedAt).all(&self.db).await.map_err(storage)?;
        let mut keys = Vec::with_capacity(rows.len());
        for m in rows {
            let (private_pem, was_clear) = self.cipher.open(&m.kid, &m.private_pem)?;
            if was_clear {
                self.encrypt_in_place(&m.kid, &m.private_pem).await?;
            }
            keys.push(StoredKey {
                kid: m.kid,
                alg: m.alg,
                private_pem,
                created_at: m.created_at,
                retired_at: m.retired_at,
            });
        }
        *lock(&self.snapshot) = Some((version, Arc::new(keys.clone())));
        Ok(keys)
    }

    async fn add(&self, key: StoredKey) -> Result<()> {
        let sealed = self.cipher.seal(&key.kid, &key.private_pem)?;
        let row = oidc_key::ActiveModel {
            kid: Set(key.kid),
            alg: Set(key.alg),
            private_pem: Set(sealed),
            created_at: Set(key.created_at),
            retired_at: Set(key.retired_at),
        };
        let txn = self.db.begin().await.map_err(storage)?;
        Keys::insert(row).exec(&txn).await.map_err(storage)?;
        bump(&txn, KEYS).await?;
        txn.commit().await.map_err(storage)
    }

    async fn retire_all(&self, alg: &str, at: DateTime<Utc>) -> Result<()> {
        let txn = self.db.begin().await.map_err(storage)?;
        Keys::update_many()
            .col_expr(oidc_key::Column::RetiredAt, Expr::value(at))
            .filter(oidc_key::Column::Alg.eq(alg))
            .filter(oidc_key::Column::RetiredAt.is_null())
            .exec(&txn)
            .await
            .map_err(storage)?;
        bump(&txn, KEYS).await?;
        txn.commit().await.map_err(storage)
    }

    async fn remove(&self, kid: &str) -> Result<()> {
        let txn = self.db.begin().await.map_err(storage)?;
        Keys::delete_by_id(kid.to_owned()).exec(&txn).await.map_err(storage)?;
        bump(&txn, KEYS).await?;
        txn.commit().await.map_err(storage)
    }
}
