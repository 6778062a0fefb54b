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
    let tgc = cookies::session_id(&jar, https);
    let next = state.login.logout(tgc.as_deref(), q.service.as_deref()).await?;
    let jar = cookies::remove(jar, cookies::Name::Session, https);
    crate::saml_idp::after_cas_logout(&state, jar, tgc.as_deref(), next).await
}

/// `/upstream/<id>/deconnexion`: back from the upstream's logout.
pub async fn after_upstream(
    State(state): State<AppState>,
    jar: CookieJar,
    Params(q): Params<LogoutQuery>,
) -> Result<Response, WebError> {
    let next = state.login.after_upstream_logout(q.service.as_deref()).await;
    respond(&state, jar, next)
}

/// Only a registered service is followed: no open redirect. A refused
/// upstream logout message gets a 400 French page.
pub(crate) fn respond(state: &AppState, jar: CookieJar, next: LogoutNext) -> Result<Response, WebError> {
    match next {
        LogoutNext::ToService(url) | LogoutNext::ToUpstream(url) => {
            Ok((jar, redirect(StatusCode::FOUND, &url)).into_response())
        }
        LogoutNext::LoggedOut => {
            let html = state.views.render("logged_out.html", context! { login_url => "/cas/login" })?;
            Ok((jar, Html(html)).into_response())
        }
        LogoutNext::Refused => {
            let ctx = context! {
                title => "Déconnexion refusée",
                message => "Ce message de déconnexion n'est pas valide ou a déjà été utilisé. Vous pouvez fermer cette page ou vous reconnecter.",
                back_url => "/cas/login",
            };
            crate::compte::page(state, jar, "error.html", StatusCode::BAD_REQUEST, ctx)
        }
    }
}
