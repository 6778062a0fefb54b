//! idp-store: the adapters of the idp-core ports.
//!
//! - [`db`]: connecting to SQLite (the embedded default, WAL mode with a busy
//!   timeout so that the CLI and a running server share the file) or
//!   PostgreSQL, and applying the migrations.
//! - [`accounts`], [`services`]: sea-orm repositories, with per-node copies
//!   kept current by [`changes`] (the commits seen in SQLite's shared
//!   memory, or a version read).
//! - [`memory`]: in-memory ticket registry, session store and rate limiter
//!   (one node), on `expiring::Expiring`, the one in-memory map with a time
//!   to live (also under [`proxy`], [`ephemeral`] and
//!   [`oidc_store`]).
//! - [`redis_store`]: the same three on Redis (several nodes).
//! - [`proxy`]: CAS proxy-granting and proxy tickets, in memory or Redis.
//! - [`pseudonyms`]: per-service pseudonymous identifiers (sea-orm).
//! - [`clients`]: OIDC clients and signing keys on sea-orm (private keys
//!   encrypted by [`at_rest`]); [`oidc_store`]:
//!   OIDC codes, grants and consents in memory or Redis.
//! - [`hashing`]: argon2id on a bounded blocking pool.
//! - [`outbound`]: HTTP to services (single logout, proxy callbacks), with
//!   timeouts and certificate verification.
//! - [`audit`]: the audit trail, as structured log events.
//! - [`ephemeral`]: short-lived records of the account flows (memory, Redis).
//! - [`security`]: secret questions, e-mail validation, login history.
//! - [`second_factor`]: TOTP secrets (sealed by [`at_rest`]), recovery
//!   codes, passkeys and trusted devices (SHA-256 of their token).
//! - [`mail`]: the outbox (files) and the SMTP queue with retries.
//!
//! This crate knows nothing of HTTP routes, cookies, templates or protocol
//! rules. Start with [`db::connect`].
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod accounts;
pub mod admin;
pub mod at_rest;
pub mod audit;
pub mod changes;
pub mod clients;
pub mod db;
mod entities;
mod expiring;
pub mod hashing;
pub mod memory;
pub mod oidc_store;
pub mod outbound;
pub mod proxy;
pub mod pseudonyms;
pub mod redis_store;
pub mod saml_sps;
pub mod second_factor;
mod service_policy;
pub mod services;

/// SSO sessions opened (counter); with [`SESSIONS_ENDED`], the sessions
/// live now, less those that timed out.
pub const SESSIONS_OPENED: &str = "idp_sso_sessions_opened_total";
/// SSO sessions ended by a logout, a reset or a new login (counter).
pub const SESSIONS_ENDED: &str = "idp_sso_sessions_ended_total";

// The account life cycle.
pub mod ephemeral;
pub mod mail;
pub mod security;

/// Turns an adapter error (or a message) into the core's storage error,
/// keeping it as the cause; the detail goes to the logs, never to a client.
pub(crate) fn storage(e: impl Into<idp_core::error::Cause>) -> idp_core::Error {
    idp_core::Error::storage(e)
}
