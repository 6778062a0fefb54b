//! `/cas/logout`: ends the SSO session (and sends single logout to the
//! services), then redirects to `service` only if it is registered.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use idp_protocol::login::LogoutNext;

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
    let https = state.config.https();
    let next = state.login.logout(cookies::session_id(&jar, https).as_deref(), q.service.as_deref()).await?;
    let jar = cookies::remove(jar, cookies::Name::Session, https);
    Ok((jar, respond(&state, next)?).into_response())
}

/// `/upstream/<id>/deconnexion`: back from the upstream's logout.
pub async fn after_upstream(
    State(state): State<AppState>,
    Params(q): Params<LogoutQuery>,
) -> Result<Response, WebError> {
    let next = state.login.after_upstream_logout(q.service.as_deref()).await;
    respond(&state, next)
}

/// Only a registered service is followed: no open redirect.
fn respond(state: &AppState, next: LogoutNext) -> Result<Response, WebError> {
    match next {
        LogoutNext::ToService(url) | LogoutNext::ToUpstream(url) => Ok(redirect(StatusCode::FOUND, &url)),
        LogoutNext::LoggedOut => {
            let html = state.views.render("logged_out.html", context! { login_url => "/cas/login" })?;
            Ok(Html(html).into_response())
        }
    }
}
