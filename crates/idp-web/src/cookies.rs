//! The cookies of the site: the SSO session (`TGC`) and the chosen profile.
//! The CSRF cookie is in [`crate::csrf`].

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use idp_core::account::Account;

use crate::error::WebError;
use crate::state::AppState;

/// Name of the SSO session cookie (Apereo's name). Path `/`, so that
/// `/cas`, the OIDC endpoints and `/compte/` share one session.
pub const TGC: &str = "TGC";

/// The cookie that remembers the chosen profile.
pub const PROFILE: &str = "idp_profile";

/// The SSO session id this browser carries, if any.
pub fn session_id(jar: &CookieJar) -> Option<String> {
    jar.get(TGC).map(|c| c.value().to_owned())
}

/// The jar with the SSO session `id` set.
pub fn with_session(jar: CookieJar, id: &str, secure: bool) -> CookieJar {
    let cookie =
        Cookie::build((TGC, id.to_owned())).path("/").http_only(true).secure(secure).same_site(SameSite::Lax).build();
    jar.add(cookie)
}

/// The jar without the SSO session.
pub fn without_session(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(TGC).path("/"))
}

/// Opens an SSO session for `account` (the credentials were just checked:
/// an activation or a password change) and sets its cookie.
pub async fn open_session(state: &AppState, jar: CookieJar, account: &Account) -> Result<CookieJar, WebError> {
    let session = state.cas.open_session(account, session_id(&jar).as_deref(), state.cas.now()).await?;
    Ok(with_session(jar, &session.id, state.config.https()))
}

/// The profile chosen on the login page, if any.
pub fn profile(jar: &CookieJar) -> Option<String> {
    jar.get(PROFILE).map(|c| c.value().to_owned())
}

/// The jar remembering the chosen profile (for a year).
pub fn with_profile(jar: CookieJar, id: &str, secure: bool) -> CookieJar {
    let cookie = Cookie::build((PROFILE, id.to_owned()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .permanent()
        .build();
    jar.add(cookie)
}

/// The jar without a chosen profile.
pub fn without_profile(jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(PROFILE).path("/"))
}
