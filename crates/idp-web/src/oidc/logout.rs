//! `/oidc/logout`: RP-initiated logout. Ends the SSO session through the
//! same path as `/cas/logout` (CAS single logout and OIDC back-channel
//! logout), then goes back to the client's registered URI or shows the
//! "logged out" page.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;

use idp_protocol::oidc::logout::{EndSessionNext, EndSessionParams};

use crate::cas::login::redirect;
use crate::cookies;
use crate::error::{ErrorCode, WebError};
use crate::state::AppState;

/// `GET /oidc/logout`.
pub async fn end_session(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<EndSessionParams>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(params) = query.map_err(|_| bad_request())?;
    run(state, jar, params).await
}

/// `POST /oidc/logout` (form-encoded, same parameters).
pub async fn end_session_form(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<EndSessionParams>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(params) = form.map_err(|_| bad_request())?;
    run(state, jar, params).await
}

fn bad_request() -> WebError {
    WebError::bad_request(ErrorCode::BadLogoutRequest, "La demande de déconnexion de l'application est incorrecte.")
}

async fn run(state: AppState, jar: CookieJar, params: EndSessionParams) -> Result<Response, WebError> {
    let tgc = cookies::session_id(&jar, state.config.https());
    let next = state.oidc.end_session_request(&params, tgc.as_deref()).await?;
    let jar = cookies::remove(jar, cookies::Name::Session, state.config.https());
    match next {
        EndSessionNext::Redirect(url) => Ok((jar, redirect(StatusCode::FOUND, &url)).into_response()),
        EndSessionNext::LoggedOut => {
            let html = state.views.render("logged_out.html", context! { login_url => "/cas/login" })?;
            Ok((jar, Html(html)).into_response())
        }
        EndSessionNext::Refuse => Err(WebError::ServiceNotAllowed {
            code: ErrorCode::UnregisteredLogoutUri,
            detail: "unknown client or unregistered post_logout_redirect_uri".into(),
        }),
    }
}
