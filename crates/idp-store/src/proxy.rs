//! Adapters of [`ProxyTicketStore`]: in memory (one node) and on Redis
//! (several nodes).
//!
//! Redis keys: `<prefix>pgt:<id>` (the PGT), `<prefix>tgt:<session>:pgt` (a
//! set of the session's PGT ids, so that ending the session removes them)
//! and `<prefix>pt:<id>` (taken with `GETDEL`); every key has a TTL.

use async_trait::async_trait;
use redis::AsyncCommands;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idp_core::proxy::{ProxyGrantingTicket, ProxyTicket, ProxyTicketStore};
use idp_core::{Error, Result};

use crate::expiring::Expiring;
use crate::memory::lock;
use crate::redis_store::{Redis, secs};
use crate::storage;

#[derive(Default)]
struct Maps {
    pgts: Expiring<ProxyGrantingTicket>,
    /// PGT ids by SSO session id; expires with the session's last PGT, so a
    /// session that times out without a logout leaves nothing behind.
    by_session: Expiring<Vec<String>>,
    pts: Expiring<ProxyTicket>,
}

/// PGTs and PTs in memory.
#[derive(Default)]
pub struct MemoryProxyTickets {
    maps: Mutex<Maps>,
}

#[async_trait]
impl ProxyTicketStore for MemoryProxyTickets {
    async fn put_pgt(&self, pgt: &ProxyGrantingTicket, ttl: Duration) -> Result<()> {
        let now = Instant::now();
        let mut maps = lock(&self.maps);
        maps.pgts.insert(pgt.id.expose().to_owned(), pgt.clone(), ttl, now);
        let mut ids = maps.by_session.remove(pgt.session_id.expose(), now).unwrap_or_default();
        ids.push(pgt.id.expose().to_owned());
        maps.by_session.insert(pgt.session_id.expose().to_owned(), ids, ttl, now);
        Ok(())
    }

    async fn get_pgt(&self, id: &str) -> Result<Option<ProxyGrantingTicket>> {
        Ok(lock(&self.maps).pgts.get(id, Instant::now()).cloned())
    }

    async fn remove_session(&self, session_id: &str) -> Result<usize> {
        let now = Instant::now();
        let mut maps = lock(&self.maps);
        let ids = maps.by_session.remove(session_id, now).unwrap_or_default();
        Ok(ids.iter().filter(|id| maps.pgts.remove(id, now).is_some()).count())
    }

    async fn put_pt(&self, pt: &ProxyTicket, ttl: Duration) -> Result<()> {
        lock(&self.maps).pts.insert(pt.ticket.id.expose().to_owned(), pt.clone(), ttl, Instant::now());
        Ok(())
    }

    async fn take_pt(&self, id: &str) -> Result<Option<ProxyTicket>> {
        Ok(lock(&self.maps).pts.remove(id, Instant::now()))
    }
}

/// PGTs and PTs in Redis.
pub struct RedisProxyTickets(pub Redis);

impl RedisProxyTickets {
    fn session_set(&self, session_id: &str) -> String {
        format!("{}:pgt", self.0.key("tgt", session_id))
    }
}

#[async_trait]
impl ProxyTicketStore for RedisProxyTickets {
    async fn put_pgt(&self, pgt: &ProxyGrantingTicket, ttl: Duration) -> Result<()> {
        let json = serde_json::to_string(pgt).map_err(Error::Json)?;
        let set = self.session_set(pgt.session_id.expose());
        let mut c = self.0.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .set_ex(self.0.key("pgt", pgt.id.expose()), json, secs(ttl))
            .ignore()
            .sadd(&set, pgt.id.expose())
            .ignore()
            .expire(&set, secs(ttl) as i64)
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn get_pgt(&self, id: &str) -> Result<Option<ProxyGrantingTicket>> {
        let mut c = self.0.conn.clone();
        let json: Option<String> = c.get(self.0.key("pgt", id)).await.map_err(storage)?;
        json.map(|j| serde_json::from_str(&j).map_err(Error::Json)).transpose()
    }

    async fn remove_session(&self, session_id: &str) -> Result<usize> {
        let set = self.session_set(session_id);
        let mut c = self.0.conn.clone();
        let ids: Vec<String> = c.smembers(&set).await.map_err(storage)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        pipe.atomic().del(&set).ignore();
        for id in &ids {
            pipe.del(self.0.key("pgt", id));
        }
        let removed: Vec<u64> = pipe.query_async(&mut c).await.map_err(storage)?;
        Ok(removed.into_iter().filter(|n| *n > 0).count())
    }

    async fn put_pt(&self, pt: &ProxyTicket, ttl: Duration) -> Result<()> {
        let json = serde_json::to_string(pt).map_err(Error::Json)?;
        let mut c = self.0.conn.clone();
        let _: () = c.set_ex(self.0.key("pt", pt.ticket.id.expose()), json, secs(ttl)).await.map_err(storage)?;
        Ok(())
    }

    async fn take_pt(&self, id: &str) -> Result<Option<ProxyTicket>> {
        let mut c = self.0.conn.clone();
        let json: Option<String> = c.get_del(self.0.key("pt", id)).await.map_err(storage)?;
        json.map(|j| serde_json::from_str(&j).map_err(Error::Json)).transpose()
    }
}
