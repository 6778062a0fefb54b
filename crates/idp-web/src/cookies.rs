//! The cookies of the site: the SSO session (`TGC`), the chosen profile,
//! the activation attempt, the CSRF pre-session ([`crate::csrf`]) and the
//! trusted device (`idp_appareil`, 30 days).
//!
//! Over https every name takes the `__Host-` prefix: the browser then
//! accepts the cookie only if it is `Secure`, has path `/` and no domain,
//! so a sibling host of the ENT cannot plant or shadow it. Every cookie is
//! HttpOnly, SameSite=Lax and has path `/` (so that `/cas`, the OIDC
//! endpoints and `/compte/` share one session).

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use idp_core::account::Account;

use crate::error::WebError;
use crate::state::AppState;

/// The SSO session cookie over http (Apereo's name).
pub const TGC: &str = "TGC";

/// The cookies the site sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// The SSO session.
    Session,
    /// The profile chosen on the login page.
    Profile,
    /// The activation attempt of this browser.
    Activation,
    /// The CSRF pre-session value.
    Csrf,
    /// The key of this browser's SAML front-channel logout chain.
    SloChain,
    /// The token of a trusted device (« Faire confiance à cet appareil »).
    TrustedDevice,
}

impl Name {
    /// The cookie's name, with the `__Host-` prefix over https.
    pub fn as_str(self, https: bool) -> &'static str {
        match (self, https) {
            (Name::Session, false) => TGC,
            (Name::Session, true) => "__Host-TGC",
            (Name::Profile, false) => "idp_profile",
            (Name::Profile, true) => "__Host-idp_profile",
            (Name::Activation, false) => "idp_activation",
            (Name::Activation, true) => "__Host-idp_activation",
            (Name::Csrf, false) => "idp_csrf",
            (Name::Csrf, true) => "__Host-idp_csrf",
            (Name::SloChain, false) => "idp_slo",
            (Name::SloChain, true) => "__Host-idp_slo",
            (Name::TrustedDevice, false) => "idp_appareil",
            (Name::TrustedDevice, true) => "__Host-idp_appareil",
        }
    }
}

/// The value of cookie `name`, if the browser sent it.
pub fn get(jar: &CookieJar, name: Name, https: bool) -> Option<String> {
    jar.get(name.as_str(https)).map(|c| c.value().to_owned())
}

/// How long a `lasting` cookie is kept: a school year at most (300 days),
/// so a remembered profile is asked again each school year.
pub const LASTING_DAYS: i64 = 300;

/// The jar with cookie `name` set to `value` (a browser-session cookie, or
/// kept [`LASTING_DAYS`] when `lasting`).
pub fn set(jar: CookieJar, name: Name, value: &str, https: bool, lasting: bool) -> CookieJar {
    set_for(jar, name, value, https, lasting.then_some(LASTING_DAYS))
}

/// The jar with cookie `name` set to `value`, kept `days` (a
/// browser-session cookie with `None`).
pub fn set_for(jar: CookieJar, name: Name, value: &str, https: bool, days: Option<i64>) -> CookieJar {
    let mut cookie = Cookie::build((name.as_str(https), value.to_owned()))
        .path("/")
        .http_only(true)
        .secure(https)
        .same_site(SameSite::Lax);
    if let Some(days) = days {
        cookie = cookie.max_age(time::Duration::days(days));
    }
    jar.add(cookie.build())
}

/// The jar without cookie `name`.
pub fn remove(jar: CookieJar, name: Name, https: bool) -> CookieJar {
    jar.remove(Cookie::build(name.as_str(https)).path("/"))
}

/// The SSO session id this browser carries, if any.
pub fn session_id(jar: &CookieJar, https: bool) -> Option<String> {
    get(jar, Name::Session, https)
}

/// Opens an SSO session for `account` (the credentials were just checked:
/// an activation or a password change) and sets its cookie.
pub async fn open_session(state: &AppState, jar: CookieJar, account: &Account) -> Result<CookieJar, WebError> {
    let https = state.config.https();
    let session = state.cas.open_session(account, session_id(&jar, https).as_deref(), state.cas.now()).await?;
    Ok(set(jar, Name::Session, session.id.expose(), https, false))
}
