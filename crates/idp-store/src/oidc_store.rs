//! [`OidcStore`] adapters: in memory (one node) and Redis (several nodes).
//!
//! Redis keys: `<prefix>oidc:code:<code>` (taken with `GETDEL`),
//! `<prefix>oidc:used:<code>`, `<prefix>oidc:grant:<id>` (rotated
//! by a Lua script, so that of two nodes presenting the same refresh token
//! only one rotates it), `<prefix>oidc:access:<jti>` (the grant of an
//! access token) and `<prefix>oidc:consent:<account>:<client>`.
//! Every key has a TTL.

use async_trait::async_trait;
use redis::AsyncCommands;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idp_core::Result;
use idp_core::oidc::{AuthorizationCode, Grant, OidcStore, ROTATED_OUT_KEPT, Rotation};

use crate::expiring::Expiring;
use crate::redis_store::Redis;
use crate::storage;

#[derive(Default)]
struct Maps {
    codes: Expiring<AuthorizationCode>,
    used: Expiring<String>,
    grants: Expiring<Grant>,
    access: Expiring<String>,
    consents: Expiring<Vec<String>>,
}

/// Codes, grants and consents in memory.
#[derive(Default)]
pub struct MemoryOidcStore {
    maps: Mutex<Maps>,
}

impl MemoryOidcStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn consent_key(account_id: i64, client_id: &str) -> String {
    format!("{account_id}:{client_id}")
}

#[async_trait]
impl OidcStore for MemoryOidcStore {
    async fn put_code(&self, code: &str, value: &AuthorizationCode, ttl: Duration) -> Result<()> {
        self.lock().codes.insert(code.to_owned(), value.clone(), ttl, Instant::now());
        Ok(())
    }

    async fn take_code(&self, code: &str) -> Result<Option<AuthorizationCode>> {
        Ok(self.lock().codes.remove(code, Instant::now()))
    }

    async fn remember_used_code(&self, code: &str, grant_id: &str, ttl: Duration) -> Result<()> {
        self.lock().used.insert(code.to_owned(), grant_id.to_owned(), ttl, Instant::now());
        Ok(())
    }

    async fn used_code(&self, code: &str) -> Result<Option<String>> {
        Ok(self.lock().used.get(code, Instant::now()).cloned())
    }

    async fn put_grant(&self, grant: &Grant, ttl: Duration) -> Result<()> {
        self.lock().grants.insert(grant.id.clone(), grant.clone(), ttl, Instant::now());
        Ok(())
    }

    async fn get_grant(&self, id: &str) -> Result<Option<Grant>> {
        Ok(self.lock().grants.get(id, Instant::now()).cloned())
    }

    async fn rotate_refresh(&self, id: &str, expected: &str, new_hash: &str, new_jti: &str) -> Result<Rotation> {
        let mut maps = self.lock();
        let Some(grant) = maps.grants.get_mut(id, Instant::now()) else { return Ok(Rotation::Missing) };
        if grant.refresh_hash.as_deref() != Some(expected) {
            let reused = grant.rotated_out.iter().any(|h| h == expected);
            return Ok(if reused { Rotation::Reused } else { Rotation::Mismatch });
        }
        grant.rotated_out.push(expected.to_owned());
        let extra = grant.rotated_out.len().saturating_sub(ROTATED_OUT_KEPT);
        grant.rotated_out.drain(..extra);
        grant.refresh_hash = Some(new_hash.to_owned());
        grant.access_jti = Some(new_jti.to_owned());
        Ok(Rotation::Rotated)
    }

    async fn put_access(&self, jti: &str, grant_id: &str, ttl: Duration) -> Result<()> {
        self.lock().access.insert(jti.to_owned(), grant_id.to_owned(), ttl, Instant::now());
        Ok(())
    }

    async fn access_grant(&self, jti: &str) -> Result<Option<String>> {
        Ok(self.lock().access.get(jti, Instant::now()).cloned())
    }

    async fn remove_grant(&self, id: &str) -> Result<bool> {
        Ok(self.lock().grants.remove(id, Instant::now()).is_some())
    }

    async fn put_consent(&self, account_id: i64, client_id: &str, scopes: &[String], ttl: Duration) -> Result<()> {
        self.lock().consents.insert(consent_key(account_id, client_id), scopes.to_vec(), ttl, Instant::now());
        Ok(())
    }

    async fn get_consent(&self, account_id: i64, client_id: &str) -> Result<Option<Vec<String>>> {
        Ok(self.lock().consents.get(&consent_key(account_id, client_id), Instant::now()).cloned())
    }
}

/// Codes, grants and consents in Redis.
pub struct RedisOidcStore(pub Redis);

/// Compare-and-set of the refresh token hash, keeping the TTL and the last
/// `ARGV[4]` rotated-out hashes. Returns 1 (rotated), 2 (a rotated-out
/// token reused), 0 (mismatch) or -1 (no grant).
const ROTATE: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then return -1 end
local g = cjson.decode(v)
local old = g['rotated_out']
if type(old) ~= 'table' then old = {} end
if g['refresh_hash'] ~= ARGV[1] then
  for _, h in ipairs(old) do
    if h == ARGV[1] then return 2 end
  end
  return 0
end
table.insert(old, ARGV[1])
while #old > tonumber(ARGV[4]) do table.remove(old, 1) end
g['rotated_out'] = old
g['refresh_hash'] = ARGV[2]
g['access_jti'] = ARGV[3]
redis.call('SET', KEYS[1], cjson.encode(g), 'KEEPTTL')
return 1
"#;

fn secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

impl RedisOidcStore {
    fn key(&self, kind: &str, id: &str) -> String {
        self.0.key(&format!("oidc:{kind}"), id)
    }

    async fn set_json<T: serde::Serialize + Sync>(&self, key: String, value: &T, ttl: Duration) -> Result<()> {
        let json = serde_json::to_string(value).map_err(storage)?;
        let mut c = self.0.conn();
        let _: () = c.set_ex(key, json, secs(ttl)).await.map_err(storage)?;
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, key: String) -> Result<Option<T>> {
        let mut c = self.0.conn();
        let json: Option<String> = c.get(key).await.map_err(storage)?;
        json.map(|j| serde_json::from_str(&j).map_err(storage)).transpose()
    }
}

#[async_trait]
impl OidcStore for RedisOidcStore {
    async fn put_code(&self, code: &str, value: &AuthorizationCode, ttl: Duration) -> Result<()> {
        self.set_json(self.key("code", code), value, ttl).await
    }

    async fn take_code(&self, code: &str) -> Result<Option<AuthorizationCode>> {
        let mut c = self.0.conn();
        let json: Option<String> = c.get_del(self.key("code", code)).await.map_err(storage)?;
        json.map(|j| serde_json::from_str(&j).map_err(storage)).transpose()
    }

    async fn remember_used_code(&self, code: &str, grant_id: &str, ttl: Duration) -> Result<()> {
        self.set_json(self.key("used", code), &grant_id, ttl).await
    }

    async fn used_code(&self, code: &str) -> Result<Option<String>> {
        self.get_json(self.key("used", code)).await
    }

    async fn put_grant(&self, grant: &Grant, ttl: Duration) -> Result<()> {
        self.set_json(self.key("grant", &grant.id), grant, ttl).await
    }

    async fn get_grant(&self, id: &str) -> Result<Option<Grant>> {
        self.get_json(self.key("grant", id)).await
    }

    async fn rotate_refresh(&self, id: &str, expected: &str, new_hash: &str, new_jti: &str) -> Result<Rotation> {
        let mut c = self.0.conn();
        let outcome: i64 = redis::Script::new(ROTATE)
            .key(self.key("grant", id))
            .arg(expected)
            .arg(new_hash)
            .arg(new_jti)
            .arg(ROTATED_OUT_KEPT)
            .invoke_async(&mut c)
            .await
            .map_err(storage)?;
        Ok(match outcome {
            1 => Rotation::Rotated,
            2 => Rotation::Reused,
            0 => Rotation::Mismatch,
            _ => Rotation::Missing,
        })
    }

    async fn put_access(&self, jti: &str, grant_id: &str, ttl: Duration) -> Result<()> {
        self.set_json(self.key("access", jti), &grant_id, ttl).await
    }

    async fn access_grant(&self, jti: &str) -> Result<Option<String>> {
        self.get_json(self.key("access", jti)).await
    }

    async fn remove_grant(&self, id: &str) -> Result<bool> {
        let mut c = self.0.conn();
        let n: i64 = c.del(self.key("grant", id)).await.map_err(storage)?;
        Ok(n > 0)
    }

    async fn put_consent(&self, account_id: i64, client_id: &str, scopes: &[String], ttl: Duration) -> Result<()> {
        self.set_json(self.key("consent", &consent_key(account_id, client_id)), &scopes, ttl).await
    }

    async fn get_consent(&self, account_id: i64, client_id: &str) -> Result<Option<Vec<String>>> {
        self.get_json(self.key("consent", &consent_key(account_id, client_id))).await
    }
}
