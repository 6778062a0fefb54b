//! `POST /compte/force-mot-de-passe`: the live password indicator. The
//! page's script sends the password being typed (after a pause, with the
//! form's CSRF token); the answer is the policy's own verdict for the
//! person choosing it, so the label shown while typing is the one the form
//! will get. The password is never logged, and the answer is not cached.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use idp_core::account::Account;
use idp_core::lifecycle::{FlowError, PasswordOwner};

use crate::compte::{refusal, strength_label};
use crate::cookies::{self, Name};
use crate::csrf::CsrfForm;
use crate::error::WebError;
use crate::net::ClientIp;
use crate::state::AppState;

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct MeterForm {
    mot_de_passe: String,
    /// The forgotten-password code, on that flow's form.
    code: String,
}

/// The indicator's answer: the label, whether the form would accept the
/// password, and the rule it breaks.
#[derive(Serialize)]
pub struct MeterAnswer {
    niveau: &'static str,
    accepte: bool,
    raison: Option<String>,
}

/// The account choosing a password here: the reset code's, this browser's
/// activation attempt's, or the signed-in person's.
async fn owner(state: &AppState, jar: &CookieJar, code: &str) -> Result<Option<Account>, WebError> {
    let https = state.config.https();
    let attempt = cookies::get(jar, Name::Activation, https);
    let flow = match code {
        "" => attempt.as_deref().map(PasswordOwner::Activation),
        code => Some(PasswordOwner::Reset(code)),
    };
    if let Some(flow) = flow {
        return match state.lifecycle.password_owner(flow).await {
            Ok(account) => Ok(Some(account)),
            Err(FlowError::Core(e)) => Err(e.into()),
            Err(_) => Ok(None),
        };
    }
    let session = state.cas.current_session(cookies::session_id(jar, https).as_deref()).await?;
    Ok(session.map(|(_, account)| account))
}

/// `POST /compte/force-mot-de-passe`: the verdict as JSON; 403 outside a
/// password step, 429 past the rate.
pub async fn check(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<MeterForm>,
) -> Result<Response, WebError> {
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    let Some(account) = owner(&state, &jar, &form.code).await? else {
        return Ok((StatusCode::FORBIDDEN, no_store).into_response());
    };
    let verdict = match state.lifecycle.meter(&account, &form.mot_de_passe, &source).await {
        Ok(v) => v,
        Err(FlowError::Throttled) => return Ok((StatusCode::TOO_MANY_REQUESTS, no_store).into_response()),
        Err(e) => return Err(e.into()),
    };
    let answer = MeterAnswer {
        niveau: strength_label(verdict.strength),
        accepte: verdict.refusal.is_none(),
        raison: verdict.refusal.map(refusal),
    };
    Ok((no_store, Json(answer)).into_response())
}
