//! The `idp` binary as a library, so that black-box tests can build the
//! real server in-process (with a fixed clock) and run the real CLI.
//!
//! - [`settings`]: defaults, TOML file, `IDP_*` environment.
//! - [`stores`]: which adapter implements which port.
//! - [`app`]: the server (`Application::build`, `port`, `run_until`);
//!   [`http`]: its accept loop (timeouts, connection cap).
//! - [`cli`]: the commands (docs/operations.md); [`import`]: CSV import;
//!   [`healthcheck`]: `idp healthcheck`, for container health checks;
//!   [`service_rules`]: the policy options of `service add|update`.
//!   [`clients_cli`]: OIDC clients and signing keys; [`apereo`]: Apereo
//!   CAS JSON service definitions (`service import|export`); [`admin_cli`]:
//!   the help desk's administrators and audit export (`admin …`).
//!
//! `anyhow` is used here and nowhere else in the workspace.

pub mod admin_cli;
pub mod apereo;
pub mod app;
pub mod cli;
pub mod clients_cli;
pub mod healthcheck;
pub mod http;
pub mod import;
pub mod saml;
pub mod saml_sp_cli;
pub mod service_rules;
pub mod settings;
pub mod stores;
