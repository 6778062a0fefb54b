//! CSRF protection of POST forms: a signed double submit, and the fetch
//! metadata of the browser.
//!
//! A random pre-session value lives in an HttpOnly, SameSite=Lax cookie;
//! the form carries `HMAC-SHA256(key, value)`, where the key is a secret of
//! the deployment shared by every node. A site that can write cookies for
//! the ENT's domain (a sibling host) cannot forge a matching form field
//! without the key. The check runs in the [`CsrfForm`] extractor, before
//! the handler, so no handler can forget it; it also refuses a POST whose
//! `Sec-Fetch-Site` says it came from another site, or whose `Origin` is
//! not the server's (absent headers are allowed: older browsers and plain
//! HTTP clients send none). Written here rather than taken from a crate
//! because it is a few lines over the cookie jar we already use and needs
//! no server-side state.

use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum_extra::extract::cookie::CookieJar;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use idp_core::secret::{constant_time_eq, random_token};

use crate::config::WebConfig;
use crate::cookies::{self, Name};
use crate::error::{ErrorCode, WebError};
use crate::state::AppState;

/// The form token of this browser, creating its pre-session cookie when
/// missing.
pub fn token(jar: CookieJar, config: &WebConfig) -> idp_core::Result<(CookieJar, String)> {
    let https = config.https();
    if let Some(existing) = cookies::get(&jar, Name::Csrf, https).filter(|v| is_pre_session(v)) {
        let token = sign(config, &existing).unwrap_or_default();
        return Ok((jar, token));
    }
    let value = random_token(32)?;
    let token = sign(config, &value).unwrap_or_default();
    Ok((cookies::set(jar, Name::Csrf, &value, https, false), token))
}

fn is_pre_session(v: &str) -> bool {
    v.len() == 32 && v.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The signature of `value`; None only if the key were refused (HMAC
/// takes keys of any length), and then no form is ever accepted.
fn sign(config: &WebConfig, value: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(config.csrf_key.expose().as_bytes()).ok()?;
    mac.update(value.as_bytes());
    Some(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether the form's token is the signature of the cookie's value.
pub fn verify(jar: &CookieJar, config: &WebConfig, submitted: Option<&str>) -> bool {
    match (cookies::get(jar, Name::Csrf, config.https()), submitted) {
        (Some(value), Some(form)) if is_pre_session(&value) => {
            sign(config, &value).is_some_and(|expected| constant_time_eq(&expected, form))
        }
        _ => false,
    }
}

/// Whether the browser says the POST came from another site. Browsers
/// that send `Sec-Fetch-Site` are judged by it alone: with our
/// `Referrer-Policy: no-referrer` they send `Origin: null` even for our own
/// forms. Older browsers are judged by `Origin` when it names one.
fn cross_site(headers: &HeaderMap, config: &WebConfig) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    // The origin is ours when it is the public URL's, or names the host the
    // browser sent this request to (a browser never lets a page choose its
    // `Origin`, so another site cannot pass this).
    let Some(origin) = header("origin").filter(|o| *o != "null") else { return false };
    let public = config.public_url.origin().ascii_serialization();
    let host = origin.split_once("://").map(|(_, authority)| authority);
    origin != public && (host.is_none() || host != header("host"))
}

/// A POST form whose CSRF token (field `csrf_token`) matched the cookie's
/// and that came from the server's own pages. Any other form is refused
/// with [`WebError::FormExpired`] before the handler runs.
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct TokenField {
    csrf_token: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let config = &state.config;
        let jar = CookieJar::from_headers(request.headers());
        let foreign = cross_site(request.headers(), config);
        let body = axum::body::Bytes::from_request(request, state).await.map_err(|_| bad_form())?;
        let token: TokenField = serde_urlencoded::from_bytes(&body).map_err(|_| bad_form())?;
        if foreign || !verify(&jar, config, token.csrf_token.as_deref()) {
            return Err(WebError::FormExpired);
        }
        serde_urlencoded::from_bytes(&body).map(CsrfForm).map_err(|_| bad_form())
    }
}

fn bad_form() -> WebError {
    WebError::bad_request(ErrorCode::BadForm, "Les informations envoyées sont incorrectes.")
}
