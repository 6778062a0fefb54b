//! Passkeys (WebAuthn): the registration and authentication ceremonies,
//! run with the `webauthn-rs` crate.
//!
//! The relying party is the public URL: its host is the RP id, its
//! scheme, host and port the only origin accepted. Browsers refuse an IP
//! address as RP id, so with such a public URL passkeys are not offered at
//! all (said once in the log when the server starts).
//!
//! Each ceremony is two requests: the options (a challenge; the library's
//! state kept by [`SecondFactor::keep_ceremony`] under a token, five
//! minutes, taken once) and the browser's answer, checked against that
//! state. The rules that do not depend on the library — whose state it is,
//! the counter that only moves forward, throttling, recovery codes — are
//! idp-core's ([`idp_core::passkeys`]).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

use idp_core::account::Account;
use idp_core::passkeys::{Added, Ceremony, NewPasskey, PasskeyName};
use idp_core::second_factor::{Check, SecondFactor};

use crate::Result;

/// The options of a ceremony, for `navigator.credentials`, and the token
/// naming its kept state.
#[derive(Debug)]
pub struct Challenge {
    pub token: String,
    /// `{"publicKey": …}` with binary values in base64url.
    pub options: serde_json::Value,
}

/// Why a passkey was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasskeyRefusal {
    /// The ceremony's state is unknown, spent, expired or another
    /// account's: start again.
    Expired,
    /// The browser's answer does not verify (signature, origin, challenge,
    /// a key not registered to this account, a counter that went back).
    Invalid,
    /// Too many failed attempts.
    Throttled,
    /// The name is empty or too long.
    BadName,
    /// This key is already registered.
    AlreadyRegistered,
}

/// The answer to a registration.
#[derive(Debug, PartialEq, Eq)]
pub enum Registration {
    /// Stored, with the recovery codes of a first second factor.
    Added {
        recovery_codes: Option<Vec<String>>,
    },
    Refused(PasskeyRefusal),
}

/// The WebAuthn relying party of the server, when passkeys can be offered.
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Option<Webauthn>,
    mfa: Arc<SecondFactor>,
}

/// The relying party of `public_url`, named `name` in the browser's
/// dialogs; `Err` says why passkeys cannot be offered.
pub fn relying_party(public_url: &url::Url, name: &str) -> std::result::Result<Webauthn, String> {
    let host = match public_url.host() {
        Some(url::Host::Domain(host)) => host,
        Some(_) => {
            return Err(format!(
                "the public URL's host ({}) is an IP address, which browsers refuse as a WebAuthn relying party",
                public_url.host_str().unwrap_or_default()
            ));
        }
        None => return Err("the public URL has no host".to_owned()),
    };
    let origin = url::Url::parse(&public_url.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    WebauthnBuilder::new(host, &origin)
        .and_then(|b| b.rp_name(name).build())
        .map_err(|e| format!("WebAuthn relying party {host}: {e}"))
}

impl Passkeys {
    /// Passkeys for the relying party `webauthn`, or none (see
    /// [`relying_party`]).
    pub fn new(webauthn: Option<Webauthn>, mfa: Arc<SecondFactor>) -> Self {
        Passkeys { webauthn, mfa }
    }

    /// Whether passkeys are offered at all.
    pub fn enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    /// Whether `account` may use a passkey at login (it has one, and they
    /// are offered).
    pub async fn offered_to(&self, account: &Account) -> Result<bool> {
        Ok(self.enabled() && !self.mfa.passkeys(account).await?.is_empty())
    }

    /// The options to register a new passkey of `account` (its other keys
    /// excluded); `None` when passkeys are not offered.
    pub async fn start_registration(&self, account: &Account) -> Result<Option<Challenge>> {
        let Some(webauthn) = &self.webauthn else { return Ok(None) };
        let exclude = self.registered(account).await?.iter().map(|p| p.cred_id().clone()).collect();
        let name = account.display_name();
        let (options, state) = webauthn
            .start_passkey_registration(user_handle(account), account.login.as_str(), &name, Some(exclude))
            .map_err(ceremony_error)?;
        let token = self.mfa.keep_ceremony(Ceremony::Registration, account, to_json(&state)?).await?;
        Ok(Some(Challenge { token, options: serde_json::to_value(options).map_err(idp_core::Error::from)? }))
    }

    /// The browser's answer `response` (JSON) to the registration `token`
    /// of `account`, for a key named `name`.
    pub async fn finish_registration(
        &self,
        account: &Account,
        token: &str,
        name: &str,
        response: &str,
    ) -> Result<Registration> {
        let Some(webauthn) = &self.webauthn else { return Ok(Registration::Refused(PasskeyRefusal::Expired)) };
        let Some(name) = PasskeyName::parse(name) else { return Ok(Registration::Refused(PasskeyRefusal::BadName)) };
        let Some(state) = self.mfa.take_ceremony(Ceremony::Registration, account, token).await? else {
            return Ok(Registration::Refused(PasskeyRefusal::Expired));
        };
        let Some(state) = serde_json::from_str::<PasskeyRegistration>(&state).ok() else {
            return Ok(Registration::Refused(PasskeyRefusal::Expired));
        };
        let Ok(credential) = serde_json::from_str::<RegisterPublicKeyCredential>(response) else {
            return Ok(Registration::Refused(PasskeyRefusal::Invalid));
        };
        let passkey = match webauthn.finish_passkey_registration(&credential, &state) {
            Ok(passkey) => passkey,
            Err(e) => {
                tracing::info!(error = %e, "passkey registration refused");
                return Ok(Registration::Refused(PasskeyRefusal::Invalid));
            }
        };
        let new = NewPasskey { credential_id: credential_id(&passkey), data: to_json(&passkey)?, counter: 0 };
        Ok(match self.mfa.add_passkey(account, &name, new).await? {
            Added::Added { recovery_codes } => Registration::Added { recovery_codes },
            Added::AlreadyRegistered => Registration::Refused(PasskeyRefusal::AlreadyRegistered),
        })
    }

    /// The options to authenticate `account` with one of its passkeys;
    /// `None` when it has none or passkeys are not offered.
    pub async fn start_authentication(&self, account: &Account) -> Result<Option<Challenge>> {
        let Some(webauthn) = &self.webauthn else { return Ok(None) };
        let keys = self.registered(account).await?;
        if keys.is_empty() {
            return Ok(None);
        }
        let (options, state) = webauthn.start_passkey_authentication(&keys).map_err(ceremony_error)?;
        let token = self.mfa.keep_ceremony(Ceremony::Authentication, account, to_json(&state)?).await?;
        Ok(Some(Challenge { token, options: serde_json::to_value(options).map_err(idp_core::Error::from)? }))
    }

    /// The browser's assertion `response` (JSON) for the authentication
    /// `token` of `account`, from `source`: counted with the codes'
    /// attempts before it is looked at; accepted, the key's counter and
    /// last use move.
    pub async fn finish_authentication(
        &self,
        account: &Account,
        token: &str,
        response: &str,
        source: &str,
    ) -> Result<std::result::Result<&'static str, PasskeyRefusal>> {
        if !self.mfa.passkey_admitted(account, source).await? {
            return Ok(Err(PasskeyRefusal::Throttled));
        }
        let refusal = match self.verify(account, token, response).await? {
            Ok(new) => match self.mfa.passkey_used(account, source, new).await? {
                Check::Accepted(factor) => return Ok(Ok(factor)),
                Check::Throttled => return Ok(Err(PasskeyRefusal::Throttled)),
                Check::Wrong => return Ok(Err(PasskeyRefusal::Invalid)),
            },
            Err(refusal) => refusal,
        };
        self.mfa.passkey_failed(account, source).await?;
        Ok(Err(refusal))
    }

    /// The assertion checked against the kept state: the key's new counter
    /// and serialised data, or why it is refused.
    async fn verify(
        &self,
        account: &Account,
        token: &str,
        response: &str,
    ) -> Result<std::result::Result<NewPasskey, PasskeyRefusal>> {
        let Some(webauthn) = &self.webauthn else { return Ok(Err(PasskeyRefusal::Expired)) };
        let state = self.mfa.take_ceremony(Ceremony::Authentication, account, token).await?;
        let Some(state) = state.and_then(|s| serde_json::from_str::<PasskeyAuthentication>(&s).ok()) else {
            return Ok(Err(PasskeyRefusal::Expired));
        };
        let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(response) else {
            return Ok(Err(PasskeyRefusal::Invalid));
        };
        let result = match webauthn.finish_passkey_authentication(&credential, &state) {
            Ok(result) => result,
            Err(e) => {
                tracing::info!(login = account.login.as_str(), error = %e, "passkey assertion refused");
                return Ok(Err(PasskeyRefusal::Invalid));
            }
        };
        let mut keys = self.registered(account).await?;
        let Some(key) = keys.iter_mut().find(|k| k.cred_id() == result.cred_id()) else {
            return Ok(Err(PasskeyRefusal::Invalid));
        };
        key.update_credential(&result);
        Ok(Ok(NewPasskey { credential_id: credential_id(key), data: to_json(key)?, counter: result.counter() }))
    }

    /// The registered passkeys of `account`, as the library reads them
    /// (a row it cannot read is skipped, and said in the log).
    async fn registered(&self, account: &Account) -> Result<Vec<Passkey>> {
        let stored = self.mfa.passkeys(account).await?;
        Ok(stored
            .iter()
            .filter_map(|s| match serde_json::from_str::<Passkey>(&s.data) {
                Ok(key) => Some(key),
                Err(e) => {
                    tracing::warn!(login = account.login.as_str(), id = s.id, error = %e, "unreadable passkey");
                    None
                }
            })
            .collect())
    }
}

/// The WebAuthn user handle of `account`: stable (an authenticator keeps
/// one credential per site and user handle) and not the database id.
fn user_handle(account: &Account) -> Uuid {
    let digest = Sha256::digest(format!("idp passkey user {}", account.id).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.iter_mut().zip(digest.iter()).for_each(|(b, d)| *b = *d);
    Uuid::from_bytes(bytes)
}

fn credential_id(passkey: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value).map_err(idp_core::Error::from)?)
}

/// A failure to start a ceremony is the library's or the configuration's,
/// never the person's.
fn ceremony_error(e: WebauthnError) -> crate::Error {
    crate::Error::Passkey(e.to_string())
}
