//! OpenID Connect / OAuth 2 domain: registered clients, signing keys,
//! authorization codes, grants (the tokens issued from one authorization),
//! consents, and the ports through which they are stored.
//!
//! Everything with a lifetime (codes, grants with their refresh token,
//! consents) goes through [`OidcStore`], which has TTL semantics and a
//! memory and a Redis adapter. Clients ([`ClientRegistry`]) and signing keys
//! ([`KeyStore`]) live in the database, shared by every node and the CLI.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

use crate::session::{SessionService, SsoSession, TicketId};
use crate::{Error, Result};

/// The scope that releases the ENT claims (profile and schools).
pub const ENT_SCOPE: &str = "ent";

/// The scope of refresh tokens that outlive the SSO session; only clients
/// registered with it get it, after the person's consent.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The scopes a client may ask for when registered without a list.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email", ENT_SCOPE];

/// Every scope the provider knows.
pub const KNOWN_SCOPES: &[&str] = &["openid", "profile", "email", ENT_SCOPE, "offline_access"];

/// The operator's name for a registered client (`cahier-de-textes`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientId(String);

impl ClientId {
    /// 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub fn parse(value: &str) -> Result<ClientId> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(ClientId(value.to_owned()))
        } else {
            Err(Error::invalid("client id", format!("'{value}': 1 to 64 characters of letters, digits, . _ -")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({})", self.0)
    }
}

/// A redirect URI as registered: absolute, no fragment, at most 2048 bytes.
/// Requests must give it byte for byte (no pattern, no prefix match).
pub fn parse_redirect_uri(value: &str) -> Result<String> {
    let url = url::Url::parse(value).map_err(|e| Error::invalid("redirect uri", format!("'{value}': {e}")))?;
    if value.len() > 2048 || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(Error::invalid("redirect uri", format!("'{value}': absolute URL without fragment expected")));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid("redirect uri", format!("'{value}': http or https expected")));
    }
    Ok(value.to_owned())
}

/// Checks a scope name against [`KNOWN_SCOPES`].
pub fn parse_scope(value: &str) -> Result<String> {
    if KNOWN_SCOPES.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid("scope", format!("'{value}' is not one of {}", KNOWN_SCOPES.join(", "))))
    }
}

/// Which `sub` a client gets (OIDC Core §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectType {
    /// One opaque value per account, the same for every public client.
    #[default]
    Public,
    /// One opaque value per client and account: two clients cannot link
    /// their users through `sub`.
    Pairwise,
}

impl SubjectType {
    pub fn parse(value: &str) -> Result<SubjectType> {
        match value {
            "public" => Ok(SubjectType::Public),
            "pairwise" => Ok(SubjectType::Pairwise),
            other => Err(Error::invalid("subject type", format!("'{other}': public or pairwise expected"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::Public => "public",
            SubjectType::Pairwise => "pairwise",
        }
    }
}

/// A registered relying party.
#[derive(Clone, Debug)]
pub struct OidcClient {
    pub id: ClientId,
    pub name: String,
    /// SHA-256 of the secret (hex); none for a public client.
    pub secret_hash: Option<String>,
    /// Compared byte for byte with `redirect_uri`.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the back-channel logout token is POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// The scopes the client may get.
    pub scopes: Vec<String>,
    /// Asks the person's consent before the first authorization (third-party
    /// applications); first-party ENT clients do not.
    pub require_consent: bool,
    /// Which `sub` the client gets.
    pub subject_type: SubjectType,
    pub created_at: DateTime<Utc>,
}

impl OidcClient {
    /// A public client (no secret): PKCE with S256 is required.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

/// Registered clients, in the database. Reads reflect the latest writes of
/// any process (the CLI registers clients while servers run).
#[async_trait]
pub trait ClientRegistry: Send + Sync {
    async fn get(&self, id: &ClientId) -> Result<Option<OidcClient>>;
    async fn list(&self) -> Result<Vec<OidcClient>>;
    /// Fails with [`Error::Conflict`] when the id is taken.
    async fn add(&self, client: OidcClient) -> Result<()>;
    /// Replaces the client with the same id; [`Error::NotFound`] if none.
    async fn update(&self, client: OidcClient) -> Result<()>;
    async fn remove(&self, id: &ClientId) -> Result<bool>;
}

/// A signing key as stored: the private key in PEM, shared by every node.
#[derive(Clone)]
pub struct StoredKey {
    /// Key id (`kid`), unique.
    pub kid: String,
    /// `ES256` or `RS256`.
    pub alg: String,
    pub private_pem: crate::secret::Secret,
    pub created_at: DateTime<Utc>,
    /// When a newer key replaced it for signing; it stays published until
    /// the tokens it signed have expired.
    pub retired_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Signing keys, in the database.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn list(&self) -> Result<Vec<StoredKey>>;
    async fn add(&self, key: StoredKey) -> Result<()>;
    /// Marks every key of `alg` that is not retired as retired at `at`.
    async fn retire_all(&self, alg: &str, at: DateTime<Utc>) -> Result<()>;
    async fn remove(&self, kid: &str) -> Result<()>;
}

/// An authorization code: single use, short-lived.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuthorizationCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub account_id: i64,
    pub login: String,
    /// The SSO session (TGT id) the code was issued in.
    pub session_id: TicketId,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    /// The S256 code challenge, when PKCE was used.
    pub code_challenge: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The session's `amr` (the ID token's `amr` and `acr`).
    #[serde(default)]
    pub amr: Vec<String>,
}

/// What one authorization gave a client: the access tokens, the refresh
/// token (rotated at each use) and the ID tokens issued from one code. The
/// whole family is revoked at once (code replay, refresh token reuse, logout).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub account_id: i64,
    pub login: String,
    pub scopes: Vec<String>,
    /// The SSO session (TGT id) it was issued in.
    pub session_id: TicketId,
    pub auth_time: DateTime<Utc>,
    /// SHA-256 (hex) of the current refresh token; none when the client
    /// got no refresh token.
    pub refresh_hash: Option<String>,
    /// The `jti` of the only access token of the family that is still
    /// valid; older ones are superseded.
    pub access_jti: Option<String>,
    /// SHA-256 (hex) of the refresh tokens this grant rotated out, oldest
    /// first, at most [`ROTATED_OUT_KEPT`]: one of them coming back is a
    /// reuse (the token was copied), which revokes the family, whereas a
    /// token the grant never issued is merely refused.
    #[serde(default)]
    pub rotated_out: Vec<String>,
    /// Survives the end of the SSO session (`offline_access`).
    pub offline: bool,
    pub expires_at: DateTime<Utc>,
    /// The session's `amr` at the authorization.
    #[serde(default)]
    pub amr: Vec<String>,
}

/// How many rotated-out refresh token hashes a grant keeps for reuse
/// detection. An older token coming back is refused without revoking.
pub const ROTATED_OUT_KEPT: usize = 32;

/// The outcome of [`OidcStore::rotate_refresh`].
#[derive(Clone, Debug, PartialEq)]
pub enum Rotation {
    /// The presented token was the current one; the grant now holds the new
    /// one, and the presented one joined `rotated_out`.
    Rotated,
    /// The presented token is one the grant rotated out: it was reused.
    Reused,
    /// The presented token is none the grant issued (forged or mistyped).
    Mismatch,
    /// No such grant (revoked or expired).
    Missing,
}

/// Codes, grants and consents, with TTL semantics. `take_code` and
/// `rotate_refresh` are atomic: of two nodes racing, only one wins.
#[async_trait]
pub trait OidcStore: Send + Sync {
    async fn put_code(&self, code: &str, value: &AuthorizationCode, ttl: Duration) -> Result<()>;
    /// Removes and returns the code: a code is spent by any attempt.
    async fn take_code(&self, code: &str) -> Result<Option<AuthorizationCode>>;
    /// Remembers which grant a spent code produced, to revoke it on replay.
    async fn remember_used_code(&self, code: &str, grant_id: &str, ttl: Duration) -> Result<()>;
    async fn used_code(&self, code: &str) -> Result<Option<String>>;
    async fn put_grant(&self, grant: &Grant, ttl: Duration) -> Result<()>;
    async fn get_grant(&self, id: &str) -> Result<Option<Grant>>;
    /// Replaces the refresh token hash and access token id of the grant if
    /// its current refresh hash is `expected`, keeping `expected` in
    /// `rotated_out` (the last [`ROTATED_OUT_KEPT`]).
    async fn rotate_refresh(&self, id: &str, expected: &str, new_hash: &str, new_jti: &str) -> Result<Rotation>;
    /// Remembers which grant the access token `jti` belongs to (the `jti`
    /// is random, so that a token tells nothing of its grant).
    async fn put_access(&self, jti: &str, grant_id: &str, ttl: Duration) -> Result<()>;
    /// The grant of the access token `jti`, while remembered.
    async fn access_grant(&self, jti: &str) -> Result<Option<String>>;
    /// Revokes the whole grant; false when it did not exist.
    async fn remove_grant(&self, id: &str) -> Result<bool>;
    /// Remembers that the person consented to `scopes` for `client_id`.
    async fn put_consent(&self, account_id: i64, client_id: &str, scopes: &[String], ttl: Duration) -> Result<()>;
    async fn get_consent(&self, account_id: i64, client_id: &str) -> Result<Option<Vec<String>>>;
}

/// Something more to do when an SSO session ends, from wherever it ends
/// (CAS logout, OIDC end_session, expiry noticed, account reset): the OIDC
/// back-channel logout.
#[async_trait]
pub trait SessionEndHook: Send + Sync {
    /// Called once, after the session was removed, with what it recorded.
    async fn session_ended(&self, session: &SsoSession, services: &[SessionService]) -> Result<()>;
}
