//! The second step of a password login: `/cas/login/code` (the code of
//! the authenticator app or a recovery code), `/cas/login/enrolement` (the
//! enrolment the policy requires, right after the password) and
//! `/cas/login/codes-de-secours` (the recovery codes were shown: the login
//! goes on). Each handler makes one call to the login pipeline and renders
//! its answer like `/cas/login` does.

use axum::extract::State;
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use minijinja::{Value, context};
use serde::Deserialize;

use idp_core::second_factor::TotpOffer;
use idp_protocol::login::{CodeRefusal, LoginNext};
use idp_protocol::passkeys::PasskeyRefusal;

use crate::cas::login::Page;
use crate::cookies;
use crate::csrf::CsrfForm;
use crate::error::WebError;
use crate::net::ClientIp;
use crate::security::no_store;
use crate::state::AppState;

/// Templates of the second step (checked at start).
pub const TEMPLATES: &[&str] = &[
    "login_code.html",
    "login_enrol.html",
    "recovery_codes.html",
    "totp_enrol.html",
    "passkey_add.html",
    "deux_etapes.html",
];

/// Fields of the second step's forms.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    jeton: String,
    code: String,
    /// « Faire confiance à cet appareil pendant 30 jours », ticked.
    confiance: Option<String>,
}

/// `POST /cas/login/code`.
pub async fn submit_code(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, WebError> {
    let tgc = cookies::session_id(&jar, state.config.https());
    let remember = form.confiance.is_some().then(|| user_agent(&headers));
    let code = (form.jeton.as_str(), form.code.as_str());
    let step = state.login.with_code(code, &source, tgc.as_deref(), remember).await?;
    Page::plain(&state, true).render(jar, step)
}

/// `POST /cas/login/enrolement`.
pub async fn enrol(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, WebError> {
    let step = state.login.enrol_at_login(&form.jeton, &form.code, &source).await?;
    Page::plain(&state, true).render(jar, step)
}

/// `POST /cas/login/codes-de-secours`.
pub async fn after_recovery_codes(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, WebError> {
    let tgc = cookies::session_id(&jar, state.config.https());
    let step = state.login.after_enrolment(&form.jeton, tgc.as_deref()).await?;
    Page::plain(&state, true).render(jar, step)
}

/// The User-Agent of the request (empty when absent or not text): the
/// label of a trusted device is guessed from it.
pub(crate) fn user_agent(headers: &HeaderMap) -> &str {
    headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The page of a second-step answer of the pipeline.
pub(crate) fn render(state: &AppState, jar: CookieJar, next: LoginNext) -> Result<Response, WebError> {
    let (template, status, ctx) = match next {
        LoginNext::AskCode { token, refused, passkey } => {
            let (status, error, error_cle) = refusal(refused);
            ("login_code.html", status, context! { jeton => token, error, error_cle, passkey })
        }
        LoginNext::MustEnrol { token, offer, refused, passkey } => {
            let (status, error, error_cle) = refusal(refused);
            let enrol = offer_context(&offer)?;
            let action = "/cas/login/enrolement";
            ("login_enrol.html", status, context! { jeton => token, error, error_cle, enrol, action, passkey })
        }
        LoginNext::ShowRecoveryCodes { token, codes } => {
            ("recovery_codes.html", StatusCode::OK, context! { jeton => token, codes, at_login => true })
        }
        _ => {
            let ctx = context! {
                title => "Connexion expirée",
                message => "Votre connexion a expiré avant la validation en deux étapes. Veuillez vous connecter \
                            à nouveau.",
                back_url => "/cas/login",
            };
            ("error.html", StatusCode::GONE, ctx)
        }
    };
    let mut response = crate::compte::page(state, jar, template, status, ctx)?;
    no_store(response.headers_mut());
    Ok(response)
}

/// The status and French message of a refused code (for the code field)
/// or passkey (beside the passkey button).
fn refusal(refused: Option<CodeRefusal>) -> (StatusCode, Option<&'static str>, Option<&'static str>) {
    match refused {
        None => (StatusCode::OK, None, None),
        Some(CodeRefusal::Wrong) => (
            StatusCode::UNAUTHORIZED,
            Some(
                "Ce code de vérification est incorrect ou a déjà été utilisé. Saisissez le code affiché en ce moment.",
            ),
            None,
        ),
        Some(CodeRefusal::Throttled) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some("Trop de codes incorrects ont été saisis. Veuillez patienter quelques minutes avant de réessayer."),
            None,
        ),
        Some(CodeRefusal::Passkey(refused)) => {
            let (status, message) = passkey_refusal(refused);
            (status, None, Some(message))
        }
    }
}

/// The status and French message of a refused passkey (login, Mon compte).
pub(crate) fn passkey_refusal(refused: PasskeyRefusal) -> (StatusCode, &'static str) {
    match refused {
        PasskeyRefusal::Expired => {
            (StatusCode::BAD_REQUEST, "Cette demande a expiré ou a déjà servi. Recommencez avec votre clé d'accès.")
        }
        PasskeyRefusal::Invalid => (
            StatusCode::UNAUTHORIZED,
            "Cette clé d'accès n'a pas été reconnue : elle n'est pas enregistrée pour votre compte, ou sa \
             vérification a échoué. Recommencez, ou saisissez un code de vérification.",
        ),
        PasskeyRefusal::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives ont échoué. Veuillez patienter quelques minutes avant de réessayer.",
        ),
        PasskeyRefusal::BadName => {
            (StatusCode::BAD_REQUEST, "Donnez un nom à votre clé d'accès (64 caractères au plus).")
        }
        PasskeyRefusal::AlreadyRegistered => (StatusCode::CONFLICT, "Cette clé d'accès est déjà enregistrée."),
    }
}

/// What the enrolment form shows of an offer: the QR code of the
/// `otpauth://` URI (an SVG image), the URI and the secret as text.
pub(crate) fn offer_context(offer: &TotpOffer) -> Result<Value, WebError> {
    let code = qrcode::QrCode::new(offer.uri.as_bytes())
        .map_err(|e| WebError::internal(crate::error::ErrorCode::Serialize, e))?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    let qr = format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg));
    Ok(context! { token => &offer.token, qr, uri => &offer.uri, secret => offer.secret.base32_grouped() })
}
