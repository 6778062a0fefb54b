//! How OIDC and OAuth 2 errors reach the client: JSON bodies at the token,
//! introspection and revocation endpoints (RFC 6749 §5.2), a
//! `WWW-Authenticate: Bearer` challenge at UserInfo (RFC 6750 §3). Errors of
//! ours become [`WebError`] (a French page, details in the logs).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use idp_protocol::oidc::{ErrorCode, Failure, OidcError};

use crate::error::WebError;

/// A failure at a JSON endpoint.
#[derive(Debug)]
pub struct JsonError(pub Failure);

impl From<Failure> for JsonError {
    fn from(f: Failure) -> Self {
        JsonError(f)
    }
}

impl From<OidcError> for JsonError {
    fn from(e: OidcError) -> Self {
        JsonError(Failure::Protocol(e))
    }
}

impl From<idp_protocol::Error> for JsonError {
    fn from(e: idp_protocol::Error) -> Self {
        JsonError(Failure::Internal(e))
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let e = match self.0 {
            Failure::Protocol(e) => e,
            Failure::Internal(e) => return WebError::from(e).into_response(),
        };
        let status = match e.code {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = Json(json!({ "error": e.code.as_str(), "error_description": e.description }));
        let mut response = (status, body).into_response();
        if e.code == ErrorCode::InvalidClient {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"idp\""));
        }
        response
    }
}

/// A failure at UserInfo: RFC 6750 challenge.
#[derive(Debug)]
pub struct BearerError(pub Failure);

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let e = match self.0 {
            Failure::Protocol(e) => e,
            Failure::Internal(e) => return WebError::from(e).into_response(),
        };
        let challenge = format!("Bearer error=\"{}\", error_description=\"{}\"", e.code.as_str(), e.description);
        let mut response =
            (StatusCode::UNAUTHORIZED, Json(json!({ "error": e.code.as_str(), "error_description": e.description })))
                .into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}
