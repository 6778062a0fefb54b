//! Discovery and the JSON Web Key Set.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use idp_protocol::oidc::discovery::metadata;

use crate::error::WebError;
use crate::state::AppState;

/// `GET /.well-known/openid-configuration`.
pub async fn configuration(State(state): State<AppState>) -> Response {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(metadata(&state.oidc.issuer))).into_response()
}

/// `GET /oidc/jwks`: the published keys; clients refetch it when they see
/// an unknown `kid`, so a short cache is enough.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, WebError> {
    let jwks = state.oidc.keys.jwks().await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=60")], Json(jwks)).into_response())
}
