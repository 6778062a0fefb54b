//! `/oidc/token`, `/oidc/userinfo`, `/oidc/introspect`, `/oidc/revoke`.

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use idp_protocol::oidc::token::{BasicCredentials, TokenForm};
use idp_protocol::oidc::{ErrorCode, Failure, OidcError};

use crate::oidc::error::{BearerError, JsonError};
use crate::state::AppState;

fn invalid_request(why: &str) -> JsonError {
    JsonError::from(OidcError::new(ErrorCode::InvalidRequest, why))
}

/// `client_secret_basic` (RFC 6749 §2.3.1: both parts form-urlencoded).
fn basic(headers: &HeaderMap) -> Result<Option<BasicCredentials>, JsonError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| invalid_request("bad Authorization header"))?;
    let Some(encoded) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) else {
        return Ok(None);
    };
    let invalid_client = || JsonError::from(OidcError::new(ErrorCode::InvalidClient, "bad Basic credentials"));
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid_client())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("v={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    Ok(Some(BasicCredentials { client_id: unescape(id), client_secret: unescape(secret) }))
}

fn form_of(form: Result<Form<TokenForm>, FormRejection>) -> Result<TokenForm, JsonError> {
    form.map(|Form(f)| f).map_err(|_| invalid_request("the body must be a form without repeated parameters"))
}

/// `POST /oidc/token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, JsonError> {
    let form = form_of(form)?;
    let grant = match form.grant_type.as_deref() {
        Some(g @ ("authorization_code" | "refresh_token")) => g.to_owned(),
        _ => "other".to_owned(),
    };
    let outcome = async {
        let client = state.oidc.authenticate_client(basic(&headers)?, &form, true).await?;
        Ok::<_, JsonError>(state.oidc.token(&client, &form).await?)
    }
    .await;
    let result = if outcome.is_ok() { "issued" } else { "refused" };
    metrics::counter!("idp_oidc_token_requests_total", "grant" => grant, "result" => result).increment(1);
    Ok(Json(outcome?).into_response())
}

/// `POST /oidc/introspect` (RFC 7662): confidential clients only.
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, JsonError> {
    let form = form_of(form)?;
    state.oidc.authenticate_client(basic(&headers)?, &form, false).await?;
    let Some(token) = form.token.as_deref() else { return Err(invalid_request("token is required")) };
    Ok(Json(state.oidc.introspect(token).await?).into_response())
}

/// `POST /oidc/revoke` (RFC 7009): always 200 for a known client.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, JsonError> {
    let form = form_of(form)?;
    let client = state.oidc.authenticate_client(basic(&headers)?, &form, true).await?;
    let Some(token) = form.token.as_deref() else { return Err(invalid_request("token is required")) };
    state.oidc.revoke(&client, token).await?;
    Ok(().into_response())
}

/// `GET|POST /oidc/userinfo` with `Authorization: Bearer`.
pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, BearerError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(BearerError(Failure::Protocol(OidcError::new(ErrorCode::InvalidToken, "no access token"))));
    };
    let claims = state.oidc.userinfo(token).await.map_err(BearerError)?;
    Ok(Json(claims).into_response())
}
