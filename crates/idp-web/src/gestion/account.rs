//! The account page of the console and its actions: reset (one account or
//! a list), unlock / disable / enable, and the letters to print.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use idp_core::account::Account;
use idp_core::admin::{Administrator, ConsoleError, LETTER_MINUTES, Letter, StateChange};
use idp_core::second_factor::Remover;

use super::{Admin, summary};
use crate::cas::login::redirect;
use crate::compte::page;
use crate::csrf::CsrfForm;
use crate::error::{ErrorCode, WebError};
use crate::params::Params;
use crate::state::AppState;

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    /// The administrator's password, when the login is older than 15 minutes.
    mot_de_passe: String,
    /// `deverrouiller`, `desactiver` or `activer`.
    action: String,
    /// Logins separated by spaces, commas, semicolons or lines.
    identifiants: String,
    /// What was just done (after a redirect).
    fait: String,
}

/// `GET /gestion/compte/{login}`.
pub async fn show(
    State(state): State<AppState>,
    Admin { admin, session, jar }: Admin,
    Path(login): Path<String>,
    Params(q): Params<ActionForm>,
) -> Result<Response, WebError> {
    let account = state.console.account(&admin, &login).await?;
    let extras = state.lifecycle.security.get(account.id).await?;
    let done = match q.fait.as_str() {
        "deverrouiller" => Some("Le compte a été déverrouillé."),
        "desactiver" => Some("Le compte a été désactivé : ses connexions en cours ont été fermées."),
        "activer" => Some("Le compte a été réactivé."),
        "deux-etapes" => Some(
            "La validation en deux étapes du compte a été supprimée. La personne en est informée par courriel si son \
             adresse est validée.",
        ),
        _ => None,
    };
    let second_factor = state.second_factor.enrolled(account.id).await?.any();
    let ctx = context! {
        account => summary(&account, Some(extras.email_is_verified(&account))),
        email_registered => account.email.is_some(),
        email_verified => extras.email_is_verified(&account),
        questions_set => extras.questions.is_some(),
        needs_password => state.console.needs_password(&session),
        done, second_factor,
    };
    page(&state, jar, "gestion_compte.html", StatusCode::OK, ctx)
}

/// `POST /gestion/compte/{login}/reinitialiser`: a new provisional
/// password, shown once with the link to its letter.
pub async fn reset(
    State(state): State<AppState>,
    admin: Admin,
    Path(login): Path<String>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> Result<Response, WebError> {
    reset_and_show(&state, admin, &[login], &form.mot_de_passe).await
}

/// `POST /gestion/lettres`: resets every listed account of the
/// administrator's schools (others are left out) and gives one document
/// with all their letters.
pub async fn batch(
    State(state): State<AppState>,
    admin: Admin,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> Result<Response, WebError> {
    let logins: Vec<String> = form
        .identifiants
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|l| !l.is_empty())
        .take(1000)
        .map(str::to_owned)
        .collect();
    reset_and_show(&state, admin, &logins, &form.mot_de_passe).await
}

async fn reset_and_show(
    state: &AppState,
    Admin { admin, session, jar }: Admin,
    logins: &[String],
    password: &str,
) -> Result<Response, WebError> {
    if let Err(e) = state.console.confirm(&admin, &session, password).await {
        return confirm_refused(state, jar, e);
    }
    let (accounts, code) = state.console.reset(&admin, logins).await?;
    for account in &accounts {
        // The sessions of the person end now, with single logout.
        state.cas.end_sessions_of(account.id, None).await?;
    }
    show_letters(state, jar, &admin, &code, false).await
}

/// The page showing, once, the provisional passwords of the letters kept
/// under `code` (of new accounts when `created`, else of a reset), with
/// the link to print them.
pub async fn show_letters(
    state: &AppState,
    jar: CookieJar,
    admin: &Administrator,
    code: &str,
    created: bool,
) -> Result<Response, WebError> {
    let letters = state.console.letters(admin, code).await?;
    let shown: Vec<_> = letters
        .iter()
        .map(|l| context! { login => &l.login, name => &l.display_name, password => &l.provisional_password })
        .collect();
    let ctx = context! { letters => shown, code, created, minutes => LETTER_MINUTES };
    page(state, jar, "gestion_lettres.html", StatusCode::OK, ctx)
}

/// The page of a sensitive action refused for want of the password.
pub(super) fn confirm_refused(state: &AppState, jar: CookieJar, e: ConsoleError) -> Result<Response, WebError> {
    let ConsoleError::PasswordNeeded = e else { return Err(e.into()) };
    let ctx = context! {
        title => "Confirmation nécessaire",
        message => "Votre connexion date de plus de 15 minutes : pour cette action, saisissez votre mot de passe. \
                    Le mot de passe saisi est absent ou incorrect.",
        back_url => "/gestion/",
    };
    page(state, jar, "error.html", StatusCode::FORBIDDEN, ctx)
}

/// `POST /gestion/compte/{login}/etat`: unlock, disable or enable.
pub async fn change_state(
    State(state): State<AppState>,
    Admin { admin, session, jar }: Admin,
    Path(login): Path<String>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> Result<Response, WebError> {
    let change = match form.action.as_str() {
        "deverrouiller" => StateChange::Unlock,
        "desactiver" => StateChange::Disable,
        "activer" => StateChange::Enable,
        _ => return Err(WebError::bad_request(ErrorCode::BadForm, "Action inconnue.")),
    };
    if change == StateChange::Disable
        && let Err(e) = state.console.confirm(&admin, &session, &form.mot_de_passe).await
    {
        return confirm_refused(&state, jar, e);
    }
    let account: Account = state.console.set_state(&admin, &login, change).await?;
    if change == StateChange::Disable {
        state.cas.end_sessions_of(account.id, None).await?;
    }
    let to = format!("/gestion/compte/{}?fait={}", account.login, form.action);
    Ok((jar, redirect(StatusCode::SEE_OTHER, &to)).into_response())
}

/// `GET /gestion/lettres/{code}`: the PDF of a reset's letters, for the
/// administrator who made it, during [`LETTER_MINUTES`].
pub async fn letters(
    State(state): State<AppState>,
    Admin { admin, .. }: Admin,
    Path(code): Path<String>,
) -> Result<Response, WebError> {
    let letters: Vec<Letter> = state.console.letters(&admin, &code).await?;
    let activation_url = format!("{}/compte/activation", state.config.public_url.as_str().trim_end_matches('/'));
    let ctx = super::letter::LetterContext {
        site_name: &state.config.site_name,
        activation_url: &activation_url,
        validity_days: state.lifecycle.policy.provisional_validity_days,
        email_hours: state.lifecycle.policy.email_link_hours,
    };
    let pdf = super::letter::render(&letters, &ctx).map_err(|e| WebError::internal(ErrorCode::Serialize, e))?;
    let mut response = pdf.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline; filename=\"lettres-ent.pdf\""));
    crate::security::no_store(h);
    Ok(response)
}

/// `POST /gestion/compte/{login}/deux-etapes`: removes the person's second
/// factors (after checking their identity, which the page reminds), audited
/// in the console's trail; the person is told by e-mail.
pub async fn remove_second_factor(
    State(state): State<AppState>,
    Admin { admin, session, jar }: Admin,
    Path(login): Path<String>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> Result<Response, WebError> {
    if let Err(e) = state.console.confirm(&admin, &session, &form.mot_de_passe).await {
        return confirm_refused(&state, jar, e);
    }
    let account = state.console.account(&admin, &login).await?;
    let by = Remover::HelpDesk(admin.account.login.as_str().to_owned());
    if state.second_factor.remove(&account, by).await? {
        state.console.audit(&admin, "deux-etapes", account.login.as_str(), "").await?;
    }
    let to = format!("/gestion/compte/{}?fait=deux-etapes", account.login);
    Ok((jar, redirect(StatusCode::SEE_OTHER, &to)).into_response())
}
