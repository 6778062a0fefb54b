//! In-memory adapters for a single node: ticket registry, session store and
//! rate limiter. Expired entries are dropped when touched and by a sweep on
//! writes, so memory stays bounded by the live entries.
//!
//! A std `Mutex` is used rather than tokio's: no lock is held across an
//! `.await`, and the critical sections are a few map operations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idp_core::Result;
use idp_core::ports::{RateLimiter, SessionStore, TicketRegistry};
use idp_core::session::{ServiceTicket, SessionService, SsoSession};

/// A map whose entries expire.
pub(crate) struct Expiring<V> {
    entries: HashMap<String, (V, Instant)>,
    writes: u64,
}

impl<V> Expiring<V> {
    pub(crate) fn new() -> Self {
        Self { entries: HashMap::new(), writes: 0 }
    }

    pub(crate) fn insert(&mut self, key: String, value: V, ttl: Duration) {
        self.writes += 1;
        if self.writes.is_multiple_of(1024) {
            let now = Instant::now();
            self.entries.retain(|_, (_, until)| *until > now);
        }
        self.entries.insert(key, (value, Instant::now() + ttl));
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let now = Instant::now();
        if self.entries.get(key).is_some_and(|(_, until)| *until <= now) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key).map(|(v, _)| v)
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let (value, until) = self.entries.remove(key)?;
        (until > Instant::now()).then_some(value)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated in a
    // way that matters here; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Service tickets in memory.
pub struct MemoryTickets {
    map: Mutex<Expiring<ServiceTicket>>,
}

impl Default for MemoryTickets {
    fn default() -> Self {
        Self { map: Mutex::new(Expiring::new()) }
    }
}

#[async_trait]
impl TicketRegistry for MemoryTickets {
    async fn put(&self, ticket: &ServiceTicket, ttl: Duration) -> Result<()> {
        lock(&self.map).insert(ticket.id.clone(), ticket.clone(), ttl);
        Ok(())
    }

    async fn take(&self, id: &str) -> Result<Option<ServiceTicket>> {
        Ok(lock(&self.map).remove(id))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// SSO sessions in memory.
pub struct MemorySessions {
    map: Mutex<Expiring<(SsoSession, Vec<SessionService>)>>,
    /// Session ids per account; ids of expired sessions are dropped when
    /// the account's list is read.
    by_account: Mutex<HashMap<i64, Vec<String>>>,
}

impl Default for MemorySessions {
    fn default() -> Self {
        Self { map: Mutex::new(Expiring::new()), by_account: Mutex::new(HashMap::new()) }
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn create(&self, session: &SsoSession, ttl: Duration) -> Result<()> {
        lock(&self.map).insert(session.id.clone(), (session.clone(), Vec::new()), ttl);
        lock(&self.by_account).entry(session.account_id).or_default().push(session.id.clone());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<SsoSession>> {
        Ok(lock(&self.map).get_mut(id).map(|(s, _)| s.clone()))
    }

    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        if let Some((s, _)) = lock(&self.map).get_mut(id) {
            s.last_used_at = at;
        }
        Ok(())
    }

    async fn add_service(&self, id: &str, service: SessionService) -> Result<()> {
        if let Some((_, services)) = lock(&self.map).get_mut(id) {
            services.push(service);
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<Option<(SsoSession, Vec<SessionService>)>> {
        let removed = lock(&self.map).remove(id);
        if let Some((session, _)) = &removed
            && let Some(ids) = lock(&self.by_account).get_mut(&session.account_id)
        {
            ids.retain(|i| i != id);
        }
        Ok(removed)
    }

    async fn reauthenticate(&self, id: &str, at: DateTime<Utc>, ttl: Duration) -> Result<Option<SsoSession>> {
        let mut map = lock(&self.map);
        let Some((mut session, services)) = map.remove(id) else { return Ok(None) };
        session.authenticated_at = at;
        session.last_used_at = at;
        map.insert(id.to_owned(), (session.clone(), services), ttl);
        Ok(Some(session))
    }

    async fn sessions_of(&self, account_id: i64) -> Result<Vec<String>> {
        let mut by_account = lock(&self.by_account);
        let Some(ids) = by_account.get_mut(&account_id) else { return Ok(Vec::new()) };
        let mut map = lock(&self.map);
        ids.retain(|id| map.get_mut(id).is_some());
        let live = ids.clone();
        if live.is_empty() {
            by_account.remove(&account_id);
        }
        Ok(live)
    }
}

/// Rate-limit counters in memory.
pub struct MemoryRateLimiter {
    map: Mutex<Expiring<u64>>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self { map: Mutex::new(Expiring::new()) }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn pause(&self, delay: Duration) {
        tokio::time::sleep(delay).await;
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64> {
        let mut map = lock(&self.map);
        if let Some(count) = map.get_mut(key) {
            *count += 1;
            return Ok(*count);
        }
        map.insert(key.to_owned(), 1, window);
        Ok(1)
    }

    async fn count(&self, key: &str) -> Result<u64> {
        Ok(lock(&self.map).get_mut(key).map(|c| *c).unwrap_or(0))
    }

    async fn clear(&self, key: &str) -> Result<()> {
        lock(&self.map).remove(key);
        Ok(())
    }
}
