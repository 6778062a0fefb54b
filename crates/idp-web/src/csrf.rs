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
//! no server-side state. A `multipart/form-data` form (a file upload) is
//! checked the same way by [`CsrfMultipart`], its token being one of its
//! parts.

use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
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

/// A POST `multipart/form-data` form whose CSRF token (the part
/// `csrf_token`) matched the cookie's and that came from the server's own
/// pages, read whole within the route's body limit (`DefaultBodyLimit`):
/// a body over it is refused as [`WebError::TooLarge`], before the handler
/// runs, like any other form without its token.
pub struct CsrfMultipart(pub MultipartForm);

/// The parts of a multipart form: text fields and files, by name.
#[derive(Default)]
pub struct MultipartForm {
    fields: Vec<(String, String)>,
    files: Vec<(String, axum::body::Bytes)>,
}

impl MultipartForm {
    /// The first text field `name` (empty when absent).
    pub fn text(&self, name: &str) -> &str {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    /// The content of the first file part `name`.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_ref())
    }
}

impl FromRequest<AppState> for CsrfMultipart {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, WebError> {
        let config = &state.config;
        let jar = CookieJar::from_headers(request.headers());
        if cross_site(request.headers(), config) {
            return Err(WebError::FormExpired);
        }
        let mut multipart = Multipart::from_request(request, state).await.map_err(|_| bad_form())?;
        let mut form = MultipartForm::default();
        while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
            let name = field.name().unwrap_or_default().to_owned();
            let is_file = field.file_name().is_some();
            let bytes = field.bytes().await.map_err(unreadable)?;
            if is_file {
                form.files.push((name, bytes));
            } else {
                form.fields.push((name, String::from_utf8(bytes.to_vec()).map_err(|_| bad_form())?));
            }
        }
        if !verify(&jar, config, Some(form.text("csrf_token"))) {
            return Err(WebError::FormExpired);
        }
        Ok(CsrfMultipart(form))
    }
}

fn unreadable(e: MultipartError) -> WebError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => WebError::TooLarge {
            message: "Le fichier envoyé dépasse la taille autorisée. Enregistrez un fichier plus petit, ou \
                      découpez-le en plusieurs fichiers, puis recommencez.",
        },
        _ => bad_form(),
    }
}

fn bad_form() -> WebError {
    WebError::bad_request(ErrorCode::BadForm, "Les informations envoyées sont incorrectes.")
}
