//! OpenID Connect / OAuth 2 endpoints. The paths are those discovery lists
//! ([`idp_protocol::oidc::discovery::paths`]); each flow has its file.

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod logout;
pub mod token;

use axum::Router;
use axum::routing::{get, post};

use idp_protocol::oidc::discovery::paths;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::DISCOVERY, get(discovery::configuration))
        .route(paths::JWKS, get(discovery::jwks))
        .route(paths::AUTHORIZE, get(authorize::show).post(authorize::consent))
        .route(paths::TOKEN, post(token::token))
        .route(paths::USERINFO, get(token::userinfo).post(token::userinfo))
        .route(paths::INTROSPECT, post(token::introspect))
        .route(paths::REVOKE, post(token::revoke))
        .route(paths::END_SESSION, get(logout::end_session).post(logout::end_session_form))
}
