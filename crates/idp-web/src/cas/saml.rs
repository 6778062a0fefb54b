//! `POST /cas/samlValidate?TARGET=…`: SAML 1.1 validation in SOAP.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::params::Params;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct SamlQuery {
    #[serde(rename = "TARGET")]
    target: Option<String>,
}

/// The body is read as bytes: a body that is not UTF-8 is an unreadable
/// request (a SAML failure), not an HTTP error.
pub async fn saml_validate(State(state): State<AppState>, Params(q): Params<SamlQuery>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body);
    let issuer = state.config.public_url.host_str().unwrap_or("localhost").to_owned();
    let xml = state.cas.saml_validate(q.target.as_deref().filter(|t| !t.is_empty()), &body, &issuer).await;
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml).into_response()
}
