//! The passkey at the second step of a login: `/cas/login/cle/options`
//! (the challenge, as JSON, for the static script `passkey.js`) and
//! `/cas/login/cle` (the browser's assertion, posted in a form so that the
//! answer is the next page of the login, whatever it is: the service, a
//! POST form, the charter, or the code page again with the reason); the
//! same two for a passkey enrolled at login (`/cas/login/enrolement/cle…`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use idp_protocol::passkeys::Challenge;

use crate::cas::code::user_agent;
use crate::cas::login::Page;
use crate::cookies;
use crate::csrf::CsrfForm;
use crate::error::WebError;
use crate::net::ClientIp;
use crate::state::AppState;

/// Fields of the passkey forms.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PasskeyForm {
    /// The pending login.
    jeton: String,
    /// The token of the ceremony's kept state (from the options).
    defi: String,
    /// The browser's answer, JSON.
    reponse: String,
    /// « Nom de la clé », at registration.
    nom: String,
    /// « Faire confiance à cet appareil pendant 30 jours », ticked.
    confiance: Option<String>,
}

/// `POST /cas/login/cle/options`.
pub async fn options(
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<PasskeyForm>,
) -> Result<Response, WebError> {
    Ok(options_json(state.login.passkey_options(&form.jeton).await?, EXPIRED_AT_LOGIN))
}

/// `POST /cas/login/cle`.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<PasskeyForm>,
) -> Result<Response, WebError> {
    let tgc = cookies::session_id(&jar, state.config.https());
    let remember = form.confiance.is_some().then(|| user_agent(&headers));
    let answer = (form.defi.as_str(), form.reponse.as_str());
    let step = state.login.with_passkey(&form.jeton, answer, &source, tgc.as_deref(), remember).await?;
    Page::plain(&state, true).render(jar, step)
}

/// `POST /cas/login/enrolement/cle/options`.
pub async fn enrolment_options(
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<PasskeyForm>,
) -> Result<Response, WebError> {
    Ok(options_json(state.login.enrolment_passkey_options(&form.jeton).await?, EXPIRED_AT_LOGIN))
}

/// `POST /cas/login/enrolement/cle`.
pub async fn enrol(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<PasskeyForm>,
) -> Result<Response, WebError> {
    let step = state.login.enrol_passkey_at_login(&form.jeton, &form.defi, &form.nom, &form.reponse).await?;
    Page::plain(&state, true).render(jar, step)
}

const EXPIRED_AT_LOGIN: &str =
    "Votre connexion a expiré avant la validation en deux étapes. Veuillez vous connecter à nouveau.";

/// The options of a ceremony for `navigator.credentials` with the token of
/// its state (`defi`), or the French reason it cannot start (`erreur`,
/// 410).
pub(crate) fn options_json(challenge: Option<Challenge>, expired: &'static str) -> Response {
    match challenge {
        Some(c) => Json(json!({ "defi": c.token, "options": c.options })).into_response(),
        None => (StatusCode::GONE, Json(json!({ "erreur": expired }))).into_response(),
    }
}
