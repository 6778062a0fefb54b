//! idp-core: the domain of the identity provider.
//!
//! It owns accounts and their states, login names and profiles, the password
//! hashing policy, the registered services and how a URL matches them, the
//! ticket and SSO session types, the login throttling policy, attribute
//! release, and the **ports** (traits) through which everything with I/O is
//! reached: [`ports::AccountRepository`], [`ports::ServiceRegistry`],
//! [`ports::TicketRegistry`], [`ports::SessionStore`], [`ports::RateLimiter`],
//! [`ports::Outbound`], [`ports::Mailer`], [`ports::AuditLog`],
//! [`ports::PasswordHashing`] and [`clock::Clock`]; the CAS proxy and
//! pseudonym ports live with their records ([`proxy::ProxyTicketStore`],
//! [`pseudonym::PseudonymStore`]). [`ent`] knows the SDET directory
//! attributes, [`access`] the per-service rules, [`release`] the release
//! rules (renaming, shapes), [`import`] the school's CSV import (shared by
//! the CLI and the help desk console). The OpenID Connect clients, keys, codes and
//! grants with their ports are in [`oidc`].
//!
//! For the account life cycle, also [`ports::EphemeralStore`], [`ports::AccountSecurityRepository`]
//! and [`ports::MailComposer`].
//!
//! The account life cycle (activation wizard, forgotten password, terms of
//! use at login, "Mon compte") is one service, [`lifecycle::Lifecycle`],
//! whose flows are state machines in [`activation`], [`recovery`], [`cgu`]
//! and [`my_account`], with [`password_policy`] and [`questions`].
//!
//! It must not depend on any web, database, cache, mail or template crate
//! (no axum, sea-orm, redis, lettre, minijinja) nor on an async runtime:
//! adapters live in `idp-store`, the HTTP layer in `idp-web`.
//!
//! Start reading with [`account`] and [`ports`], then [`auth`], which is
//! where a login attempt is decided.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod access;
pub mod account;
pub mod admin;
pub mod attributes;
pub mod auth;
pub mod clock;
pub mod ent;
pub mod error;
pub mod import;
pub mod oidc;
pub mod passkeys;
pub mod password;
pub mod ports;
pub mod proxy;
pub mod pseudonym;
pub mod query;
pub mod release;
pub mod saml_sp;
pub mod second_factor;
pub mod secret;
pub mod service;
pub mod session;
pub mod throttle;
pub mod trusted_devices;
pub mod upstream;

// The account life cycle.
pub mod activation;
pub mod cgu;
pub mod lifecycle;
pub mod my_account;
pub mod password_policy;
pub mod questions;
pub mod recovery;

pub use error::{Error, Result};

#[cfg(test)]
#[path = "tests/lifecycle.rs"]
mod lifecycle_tests;
