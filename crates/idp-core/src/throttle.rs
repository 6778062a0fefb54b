//! Throttling of failed logins, per login and per source address
//! (DESIGN.md §5), on the [`RateLimiter`] port so that counters are shared
//! by every node once they live in Redis.

use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

use crate::Result;
use crate::ports::RateLimiter;

/// Limits, from config.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlePolicy {
    /// Failed attempts on one login within the window before it is refused.
    pub per_login: u64,
    /// Failed attempts from one address within the window before it is
    /// refused (a school shares one address: keep it generous).
    pub per_address: u64,
    /// Window length in seconds; counting restarts after it.
    pub window_seconds: u64,
    /// Consecutive failures that lock the account (state `locked`, to be
    /// unlocked by an operator); 0 disables locking, the default, because a
    /// classmate could otherwise lock a child out on purpose.
    pub lock_after: i32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self { per_login: 5, per_address: 50, window_seconds: 900, lock_after: 0 }
    }
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

    fn login_key(kind: &str, login: &str) -> String {
        format!("throttle:{kind}:login:{}", login.to_ascii_lowercase())
    }

    fn address_key(kind: &str, address: &str) -> String {
        format!("throttle:{kind}:addr:{address}")
    }

    /// Whether attempts of `kind` ("login", "activation") on `login` from
    /// `address` are refused for now.
    pub async fn is_blocked(&self, kind: &str, login: &str, address: &str) -> Result<bool> {
        let by_login = self.limiter.count(&Self::login_key(kind, login)).await?;
        if by_login >= self.policy.per_login {
            return Ok(true);
        }
        Ok(self.limiter.count(&Self::address_key(kind, address)).await? >= self.policy.per_address)
    }

    /// Counts a failed attempt.
    pub async fn record_failure(&self, kind: &str, login: &str, address: &str) -> Result<()> {
        let window = Duration::from_secs(self.policy.window_seconds);
        self.limiter.hit(&Self::login_key(kind, login), window).await?;
        self.limiter.hit(&Self::address_key(kind, address), window).await?;
        Ok(())
    }

    /// Forgets the failures of `login` (a success, an operator's unlock).
    pub async fn clear_login(&self, kind: &str, login: &str) -> Result<()> {
        self.limiter.clear(&Self::login_key(kind, login)).await
    }
}
