//! [`ServiceRegistry`] on sea-orm.
//!
//! Each node keeps the whole table in memory (a few hundred services at
//! most), tagged with the registry's version. Every change (`add`, `update`,
//! `remove`, from a server or the CLI) bumps the version in the same
//! transaction, and every lookup first asks [`Changes`] for the version —
//! from memory on a SQLite file while nothing was committed, else one
//! primary-key read — and reloads the table when it moved. So a service
//! added by the CLI is seen at once by every running node, and the hot path
//! (login, ticket validation) neither reads nor parses rows.

use async_trait::async_trait;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryOrder, Set, SqlErr, TransactionTrait,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use url::Url;

use idp_core::clock::Clock;
use idp_core::ports::ServiceRegistry;
use idp_core::service::{Service, ServiceId, ServiceUrl, UrlPattern, find_match};
use idp_core::{Error, Result};

use crate::changes::{Changes, bump};
use crate::entities::service::{self, Entity as Services};
use crate::storage;

/// Registered services in the SQL database.
pub struct SqlServices {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    changes: Arc<Changes>,
    patterns: Mutex<HashMap<String, UrlPattern>>,
    /// The table as of a registry version.
    snapshot: Mutex<Option<(i64, Arc<Vec<Service>>)>>,
}

/// The row of `registry_versions` that counts changes to services.
const REGISTRY: &str = "services";

impl SqlServices {
    /// The registry of `db`, whose changes `changes` watches.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, changes: Arc<Changes>) -> Self {
        Self { db, clock, changes, patterns: Mutex::new(HashMap::new()), snapshot: Mutex::new(None) }
    }

    /// Every service, from memory when the registry has not changed. The
    /// version is read before the rows: a change in between makes the next
    /// lookup reload, never keeps a stale copy.
    async fn snapshot(&self) -> Result<Arc<Vec<Service>>> {
        let version = self.changes.version(REGISTRY).await?;
        if let Some((cached, services)) = self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *cached == version
        {
            return Ok(services.clone());
        }
        let services = Arc::new(self.load().await?);
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, services.clone()));
        Ok(services)
    }

    async fn load(&self) -> Result<Vec<Service>> {
        let rows = Services::find()
            .order_by_asc(service::Column::EvaluationOrder)
            .order_by_asc(service::Column::Id)
            .all(&self.db)
            .await
            .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            match self.to_domain(row) {
                Ok(s) => out.push(s),
                // One broken row must not take every service down.
                Err(e) => tracing::error!(error = %e, "skipping an unreadable service row"),
            }
        }
        Ok(out)
    }

    fn pattern(&self, source: &str) -> Result<UrlPattern> {
        let mut cache = self.patterns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(source) {
            return Ok(p.clone());
        }
        let p = UrlPattern::parse(source)?;
        // Bounded: patterns of removed services are few; start over if the
        // table ever churns a lot.
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(source.to_owned(), p.clone());
        Ok(p)
    }

    fn to_domain(&self, m: service::Model) -> Result<Service> {
        Ok(Service {
            id: ServiceId::parse(&m.id)?,
            name: m.name,
            url_pattern: self.pattern(&m.url_pattern)?,
            attributes: serde_json::from_str(&m.attributes).map_err(Error::Json)?,
            logout_url: m.logout_url.as_deref().map(Url::parse).transpose().map_err(storage)?,
            evaluation_order: m.evaluation_order,
            policy: crate::service_policy::from_column(m.policy.as_deref())?,
        })
    }

    fn to_row(&self, s: &Service, created_at: chrono::DateTime<chrono::Utc>) -> Result<service::Model> {
        Ok(service::Model {
            id: s.id.as_str().to_owned(),
            name: s.name.clone(),
            url_pattern: s.url_pattern.as_str().to_owned(),
            attributes: serde_json::to_string(&s.attributes).map_err(Error::Json)?,
            logout_url: s.logout_url.as_ref().map(Url::to_string),
            evaluation_order: s.evaluation_order,
            policy: Some(crate::service_policy::to_column(&s.policy)?),
            created_at,
            updated_at: self.clock.now(),
        })
    }
}

#[async_trait]
impl ServiceRegistry for SqlServices {
    async fn find_match(&self, url: &ServiceUrl) -> Result<Option<Service>> {
        let all = self.snapshot().await?;
        Ok(find_match(all.iter(), url).cloned())
    }

    async fn get(&self, id: &ServiceId) -> Result<Option<Service>> {
        Ok(self.snapshot().await?.iter().find(|s| &s.id == id).cloned())
    }

    async fn list(&self) -> Result<Vec<Service>> {
        Ok(self.snapshot().await?.as_ref().clone())
    }

    async fn add(&self, s: Service) -> Result<()> {
        idp_core::saml_sp::check_service_id(&s.id)?;
        let row = self.to_row(&s, self.clock.now())?;
        let active = service::ActiveModel {
            id: Set(row.id),
            name: Set(row.name),
            url_pattern: Set(row.url_pattern),
            attributes: Set(row.attributes),
            logout_url: Set(row.logout_url),
            evaluation_order: Set(row.evaluation_order),
            policy: Set(row.policy),
            created_at: Set(row.created_at),
            updated_at: Set(row.updated_at),
        };
        let txn = self.db.begin().await.map_err(storage)?;
        Services::insert(active).exec(&txn).await.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict(format!("service '{}' already exists", s.id)),
            _ => storage(e),
        })?;
        bump(&txn, REGISTRY).await?;
        txn.commit().await.map_err(storage)
    }

    async fn update(&self, s: Service) -> Result<()> {
        let existing = Services::find_by_id(s.id.as_str().to_owned()).one(&self.db).await.map_err(storage)?;
        let Some(existing) = existing else {
            return Err(Error::NotFound(format!("service '{}'", s.id)));
        };
        let row = self.to_row(&s, existing.created_at)?;
        let txn = self.db.begin().await.map_err(storage)?;
        row.into_active_model().reset_all().update(&txn).await.map_err(storage)?;
        bump(&txn, REGISTRY).await?;
        txn.commit().await.map_err(storage)
    }

    async fn remove(&self, id: &ServiceId) -> Result<bool> {
        let txn = self.db.begin().await.map_err(storage)?;
        let done = Services::delete_by_id(id.as_str().to_owned()).exec(&txn).await.map_err(storage)?;
        bump(&txn, REGISTRY).await?;
        txn.commit().await.map_err(storage)?;
        Ok(done.rows_affected > 0)
    }
}
