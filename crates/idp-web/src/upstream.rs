//! `/upstream/<id>/start` and `/upstream/<id>/callback`: a login through an
//! upstream identity provider (CAS or OpenID Connect). Parse, one call to
//! the login pipeline, then the same rendering as `/cas/login`.

use axum::extract::{Path, State};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use crate::cas::flag;
use crate::cas::login::Page;
use idp_protocol::upstream::Callback;

use crate::config::LoginProfile;
use crate::cookies::{self, Name};
use crate::error::WebError;
use crate::net::ClientIp;
use crate::params::Params;
use crate::state::AppState;

/// Parameters of `/upstream/<id>/start`: those of the login request.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct StartQuery {
    service: Option<String>,
    renew: Option<String>,
    method: Option<String>,
}

/// Parameters of the callback: our `state`, and the CAS `ticket` or the
/// OpenID `code` (or `error`).
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CallbackQuery {
    state: String,
    ticket: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /upstream/<id>/start`.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    jar: CookieJar,
    Params(q): Params<StartQuery>,
) -> Result<Response, WebError> {
    let request = state.login.request(q.service.as_deref(), flag(&q.renew), false, q.method.as_deref()).await?;
    // The profile chosen on the login page, remembered in its cookie.
    let profile = cookies::get(&jar, Name::Profile, state.config.https())
        .and_then(|p| state.config.profile(&p).and_then(LoginProfile::account_profile));
    let step = state.login.start_upstream(&id, &request, profile).await?;
    Page::plain(&state, false).render(jar, step)
}

/// `GET /upstream/<id>/callback`.
pub async fn callback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    Params(q): Params<CallbackQuery>,
) -> Result<Response, WebError> {
    let tgc = cookies::session_id(&jar, state.config.https());
    let callback = Callback { state: q.state, ticket: q.ticket, code: q.code, error: q.error };
    let step = state.login.with_upstream(&id, &callback, &source, tgc.as_deref()).await?;
    Page::plain(&state, false).render(jar, step)
}
