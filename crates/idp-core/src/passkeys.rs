//! Passkeys (WebAuthn) as a second factor: the rules around the ceremony.
//!
//! The ceremony itself (challenges, signatures, attestation) is run by
//! idp-protocol with the `webauthn-rs` crate; this module keeps what is
//! ours whatever the library: whose ceremony a kept state is (one account,
//! five minutes, taken once), the name a person gives a key, the first key
//! that brings the ten recovery codes, the signature counter that only
//! moves forward (one conditional update in the store: a cloned key's
//! older counter is refused, even by two nodes at once), the throttling of
//! failed assertions with the codes' counters, and removal.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::account::Account;
use crate::ports::AuditEvent;
use crate::second_factor::{AMR_PASSKEY, Check, SecondFactor, StoredPasskey, new_recovery_codes};

/// Characters of a passkey's name at most.
pub const NAME_MAX: usize = 64;
/// Minutes a registration or authentication state is kept.
const CEREMONY_MINUTES: i64 = 5;

/// The name a person gives a passkey (« Nom de la clé »): trimmed, 1 to
/// [`NAME_MAX`] characters, no control character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    pub fn parse(text: &str) -> Option<Self> {
        let name = text.trim();
        let fits = (1..=NAME_MAX).contains(&name.chars().count());
        (fits && !name.chars().any(char::is_control)).then(|| PasskeyName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which ceremony a kept state belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceremony {
    Registration,
    Authentication,
}

impl Ceremony {
    fn prefix(self) -> &'static str {
        match self {
            Ceremony::Registration => "passkey-reg",
            Ceremony::Authentication => "passkey-auth",
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KeptCeremony {
    account_id: i64,
    /// The WebAuthn library's serialised state (the challenge).
    state: String,
    expires_at: DateTime<Utc>,
}

/// A passkey the ceremony just verified, to store.
#[derive(Clone, Debug)]
pub struct NewPasskey {
    /// The credential id (base64url).
    pub credential_id: String,
    /// The WebAuthn library's serialised passkey.
    pub data: String,
    pub counter: u32,
}

/// The answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// Stored; the ten recovery codes to show once when it is the
    /// person's first second factor.
    Added { recovery_codes: Option<Vec<String>> },
    /// This key is already registered (to this account or another).
    AlreadyRegistered,
}

impl SecondFactor {
    /// Keeps the `state` of a `ceremony` of `account` for five minutes under
    /// a new token, sent to the browser with the challenge.
    pub async fn keep_ceremony(&self, ceremony: Ceremony, account: &Account, state: String) -> Result<String> {
        let token = crate::lifecycle::new_code()?;
        let kept = KeptCeremony {
            account_id: account.id,
            state,
            expires_at: self.clock.now() + Duration::minutes(CEREMONY_MINUTES),
        };
        self.put(&crate::lifecycle::key(ceremony.prefix(), &token), &kept).await?;
        Ok(token)
    }

    /// Takes (once) the state `token` of a `ceremony` of `account`; `None`
    /// when it is unknown, spent, expired or another account's.
    pub async fn take_ceremony(&self, ceremony: Ceremony, account: &Account, token: &str) -> Result<Option<String>> {
        let key = crate::lifecycle::key(ceremony.prefix(), token);
        let kept = self.ephemeral.take(&key).await?.and_then(|j| serde_json::from_str::<KeptCeremony>(&j).ok());
        Ok(kept.filter(|k| k.account_id == account.id && self.clock.now() < k.expires_at).map(|k| k.state))
    }

    /// The passkeys of `account`, oldest first.
    pub async fn passkeys(&self, account: &Account) -> Result<Vec<StoredPasskey>> {
        self.repo.passkeys(account.id).await
    }

    /// Stores a verified passkey of `account` named `name`. The first
    /// second factor of a person brings ten recovery codes, as TOTP does.
    pub async fn add_passkey(&self, account: &Account, name: &PasskeyName, passkey: NewPasskey) -> Result<Added> {
        let first = !self.enrolled(account.id).await?.any();
        let now = self.clock.now();
        let stored = StoredPasskey {
            id: 0,
            credential_id: passkey.credential_id,
            name: name.as_str().to_owned(),
            data: passkey.data,
            counter: passkey.counter,
            created_at: now,
            last_used_at: None,
        };
        if !self.repo.add_passkey(account.id, &stored).await? {
            return Ok(Added::AlreadyRegistered);
        }
        let recovery_codes = if first {
            let (codes, hashes) = new_recovery_codes()?;
            self.repo.set_recovery_codes(account.id, &hashes).await?;
            Some(codes)
        } else {
            None
        };
        self.audit
            .record(AuditEvent::SecondFactorEnrolled { login: account.login.as_str().to_owned(), kind: "passkey" });
        Ok(Added::Added { recovery_codes })
    }

    /// Counts a passkey attempt of `account` from `source` before the
    /// assertion is looked at (the codes' counters); false when too many
    /// failed.
    pub async fn passkey_admitted(&self, account: &Account, source: &str) -> Result<bool> {
        self.admitted(account, source).await
    }

    /// An admitted assertion failed (signature, unknown key, challenge).
    pub async fn passkey_failed(&self, account: &Account, source: &str) -> Result<Check> {
        self.concluded(account, source, None, "passkey").await
    }

    /// An admitted assertion of the passkey `credential_id` verified with
    /// signature counter `counter`: accepted only if the counter moved
    /// forward (see [`crate::second_factor::SecondFactorRepository::use_passkey`]).
    pub async fn passkey_used(&self, account: &Account, source: &str, passkey: NewPasskey) -> Result<Check> {
        let now = self.clock.now();
        let moved =
            self.repo.use_passkey(account.id, &passkey.credential_id, passkey.counter, &passkey.data, now).await?;
        self.concluded(account, source, moved.then_some(AMR_PASSKEY), "passkey counter").await
    }

    /// Removes the passkey `id` of `account`; with it the recovery codes
    /// when it was the last second factor.
    pub async fn remove_passkey(&self, account: &Account, id: i64) -> Result<bool> {
        if !self.repo.remove_passkey(account.id, id).await? {
            return Ok(false);
        }
        if !self.enrolled(account.id).await?.any() {
            self.repo.remove_all(account.id).await?;
        }
        let login = account.login.as_str().to_owned();
        self.audit.record(AuditEvent::PasskeyRemoved { login });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(PasskeyName::parse("  Clé USB  ").unwrap().as_str(), "Clé USB");
        assert!(PasskeyName::parse("   ").is_none());
        assert!(PasskeyName::parse(&"é".repeat(NAME_MAX)).is_some());
        assert!(PasskeyName::parse(&"é".repeat(NAME_MAX + 1)).is_none());
        assert!(PasskeyName::parse("clé\u{7}").is_none());
    }
}
