//! [`EphemeralStore`] adapters: the short-lived records of the account
//! flows (activation attempts, e-mail and reset codes, pending CGU
//! acceptances). In memory for one node; in Redis (`<prefix>eph:<key>`,
//! with a TTL, `GETDEL` for `take`) for several.

use async_trait::async_trait;
use redis::AsyncCommands;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idp_core::Result;
use idp_core::ports::EphemeralStore;

use crate::redis_store::Redis;
use crate::storage;

/// Records in memory; expired entries are dropped when read and swept on
/// writes.
#[derive(Default)]
pub struct MemoryEphemeral {
    map: Mutex<Map>,
}

/// The records, and the number of writes (every 256th sweeps the map).
type Map = (HashMap<String, (String, Instant)>, u64);

impl MemoryEphemeral {
    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // No lock is held across an await; a poisoned map is still usable.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl EphemeralStore for MemoryEphemeral {
    async fn put(&self, key: &str, value: String, ttl: Duration) -> Result<()> {
        let mut guard = self.lock();
        let (map, writes) = &mut *guard;
        let now = Instant::now();
        *writes += 1;
        if writes.is_multiple_of(256) {
            map.retain(|_, (_, until)| *until > now);
        }
        map.insert(key.to_owned(), (value, now + ttl));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let guard = self.lock();
        Ok(guard.0.get(key).filter(|(_, until)| *until > Instant::now()).map(|(v, _)| v.clone()))
    }

    async fn take(&self, key: &str) -> Result<Option<String>> {
        Ok(self.lock().0.remove(key).filter(|(_, until)| *until > Instant::now()).map(|(v, _)| v))
    }

    async fn remove(&self, key: &str) -> Result<()> {
        self.lock().0.remove(key);
        Ok(())
    }
}

/// Records in Redis, shared by every node.
pub struct RedisEphemeral(pub Redis);

#[async_trait]
impl EphemeralStore for RedisEphemeral {
    async fn put(&self, key: &str, value: String, ttl: Duration) -> Result<()> {
        let mut c = self.0.conn();
        let _: () = c.set_ex(self.0.key("eph", key), value, ttl.as_secs().max(1)).await.map_err(storage)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut c = self.0.conn();
        c.get(self.0.key("eph", key)).await.map_err(storage)
    }

    async fn take(&self, key: &str) -> Result<Option<String>> {
        let mut c = self.0.conn();
        c.get_del(self.0.key("eph", key)).await.map_err(storage)
    }

    async fn remove(&self, key: &str) -> Result<()> {
        let mut c = self.0.conn();
        let _: () = c.del(self.0.key("eph", key)).await.map_err(storage)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn take_is_once_and_ttl_bounds() {
        let s = MemoryEphemeral::default();
        s.put("a", "1".into(), Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(s.take("a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(s.take("a").await.unwrap(), None);
        s.put("b", "2".into(), Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.get("b").await.unwrap(), None);
    }
}
