//! idp-web: the HTTP layer.
//!
//! It owns the axum router, request extraction, cookies (TGC, CSRF, chosen
//! profile), security headers, the minijinja views of the themes, and the
//! mapping of every error to a status code and a French page
//! ([`error::WebError`]). Handlers stay thin: parse, call idp-protocol or
//! idp-core, render or redirect. No SQL, no Redis here: storage comes in
//! through the ports held by [`state::AppState`].
//!
//! Start with [`router`], then [`cas::login`], which renders the answers of
//! the login pipeline ([`idp_protocol::login`]). The OpenID Connect endpoints
//! are in [`oidc`]; their OAuth error bodies and challenges are made in
//! [`oidc::error`].
//! The account pages
//! (activation, forgotten password, "Mon compte") are in [`compte`]; the
//! school help desk (`/gestion/`) is in [`gestion`].
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod access;
pub mod cas;
pub mod compte;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod gestion;
pub mod health;
pub mod net;
pub mod oidc;
pub mod params;
pub mod saml_idp;
pub mod security;
pub mod state;
pub mod upstream;
pub mod upstream_saml;
pub mod views;

use axum::Router;
use axum::routing::get;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use state::AppState;

/// The whole HTTP application. Request bodies are limited to 64 KiB,
/// except the console's file upload, which sets its own limit.
pub fn router(state: AppState) -> Router {
    let forms = Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/cas/login") }))
        .merge(cas::routes())
        .merge(oidc::routes(&state))
        .merge(compte::routes())
        .merge(gestion::routes())
        .route("/upstream/{id}/start", get(upstream::start))
        .route("/upstream/{id}/callback", get(upstream::callback))
        .route("/upstream/{id}/deconnexion", get(cas::logout::after_upstream))
        .route("/upstream/{id}/acs", axum::routing::post(upstream_saml::acs))
        .route("/upstream/{id}/metadata", get(upstream_saml::metadata))
        .route("/upstream/{id}/slo", get(upstream_saml::slo))
        .route("/saml/idp/metadata", get(saml_idp::metadata))
        .route("/saml/idp/sso", get(saml_idp::sso_redirect).post(saml_idp::sso_post))
        .route("/saml/idp/resume/{id}", get(saml_idp::resume))
        .route("/saml/idp/slo", get(saml_idp::slo_redirect).post(saml_idp::slo_post))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/static/{theme}/{*path}", get(views::static_file))
        .layer(RequestBodyLimitLayer::new(64 * 1024));
    Router::new()
        .merge(forms)
        .merge(gestion::import::upload_routes())
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), security::headers))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(axum::middleware::from_fn(access::log))
        .with_state(state)
}
