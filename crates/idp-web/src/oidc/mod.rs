//! OpenID Connect / OAuth 2 endpoints. The paths are those discovery lists
//! ([`idp_protocol::oidc::discovery::paths`]); each flow has its file.

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod logout;
pub mod token;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use idp_protocol::oidc::discovery::paths;

use crate::state::AppState;

pub fn routes(state: &AppState) -> Router<AppState> {
    // Discovery and the public keys are public documents: any origin.
    let public = CorsLayer::new().allow_origin(Any).allow_methods([Method::GET]);
    // Browser applications (public clients with PKCE) call the token,
    // userinfo and revocation endpoints from the origin of one of their
    // registered redirect URIs; no cookie is ever sent cross-origin.
    let oidc = state.oidc.clone();
    let registered = AllowOrigin::async_predicate(move |origin: HeaderValue, _| async move {
        let Ok(origin) = origin.to_str() else { return false };
        match oidc.clients.list().await {
            Ok(clients) => clients.iter().flat_map(|c| c.redirect_uris.iter()).any(|uri| same_origin(uri, origin)),
            Err(_) => false,
        }
    });
    let apps = CorsLayer::new()
        .allow_origin(registered)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    let public_routes = Router::new()
        .route(paths::DISCOVERY, get(discovery::configuration))
        .route(paths::JWKS, get(discovery::jwks))
        .layer(public);
    let app_routes = Router::new()
        .route(paths::TOKEN, post(token::token))
        .route(paths::USERINFO, get(token::userinfo).post(token::userinfo))
        .route(paths::REVOKE, post(token::revoke))
        .layer(apps);
    Router::new()
        .merge(public_routes)
        .merge(app_routes)
        .route(paths::AUTHORIZE, get(authorize::show).post(authorize::consent))
        .route(paths::INTROSPECT, post(token::introspect))
        .route(paths::END_SESSION, get(logout::end_session).post(logout::end_session_form))
}

/// Whether `uri` (a registered redirect URI) has the origin `origin`
/// (`scheme://host[:port]`, as browsers send it).
fn same_origin(uri: &str, origin: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| u.origin().ascii_serialization() == origin)
}
