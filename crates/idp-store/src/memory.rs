//! In-memory adapters for a single node: ticket registry, session store and
//! rate limiter, each on an `Expiring` map (whose sweep rule keeps memory
//! bounded by the live entries).
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
#[cfg(test)]
use idp_core::session::TicketId;
use idp_core::session::{ServiceTicket, SessionService, SsoSession};

use crate::expiring::Expiring;

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated in a
    // way that matters here; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pushes without the growth `Vec` gives by default (room for four at the
/// first push): a session's services and an account's sessions are a few
/// each, and the spare room was a fifth of the memory of a session.
fn push_tight<T>(list: &mut Vec<T>, item: T) {
    list.reserve_exact(1);
    list.push(item);
}

/// Service tickets in memory.
#[derive(Default)]
pub struct MemoryTickets {
    map: Mutex<Expiring<ServiceTicket>>,
}

#[async_trait]
impl TicketRegistry for MemoryTickets {
    async fn put(&self, ticket: &ServiceTicket, ttl: Duration) -> Result<()> {
        lock(&self.map).insert(ticket.id.expose().to_owned(), ticket.clone(), ttl, Instant::now());
        Ok(())
    }

    async fn take(&self, id: &str) -> Result<Option<ServiceTicket>> {
        Ok(lock(&self.map).remove(id, Instant::now()))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// SSO sessions in memory.
#[derive(Default)]
pub struct MemorySessions {
    inner: Mutex<Sessions>,
}

/// The sessions and, per account, the ids of its sessions. An id leaves
/// `by_account` when its session is removed, when the account's list is
/// read, or at the first sweep of `map` after its session expired: the
/// index is swept with the sessions, so it is bounded as the map is.
#[derive(Default)]
struct Sessions {
    map: Expiring<(SsoSession, Vec<SessionService>)>,
    by_account: HashMap<i64, Vec<String>>,
}

impl Sessions {
    fn insert(&mut self, session: SsoSession, services: Vec<SessionService>, ttl: Duration, now: Instant) {
        let id = session.id.expose().to_owned();
        let account_id = session.account_id;
        if self.map.insert(id.clone(), (session, services), ttl, now) {
            let map = &self.map;
            self.by_account.retain(|_, ids| {
                ids.retain(|id| map.contains(id, now));
                !ids.is_empty()
            });
        }
        let ids = self.by_account.entry(account_id).or_default();
        if !ids.contains(&id) {
            push_tight(ids, id);
        }
    }

    fn forget(&mut self, account_id: i64, id: &str) {
        if let Some(ids) = self.by_account.get_mut(&account_id) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_account.remove(&account_id);
            }
        }
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn create(&self, session: &SsoSession, ttl: Duration) -> Result<()> {
        metrics::counter!(crate::SESSIONS_OPENED).increment(1);
        lock(&self.inner).insert(session.clone(), Vec::new(), ttl, Instant::now());
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<SsoSession>> {
        Ok(lock(&self.inner).map.get(id, Instant::now()).map(|(s, _)| s.clone()))
    }

    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        if let Some((s, _)) = lock(&self.inner).map.get_mut(id, Instant::now()) {
            s.last_used_at = at;
        }
        Ok(())
    }

    async fn get_and_touch(&self, id: &str, at: DateTime<Utc>) -> Result<Option<SsoSession>> {
        let mut inner = lock(&self.inner);
        let Some((s, _)) = inner.map.get_mut(id, Instant::now()) else { return Ok(None) };
        let before = s.clone();
        s.last_used_at = at;
        Ok(Some(before))
    }

    async fn add_service(&self, id: &str, service: SessionService) -> Result<()> {
        if let Some((_, services)) = lock(&self.inner).map.get_mut(id, Instant::now()) {
            push_tight(services, service);
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<Option<(SsoSession, Vec<SessionService>)>> {
        let mut inner = lock(&self.inner);
        let removed = inner.map.remove(id, Instant::now());
        if let Some((session, _)) = &removed {
            metrics::counter!(crate::SESSIONS_ENDED).increment(1);
            inner.forget(session.account_id, id);
        }
        Ok(removed)
    }

    async fn reauthenticate(
        &self,
        id: &str,
        at: DateTime<Utc>,
        amr: Option<&[String]>,
        ttl: Duration,
    ) -> Result<Option<SsoSession>> {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let Some((mut session, services)) = inner.map.remove(id, now) else { return Ok(None) };
        session.authenticated_at = at;
        session.last_used_at = at;
        if let Some(amr) = amr {
            session.amr = amr.to_vec();
        }
        inner.insert(session.clone(), services, ttl, now);
        Ok(Some(session))
    }

    async fn sessions_of(&self, account_id: i64) -> Result<Vec<String>> {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        let Sessions { map, by_account } = &mut *inner;
        let Some(ids) = by_account.get_mut(&account_id) else { return Ok(Vec::new()) };
        ids.retain(|id| map.contains(id, now));
        let live = ids.clone();
        if live.is_empty() {
            by_account.remove(&account_id);
        }
        Ok(live)
    }
}

/// Rate-limit counters in memory.
#[derive(Default)]
pub struct MemoryRateLimiter {
    map: Mutex<Expiring<u64>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn pause(&self, delay: Duration) {
        tokio::time::sleep(delay).await;
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64> {
        let now = Instant::now();
        let mut map = lock(&self.map);
        if let Some(count) = map.get_mut(key, now) {
            *count += 1;
            return Ok(*count);
        }
        map.insert(key.to_owned(), 1, window, now);
        Ok(1)
    }

    async fn count(&self, key: &str) -> Result<u64> {
        Ok(lock(&self.map).get(key, Instant::now()).copied().unwrap_or(0))
    }

    async fn clear(&self, key: &str) -> Result<()> {
        lock(&self.map).remove(key, Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expiring::MIN_SWEEP;

    fn session(id: String, account_id: i64) -> SsoSession {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        SsoSession {
            id: TicketId::from_raw(id),
            account_id,
            login: "jdupont".into(),
            authenticated_at: at,
            last_used_at: at,
            upstream: None,
            amr: Vec::new(),
        }
    }

    #[test]
    fn the_account_index_is_swept_with_the_sessions() {
        let mut now = Instant::now();
        let mut sessions = Sessions::default();
        // One session per account, never listed nor removed: each expires
        // after a second, one is opened per tenth of a second.
        for i in 0..20_000 {
            now += Duration::from_millis(100);
            sessions.insert(session(format!("TGT-{i}"), i), Vec::new(), Duration::from_secs(1), now);
            assert!(sessions.by_account.len() <= MIN_SWEEP, "{} accounts indexed", sessions.by_account.len());
        }
        let live: usize = sessions.by_account.values().map(Vec::len).sum();
        assert!(live <= sessions.map.len());
    }

    #[tokio::test]
    async fn sessions_of_lists_the_live_sessions_and_remove_forgets_them() {
        let store = MemorySessions::default();
        let minute = Duration::from_secs(60);
        store.create(&session("TGT-a".into(), 7), minute).await.unwrap();
        store.create(&session("TGT-b".into(), 7), minute).await.unwrap();
        store.create(&session("TGT-c".into(), 8), minute).await.unwrap();
        assert_eq!(store.sessions_of(7).await.unwrap(), ["TGT-a", "TGT-b"]);
        store.remove("TGT-a").await.unwrap();
        assert_eq!(store.sessions_of(7).await.unwrap(), ["TGT-b"]);
        store.remove("TGT-b").await.unwrap();
        assert!(store.sessions_of(7).await.unwrap().is_empty());
        assert!(!lock(&store.inner).by_account.contains_key(&7));
    }
}
