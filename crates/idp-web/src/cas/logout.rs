//! `/cas/logout`: ends the SSO session (and sends single logout to the
//! services), then redirects to `service` only if it is registered.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use crate::cas::login::redirect;
use crate::cookies;
use crate::error::WebError;
use crate::params::Params;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct LogoutQuery {
    service: Option<String>,
}

pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    Params(q): Params<LogoutQuery>,
) -> Result<Response, WebError> {
    if let Some(id) = cookies::session_id(&jar, state.config.https()) {
        state.cas.end_session(&id).await?;
    }
    let jar = cookies::remove(jar, cookies::Name::Session, state.config.https());
    // Only a registered service is followed: no open redirect.
    if let Some(service) = q.service.as_deref().filter(|s| !s.is_empty())
        && let Ok((url, _)) = state.cas.registered_service(service).await
    {
        return Ok((jar, redirect(StatusCode::FOUND, url.as_str())).into_response());
    }
    let html = state.views.render("logged_out.html", context! { login_url => "/cas/login" })?;
    Ok((jar, Html(html)).into_response())
}
