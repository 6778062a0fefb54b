//! Time comes in through [`Clock`] so that expiry can be tested by moving a
//! fixed clock forward instead of sleeping.

use chrono::{DateTime, Duration, Utc};
use std::sync::Mutex;

/// The source of "now" for every decision that depends on time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
}

impl FixedClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(now) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        // A poisoned lock only means another test thread panicked; the time
        // value itself is still consistent, so keep using it.
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
