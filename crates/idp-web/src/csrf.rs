//! CSRF protection of POST forms: the double-submit cookie pattern.
//!
//! A random token lives in an HttpOnly, SameSite=Lax cookie and in a hidden
//! form field; a POST is accepted only when both are present and equal
//! (compared in constant time). Written here rather than taken from a crate
//! because it is a dozen lines over the cookie jar we already use, it needs
//! no server-side state (any node of a cluster can check it) and no key to
//! share between nodes.

use axum::extract::{FromRequest, Request};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use idp_core::secret::{constant_time_eq, random_token};

use crate::error::{ErrorCode, WebError};

pub const COOKIE: &str = "idp_csrf";

/// The token of this browser, creating it (and its cookie) when missing.
pub fn token(jar: CookieJar, secure: bool) -> idp_core::Result<(CookieJar, String)> {
    if let Some(existing) = jar.get(COOKIE).map(|c| c.value().to_owned()).filter(|v| is_token(v)) {
        return Ok((jar, existing));
    }
    let value = random_token(32)?;
    let cookie = Cookie::build((COOKIE, value.clone()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .build();
    Ok((jar.add(cookie), value))
}

fn is_token(v: &str) -> bool {
    v.len() == 32 && v.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Whether the form's token matches the cookie's.
pub fn verify(jar: &CookieJar, submitted: Option<&str>) -> bool {
    match (jar.get(COOKIE).map(Cookie::value), submitted) {
        (Some(cookie), Some(form)) if is_token(cookie) => constant_time_eq(cookie, form),
        _ => false,
    }
}

/// A POST form whose CSRF token (field `csrf_token`) matched the cookie's.
/// Any other form is refused with [`WebError::FormExpired`] before the
/// handler runs, so no handler can forget the check.
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct TokenField {
    csrf_token: Option<String>,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, WebError> {
        let jar = CookieJar::from_headers(request.headers());
        let body = axum::body::Bytes::from_request(request, state).await.map_err(|_| bad_form())?;
        let token: TokenField = serde_urlencoded::from_bytes(&body).map_err(|_| bad_form())?;
        if !verify(&jar, token.csrf_token.as_deref()) {
            return Err(WebError::FormExpired);
        }
        serde_urlencoded::from_bytes(&body).map(CsrfForm).map_err(|_| bad_form())
    }
}

fn bad_form() -> WebError {
    WebError::bad_request(ErrorCode::BadForm, "Les informations envoyées sont incorrectes.")
}
