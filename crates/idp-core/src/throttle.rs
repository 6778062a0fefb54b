//! Throttling of guesses (passwords, provisional passwords, secret
//! answers), on the [`RateLimiter`] port so that counters are shared by
//! every node once they live in Redis.
//!
//! The policy keeps guessing slow without handing anyone a way to lock
//! someone else out:
//! - per (login, source address) pair, attempts beyond `per_login_address`
//!   within the window are **refused**: only whoever is guessing from that
//!   address is stopped;
//! - per login alone (guesses from many addresses) and per source address
//!   alone (one address trying many logins, or a whole school behind one
//!   NAT address), going over `per_login` or `per_address` **slows down**
//!   each further attempt by a growing delay (1 s, 2 s, ... up to
//!   `max_delay_seconds`), and never refuses it.
//!
//! An attempt is counted atomically *before* its secret is checked (the
//! limiter's `hit` returns the new count), so parallel guesses cannot all
//! pass a check made before any of them was counted.

use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use crate::Result;
use crate::ports::RateLimiter;

/// Limits, from config.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlePolicy {
    /// Attempts on one login from one address within the window before
    /// the next ones from that address are refused.
    pub per_login_address: u64,
    /// Attempts on one login (from anywhere) within the window before
    /// each further attempt is delayed.
    pub per_login: u64,
    /// Failed attempts from one address within the window before each
    /// further attempt from it is delayed (a school shares one address).
    pub per_address: u64,
    /// The longest delay of a slowed-down attempt, in seconds.
    pub max_delay_seconds: u64,
    /// Window length in seconds; counting restarts after it.
    pub window_seconds: u64,
    /// Consecutive failures that lock the account (state `locked`, to be
    /// unlocked by an operator); 0 disables locking, the default, because a
    /// classmate could otherwise lock a child out on purpose.
    pub lock_after: i32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_login_address: 5,
            per_login: 10,
            per_address: 50,
            max_delay_seconds: 10,
            window_seconds: 900,
            lock_after: 0,
        }
    }
}

/// What is being guessed: each kind has its own counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleKind {
    /// An account's password or provisional password (login, activation,
    /// the current password in Mon compte).
    Password,
    /// The answers to the secret questions (forgotten password).
    SecretAnswers,
    /// Requests of a reset link by e-mail (forgotten password).
    ResetByEmail,
    /// Second-factor codes (TOTP or recovery codes).
    SecondFactor,
}

impl ThrottleKind {
    fn as_str(self) -> &'static str {
        match self {
            ThrottleKind::Password => "login",
            ThrottleKind::SecretAnswers => "questions",
            ThrottleKind::ResetByEmail => "forgot",
            ThrottleKind::SecondFactor => "mfa",
        }
    }
}

/// The decision on an attempt, taken before its secret is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go on and check the secret (after the slowdown delay, already
    /// waited).
    Admitted,
    /// Too many attempts on this login from this address: refused without
    /// checking anything.
    Refused,
}

/// Applies a [`ThrottlePolicy`] with a [`RateLimiter`].
#[derive(Clone)]
pub struct Throttle {
    limiter: Arc<dyn RateLimiter>,
    policy: ThrottlePolicy,
}

impl Throttle {
    pub fn new(limiter: Arc<dyn RateLimiter>, policy: ThrottlePolicy) -> Self {
        Self { limiter, policy }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.policy.window_seconds)
    }

    /// Counts an attempt of `kind` on `login` from `address`, before its
    /// secret is checked; waits the slowdown delay when one applies.
    pub async fn attempt(&self, kind: ThrottleKind, login: &str, address: &str) -> Result<Admission> {
        let pair = self.limiter.hit(&self.pair_key(kind, login, address).await?, self.window()).await?;
        if pair > self.policy.per_login_address {
            return Ok(Admission::Refused);
        }
        let by_login = self.limiter.hit(&login_key(kind, login), self.window()).await?;
        let by_address = self.limiter.count(&address_key(kind, address)).await?;
        let over = by_login
            .saturating_sub(self.policy.per_login)
            .max((by_address + 1).saturating_sub(self.policy.per_address));
        if over > 0 {
            let seconds = over.min(self.policy.max_delay_seconds.max(1));
            self.limiter.pause(Duration::from_secs(seconds)).await;
        }
        Ok(Admission::Admitted)
    }

    /// Counts a failed attempt against its source address.
    pub async fn failed(&self, kind: ThrottleKind, address: &str) -> Result<()> {
        self.limiter.hit(&address_key(kind, address), self.window()).await?;
        Ok(())
    }

    /// Forgets the attempts on `login` (a success, an operator's unlock or
    /// reset); the address's failures stay counted.
    pub async fn succeeded(&self, kind: ThrottleKind, login: &str, address: &str) -> Result<()> {
        self.limiter.clear(&login_key(kind, login)).await?;
        self.limiter.clear(&self.pair_key(kind, login, address).await?).await
    }

    /// Forgets every attempt on `login`, from every address (an operator's
    /// unlock, a new password): the pair counters move to a new generation.
    pub async fn forget_login(&self, kind: ThrottleKind, login: &str) -> Result<()> {
        self.limiter.clear(&login_key(kind, login)).await?;
        self.limiter.hit(&generation_key(kind, login), self.window()).await?;
        Ok(())
    }

    /// The counter of `login` from `address`, in the login's current
    /// generation. The generation counter is hit after any pair counter
    /// of the previous generation was, so it outlives them all.
    async fn pair_key(&self, kind: ThrottleKind, login: &str, address: &str) -> Result<String> {
        let generation = self.limiter.count(&generation_key(kind, login)).await?;
        Ok(format!("throttle:{}:pair:{}:{generation}:{address}", kind.as_str(), login.to_ascii_lowercase()))
    }

    /// Counts one event of `kind` from `address` and tells whether the
    /// address went over `per_address` (for requests that are not guesses,
    /// such as asking for a reset link).
    pub async fn address_over_limit(&self, kind: ThrottleKind, address: &str) -> Result<bool> {
        Ok(self.limiter.hit(&address_key(kind, address), self.window()).await? > self.policy.per_address)
    }
}

fn login_key(kind: ThrottleKind, login: &str) -> String {
    format!("throttle:{}:login:{}", kind.as_str(), login.to_ascii_lowercase())
}

fn address_key(kind: ThrottleKind, address: &str) -> String {
    format!("throttle:{}:addr:{address}", kind.as_str())
}

fn generation_key(kind: ThrottleKind, login: &str) -> String {
    format!("throttle:{}:generation:{}", kind.as_str(), login.to_ascii_lowercase())
}
