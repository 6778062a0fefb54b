//! Black-box tests of idp: the real router over HTTP on 127.0.0.1:0, the
//! real `idp` binary for the CLI, real SQLite (and PostgreSQL / Redis when
//! their URLs are set), real third-party clients (python-cas, Authlib,
//! the openidconnect crate, aiosmtpd) and headless Chromium with axe-core.
//!
//! All tests build into this one binary; `helpers` has `spawn_app`.

mod a11y;
mod account_helpers;
mod accounts_cluster;
mod activation;
mod admin_cli;
mod cas_login;
mod cas_proxy;
mod cas_release;
mod cas_saml;
mod cas_validate;
mod cli;
mod cluster;
mod compte;
mod deploy;
mod generated;
mod gestion;
mod gestion_import;
mod helpers;
mod interop;
mod logs;
mod oidc;
mod operations;
mod pages;
mod passkeys;
mod password_meter;
mod router;
mod saml_idp;
mod saml_layer;
mod second_factor;
mod serving;
mod slo;
mod smtp;
mod storage;
mod throttle;
mod trusted_device;
mod upstream;
mod upstream_oidc;
mod upstream_saml;
