//! [`SamlSpRegistry`] on sea-orm, kept in memory per node as the services
//! are: every change bumps the `saml_sps` registry version in its
//! transaction, and every lookup asks [`Changes`] whether to reload.

use async_trait::async_trait;
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder, Set, SqlErr, TransactionTrait};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

use idp_core::clock::Clock;
use idp_core::saml_sp::{NameIdKind, SamlSp, SamlSpRegistry};
use idp_core::service::ServiceId;
use idp_core::{Error, Result};

use crate::changes::{Changes, bump};
use crate::entities::saml_sp::{self, Entity as SamlSps};
use crate::storage;

/// The row of `registry_versions` that counts changes to SAML SPs.
const REGISTRY: &str = "saml_sps";

/// The `options` column.
#[derive(Serialize, Deserialize)]
struct Options {
    name_id: String,
    #[serde(default)]
    encrypt: bool,
    #[serde(default)]
    require_signed_requests: bool,
    #[serde(default)]
    idp_initiated: bool,
}

/// Registered SAML service providers in the SQL database.
pub struct SqlSamlSps {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    changes: Arc<Changes>,
    snapshot: Mutex<Option<(i64, Arc<Vec<SamlSp>>)>>,
}

impl SqlSamlSps {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, changes: Arc<Changes>) -> Self {
        Self { db, clock, changes, snapshot: Mutex::new(None) }
    }

    async fn snapshot(&self) -> Result<Arc<Vec<SamlSp>>> {
        let version = self.changes.version(REGISTRY).await?;
        if let Some((cached, sps)) = self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *cached == version
        {
            return Ok(sps.clone());
        }
        let rows = SamlSps::find().order_by_asc(saml_sp::Column::Id).all(&self.db).await.map_err(storage)?;
        let mut sps = Vec::with_capacity(rows.len());
        for row in rows {
            match to_domain(row) {
                Ok(sp) => sps.push(sp),
                Err(e) => tracing::error!(error = %e, "skipping an unreadable SAML SP row"),
            }
        }
        let sps = Arc::new(sps);
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, sps.clone()));
        Ok(sps)
    }
}

fn to_domain(m: saml_sp::Model) -> Result<SamlSp> {
    let options: Options = serde_json::from_str(&m.options).map_err(Error::Json)?;
    Ok(SamlSp {
        id: ServiceId::parse(&m.id)?,
        name: m.name,
        entity_id: m.entity_id,
        metadata: m.metadata,
        name_id: NameIdKind::parse(&options.name_id)?,
        encrypt: options.encrypt,
        require_signed_requests: options.require_signed_requests,
        idp_initiated: options.idp_initiated,
        attributes: serde_json::from_str(&m.attributes).map_err(Error::Json)?,
        policy: crate::service_policy::from_column(m.policy.as_deref())?,
    })
}

#[async_trait]
impl SamlSpRegistry for SqlSamlSps {
    async fn get(&self, id: &ServiceId) -> Result<Option<SamlSp>> {
        Ok(self.snapshot().await?.iter().find(|s| &s.id == id).cloned())
    }

    async fn by_entity_id(&self, entity_id: &str) -> Result<Option<SamlSp>> {
        Ok(self.snapshot().await?.iter().find(|s| s.entity_id == entity_id).cloned())
    }

    async fn list(&self) -> Result<Vec<SamlSp>> {
        Ok(self.snapshot().await?.as_ref().clone())
    }

    async fn add(&self, sp: SamlSp) -> Result<()> {
        let options = Options {
            name_id: sp.name_id.as_str().to_owned(),
            encrypt: sp.encrypt,
            require_signed_requests: sp.require_signed_requests,
            idp_initiated: sp.idp_initiated,
        };
        let now = self.clock.now();
        let active = saml_sp::ActiveModel {
            id: Set(sp.id.as_str().to_owned()),
            name: Set(sp.name.clone()),
            entity_id: Set(sp.entity_id.clone()),
            metadata: Set(sp.metadata.clone()),
            options: Set(serde_json::to_string(&options).map_err(Error::Json)?),
            attributes: Set(serde_json::to_string(&sp.attributes).map_err(Error::Json)?),
            policy: Set(Some(crate::service_policy::to_column(&sp.policy)?)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let txn = self.db.begin().await.map_err(storage)?;
        SamlSps::insert(active).exec(&txn).await.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Error::Conflict(format!("SAML SP '{}' or entity id '{}' already registered", sp.id, sp.entity_id))
            }
            _ => storage(e),
        })?;
        bump(&txn, REGISTRY).await?;
        txn.commit().await.map_err(storage)
    }

    async fn remove(&self, id: &ServiceId) -> Result<bool> {
        let txn = self.db.begin().await.map_err(storage)?;
        let done = SamlSps::delete_by_id(id.as_str().to_owned()).exec(&txn).await.map_err(storage)?;
        bump(&txn, REGISTRY).await?;
        txn.commit().await.map_err(storage)?;
        Ok(done.rows_affected > 0)
    }
}
