//! The account life cycle: activation wizard ([`crate::activation`]),
//! forgotten password ([`crate::recovery`]), terms of use at login
//! ([`crate::cgu`]) and "Mon compte" ([`crate::my_account`]).
//!
//! They share one service, [`Lifecycle`], which holds the ports they use and
//! the policy from config. Every record with a lifetime (attempts, codes,
//! pending acceptances) lives in the [`EphemeralStore`] port under a key
//! derived from a SHA-256 of its secret, so a store dump does not give the
//! codes away; expiry is decided with the [`Clock`], the store's TTL only
//! bounds memory.

use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::account::Account;
use crate::clock::Clock;
use crate::password_policy::{PasswordPolicy, Refusal, Verdict};
use crate::ports::{
    AccountRepository, AccountSecurityRepository, AuditLog, EphemeralStore, MailComposer, Mailer, PasswordHashing,
    RateLimiter,
};
use crate::throttle::Throttle;
use crate::{Error, Result};

/// Creates `new` as a provisioned account (to be activated) with the
/// provisional password `password`, or a generated one when `None`;
/// returns the account and its provisional password. `idp account create`
/// and the console's creation form both use it.
pub async fn provision(
    accounts: &dyn AccountRepository,
    hashing: &dyn PasswordHashing,
    mut new: crate::account::NewAccount,
    password: Option<String>,
) -> Result<(Account, String)> {
    let password = match password {
        Some(p) if p.chars().count() >= 8 => p,
        Some(_) => return Err(Error::invalid("provisional password", "at least 8 characters expected")),
        None => crate::secret::provisional_password()?,
    };
    new.state = crate::account::AccountState::Provisioned;
    new.password_hash = None;
    new.cgu_version = None;
    new.provisional_hash = Some(hashing.hash(crate::secret::Secret::new(password.clone())).await?);
    Ok((accounts.create(new).await?, password))
}

/// Settings of the account flows, from config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecyclePolicy {
    /// A provisional password no longer opens the wizard after this many
    /// days (the help desk resets the account).
    pub provisional_validity_days: i64,
    /// The e-mail validation link works until this many hours after the
    /// activation started (48 by default, as the pages say).
    pub email_link_hours: i64,
    /// A "mot de passe oublié" link works this many minutes.
    pub reset_link_minutes: i64,
    /// E-mails sent to one address per hour, at most.
    pub mails_per_address_per_hour: u64,
    /// The secret questions offered.
    pub questions: Vec<String>,
    /// A secret of the deployment (same on every node) that makes the decoy
    /// questions shown for unknown logins impossible to predict; without
    /// it, they are derived from the login alone.
    pub decoy_key: Option<String>,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            provisional_validity_days: 90,
            email_link_hours: 48,
            reset_link_minutes: 60,
            mails_per_address_per_hour: 5,
            questions: crate::questions::default_questions(),
            decoy_key: None,
        }
    }
}

/// The answers to two secret questions, hashed (argon2id of the
/// normalised answer); the questions are kept as text.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretAnswers {
    pub question1: String,
    pub answer1_hash: String,
    pub question2: String,
    pub answer2_hash: String,
}

/// What the life cycle keeps about an account beside [`Account`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountExtras {
    /// The address that was proven by a validation link.
    pub email_verified: Option<String>,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub questions: Option<SecretAnswers>,
}

impl AccountExtras {
    /// Whether `account.email` is the validated address.
    pub fn email_is_verified(&self, account: &Account) -> bool {
        match (&account.email, &self.email_verified) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

/// A past login, for "Mon compte".
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LoginRecord {
    pub at: DateTime<Utc>,
    pub source: String,
}

/// The e-mails the flows send.
#[derive(Clone, Debug)]
pub enum MailKind {
    /// Validation of the address typed during activation; `hours` is the
    /// delay the mail states (`expires_at` is the start plus `hours`).
    ActivationValidation { code: String, expires_at: DateTime<Utc>, hours: i64 },
    /// Validation of a new address typed in "Mon compte".
    EmailChange { code: String, expires_at: DateTime<Utc> },
    /// A "mot de passe oublié" link.
    PasswordReset { code: String, expires_at: DateTime<Utc> },
    /// To the previous address: the recovery address was replaced by
    /// `new_address` (masked).
    AddressReplaced { new_address: String },
    /// The person's second factor was removed by the help desk.
    SecondFactorRemoved,
}

/// Why a step of a flow is refused. Each maps to a French message.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    #[error("too many attempts")]
    Throttled,
    #[error("provisional password expired")]
    ProvisionalExpired,
    #[error("the attempt or code is expired or unknown")]
    Expired,
    #[error("this step is not the current one")]
    WrongStep,
    #[error("terms of use not accepted")]
    CguNotAccepted,
    #[error("invalid e-mail address")]
    EmailInvalid,
    #[error("the two e-mail addresses differ")]
    EmailMismatch,
    #[error("too many e-mails to this address")]
    MailLimit,
    #[error("unknown secret question")]
    UnknownQuestion,
    #[error("the same question twice")]
    SameQuestion,
    #[error("empty or too long answer")]
    BadAnswer,
    #[error("wrong answers")]
    WrongAnswers,
    #[error("wrong current password")]
    WrongPassword,
    #[error("password refused: {0:?}")]
    Password(Refusal),
    #[error(transparent)]
    Core(#[from] Error),
}

pub type FlowResult<T> = std::result::Result<T, FlowError>;

/// The account flows, shared by every request.
#[derive(Clone)]
pub struct Lifecycle {
    pub accounts: Arc<dyn AccountRepository>,
    pub security: Arc<dyn AccountSecurityRepository>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub hashing: Arc<dyn PasswordHashing>,
    pub limiter: Arc<dyn RateLimiter>,
    /// The login throttle: guesses of a provisional password count with
    /// failed logins.
    pub throttle: Throttle,
    pub mailer: Arc<dyn Mailer>,
    pub composer: Arc<dyn MailComposer>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    pub policy: LifecyclePolicy,
    pub passwords: PasswordPolicy,
    /// The current version of the terms of use.
    pub cgu_version: String,
}

/// Questions of the live password indicator allowed per address and
/// minute (the page asks at most once per pause in typing).
pub const METER_PER_MINUTE: u64 = 120;

/// Store TTLs outlive the clock's decision by this margin.
const TTL_MARGIN: Duration = Duration::minutes(5);

/// The store key of a secret: `prefix:` and the hex SHA-256 of the secret.
pub(crate) fn key(prefix: &str, secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(prefix.len() + 65);
    out.push_str(prefix);
    out.push(':');
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A fresh single-use code: 32 characters of `[A-Za-z0-9]` (≈ 190 bits).
pub(crate) fn new_code() -> Result<String> {
    crate::secret::random_token(32)
}

impl Lifecycle {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn ttl(&self, until: DateTime<Utc>) -> std::time::Duration {
        ((until - self.now()).max(Duration::zero()) + TTL_MARGIN)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(300))
    }

    pub(crate) async fn put_json<T: Serialize>(&self, key: &str, value: &T, until: DateTime<Utc>) -> Result<()> {
        let json = serde_json::to_string(value)?;
        self.ephemeral.put(key, json, self.ttl(until)).await
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        // A record that no longer parses (written by another version) is
        // treated as gone.
        Ok(self.ephemeral.get(key).await?.and_then(|j| serde_json::from_str(&j).ok()))
    }

    pub(crate) async fn take_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        Ok(self.ephemeral.take(key).await?.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Counts an e-mail to `to`; false when the address got too many.
    pub(crate) async fn mail_allowed(&self, to: &str) -> Result<bool> {
        let key = format!("mail:{}", to.to_lowercase());
        let count = self.limiter.hit(&key, std::time::Duration::from_secs(3600)).await?;
        Ok(count <= self.policy.mails_per_address_per_hour)
    }

    /// Composes and queues an e-mail.
    pub(crate) async fn send(&self, kind: &MailKind, to: &str, display_name: &str) -> Result<()> {
        let mail = self.composer.compose(kind, to, display_name)?;
        self.mailer.send(mail).await
    }

    /// The login, given and family names and school codes: a password
    /// must not contain them.
    pub(crate) fn personal(account: &Account) -> Vec<String> {
        let names = [account.login.as_str().to_owned(), account.given_name.clone(), account.family_name.clone()];
        names.into_iter().chain(account.schools.iter().cloned()).collect()
    }

    /// Checks a new password against the policy for `account`.
    pub(crate) fn check_password(
        &self,
        account: &Account,
        password: &str,
        confirmation: &str,
    ) -> FlowResult<crate::password_policy::Strength> {
        let personal = Self::personal(account);
        let personal: Vec<&str> = personal.iter().map(String::as_str).collect();
        self.passwords.check(password, confirmation, &personal).map_err(FlowError::Password)
    }

    /// The policy's verdict on `password` for `account`: what the page's
    /// indicator shows while the person types, the same estimate as
    /// [`Self::check_password`].
    pub fn password_verdict(&self, account: &Account, password: &str) -> Verdict {
        let personal = Self::personal(account);
        let personal: Vec<&str> = personal.iter().map(String::as_str).collect();
        self.passwords.evaluate(password, &personal)
    }

    /// The live indicator's answer for a password being chosen by
    /// `account`, at most [`METER_PER_MINUTE`] a minute from one address
    /// (`source`). The password is neither kept nor logged.
    pub async fn meter(&self, account: &Account, password: &str, source: &str) -> FlowResult<Verdict> {
        let count = self.limiter.hit(&format!("meter:{source}"), std::time::Duration::from_secs(60)).await?;
        if count > METER_PER_MINUTE {
            return Err(FlowError::Throttled);
        }
        Ok(self.password_verdict(account, password))
    }

    /// The account whose new password is being chosen in one of the flows:
    /// an activation attempt at its password step, or a live reset code.
    pub async fn password_owner(&self, owner: PasswordOwner<'_>) -> FlowResult<Account> {
        let account_id = match owner {
            PasswordOwner::Activation(id) => {
                let attempt = self.attempt(id).await?;
                if attempt.step != crate::activation::Step::Password {
                    return Err(FlowError::WrongStep);
                }
                attempt.account_id
            }
            PasswordOwner::Reset(code) => self.reset_grant(code).await?.account_id,
        };
        self.accounts.find_by_id(account_id).await?.ok_or(FlowError::Expired)
    }
}

/// Where a new password is being chosen, for [`Lifecycle::password_owner`].
#[derive(Clone, Copy, Debug)]
pub enum PasswordOwner<'a> {
    /// The id of an activation attempt.
    Activation(&'a str),
    /// A forgotten-password code.
    Reset(&'a str),
}
