//! `/compte/`: "Mon compte", on the SSO session (the TGC cookie has path
//! `/`). Change the personal e-mail (valid once its link is followed), the
//! password, the secret questions; see recent logins; download the data.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Deserialize;

use idp_core::account::Account;
use idp_core::lifecycle::FlowError;
use idp_core::session::SsoSession;

use crate::cas::login::redirect;
use crate::compte::{expired, page, user_error};
use crate::cookies;
use crate::csrf::CsrfForm;
use crate::error::{ErrorCode, WebError};
use crate::net::client_ip;
use crate::params::Params;
use crate::state::AppState;

const HOME: &str = "/compte/";

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AccountForm {
    /// What was just done (after a redirect): `courriel`, `mot-de-passe`, `questions`.
    fait: String,
    courriel: String,
    courriel_confirmation: String,
    mot_de_passe_actuel: String,
    mot_de_passe: String,
    confirmation: String,
    question1: String,
    reponse1: String,
    question2: String,
    reponse2: String,
    code: String,
}

/// The session and account of this browser, with its cookies and its
/// address; without a live session, the request is answered with the page
/// asking to log in.
pub struct SignedIn {
    pub(crate) session: SsoSession,
    pub(crate) account: Account,
    pub(crate) jar: CookieJar,
    /// The client's address (throttling of the current password).
    pub(crate) source: String,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let found = state.cas.current_session(cookies::session_id(&jar, state.config.https()).as_deref()).await;
        match found {
            Ok(Some((session, account))) => {
                let source = client_ip(parts, &state.config.trusted_proxies);
                Ok(SignedIn { session, account, jar, source })
            }
            Ok(None) => Err(sign_in_first(state, jar).unwrap_or_else(IntoResponse::into_response)),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

fn sign_in_first(state: &AppState, jar: CookieJar) -> Result<Response, WebError> {
    let ctx = context! {
        title => "Connexion nécessaire",
        message => "Pour accéder à votre compte, connectez-vous d'abord à l'ENT, puis revenez sur cette page.",
        back_url => "/cas/login",
    };
    page(state, jar, "error.html", StatusCode::UNAUTHORIZED, ctx)
}

/// After a change in `section`: back to the page saying it is done, or the
/// page again with the reason of the refusal in that section.
async fn after_change(
    state: &AppState,
    jar: CookieJar,
    account: &Account,
    section: &str,
    outcome: Result<(), FlowError>,
) -> Result<Response, WebError> {
    match outcome {
        Ok(()) => Ok((jar, redirect(StatusCode::SEE_OTHER, &format!("{HOME}?fait={section}"))).into_response()),
        Err(e) => {
            let message = user_error(e)?;
            render(state, jar, account, "", Some((section, message)), StatusCode::BAD_REQUEST).await
        }
    }
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    account: &Account,
    done: &str,
    error: Option<(&str, String)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let data = state.lifecycle.account_data(account).await?;
    let (error_in, error) = match error {
        Some((section, message)) => (Some(section.to_owned()), Some(message)),
        None => (None, None),
    };
    let logins: Vec<_> = data
        .recent_logins
        .iter()
        .map(|l| context! { at => l.at.format("%d/%m/%Y à %H:%M UTC").to_string(), source => &l.source })
        .collect();
    let ctx = context! {
        data => Value::from(Serde(&data)), logins, done, error_in, error,
        questions => &state.lifecycle.policy.questions,
        display_name => account.display_name(),
        hours => state.lifecycle.policy.email_link_hours,
    };
    page(state, jar, "compte.html", status, ctx)
}

/// `GET /compte/`.
pub async fn show(
    State(state): State<AppState>,
    SignedIn { account, jar, .. }: SignedIn,
    Params(q): Params<AccountForm>,
) -> Result<Response, WebError> {
    render(&state, jar, &account, &q.fait, None, StatusCode::OK).await
}

/// `POST /compte/mot-de-passe`: the current password, then the new one
/// twice. Other sessions end; this browser gets a fresh one.
pub async fn password(
    State(state): State<AppState>,
    SignedIn { session, account, jar, source }: SignedIn,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Result<Response, WebError> {
    let outcome = state
        .lifecycle
        .change_password(&account, &form.mot_de_passe_actuel, &form.mot_de_passe, &form.confirmation, &source)
        .await;
    let (jar, outcome) = match outcome {
        Ok(account) => {
            // The other browsers' sessions end now, with single logout.
            state.cas.end_sessions_of(account.id, Some(session.id.expose())).await?;
            (cookies::open_session(&state, jar, &account).await?, Ok(()))
        }
        Err(e) => (jar, Err(e)),
    };
    after_change(&state, jar, &account, "mot-de-passe", outcome).await
}

/// `POST /compte/courriel`: a new address twice; a link is sent to it.
pub async fn email(
    State(state): State<AppState>,
    SignedIn { account, jar, source, .. }: SignedIn,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Result<Response, WebError> {
    let addresses = (form.courriel.as_str(), form.courriel_confirmation.as_str());
    let current = &form.mot_de_passe_actuel;
    let outcome = state.lifecycle.request_email_change(&account, current, addresses, &source).await;
    after_change(&state, jar, &account, "courriel", outcome).await
}

/// `GET /compte/courriel?code=…`: the link of the e-mail, not spent yet.
pub async fn email_link(
    State(state): State<AppState>,
    jar: CookieJar,
    Params(q): Params<AccountForm>,
) -> Result<Response, WebError> {
    match state.lifecycle.peek_email_change(&q.code).await {
        Ok(_) => page(
            &state,
            jar,
            "email_confirm.html",
            StatusCode::OK,
            context! { action => "/compte/courriel/confirmer", code => &q.code, activation => false },
        ),
        Err(FlowError::Core(e)) => Err(e.into()),
        Err(_) => expired(&state, jar),
    }
}

/// `POST /compte/courriel/confirmer`: spends the code; the address is the
/// account's from now on. Works from any browser (the code is the proof).
pub async fn confirm_email(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Result<Response, WebError> {
    match state.lifecycle.confirm_email_change(&form.code).await {
        Ok(_) => page(
            &state,
            jar,
            "email_validated.html",
            StatusCode::OK,
            context! { compte_url => HOME, activation => false },
        ),
        Err(FlowError::Core(e)) => Err(e.into()),
        Err(_) => expired(&state, jar),
    }
}

/// `POST /compte/questions`: new secret questions.
pub async fn questions(
    State(state): State<AppState>,
    SignedIn { account, jar, source, .. }: SignedIn,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Result<Response, WebError> {
    let answers = (form.question1.as_str(), form.reponse1.as_str(), form.question2.as_str(), form.reponse2.as_str());
    let outcome = state.lifecycle.change_questions(&account, &form.mot_de_passe_actuel, answers, &source).await;
    after_change(&state, jar, &account, "questions", outcome).await
}

/// `GET /compte/donnees.json`: everything the ENT holds about the person
/// (never a password or an answer, which are only kept hashed).
pub async fn export(State(state): State<AppState>, SignedIn { account, .. }: SignedIn) -> Result<Response, WebError> {
    let data = state.lifecycle.account_data(&account).await?;
    let json = serde_json::to_string_pretty(&data).map_err(|e| WebError::internal(ErrorCode::Serialize, e))?;
    let disposition = format!("attachment; filename=\"donnees-ent-{}.json\"", account.login.as_str());
    Ok((
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        json,
    )
        .into_response())
}
