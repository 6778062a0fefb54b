//! `/compte/mot-de-passe-oublie`: a new password by the validated e-mail
//! address (a link) or by the two secret questions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use idp_core::lifecycle::FlowError;

use crate::compte::{page, user_error};
use crate::csrf::CsrfForm;
use crate::error::WebError;
use crate::net::ClientIp;
use crate::params::Params;
use crate::state::AppState;

const HOME: &str = "/compte/mot-de-passe-oublie";

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RecoveryForm {
    identifiant: String,
    courriel: String,
    reponse1: String,
    reponse2: String,
    code: String,
    mot_de_passe: String,
    confirmation: String,
}

fn home(state: &AppState, jar: CookieJar, error: Option<String>, status: StatusCode) -> Result<Response, WebError> {
    page(state, jar, "forgot.html", status, context! { error })
}

/// `GET /compte/mot-de-passe-oublie`: the two ways.
pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Result<Response, WebError> {
    home(&state, jar, None, StatusCode::OK)
}

/// `POST …/courriel`: sends a link when the login and its validated address
/// match; the page is the same in every case.
pub async fn by_email(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<RecoveryForm>,
) -> Result<Response, WebError> {
    // In the background: the time of the answer must not tell whether an
    // e-mail was written, hence whether the login and address exist.
    let lifecycle = state.lifecycle.clone();
    let (login, email) = (form.identifiant.clone(), form.courriel.clone());
    tokio::spawn(async move {
        if let Err(e) = lifecycle.forgot_by_email(&login, &email, &source).await {
            tracing::error!(error = %e, "forgotten password by e-mail failed");
        }
    });
    page(
        &state,
        jar,
        "forgot_sent.html",
        StatusCode::OK,
        context! { minutes => state.lifecycle.policy.reset_link_minutes },
    )
}

async fn questions_page(
    state: &AppState,
    jar: CookieJar,
    login: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let (question1, question2) = state.lifecycle.recovery_questions(login).await?;
    page(state, jar, "forgot_questions.html", status, context! { login, question1, question2, error })
}

/// `POST …/questions`: the two questions of the login (decoys for a login
/// without questions: the page does not tell).
pub async fn questions(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<RecoveryForm>,
) -> Result<Response, WebError> {
    if form.identifiant.trim().is_empty() {
        return home(&state, jar, Some("Veuillez saisir votre identifiant.".into()), StatusCode::BAD_REQUEST);
    }
    questions_page(&state, jar, form.identifiant.trim(), None, StatusCode::OK).await
}

/// `POST …/reponses`: right answers lead to the new password form.
pub async fn answers(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<RecoveryForm>,
) -> Result<Response, WebError> {
    let login = form.identifiant.trim();
    match state.lifecycle.answer_recovery_questions(login, &form.reponse1, &form.reponse2, &source).await {
        Ok(code) => password_form(&state, jar, &code, None, StatusCode::OK),
        Err(e @ FlowError::Throttled) => {
            questions_page(&state, jar, login, Some(user_error(e)?), StatusCode::TOO_MANY_REQUESTS).await
        }
        Err(e) => questions_page(&state, jar, login, Some(user_error(e)?), StatusCode::UNAUTHORIZED).await,
    }
}

fn password_form(
    state: &AppState,
    jar: CookieJar,
    code: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    page(state, jar, "forgot_password.html", status, context! { code, error })
}

/// `GET …/nouveau?code=…`: the link of the e-mail; the form, without
/// spending the code.
pub async fn link(
    State(state): State<AppState>,
    jar: CookieJar,
    Params(q): Params<RecoveryForm>,
) -> Result<Response, WebError> {
    match state.lifecycle.reset_grant(&q.code).await {
        Ok(_) => password_form(&state, jar, &q.code, None, StatusCode::OK),
        Err(FlowError::Core(e)) => Err(e.into()),
        Err(_) => expired_reset(&state, jar),
    }
}

fn expired_reset(state: &AppState, jar: CookieJar) -> Result<Response, WebError> {
    page(
        state,
        jar,
        "error.html",
        StatusCode::GONE,
        context! {
            title => "Lien expiré",
            message => "Ce lien de changement de mot de passe a expiré ou a déjà été utilisé. Vous pouvez refaire une demande.",
            back_url => HOME,
        },
    )
}

/// `POST …/nouveau`: the new password; every session of the account ends.
pub async fn new_password(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<RecoveryForm>,
) -> Result<Response, WebError> {
    match state.lifecycle.reset_password(&form.code, &form.mot_de_passe, &form.confirmation).await {
        Ok(account) => {
            // Every session of the account ends now, with single logout.
            state.cas.end_sessions_of(account.id, None).await?;
            page(&state, jar, "password_changed.html", StatusCode::OK, context! { login_url => "/cas/login" })
        }
        Err(e @ FlowError::Password(_)) => {
            password_form(&state, jar, &form.code, Some(user_error(e)?), StatusCode::BAD_REQUEST)
        }
        Err(FlowError::Core(e)) => Err(e.into()),
        Err(_) => expired_reset(&state, jar),
    }
}
