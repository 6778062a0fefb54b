//! CSRF protection of POST forms: the double-submit cookie pattern.
//!
//! A random token lives in an HttpOnly, SameSite=Lax cookie and in a hidden
//! form field; a POST is accepted only when both are present and equal
//! (compared in constant time). Written here rather than taken from a crate
//! because it is a dozen lines over the cookie jar we already use, it needs
//! no server-side state (any node of a cluster can check it) and no key to
//! share between nodes.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use idp_core::secret::{constant_time_eq, random_token};

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
