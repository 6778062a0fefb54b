//! `/compte/`: "Mon compte", on the SSO session (the TGC cookie has path
//! `/`). Change the personal e-mail (valid once its link is followed), the
//! password, the secret questions; see recent logins; download the data.

use axum::extract::{Form, Query, State};
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

use crate::cas::TGC;
use crate::cas::login::{redirect, tgc_cookie};
use crate::compte::{csrf_failed, expired, page, user_error};
use crate::csrf;
use crate::error::WebError;
use crate::net::client_ip;
use crate::state::AppState;

const HOME: &str = "/compte/";

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct AccountForm {
    csrf_token: Option<String>,
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

fn fail(e: FlowError) -> WebError {
    match e {
        FlowError::Core(e) => e.into(),
        other => WebError::internal("WEB0002", other),
    }
}

/// The session and account of this browser, or the page asking to log in.
async fn signed_in(state: &AppState, jar: &CookieJar) -> Result<Result<(SsoSession, Account), Response>, WebError> {
    let tgc = jar.get(TGC).map(|c| c.value().to_owned());
    match state.cas.current_session(tgc.as_deref()).await? {
        Some(found) => Ok(Ok(found)),
        None => {
            let r = page(
                state,
                jar.clone(),
                "error.html",
                StatusCode::UNAUTHORIZED,
                context! {
                    title => "Connexion nécessaire",
                    message => "Pour accéder à votre compte, connectez-vous d'abord à l'ENT, puis revenez sur cette page.",
                    back_url => "/cas/login",
                },
            )?;
            Ok(Err(r))
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
    let data = state.lifecycle.account_data(account).await.map_err(fail)?;
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
    jar: CookieJar,
    Query(q): Query<AccountForm>,
) -> Result<Response, WebError> {
    let (_, account) = match signed_in(&state, &jar).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    render(&state, jar, &account, &q.fait, None, StatusCode::OK).await
}

fn done(what: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, &format!("{HOME}?fait={what}"))
}

/// `POST /compte/mot-de-passe`: the current password, then the new one
/// twice. Other sessions end; this browser gets a fresh one.
pub async fn password(
    State(state): State<AppState>,
    parts: Parts,
    jar: CookieJar,
    Form(form): Form<AccountForm>,
) -> Result<Response, WebError> {
    if !csrf::verify(&jar, form.csrf_token.as_deref()) {
        return csrf_failed(&state, jar, HOME);
    }
    let (session, account) = match signed_in(&state, &jar).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let source = client_ip(&parts, &state.config.trusted_proxies);
    let outcome = state
        .lifecycle
        .change_password(&account, &form.mot_de_passe_actuel, &form.mot_de_passe, &form.confirmation, &source)
        .await;
    match outcome {
        Ok(account) => {
            // The other browsers' sessions end now, with single logout.
            state.cas.end_sessions_of(account.id, Some(&session.id)).await?;
            let fresh = state.cas.open_session(&account, Some(&session.id)).await?;
            Ok((jar.add(tgc_cookie(&fresh.id, state.config.https())), done("mot-de-passe")).into_response())
        }
        Err(e) => {
            let message = user_error(e)?;
            render(&state, jar, &account, "", Some(("mot-de-passe", message)), StatusCode::BAD_REQUEST).await
        }
    }
}

/// `POST /compte/courriel`: a new address twice; a link is sent to it.
pub async fn email(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<AccountForm>,
) -> Result<Response, WebError> {
    if !csrf::verify(&jar, form.csrf_token.as_deref()) {
        return csrf_failed(&state, jar, HOME);
    }
    let (_, account) = match signed_in(&state, &jar).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    match state.lifecycle.request_email_change(&account, &form.courriel, &form.courriel_confirmation).await {
        Ok(()) => Ok((jar, done("courriel")).into_response()),
        Err(e) => {
            let message = user_error(e)?;
            render(&state, jar, &account, "", Some(("courriel", message)), StatusCode::BAD_REQUEST).await
        }
    }
}

/// `GET /compte/courriel?code=…`: the link of the e-mail, not spent yet.
pub async fn email_link(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<AccountForm>,
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
    Form(form): Form<AccountForm>,
) -> Result<Response, WebError> {
    if !csrf::verify(&jar, form.csrf_token.as_deref()) {
        return csrf_failed(&state, jar, HOME);
    }
    match state.lifecycle.confirm_email_change(&form.code).await {
        Ok(_) => page(&state, jar, "email_changed.html", StatusCode::OK, context! { compte_url => HOME }),
        Err(FlowError::Core(e)) => Err(e.into()),
        Err(_) => expired(&state, jar),
    }
}

/// `POST /compte/questions`: new secret questions.
pub async fn questions(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<AccountForm>,
) -> Result<Response, WebError> {
    if !csrf::verify(&jar, form.csrf_token.as_deref()) {
        return csrf_failed(&state, jar, HOME);
    }
    let (_, account) = match signed_in(&state, &jar).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let answers = (form.question1.as_str(), form.reponse1.as_str(), form.question2.as_str(), form.reponse2.as_str());
    match state.lifecycle.change_questions(&account, answers).await {
        Ok(()) => Ok((jar, done("questions")).into_response()),
        Err(e) => {
            let message = user_error(e)?;
            render(&state, jar, &account, "", Some(("questions", message)), StatusCode::BAD_REQUEST).await
        }
    }
}

/// `GET /compte/donnees.json`: everything the ENT holds about the person
/// (never a password or an answer, which are only kept hashed).
pub async fn export(State(state): State<AppState>, jar: CookieJar) -> Result<Response, WebError> {
    let (_, account) = match signed_in(&state, &jar).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let data = state.lifecycle.account_data(&account).await.map_err(fail)?;
    let json = serde_json::to_string_pretty(&data).map_err(|e| WebError::internal("WEB0003", e))?;
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
