//! OpenID Connect 1.0 / OAuth 2.0 provider on the CAS single sign-on
//! session: discovery, keys, the authorization code flow with PKCE, the
//! token endpoint (codes and rotating refresh tokens), UserInfo,
//! introspection (RFC 7662), revocation (RFC 7009), RP-initiated and
//! back-channel logout.
//!
//! The SSO session is the CAS one ([`crate::cas::Cas`]): a person logged in
//! for a CAS service is not asked again, and ending the session (from CAS or
//! OIDC) runs both the CAS single logout and the OIDC back-channel logout
//! ([`logout::BackChannelLogout`] is a session end hook of `Cas`).
//!
//! Start with [`authorize`], then [`token`].

pub mod authorize;
pub mod claims;
pub mod discovery;
pub mod internal;
pub mod keys;
pub mod logout;
pub mod token;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use idp_core::oidc::{ClientRegistry, OidcStore};

use crate::cas::Cas;
use keys::Keys;

/// Lifetimes of what the provider issues, in seconds (`[oidc]` in the
/// configuration file).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcLifetimes {
    pub code_seconds: i64,
    pub access_token_seconds: i64,
    pub id_token_seconds: i64,
    /// A refresh token bound to the SSO session (no `offline_access`).
    pub refresh_token_seconds: i64,
    /// A refresh token with `offline_access`, which outlives the session.
    pub offline_seconds: i64,
    pub consent_seconds: i64,
}

impl Default for OidcLifetimes {
    fn default() -> Self {
        Self {
            code_seconds: 60,
            access_token_seconds: 300,
            id_token_seconds: 300,
            refresh_token_seconds: 8 * 3600,
            offline_seconds: 30 * 24 * 3600,
            consent_seconds: 180 * 24 * 3600,
        }
    }
}

impl OidcLifetimes {
    /// Whether every lifetime is positive.
    pub fn check(&self) -> Result<(), String> {
        let all = [
            self.code_seconds,
            self.access_token_seconds,
            self.id_token_seconds,
            self.refresh_token_seconds,
            self.offline_seconds,
            self.consent_seconds,
        ];
        if all.iter().all(|s| *s > 0) { Ok(()) } else { Err("oidc: lifetimes must be positive".into()) }
    }

    /// The longest a signed token lives: a retired key stays published that
    /// long after its retirement.
    pub fn longest_signed(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.access_token_seconds.max(self.id_token_seconds))
    }
}

/// The provider, shared by every request.
#[derive(Clone)]
pub struct Oidc {
    /// The SSO session, accounts, tickets and clock.
    pub cas: Arc<Cas>,
    pub clients: Arc<dyn ClientRegistry>,
    pub store: Arc<dyn OidcStore>,
    pub keys: Arc<Keys>,
    /// The public URL without a trailing slash (`https://ent.example.fr`).
    pub issuer: String,
    pub lifetimes: OidcLifetimes,
    /// The current version of the terms of use: no code is issued to a
    /// person who has not accepted it (the CAS login asks first).
    pub cgu_version: String,
    /// Whether an address was validated by link (`email_verified`).
    pub security: Arc<dyn idp_core::ports::AccountSecurityRepository>,
    /// Pending consents (the consent pages waiting for their answer).
    pub pending: Arc<dyn idp_core::ports::EphemeralStore>,
}

/// The error codes of RFC 6749, RFC 7009, RFC 7662, RFC 6750 and OIDC Core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    InvalidToken,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::ServerError => "server_error",
        }
    }
}

/// A protocol error for the client: the code and a description (English,
/// for the developers of the relying party, as the RFCs intend).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} {description}", code.as_str())]
pub struct OidcError {
    pub code: ErrorCode,
    pub description: String,
}

impl OidcError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OidcError { code, description: description.into() }
    }
}

/// A protocol answer or a failure of ours (a store that does not answer).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Protocol(#[from] OidcError),
    #[error(transparent)]
    Internal(#[from] crate::Error),
}

impl From<idp_core::Error> for Failure {
    fn from(e: idp_core::Error) -> Self {
        Failure::Internal(crate::Error::Core(e))
    }
}

pub(crate) fn fail<T>(code: ErrorCode, description: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Protocol(OidcError::new(code, description)))
}

/// SHA-256 as lowercase hex (stored hashes of secrets and refresh tokens).
pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// base64url without padding of SHA-256 (PKCE S256).
pub fn sha256_b64(value: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value))
}

/// The `sid` claim of a session: derived from the TGT id so that the TGT
/// itself never leaves the server.
pub fn session_sid(session_id: &str) -> String {
    sha256_b64(format!("idp-sid:{session_id}").as_bytes())
}

/// A new client secret (printed once) and its stored hash.
pub fn new_client_secret() -> idp_core::Result<(String, String)> {
    let secret = idp_core::secret::random_token(43)?;
    let hash = sha256_hex(&secret);
    Ok((secret, hash))
}

/// The scopes of a space-separated `scope` parameter, without duplicates.
pub fn split_scopes(raw: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            sha256_b64(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn scopes_split_without_duplicates() {
        assert_eq!(split_scopes("openid  profile openid"), vec!["openid", "profile"]);
    }
}
