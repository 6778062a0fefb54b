//! `/upstream/<id>/acs`, `/upstream/<id>/metadata` and `/upstream/<id>/slo`:
//! the SAML service provider of an upstream. Parse, one call to the login
//! pipeline, then the same rendering as `/cas/login` (`/cas/logout` for the
//! single logout).
//!
//! The assertion consumer takes a cross-site POST from the identity
//! provider, so it carries no CSRF token of ours: the `RelayState`, taken
//! once from the store and bound to the request whose `ID` the response
//! must answer, is what ties the post to a login this browser started.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use crate::cas::login::Page;
use crate::cookies;
use crate::error::WebError;
use crate::net::ClientIp;
use crate::state::AppState;

/// The HTTP-POST binding's form.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState")]
    relay_state: String,
}

/// `POST /upstream/<id>/acs`. A body that is not a form reads as an empty
/// one, which finds no pending login (the French « expirée » page).
pub async fn acs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, WebError> {
    let form: AcsForm = crate::params::parse(std::str::from_utf8(&body).unwrap_or_default());
    let tgc = cookies::session_id(&jar, state.config.https());
    let step =
        state.login.with_saml_response(&id, (&form.relay_state, &form.saml_response), &source, tgc.as_deref()).await?;
    Page::plain(&state, false).render(jar, step)
}

/// `GET /upstream/<id>/metadata`: our SP metadata (its URL is our entity id).
pub async fn metadata(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, WebError> {
    let xml = state.login.saml_metadata(&id)?;
    Ok(([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml).into_response())
}

/// `GET /upstream/<id>/slo`: the IdP's answer to our logout request, or
/// its own logout request (HTTP-Redirect; the signature covers the raw
/// query string). The browser leaves without its session cookie.
pub async fn slo(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let next = state.login.saml_single_logout(&id, query.as_deref().unwrap_or_default()).await?;
    let jar = cookies::remove(jar, cookies::Name::Session, state.config.https());
    crate::cas::logout::respond(&state, jar, next)
}
