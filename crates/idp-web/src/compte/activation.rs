//! `/compte/activation`: the activation wizard ("Activer mon compte." and
//! "Mon compte a été réinitialisé."), page by page. The
//! attempt lives server-side; the browser only keeps its id in a cookie.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use idp_core::activation::{Attempt, Step};
use idp_core::lifecycle::FlowError;
use idp_core::secret::Secret;

use crate::cas::flag;
use crate::cas::login::redirect;
use crate::compte::{expired, page, strength_label, user_error};
use crate::cookies::{self, Name};
use crate::csrf::CsrfForm;
use crate::error::WebError;
use crate::net::{ClientIp, with_query};
use crate::params::Params;
use crate::state::AppState;

const HOME: &str = "/compte/activation";
const LINK_SPENT: &str = "/compte/activation/courriel/validee";

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    reinitialise: Option<String>,
    service: Option<String>,
    /// Abandons the attempt of this browser and starts again.
    recommencer: Option<String>,
}

/// Every field of every step's form; each step reads its own.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct StepForm {
    identifiant: String,
    mot_de_passe_provisoire: String,
    reinitialise: Option<String>,
    service: Option<String>,
    accepte: Option<String>,
    courriel: String,
    courriel_confirmation: String,
    question1: String,
    reponse1: String,
    question2: String,
    reponse2: String,
    mot_de_passe: String,
    confirmation: String,
    code: String,
}

fn with_attempt(state: &AppState, jar: CookieJar, id: &str) -> CookieJar {
    cookies::set(jar, Name::Activation, id, state.config.https(), false)
}

fn without_attempt(state: &AppState, jar: CookieJar) -> CookieJar {
    cookies::remove(jar, Name::Activation, state.config.https())
}

fn cookie_of(state: &AppState, jar: &CookieJar) -> Option<String> {
    cookies::get(jar, Name::Activation, state.config.https())
}

fn see_other(jar: CookieJar) -> Response {
    (jar, redirect(StatusCode::SEE_OTHER, HOME)).into_response()
}

/// `GET /compte/activation`: the current step of this browser's attempt,
/// or the first step.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Params(q): Params<ShowQuery>,
) -> Result<Response, WebError> {
    let mut jar = jar;
    if flag(&q.recommencer)
        && let Some(id) = cookie_of(&state, &jar)
    {
        state.lifecycle.abandon_activation(&id).await?;
        jar = without_attempt(&state, jar);
    }
    if let Some(id) = cookie_of(&state, &jar) {
        match state.lifecycle.attempt(&id).await {
            Ok(attempt) => return step_page(&state, jar, &attempt, None, StatusCode::OK),
            Err(FlowError::Core(e)) => return Err(e.into()),
            Err(_) => jar = without_attempt(&state, jar),
        }
    }
    start_page(&state, jar, flag(&q.reinitialise), q.service.as_deref(), "", None, StatusCode::OK)
}

fn start_page(
    state: &AppState,
    jar: CookieJar,
    reset: bool,
    service: Option<&str>,
    login: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    page(state, jar, "activation_start.html", status, context! { reset, service, login, error })
}

/// Renders the page of the step `attempt` is at.
fn step_page(
    state: &AppState,
    jar: CookieJar,
    attempt: &Attempt,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let (template, extra) = match attempt.step {
        Step::Cgu => ("activation_cgu.html", context! {}),
        Step::Email => ("activation_email.html", context! {}),
        Step::AwaitingEmail => ("activation_email_sent.html", context! { email => &attempt.email }),
        Step::Password => ("activation_password.html", context! { email_verified => attempt.email_verified }),
    };
    let ctx = context! {
        reset => attempt.reset,
        display_name => &attempt.display_name,
        hours => state.lifecycle.policy.email_link_hours,
        cgu_version => &state.lifecycle.cgu_version,
        error,
        ..extra
    };
    page(state, jar, template, status, ctx)
}

/// The outcome of a step: on success, 303 to the wizard; on a refusal, the
/// step page again with the reason; on an expired attempt, the page saying
/// so.
async fn after_step(
    state: &AppState,
    jar: CookieJar,
    id: &str,
    outcome: Result<Attempt, FlowError>,
) -> Result<Response, WebError> {
    match outcome {
        Ok(_) | Err(FlowError::WrongStep) => Ok(see_other(jar)),
        Err(FlowError::Expired) => expired(state, without_attempt(state, jar)),
        Err(e) => {
            let message = user_error(e)?;
            let attempt = match state.lifecycle.attempt(id).await {
                Ok(a) => a,
                Err(FlowError::Core(e)) => return Err(e.into()),
                Err(_) => return expired(state, jar),
            };
            step_page(state, jar, &attempt, Some(message), StatusCode::BAD_REQUEST)
        }
    }
}

/// The id of this browser's attempt, from its cookie; without one, the
/// request is answered with the expired page.
pub struct AttemptId(String);

impl FromRequestParts<AppState> for AttemptId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        match cookie_of(state, &jar) {
            Some(id) => Ok(AttemptId(id)),
            None => Err(expired(state, jar).unwrap_or_else(IntoResponse::into_response)),
        }
    }
}

/// `POST /compte/activation`: identifiant and provisional password.
pub async fn start(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<StepForm>,
) -> Result<Response, WebError> {
    let reset = flag(&form.reinitialise);
    let service = form.service.clone().filter(|s| !s.is_empty());
    let again = |jar, message: String, status| {
        start_page(&state, jar, reset, service.as_deref(), &form.identifiant, Some(message), status)
    };
    if form.identifiant.trim().is_empty() || form.mot_de_passe_provisoire.is_empty() {
        return again(
            jar,
            "Veuillez saisir votre identifiant et votre mot de passe provisoire.".into(),
            StatusCode::BAD_REQUEST,
        );
    }
    // Only a registered service is kept for "Accès ENT" (no open redirect).
    let service = match service.as_deref() {
        Some(s) => state.cas.registered_service(s).await.ok().map(|(url, _)| url.as_str().to_owned()),
        None => None,
    };
    let secret = Secret::new(form.mot_de_passe_provisoire.clone());
    match state.lifecycle.start_activation(&form.identifiant, secret, &source, service).await {
        Ok(attempt) => Ok(see_other(with_attempt(&state, jar, &attempt.id))),
        Err(e) => {
            let status = match e {
                FlowError::Throttled => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            again(jar, user_error(e)?, status)
        }
    }
}

/// `POST /compte/activation/cgu`.
pub async fn cgu(
    State(state): State<AppState>,
    AttemptId(id): AttemptId,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<StepForm>,
) -> Result<Response, WebError> {
    let outcome = state.lifecycle.accept_cgu(&id, form.accepte.is_some()).await;
    after_step(&state, jar, &id, outcome).await
}

/// `POST /compte/activation/courriel`: the address twice; sends the link.
pub async fn email(
    State(state): State<AppState>,
    AttemptId(id): AttemptId,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<StepForm>,
) -> Result<Response, WebError> {
    let outcome = state.lifecycle.set_activation_email(&id, &form.courriel, &form.courriel_confirmation).await;
    after_step(&state, jar, &id, outcome).await
}

/// `GET /compte/activation/questions`: the secret questions form.
pub async fn questions_page(State(state): State<AppState>, jar: CookieJar) -> Result<Response, WebError> {
    let Some(id) = cookie_of(&state, &jar) else { return Ok(see_other(jar)) };
    match state.lifecycle.attempt(&id).await {
        Ok(a) if matches!(a.step, Step::Email | Step::AwaitingEmail) => {
            questions_form(&state, jar, ("", ""), None, StatusCode::OK)
        }
        Ok(_) | Err(FlowError::Expired) => Ok(see_other(jar)),
        Err(e) => Err(e.into()),
    }
}

fn questions_form(
    state: &AppState,
    jar: CookieJar,
    chosen: (&str, &str),
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let ctx =
        context! { questions => &state.lifecycle.policy.questions, chosen1 => chosen.0, chosen2 => chosen.1, error };
    page(state, jar, "activation_questions.html", status, ctx)
}

/// `POST /compte/activation/questions`: two questions instead of an address.
pub async fn questions(
    State(state): State<AppState>,
    AttemptId(id): AttemptId,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<StepForm>,
) -> Result<Response, WebError> {
    let answers = (form.question1.as_str(), form.reponse1.as_str(), form.question2.as_str(), form.reponse2.as_str());
    match state.lifecycle.choose_activation_questions(&id, answers).await {
        Ok(_) | Err(FlowError::WrongStep) => Ok(see_other(jar)),
        Err(FlowError::Expired) => expired(&state, jar),
        Err(e) => {
            let chosen = (form.question1.as_str(), form.question2.as_str());
            questions_form(&state, jar, chosen, Some(user_error(e)?), StatusCode::BAD_REQUEST)
        }
    }
}

/// `POST /compte/activation/retour`: one step back.
pub async fn back(
    State(state): State<AppState>,
    AttemptId(id): AttemptId,
    jar: CookieJar,
    CsrfForm(_): CsrfForm<StepForm>,
) -> Result<Response, WebError> {
    let outcome = state.lifecycle.activation_back(&id).await;
    after_step(&state, jar, &id, outcome).await
}

/// `GET /compte/activation/courriel?code=…`: the link of the e-mail. Asks
/// for a confirmation without spending the code (mail scanners follow
/// links); "Continuer" spends it.
pub async fn link(
    State(state): State<AppState>,
    jar: CookieJar,
    Params(q): Params<StepForm>,
) -> Result<Response, WebError> {
    match state.lifecycle.peek_email_code(&q.code).await {
        Ok(_) => page(
            &state,
            jar,
            "email_confirm.html",
            StatusCode::OK,
            context! { action => "/compte/activation/courriel/confirmer", code => &q.code, activation => true },
        ),
        Err(FlowError::Core(e)) => Err(e.into()),
        Err(_) => expired(&state, jar),
    }
}

/// `POST /compte/activation/courriel/confirmer`: spends the code; this
/// browser continues the attempt (even if it started in another one), from
/// the page saying the address is validated.
pub async fn confirm_link(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<StepForm>,
) -> Result<Response, WebError> {
    match state.lifecycle.confirm_email_code(&form.code).await {
        Ok(attempt) => {
            let jar = with_attempt(&state, jar, &attempt.id);
            Ok((jar, redirect(StatusCode::SEE_OTHER, LINK_SPENT)).into_response())
        }
        Err(FlowError::Core(e)) => Err(e.into()),
        Err(_) => expired(&state, jar),
    }
}

/// `GET /compte/activation/courriel/validee`: "Adresse personnelle
/// confirmée !", once the code is spent; any other state of the attempt
/// goes back to the wizard.
pub async fn link_spent(State(state): State<AppState>, jar: CookieJar) -> Result<Response, WebError> {
    let Some(id) = cookie_of(&state, &jar) else { return Ok(see_other(jar)) };
    match state.lifecycle.attempt(&id).await {
        Ok(a) if a.email_verified && a.step == Step::Password => {
            page(&state, jar, "email_validated.html", StatusCode::OK, context! { activation => true })
        }
        Ok(_) | Err(FlowError::Expired) => Ok(see_other(jar)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /compte/activation/mot-de-passe`: the last step. The account is
/// active, and this browser is logged in.
pub async fn password(
    State(state): State<AppState>,
    AttemptId(id): AttemptId,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<StepForm>,
) -> Result<Response, WebError> {
    let (account, attempt, strength) =
        match state.lifecycle.finish_activation(&id, &form.mot_de_passe, &form.confirmation).await {
            Ok(done) => done,
            Err(e) => {
                // The refusal names the rule that failed; no label is
                // shown beside it.
                if matches!(e, FlowError::Password(_)) {
                    let attempt = state.lifecycle.attempt(&id).await?;
                    let message = user_error(e)?;
                    let ctx = context! {
                        reset => attempt.reset, error => message,
                        email_verified => attempt.email_verified,
                    };
                    return page(&state, jar, "activation_password.html", StatusCode::BAD_REQUEST, ctx);
                }
                return after_step(&state, jar, &id, Err(e)).await;
            }
        };
    let jar = cookies::open_session(&state, without_attempt(&state, jar), &account).await?;
    let access_url = match &attempt.service {
        Some(s) => with_query("/cas/login", &[("service", s)]),
        None => "/cas/login".to_owned(),
    };
    page(
        &state,
        jar,
        "activation_done.html",
        StatusCode::OK,
        context! {
            access_url, strength => strength_label(strength), login => account.login.as_str(),
            display_name => account.display_name(),
            email => attempt.email.as_deref().filter(|_| attempt.email_verified),
        },
    )
}
