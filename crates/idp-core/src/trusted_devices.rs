//! Trusted devices: « Faire confiance à cet appareil pendant 30 jours ».
//!
//! After a right second factor with the box ticked, the browser gets a
//! cookie holding a random token (256 bits from the OS generator); the
//! store keeps only its SHA-256 with the account, a short label guessed
//! from the User-Agent and the dates shown in Mon compte. At a later
//! password login of the same account, a token whose hash matches a live
//! row of *that* account skips the code step. The login then counts as a
//! password login (`amr` `pwd`): no second factor was presented, so what
//! requires one (the console) still asks for it.
//!
//! Whatever ends every session of the account (a password changed in Mon
//! compte or through « mot de passe oublié », an operator's reset or
//! disable) ends its trusted devices too: a device counts only if it was
//! trusted at or after the account's `sessions_valid_after`, and the rows
//! that no longer count are deleted when the next device is trusted.
//! Removing the second factor (in Mon compte, by the help desk, `idp
//! account mfa-reset`) deletes them with it.
//!
//! A random token checked against its stored hash is at least as good as a
//! signed cookie: nothing in it can be forged without the database, a
//! stolen database yields hashes only, and each device can be revoked one
//! by one (a signed cookie stays valid until its key changes).

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::Result;
use crate::account::Account;
use crate::second_factor::SecondFactor;
use crate::secret::Secret;

/// Days a device stays trusted.
pub const TRUSTED_DAYS: i64 = 30;
/// Characters of the cookie's token (62 symbols: about 256 bits).
const TOKEN_CHARS: usize = 43;
/// The label of a device whose User-Agent says nothing known.
pub const UNKNOWN_DEVICE: &str = "Appareil inconnu";

/// A trusted device as Mon compte lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedDevice {
    pub id: i64,
    /// Browser and system guessed from the User-Agent (« Firefox sous
    /// Windows »), or [`UNKNOWN_DEVICE`].
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

/// The SHA-256 (hex) of a device token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A short French label for a User-Agent: the browser family and the
/// system, as far as they are recognised.
pub fn device_label(user_agent: &str) -> String {
    // The order matters: Edge and Opera say « Chrome » too, Chrome says
    // « Safari », Android says « Linux », iOS says « Mac OS X ».
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    match (first_named(user_agent, BROWSERS), first_named(user_agent, SYSTEMS)) {
        (Some(browser), Some(system)) => format!("{browser} sous {system}"),
        (Some(only), None) | (None, Some(only)) => only.to_owned(),
        (None, None) => UNKNOWN_DEVICE.to_owned(),
    }
}

/// The name of the first `(mark, name)` of `table` whose mark is in
/// `user_agent`.
fn first_named(user_agent: &str, table: &[(&str, &'static str)]) -> Option<&'static str> {
    table.iter().find(|(mark, _)| user_agent.contains(mark)).map(|(_, name)| *name)
}

impl SecondFactor {
    /// Trusts the browser of `user_agent` for `account` for
    /// [`TRUSTED_DAYS`]; returns the token its cookie carries.
    pub async fn trust_device(&self, account: &Account, user_agent: &str) -> Result<Secret> {
        let token = crate::secret::random_token(TOKEN_CHARS)?;
        let now = self.clock.now();
        let expires_at = now + Duration::days(TRUSTED_DAYS);
        let label = device_label(user_agent);
        let stale = self.repo.trusted_devices(account.id).await?.into_iter().filter(|d| !counts(account, d, now));
        for device in stale.collect::<Vec<_>>() {
            self.repo.remove_trusted_devices(account.id, Some(device.id)).await?;
        }
        self.repo.add_trusted_device(account.id, &token_hash(&token), &label, now, expires_at).await?;
        Ok(Secret::new(token))
    }

    /// Whether `token` (the cookie, if any) names a live trusted device of
    /// `account`; its last use is recorded then.
    pub async fn device_trusted(&self, account: &Account, token: Option<&str>) -> Result<bool> {
        let Some(token) = token.filter(|t| !t.is_empty()) else { return Ok(false) };
        let (now, valid_after) = (self.clock.now(), account.sessions_valid_after);
        self.repo.use_trusted_device(account.id, &token_hash(token), now, valid_after).await
    }

    /// The trusted devices of `account` that still count, oldest first.
    pub async fn trusted_devices(&self, account: &Account) -> Result<Vec<TrustedDevice>> {
        let now = self.clock.now();
        Ok(self.repo.trusted_devices(account.id).await?.into_iter().filter(|d| counts(account, d, now)).collect())
    }

    /// Removes the trusted device `id` of `account` (every one with
    /// `None`); the number removed.
    pub async fn forget_devices(&self, account: &Account, id: Option<i64>) -> Result<u64> {
        self.repo.remove_trusted_devices(account.id, id).await
    }
}

/// Whether `device` of `account` still counts at `now`: not expired, and
/// trusted since the last end of every session of the account.
fn counts(account: &Account, device: &TrustedDevice, now: DateTime<Utc>) -> bool {
    device.expires_at > now && device.created_at >= account.sessions_valid_after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_browser_and_system() {
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(device_label(firefox), "Firefox sous Windows");
        let chrome_android = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) \
                              Chrome/131.0 Mobile Safari/537.36";
        assert_eq!(device_label(chrome_android), "Chrome sous Android");
        let safari_iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                             (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!(device_label(safari_iphone), "Safari sous iOS");
        let edge = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/131.0 Safari/537.36 Edg/131.0";
        assert_eq!(device_label(edge), "Edge sous Windows");
        assert_eq!(device_label("reqwest/0.12"), UNKNOWN_DEVICE);
        assert_eq!(device_label(""), UNKNOWN_DEVICE);
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
