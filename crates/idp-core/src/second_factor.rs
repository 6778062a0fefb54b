//! The second factor: TOTP codes (RFC 6238), single-use recovery codes and
//! the policy saying who must use one.
//!
//! A person enrols in « Mon compte » (or at login, when the policy requires
//! it and nothing is enrolled yet): [`SecondFactor::begin_totp`] draws a
//! secret kept under a pending token until [`SecondFactor::confirm_totp`]
//! sees one right code; then the secret is stored (sealed at rest by the
//! adapter) with ten recovery codes, stored as SHA-256 and shown once.
//!
//! At login, [`SecondFactor::check`] counts the attempt with the throttle
//! before looking at the code (as for passwords), accepts a TOTP code of
//! the current time step or its neighbours only if that step is later than
//! the last one used (a conditional update in the store: a code is never
//! accepted twice, even by two nodes at once), or a recovery code, which is
//! deleted as it is used.
//!
//! The session then records how the person logged in as `amr` values
//! ([`AMR_PASSWORD`], [`AMR_OTP`], [`AMR_PASSKEY`]); [`acr`] sums them up.
//!
//! TOTP is computed here with ring's HMAC-SHA-1 (already in the graph for
//! the sealing at rest) rather than a TOTP crate: it is twenty lines, and
//! the secret, the clock and the replay rule stay ours.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::account::Account;
use crate::admin::AdminRepository;
use crate::cgu::ResumeTarget;
use crate::clock::Clock;
use crate::lifecycle::{AccountExtras, MailKind};
use crate::ports::{AccountSecurityRepository, AuditEvent, AuditLog, EphemeralStore, MailComposer, Mailer};
use crate::throttle::{Admission, Throttle, ThrottleKind};
use crate::{Error, Result};

/// `amr` of a checked password.
pub const AMR_PASSWORD: &str = "pwd";
/// `amr` of a one-time code (TOTP or recovery code).
pub const AMR_OTP: &str = "otp";
/// `amr` of a passkey (a hardware-bound key).
pub const AMR_PASSKEY: &str = "hwk";
/// `acr` of a login with a second factor.
pub const ACR_MFA: &str = "urn:idp:acr:mfa";
/// `acr` of a login with a password alone (or an upstream's login).
pub const ACR_PASSWORD: &str = "urn:idp:acr:pwd";

/// Seconds of a TOTP time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a TOTP code.
pub const DIGITS: u32 = 6;
/// Recovery codes given at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Bytes of a TOTP secret (160 bits, as RFC 4226 recommends).
const SECRET_BYTES: usize = 20;
/// Minutes to confirm an enrolment or type a code at login.
const PENDING_MINUTES: i64 = 10;

/// The `acr` value for the `amr` values of a session.
pub fn acr(amr: &[String]) -> &'static str {
    if has_second_factor(amr) { ACR_MFA } else { ACR_PASSWORD }
}

/// Whether `amr` includes a second factor.
pub fn has_second_factor(amr: &[String]) -> bool {
    amr.iter().any(|m| m == AMR_OTP || m == AMR_PASSKEY)
}

/// The TOTP time step of `now`.
pub fn time_step(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(STEP_SECONDS)
}

/// The six-digit code of `secret` at time step `step` (RFC 6238 with
/// HMAC-SHA-1, RFC 4226 dynamic truncation).
pub fn totp_code(secret: &[u8], step: i64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let bytes: [u8; 4] = mac.get(offset..offset + 4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]);
    let word = u32::from_be_bytes(bytes) & 0x7fff_ffff;
    format!("{:06}", word % 10u32.pow(DIGITS))
}

/// A TOTP secret. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A fresh secret from the OS generator.
    pub fn generate() -> Result<Self> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.into()))?;
        Ok(TotpSecret(bytes))
    }

    /// A secret from its bytes (read back from the store).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(bytes)
    }

    /// The secret from its base32 text.
    pub fn from_base32(text: &str) -> Option<Self> {
        let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        data_encoding::BASE32_NOPAD.decode(clean.trim_end_matches('=').as_bytes()).ok().map(TotpSecret)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The base32 text authenticator apps take (no padding).
    pub fn base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The base32 text in groups of four, for people who type it.
    pub fn base32_grouped(&self) -> String {
        let text = self.base32();
        text.as_bytes().chunks(4).filter_map(|c| std::str::from_utf8(c).ok()).collect::<Vec<_>>().join(" ")
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(…)")
    }
}

/// A person's TOTP enrolment as stored.
#[derive(Clone, Debug)]
pub struct TotpRecord {
    pub secret: TotpSecret,
    /// The last time step whose code was accepted.
    pub last_step: i64,
    pub created_at: DateTime<Utc>,
}

/// A registered passkey, as the WebAuthn layer serialises it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: i64,
    /// The credential id (base64url), unique.
    pub credential_id: String,
    /// The name the person gave it.
    pub name: String,
    /// The WebAuthn library's serialised passkey (public key, counter).
    pub data: String,
    /// The last signature counter accepted (0 for authenticators that
    /// keep none).
    pub counter: u32,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Second factors in the database. The adapter seals TOTP secrets at rest.
#[async_trait]
pub trait SecondFactorRepository: Send + Sync {
    async fn totp(&self, account_id: i64) -> Result<Option<TotpRecord>>;
    /// Stores the TOTP secret (replacing any) with `last_step` already
    /// used, and replaces the recovery codes by `recovery_hashes`.
    async fn set_totp(
        &self,
        account_id: i64,
        secret: &TotpSecret,
        last_step: i64,
        recovery_hashes: &[String],
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Records `step` as used if it is later than the last one used, in
    /// one conditional update; false when it is not (a replay).
    async fn use_step(&self, account_id: i64, step: i64) -> Result<bool>;
    /// Deletes the recovery code of hash `hash`; false when there is none.
    async fn use_recovery_code(&self, account_id: i64, hash: &str) -> Result<bool>;
    async fn recovery_codes_left(&self, account_id: i64) -> Result<u64>;
    /// Removes every second factor of the account and its trusted devices;
    /// false when it had no second factor.
    async fn remove_all(&self, account_id: i64) -> Result<bool>;
    /// Replaces the recovery codes of the account by `recovery_hashes`
    /// (a passkey enrolled without TOTP).
    async fn set_recovery_codes(&self, account_id: i64, recovery_hashes: &[String]) -> Result<()>;
    async fn passkeys(&self, account_id: i64) -> Result<Vec<StoredPasskey>>;
    /// Adds a passkey; false when its credential id is already registered
    /// (to this account or another).
    async fn add_passkey(&self, account_id: i64, passkey: &StoredPasskey) -> Result<bool>;
    /// Records a use of the passkey `credential_id` of the account: its new
    /// `counter` and serialised `data`, in one conditional update that
    /// applies only while the stored counter is below `counter` (or both
    /// are 0, an authenticator without counter); false otherwise (a cloned
    /// key, or the same assertion twice).
    async fn use_passkey(
        &self,
        account_id: i64,
        credential_id: &str,
        counter: u32,
        data: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    async fn remove_passkey(&self, account_id: i64, id: i64) -> Result<bool>;
    /// Keeps a trusted device of the account: the SHA-256 of its token.
    async fn add_trusted_device(
        &self,
        account_id: i64,
        token_hash: &str,
        label: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Records the use at `now` of the device of hash `token_hash` if it
    /// belongs to the account, has not expired and was trusted at or after
    /// `valid_after`; false otherwise.
    async fn use_trusted_device(
        &self,
        account_id: i64,
        token_hash: &str,
        now: DateTime<Utc>,
        valid_after: DateTime<Utc>,
    ) -> Result<bool>;
    /// The trusted devices of the account (expired ones included), oldest
    /// first.
    async fn trusted_devices(&self, account_id: i64) -> Result<Vec<crate::trusted_devices::TrustedDevice>>;
    /// Removes the trusted device `id` of the account, or every one with
    /// `None`; the number removed.
    async fn remove_trusted_devices(&self, account_id: i64, id: Option<i64>) -> Result<u64>;
}

/// Who must use a second factor, from config (`[mfa]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaPolicy {
    /// `admin` (anyone holding a help-desk role) and account profiles
    /// (`personnel`, `eleve`, `parent`, `autre`).
    pub required_for: Vec<String>,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        MfaPolicy { required_for: vec!["admin".into()] }
    }
}

impl MfaPolicy {
    /// Whether the policy names administrators.
    pub fn admins_required(&self) -> bool {
        self.required_for.iter().any(|r| r == "admin")
    }
}

/// What the person has enrolled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    pub totp: bool,
    pub passkeys: usize,
    pub recovery_codes_left: u64,
}

impl Enrolled {
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// A TOTP enrolment offered, waiting for its first code.
#[derive(Clone, Debug)]
pub struct TotpOffer {
    /// Names the pending enrolment in the confirmation form.
    pub token: String,
    pub secret: TotpSecret,
    /// `otpauth://totp/...`, for the QR code.
    pub uri: String,
}

#[derive(Serialize, Deserialize)]
struct PendingTotp {
    account_id: i64,
    secret: String,
    expires_at: DateTime<Utc>,
}

/// The answer to a code typed at login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Accepted; the `amr` value of the factor.
    Accepted(&'static str),
    /// Wrong, already used, or a recovery code already spent.
    Wrong,
    /// Too many attempts: refused without looking at the code.
    Throttled,
}

/// The answer to the confirmation of an enrolment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// Enrolled: the recovery codes, to show once.
    Enrolled(Vec<String>),
    WrongCode,
    Throttled,
    /// The pending enrolment is unknown or expired.
    Expired,
}

/// Who removed a second factor.
#[derive(Clone, Debug)]
pub enum Remover {
    /// The person, in Mon compte.
    Owner,
    /// A help-desk administrator (by login) or an operator (`idp`).
    HelpDesk(String),
}

/// The second-factor service, shared by every request and the CLI.
#[derive(Clone)]
pub struct SecondFactor {
    pub repo: Arc<dyn SecondFactorRepository>,
    pub accounts: Arc<dyn crate::ports::AccountRepository>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub admins: Arc<dyn AdminRepository>,
    pub security: Arc<dyn AccountSecurityRepository>,
    pub throttle: Throttle,
    pub mailer: Arc<dyn Mailer>,
    pub composer: Arc<dyn MailComposer>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    pub policy: MfaPolicy,
    /// The issuer shown by authenticator apps.
    pub issuer: String,
}

fn pending_key(token: &str) -> String {
    crate::lifecycle::key("mfa-enrol", token)
}

fn login_key(token: &str) -> String {
    crate::lifecycle::key("mfa-login", token)
}

/// A login whose password was checked, waiting for the second factor (or
/// for the enrolment the policy requires).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub account_id: i64,
    /// When the password was checked: the session keeps this instant.
    pub authenticated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub target: ResumeTarget,
    /// The pending TOTP enrolment, when the person must enrol first.
    #[serde(default)]
    pub enrolment: Option<String>,
    /// Set once the factor passed (an enrolment at login: the recovery
    /// codes are shown before the login goes on).
    #[serde(default)]
    pub amr: Option<Vec<String>>,
}

/// The SHA-256 (hex) of a recovery code, normalised (case, spaces and
/// dashes ignored).
pub fn recovery_hash(code: &str) -> String {
    let clean: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    Sha256::digest(clean.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_recovery_code() -> Result<String> {
    let raw = crate::secret::random_token(10)?.to_ascii_lowercase();
    Ok(format!("{}-{}", raw.get(..5).unwrap_or(""), raw.get(5..).unwrap_or("")))
}

/// Ten new recovery codes, and their hashes to store.
pub(crate) fn new_recovery_codes() -> Result<(Vec<String>, Vec<String>)> {
    let codes = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect::<Result<Vec<_>>>()?;
    let hashes = codes.iter().map(|c| recovery_hash(c)).collect();
    Ok((codes, hashes))
}

impl SecondFactor {
    /// Whether `account` must use a second factor.
    pub async fn required(&self, account: &Account) -> Result<bool> {
        if self.policy.required_for.iter().any(|r| r == account.profile.as_str()) {
            return Ok(true);
        }
        Ok(self.policy.admins_required() && self.admins.scope_of(account.id).await?.is_some())
    }

    /// What `account_id` has enrolled.
    pub async fn enrolled(&self, account_id: i64) -> Result<Enrolled> {
        let totp = self.repo.totp(account_id).await?.is_some();
        let passkeys = self.repo.passkeys(account_id).await?.len();
        let recovery_codes_left =
            if totp || passkeys > 0 { self.repo.recovery_codes_left(account_id).await? } else { 0 };
        Ok(Enrolled { totp, passkeys, recovery_codes_left })
    }

    /// Draws a secret for `account` and keeps it under a token until the
    /// first code confirms it.
    pub async fn begin_totp(&self, account: &Account) -> Result<TotpOffer> {
        let secret = TotpSecret::generate()?;
        let token = crate::lifecycle::new_code()?;
        let pending = PendingTotp {
            account_id: account.id,
            secret: secret.base32(),
            expires_at: self.clock.now() + Duration::minutes(PENDING_MINUTES),
        };
        self.put(&pending_key(&token), &pending).await?;
        Ok(self.offer(account, token, secret))
    }

    /// The pending enrolment `token` of `account`, shown again (after a
    /// wrong code).
    pub async fn pending_offer(&self, account: &Account, token: &str) -> Result<Option<TotpOffer>> {
        let Some(pending) = self.get::<PendingTotp>(&pending_key(token)).await? else { return Ok(None) };
        if pending.account_id != account.id || self.clock.now() >= pending.expires_at {
            return Ok(None);
        }
        Ok(TotpSecret::from_base32(&pending.secret).map(|s| self.offer(account, token.to_owned(), s)))
    }

    fn offer(&self, account: &Account, token: String, secret: TotpSecret) -> TotpOffer {
        let label = format!("{}:{}", self.issuer, account.login.as_str());
        let label: String =
            url::form_urlencoded::byte_serialize(label.as_bytes()).collect::<String>().replace('+', "%20");
        let uri = crate::query::with_query(
            &format!("otpauth://totp/{label}"),
            &[
                ("secret", &secret.base32()),
                ("issuer", &self.issuer),
                ("algorithm", "SHA1"),
                ("digits", &DIGITS.to_string()),
                ("period", &STEP_SECONDS.to_string()),
            ],
        );
        TotpOffer { token, secret, uri }
    }

    /// Confirms the pending enrolment `token` with a code typed from
    /// `source`; stores the secret and ten recovery codes (returned).
    pub async fn confirm_totp(&self, account: &Account, token: &str, code: &str, source: &str) -> Result<Confirmation> {
        let Some(offer) = self.pending_offer(account, token).await? else { return Ok(Confirmation::Expired) };
        if self.throttle.attempt(ThrottleKind::SecondFactor, account.login.as_str(), source).await?
            == Admission::Refused
        {
            return Ok(Confirmation::Throttled);
        }
        let Some(step) = self.matching_step(&offer.secret, code) else {
            self.throttle.failed(ThrottleKind::SecondFactor, source).await?;
            return Ok(Confirmation::WrongCode);
        };
        if self.ephemeral.take(&pending_key(token)).await?.is_none() {
            return Ok(Confirmation::Expired);
        }
        let (codes, hashes) = new_recovery_codes()?;
        self.repo.set_totp(account.id, &offer.secret, step, &hashes, self.clock.now()).await?;
        self.throttle.succeeded(ThrottleKind::SecondFactor, account.login.as_str(), source).await?;
        self.audit.record(AuditEvent::SecondFactorEnrolled { login: account.login.as_str().to_owned(), kind: "totp" });
        Ok(Confirmation::Enrolled(codes))
    }

    /// Ten new recovery codes for an enrolled person (the old ones stop
    /// working).
    pub async fn new_recovery_codes(&self, account: &Account) -> Result<Option<Vec<String>>> {
        if !self.enrolled(account.id).await?.any() {
            return Ok(None);
        }
        let (codes, hashes) = new_recovery_codes()?;
        self.repo.set_recovery_codes(account.id, &hashes).await?;
        Ok(Some(codes))
    }

    /// The step among the current one and its neighbours whose code is
    /// `code`, compared in constant time.
    fn matching_step(&self, secret: &TotpSecret, code: &str) -> Option<i64> {
        let code = code.trim().replace(' ', "");
        let now = time_step(self.clock.now());
        [now - 1, now, now + 1]
            .into_iter()
            .find(|step| crate::secret::constant_time_eq(&totp_code(secret.expose(), *step), &code))
    }

    /// Checks a code typed at login by `account` from `source`: a TOTP
    /// code not used before, or a recovery code (spent).
    pub async fn check(&self, account: &Account, code: &str, source: &str) -> Result<Check> {
        if !self.admitted(account, source).await? {
            return Ok(Check::Throttled);
        }
        let accepted = if code.trim().chars().all(|c| c.is_ascii_digit() || c == ' ') {
            match self.repo.totp(account.id).await? {
                Some(record) => match self.matching_step(&record.secret, code) {
                    Some(step) => self.repo.use_step(account.id, step).await?,
                    None => false,
                },
                None => false,
            }
        } else {
            !code.trim().is_empty() && self.repo.use_recovery_code(account.id, &recovery_hash(code)).await?
        };
        self.concluded(account, source, accepted.then_some(AMR_OTP), "second factor").await
    }

    /// Counts an attempt of `account` from `source` before its factor is
    /// looked at; false (audited) when too many failed.
    pub(crate) async fn admitted(&self, account: &Account, source: &str) -> Result<bool> {
        let login = account.login.as_str();
        if self.throttle.attempt(ThrottleKind::SecondFactor, login, source).await? == Admission::Refused {
            self.audit.record(AuditEvent::LoginThrottled { login: login.to_owned(), source: source.to_owned() });
            return Ok(false);
        }
        Ok(true)
    }

    /// The end of an admitted attempt: `accepted` names the factor that
    /// passed; a failure is counted and audited with `reason`.
    pub(crate) async fn concluded(
        &self,
        account: &Account,
        source: &str,
        accepted: Option<&'static str>,
        reason: &'static str,
    ) -> Result<Check> {
        let login = account.login.as_str();
        let Some(factor) = accepted else {
            self.throttle.failed(ThrottleKind::SecondFactor, source).await?;
            self.audit.record(AuditEvent::LoginFailed { login: login.to_owned(), source: source.to_owned(), reason });
            return Ok(Check::Wrong);
        };
        self.throttle.succeeded(ThrottleKind::SecondFactor, login, source).await?;
        Ok(Check::Accepted(factor))
    }

    /// Removes every second factor of `account`; the person is told by
    /// e-mail when a help desk did it and the address is validated.
    pub async fn remove(&self, account: &Account, by: Remover) -> Result<bool> {
        let removed = self.repo.remove_all(account.id).await?;
        if !removed {
            return Ok(false);
        }
        let by_name = match &by {
            Remover::Owner => account.login.as_str().to_owned(),
            Remover::HelpDesk(who) => who.clone(),
        };
        self.audit.record(AuditEvent::SecondFactorRemoved { login: account.login.as_str().to_owned(), by: by_name });
        if let Remover::HelpDesk(_) = by {
            let extras: AccountExtras = self.security.get(account.id).await?;
            if let (true, Some(to)) = (extras.email_is_verified(account), account.email.as_deref()) {
                let mail = self.composer.compose(&MailKind::SecondFactorRemoved, to, &account.display_name())?;
                self.mailer.send(mail).await?;
            }
        }
        Ok(true)
    }

    /// Remembers a login of `account` (password checked at
    /// `authenticated_at`) that waits for its second factor; returns the
    /// token the code page sends back.
    pub async fn begin_login(
        &self,
        account: &Account,
        authenticated_at: DateTime<Utc>,
        target: ResumeTarget,
        enrolment: Option<String>,
    ) -> Result<String> {
        let token = crate::lifecycle::new_code()?;
        let pending = PendingLogin {
            account_id: account.id,
            authenticated_at,
            expires_at: self.clock.now() + Duration::minutes(PENDING_MINUTES),
            target,
            enrolment,
            amr: None,
        };
        self.put(&login_key(&token), &pending).await?;
        Ok(token)
    }

    /// The pending login `token` and its account, while it stands (not
    /// expired; the account still active and not reset since).
    pub async fn pending_login(&self, token: &str) -> Result<Option<(PendingLogin, Account)>> {
        let Some(pending) = self.get::<PendingLogin>(&login_key(token)).await? else { return Ok(None) };
        if self.clock.now() >= pending.expires_at {
            return Ok(None);
        }
        let Some(account) = self.accounts.find_by_id(pending.account_id).await? else { return Ok(None) };
        if account.state != crate::account::AccountState::Active
            || account.sessions_valid_after > pending.authenticated_at
        {
            return Ok(None);
        }
        Ok(Some((pending, account)))
    }

    /// Records that the pending login `token` passed its factor.
    pub async fn passed(&self, token: &str, mut pending: PendingLogin, amr: Vec<String>) -> Result<()> {
        pending.amr = Some(amr);
        self.put(&login_key(token), &pending).await
    }

    /// Takes the pending login `token` (once).
    pub async fn take_login(&self, token: &str) -> Result<Option<PendingLogin>> {
        Ok(self.ephemeral.take(&login_key(token)).await?.and_then(|j| serde_json::from_str(&j).ok()))
    }

    pub(crate) async fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let json = serde_json::to_string(value)?;
        let ttl = std::time::Duration::from_secs(60 * (PENDING_MINUTES as u64 + 5));
        self.ephemeral.put(key, json, ttl).await
    }

    pub(crate) async fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        Ok(self.ephemeral.get(key).await?.and_then(|j| serde_json::from_str(&j).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vectors_sha1() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8
        // digits there; the last six digits are ours.
        let secret = b"12345678901234567890";
        for (t, full) in
            [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (20000000000, "65353130")]
        {
            assert_eq!(totp_code(secret, t / 30), full[2..]);
        }
    }

    #[test]
    fn base32_round_trip_and_grouping() {
        let s = TotpSecret::generate().unwrap();
        assert_eq!(s.base32().len(), 32);
        assert_eq!(TotpSecret::from_base32(&s.base32_grouped().to_lowercase()).unwrap(), s);
        assert!(!format!("{s:?}").contains(&s.base32()));
    }

    #[test]
    fn recovery_codes_normalise() {
        assert_eq!(recovery_hash("ABCDE-fghij"), recovery_hash("abcde fghij"));
        assert_ne!(recovery_hash("abcde-fghij"), recovery_hash("abcde-fghik"));
    }

    #[test]
    fn acr_follows_amr() {
        assert_eq!(acr(&["pwd".into()]), ACR_PASSWORD);
        assert_eq!(acr(&["pwd".into(), "otp".into()]), ACR_MFA);
    }
}
