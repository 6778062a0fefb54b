//! [`EphemeralStore`] adapters: the short-lived records of the account
//! flows (activation attempts, e-mail and reset codes, pending CGU
//! acceptances). In memory for one node; in Redis (`<prefix>eph:<key>`,
//! with a TTL, `GETDEL` for `take`, `SET NX` for `put_if_absent`) for
//! several.

use async_trait::async_trait;
use redis::AsyncCommands;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idp_core::Result;
use idp_core::ports::EphemeralStore;

use crate::expiring::Expiring;
use crate::memory::lock;
use crate::redis_store::Redis;
use crate::storage;

/// Records in memory, on an `Expiring` map.
#[derive(Default)]
pub struct MemoryEphemeral {
    map: Mutex<Expiring<String>>,
}

#[async_trait]
impl EphemeralStore for MemoryEphemeral {
    async fn put(&self, key: &str, value: String, ttl: Duration) -> Result<()> {
        lock(&self.map).insert(key.to_owned(), value, ttl, Instant::now());
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: String, ttl: Duration) -> Result<bool> {
        let mut map = lock(&self.map);
        let now = Instant::now();
        if map.contains(key, now) {
            return Ok(false);
        }
        map.insert(key.to_owned(), value, ttl, now);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(lock(&self.map).get(key, Instant::now()).cloned())
    }

    async fn take(&self, key: &str) -> Result<Option<String>> {
        Ok(lock(&self.map).remove(key, Instant::now()))
    }

    async fn remove(&self, key: &str) -> Result<()> {
        lock(&self.map).remove(key, Instant::now());
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

    async fn put_if_absent(&self, key: &str, value: String, ttl: Duration) -> Result<bool> {
        let mut c = self.0.conn();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.0.key("eph", key))
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async(&mut c)
            .await
            .map_err(storage)?;
        Ok(set.is_some())
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
    async fn take_is_once() {
        let s = MemoryEphemeral::default();
        s.put("a", "1".into(), Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(s.take("a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(s.take("a").await.unwrap(), None);
        s.put("b", "2".into(), Duration::ZERO).await.unwrap();
        assert_eq!(s.get("b").await.unwrap(), None, "a record without time to live is already gone");
    }

    #[tokio::test]
    async fn put_if_absent_stores_once() {
        let s = MemoryEphemeral::default();
        assert!(s.put_if_absent("a", "1".into(), Duration::from_secs(60)).await.unwrap());
        assert!(!s.put_if_absent("a", "2".into(), Duration::from_secs(60)).await.unwrap());
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some("1"));
        s.put("b", "1".into(), Duration::ZERO).await.unwrap();
        assert!(
            s.put_if_absent("b", "2".into(), Duration::from_secs(60)).await.unwrap(),
            "an expired record is absent"
        );
    }
}
