//! Redis adapters for several nodes: ticket registry (`GETDEL`, so that two
//! nodes can never both take one ticket), session store and rate limiter.
//!
//! Keys are `<prefix>st:<id>`, `<prefix>tgt:<id>`, `<prefix>tgt:<id>:svc`
//! (a list of the services that got tickets) and `<prefix>rl:<key>`; every
//! key has a TTL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::sync::LazyLock;
use std::time::Duration;

use idp_core::ports::{RateLimiter, SessionStore, TicketRegistry};
use idp_core::session::{ServiceTicket, SessionService, SsoSession, TicketDraft};
use idp_core::{Error, Result};

use crate::storage;

/// A shared, reconnecting Redis connection with a key prefix.
#[derive(Clone)]
pub struct Redis {
    pub(crate) conn: ConnectionManager,
    prefix: String,
}

impl Redis {
    /// Connects to `url` (`redis://host:6379/0`); every key starts with
    /// `prefix` (`idp:` by default), so tests and deployments can share a
    /// server.
    pub async fn connect(url: &str, prefix: &str) -> Result<Redis> {
        // rediss:// uses rustls with the process's crypto provider (ring);
        // installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = redis::Client::open(url).map_err(storage)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(storage)?;
        Ok(Redis { conn, prefix: prefix.to_owned() })
    }

    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// A handle on the shared connection (for the other Redis adapters).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

pub(crate) fn secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1)
}

/// Service tickets in Redis.
pub struct RedisTickets(pub Redis);

#[async_trait]
impl TicketRegistry for RedisTickets {
    async fn put(&self, ticket: &ServiceTicket, ttl: Duration) -> Result<()> {
        let json = serde_json::to_string(ticket).map_err(Error::Json)?;
        let mut c = self.0.conn.clone();
        let _: () = c.set_ex(self.0.key("st", ticket.id.expose()), json, secs(ttl)).await.map_err(storage)?;
        Ok(())
    }

    async fn take(&self, id: &str) -> Result<Option<ServiceTicket>> {
        let mut c = self.0.conn.clone();
        let json: Option<String> = c.get_del(self.0.key("st", id)).await.map_err(storage)?;
        json.map(|j| serde_json::from_str(&j).map_err(Error::Json)).transpose()
    }

    async fn ping(&self) -> Result<()> {
        let mut c = self.0.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut c).await.map_err(storage)?;
        Ok(())
    }
}

/// SSO sessions in Redis.
pub struct RedisSessions(pub Redis);

/// Returns the session's JSON as it was and writes it back, keeping its
/// TTL, with `last_used_at` (the one field serde writes under that name,
/// next to values that never hold a quote) set to `ARGV[1]`: one round trip
/// for the read and the touch of the single sign-on path, and no lost
/// update between them.
static GET_AND_TOUCH: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&[READ_AND_TOUCH, "return json\n"].concat()));

/// The start of [`GET_AND_TOUCH`] and [`ISSUE`]: the session `KEYS[1]` read
/// into `json` (the script returns false when it is gone) and its
/// `last_used_at` set to `ARGV[1]`, keeping its TTL.
const READ_AND_TOUCH: &str = r#"
local json = redis.call('GET', KEYS[1])
if not json then return false end
local _, open = string.find(json, '"last_used_at":"', 1, true)
if open then
  local close = string.find(json, '"', open + 1, true)
  redis.call('SET', KEYS[1], string.sub(json, 1, open) .. ARGV[1] .. string.sub(json, close), 'KEEPTTL')
end
"#;

/// Appends `ARGV[1]` to the services list `KEYS[2]` of the live session
/// `KEYS[1]`, the list living as long as the session: one round trip.
static ADD_SERVICE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local ttl = redis.call('TTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ttl)
return 1
"#,
    )
});

/// The single sign-on issuance in one round trip: [`GET_AND_TOUCH`] on the
/// session `KEYS[1]` (touched at `ARGV[1]`), then, when it exists, the
/// ticket `KEYS[3]` for `ARGV[3]` seconds and the entry `ARGV[4]` appended
/// to the services list `KEYS[2]` as [`ADD_SERVICE`] does; returns the
/// session's JSON as it was.
///
/// The ticket holds fields of the session (its account, login and login
/// time), which Rust only knows after this read: Rust sends the rest of the
/// ticket as a JSON object (`ARGV[2]`, [`TicketDraft`]) and the names of
/// the session's fields to add to it (`ARGV[5]`…), and the script copies
/// them from the session's JSON under the same names: serde reads the
/// result as the [`ServiceTicket`] that `put` would have written, whatever
/// the order of its fields. cjson re-encodes strings and lists exactly for
/// serde (it may escape `/` as `\/`, which reads back the same), but
/// numbers through a double with 14 digits: an integer (an account id) is
/// copied as the text it has in the session instead (a `"name":` between
/// quotes only occurs as a key in JSON, quotes inside strings being
/// escaped). An empty list decodes as an empty table, written back `[]`.
static ISSUE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(&[READ_AND_TOUCH, ISSUE_REST].concat()));

/// [`ISSUE`] after [`READ_AND_TOUCH`].
const ISSUE_REST: &str = r#"
local session = cjson.decode(json)
local ticket = string.sub(ARGV[2], 1, -2)
for i = 5, #ARGV do
  local name = ARGV[i]
  local value = session[name]
  local text
  if type(value) == 'number' then
    text = string.match(json, '"' .. name .. '":(%-?%d+)')
  elseif type(value) == 'table' and next(value) == nil then
    text = '[]'
  elseif value ~= nil then
    text = cjson.encode(value)
  end
  if text then ticket = ticket .. ',"' .. name .. '":' .. text end
end
redis.call('SET', KEYS[3], ticket .. '}', 'EX', ARGV[3])
local ttl = redis.call('TTL', KEYS[1])
if ttl > 0 then
  redis.call('RPUSH', KEYS[2], ARGV[4])
  redis.call('EXPIRE', KEYS[2], ttl)
end
return json
"#;

/// `at` as serde writes it in a session (`last_used_at`).
fn json_time(at: DateTime<Utc>) -> Result<String> {
    let at = serde_json::to_value(at).map_err(Error::Json)?;
    at.as_str().map(str::to_owned).ok_or_else(|| Error::storage("a time that is not a JSON string"))
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, session: &SsoSession, ttl: Duration) -> Result<()> {
        metrics::counter!(crate::SESSIONS_OPENED).increment(1);
        let json = serde_json::to_string(session).map_err(Error::Json)?;
        let index = self.0.key("acct-tgt", &session.account_id.to_string());
        let mut c = self.0.conn.clone();
        // The account's index lives as long as its newest session.
        let _: () = redis::pipe()
            .atomic()
            .set_ex(self.0.key("tgt", session.id.expose()), json, secs(ttl))
            .ignore()
            .sadd(&index, session.id.expose())
            .ignore()
            .expire(&index, secs(ttl) as i64)
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<SsoSession>> {
        let mut c = self.0.conn.clone();
        let json: Option<String> = c.get(self.0.key("tgt", id)).await.map_err(storage)?;
        json.map(|j| serde_json::from_str(&j).map_err(Error::Json)).transpose()
    }

    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.get_and_touch(id, at).await.map(|_| ())
    }

    async fn get_and_touch(&self, id: &str, at: DateTime<Utc>) -> Result<Option<SsoSession>> {
        let at = json_time(at)?;
        let mut c = self.0.conn.clone();
        let json: Option<String> =
            GET_AND_TOUCH.key(self.0.key("tgt", id)).arg(at).invoke_async(&mut c).await.map_err(storage)?;
        json.map(|j| serde_json::from_str(&j).map_err(Error::Json)).transpose()
    }

    async fn add_service(&self, id: &str, service: SessionService) -> Result<()> {
        let json = serde_json::to_string(&service).map_err(Error::Json)?;
        let key = self.0.key("tgt", id);
        let list = format!("{key}:svc");
        let mut c = self.0.conn.clone();
        let _: i64 = ADD_SERVICE.key(&key).key(&list).arg(json).invoke_async(&mut c).await.map_err(storage)?;
        Ok(())
    }

    async fn remove_service(&self, id: &str, service: &SessionService) -> Result<()> {
        let json = serde_json::to_string(service).map_err(Error::Json)?;
        let mut c = self.0.conn.clone();
        let _: i64 = c.lrem(format!("{}:svc", self.0.key("tgt", id)), 0, json).await.map_err(storage)?;
        Ok(())
    }

    /// One round trip ([`ISSUE`]); `tickets` is not used: the Redis
    /// tickets live beside the sessions ([`RedisTickets`] on the same
    /// server and prefix, as the stores are wired).
    async fn issue_from_session(
        &self,
        id: &str,
        at: DateTime<Utc>,
        draft: &TicketDraft,
        _tickets: &dyn TicketRegistry,
        ttl: Duration,
    ) -> Result<Option<(SsoSession, ServiceTicket)>> {
        let key = self.0.key("tgt", id);
        let list = format!("{key}:svc");
        let entry = serde_json::to_string(&draft.service_entry()).map_err(Error::Json)?;
        let fields = serde_json::to_string(draft).map_err(Error::Json)?;
        let mut invocation = ISSUE.prepare_invoke();
        invocation.key(&key).key(&list).key(self.0.key("st", draft.id.expose()));
        invocation.arg(json_time(at)?).arg(fields).arg(secs(ttl)).arg(entry);
        for name in TicketDraft::SESSION_FIELDS {
            invocation.arg(*name);
        }
        let mut c = self.0.conn.clone();
        let json: Option<String> = invocation.invoke_async(&mut c).await.map_err(storage)?;
        let Some(json) = json else { return Ok(None) };
        let session: SsoSession = serde_json::from_str(&json).map_err(Error::Json)?;
        let ticket = draft.for_session(&session);
        Ok(Some((session, ticket)))
    }

    async fn remove(&self, id: &str) -> Result<Option<(SsoSession, Vec<SessionService>)>> {
        let key = self.0.key("tgt", id);
        let list = format!("{key}:svc");
        let mut c = self.0.conn.clone();
        // One transaction: of two nodes ending the session at once, only one
        // gets it back and sends the single logout messages.
        let (json, services, _): (Option<String>, Vec<String>, ()) = redis::pipe()
            .atomic()
            .get_del(&key)
            .lrange(&list, 0, -1)
            .del(&list)
            .query_async(&mut c)
            .await
            .map_err(storage)?;
        let Some(json) = json else { return Ok(None) };
        metrics::counter!(crate::SESSIONS_ENDED).increment(1);
        let session: SsoSession = serde_json::from_str(&json).map_err(Error::Json)?;
        let services = services.iter().filter_map(|s| serde_json::from_str(s).ok()).collect();
        let _: () = c.srem(self.0.key("acct-tgt", &session.account_id.to_string()), id).await.map_err(storage)?;
        Ok(Some((session, services)))
    }

    async fn reauthenticate(
        &self,
        id: &str,
        at: DateTime<Utc>,
        amr: Option<&[String]>,
        ttl: Duration,
    ) -> Result<Option<SsoSession>> {
        let Some(mut session) = self.get(id).await? else { return Ok(None) };
        session.authenticated_at = at;
        session.last_used_at = at;
        if let Some(amr) = amr {
            session.amr = amr.to_vec();
        }
        let json = serde_json::to_string(&session).map_err(Error::Json)?;
        let key = self.0.key("tgt", id);
        let list = format!("{key}:svc");
        let index = self.0.key("acct-tgt", &session.account_id.to_string());
        let mut c = self.0.conn.clone();
        // The session, its services and the account's index live on together.
        let (updated, _, _): (Option<String>, (), ()) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(json)
            .arg("XX")
            .arg("EX")
            .arg(secs(ttl))
            .expire(&list, secs(ttl) as i64)
            .expire(&index, secs(ttl) as i64)
            .query_async(&mut c)
            .await
            .map_err(storage)?;
        Ok(updated.map(|_| session))
    }

    async fn sessions_of(&self, account_id: i64) -> Result<Vec<String>> {
        let mut c = self.0.conn.clone();
        let ids: Vec<String> = c.smembers(self.0.key("acct-tgt", &account_id.to_string())).await.map_err(storage)?;
        Ok(ids)
    }
}

/// Rate-limit counters in Redis.
pub struct RedisRateLimiter(pub Redis);

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn pause(&self, delay: Duration) {
        tokio::time::sleep(delay).await;
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64> {
        let key = self.0.key("rl", key);
        let mut c = self.0.conn.clone();
        let (count, _): (u64, ()) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(secs(window))
            .arg("NX")
            .query_async(&mut c)
            .await
            .map_err(storage)?;
        Ok(count)
    }

    async fn count(&self, key: &str) -> Result<u64> {
        let mut c = self.0.conn.clone();
        let n: Option<u64> = c.get(self.0.key("rl", key)).await.map_err(storage)?;
        Ok(n.unwrap_or(0))
    }

    async fn clear(&self, key: &str) -> Result<()> {
        let mut c = self.0.conn.clone();
        let _: () = c.del(self.0.key("rl", key)).await.map_err(storage)?;
        Ok(())
    }
}
