//! Deciding a login attempt with local credentials.
//!
//! The rules: exactly one password verification per attempt whatever the
//! login (no user enumeration by timing); unknown login and wrong password
//! answer the same; a provisional password never opens a session; every
//! attempt is counted before its verification, and refused ones are not
//! verified (see [`crate::throttle`]).

use std::sync::Arc;

use crate::Result;
use crate::account::{Account, AccountState, Login};
use crate::clock::Clock;
use crate::ports::{AccountRepository, AuditEvent, AuditLog, PasswordHashing};
use crate::secret::Secret;
use crate::throttle::{Admission, Throttle, ThrottleKind};

/// The answer to a login attempt.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Right password, active account: open a session.
    Success(Box<Account>),
    /// Unknown login or wrong password (indistinguishable on purpose).
    InvalidCredentials,
    /// Right provisional password: the account must go through activation.
    /// `reset` tells whether an operator reset it.
    MustActivate { reset: bool },
    /// Right password but the account is locked by policy or operator.
    Locked,
    /// Right password but the account is disabled.
    Disabled,
    /// Too many attempts on this login from this address: try again later.
    Throttled,
}

/// Decides login attempts.
#[derive(Clone)]
pub struct Authenticator {
    pub accounts: Arc<dyn AccountRepository>,
    pub hashing: Arc<dyn PasswordHashing>,
    pub throttle: Throttle,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

const KIND: ThrottleKind = ThrottleKind::Password;

impl Authenticator {
    /// Checks `password` for `login` typed from `source` (an IP address).
    pub async fn login(&self, login: &str, password: Secret, source: &str) -> Result<LoginOutcome> {
        let typed = login.trim().to_owned();
        if self.throttle.attempt(KIND, &typed, source).await? == Admission::Refused {
            self.audit.record(AuditEvent::LoginThrottled { login: typed, source: source.to_owned() });
            return Ok(LoginOutcome::Throttled);
        }
        // Under a flood, refused before the account is read: the same
        // answer whatever the login, at the least cost.
        self.hashing.refuse_if_full()?;
        let account = match Login::parse(&typed) {
            Ok(l) => self.accounts.find_by_login(&l).await?,
            Err(_) => None,
        };
        let hash = account.as_ref().and_then(|a| match a.state {
            AccountState::Provisioned | AccountState::Reset => a.provisional_hash.clone(),
            AccountState::Active | AccountState::Locked | AccountState::Disabled => a.password_hash.clone(),
        });
        let ok = self.hashing.verify(password, hash).await?;
        let account = match account {
            Some(account) if ok => account,
            other => return self.failed(typed, source, other.map(|a| a.id)).await,
        };
        let outcome = match account.state {
            AccountState::Active => {
                self.throttle.succeeded(KIND, &typed, source).await?;
                self.accounts.record_login(account.id, self.clock.now()).await?;
                self.audit.record(AuditEvent::LoginSucceeded { login: typed, source: source.to_owned() });
                LoginOutcome::Success(Box::new(account))
            }
            AccountState::Provisioned => LoginOutcome::MustActivate { reset: false },
            AccountState::Reset => LoginOutcome::MustActivate { reset: true },
            AccountState::Locked => LoginOutcome::Locked,
            AccountState::Disabled => LoginOutcome::Disabled,
        };
        Ok(outcome)
    }

    async fn failed(&self, login: String, source: &str, account_id: Option<i64>) -> Result<LoginOutcome> {
        self.throttle.failed(KIND, source).await?;
        let lock_after = self.throttle.policy().lock_after;
        if let Some(id) = account_id {
            let failures = self.accounts.record_failed_login(id).await?;
            let locked = if lock_after > 0 && failures >= lock_after {
                self.accounts.find_by_id(id).await?.filter(|a| a.state == AccountState::Active)
            } else {
                None
            };
            if let Some(mut account) = locked {
                account.state = AccountState::Locked;
                account.updated_at = self.clock.now();
                self.accounts.update(&account).await?;
                self.audit.record(AuditEvent::AccountLocked { login: login.clone() });
            }
        }
        self.audit.record(AuditEvent::LoginFailed { login, source: source.to_owned(), reason: "bad credentials" });
        Ok(LoginOutcome::InvalidCredentials)
    }
}
