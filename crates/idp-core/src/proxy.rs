//! CAS proxy authentication: which services may obtain proxy-granting
//! tickets (PGT), for which targets, and the PGT and proxy ticket (PT)
//! records with their store.
//!
//! A PGT lives as long as the SSO session it came from: it is stored under
//! that session's id, and ending the session removes it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::Result;
use crate::service::UrlPattern;
use crate::session::{ServiceTicket, TicketId};

/// A service's right to proxy. Without one, a service never gets a PGT.
#[derive(Clone, Debug)]
pub struct ProxyPolicy {
    /// The `pgtUrl` callbacks the service may give (they must be https too).
    pub callback: UrlPattern,
    /// The target services it may obtain proxy tickets for.
    pub targets: UrlPattern,
}

/// A proxy-granting ticket, reusable until its SSO session ends.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProxyGrantingTicket {
    /// `PGT-` followed by random characters.
    pub id: TicketId,
    /// The SSO session it belongs to; it dies with it.
    pub session_id: TicketId,
    pub account_id: i64,
    pub login: String,
    pub authenticated_at: DateTime<Utc>,
    /// The registered service that obtained it (whose proxy policy applies).
    pub service_id: String,
    /// The callback URL it was delivered to: the proxy's identity in the
    /// `<cas:proxies>` of the tickets it obtains.
    pub callback_url: String,
    /// The proxies before this one, most recent first (a proxied service that
    /// proxies in turn).
    pub proxies: Vec<String>,
}

/// A proxy ticket: a service ticket obtained by a proxy, with the chain of
/// proxies it went through, most recent first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProxyTicket {
    /// Its `id` starts with `PT-`.
    pub ticket: ServiceTicket,
    pub proxies: Vec<String>,
}

/// PGTs and PTs, with TTLs. `take_pt` is atomic like
/// [`crate::ports::TicketRegistry::take`].
#[async_trait]
pub trait ProxyTicketStore: Send + Sync {
    /// Stores a PGT under its session; forgotten after `ttl` at the latest.
    async fn put_pgt(&self, pgt: &ProxyGrantingTicket, ttl: Duration) -> Result<()>;
    async fn get_pgt(&self, id: &str) -> Result<Option<ProxyGrantingTicket>>;
    /// Removes every PGT of the SSO session; returns how many there were.
    async fn remove_session(&self, session_id: &str) -> Result<usize>;
    async fn put_pt(&self, pt: &ProxyTicket, ttl: Duration) -> Result<()>;
    /// Removes and returns the PT: spent by any attempt.
    async fn take_pt(&self, id: &str) -> Result<Option<ProxyTicket>>;
}

/// Whether `url` may receive a PGT: an https URL with a host.
pub fn is_https_callback(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.scheme() == "https" && u.host().is_some() && u.username().is_empty())
}
