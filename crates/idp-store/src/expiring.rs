//! [`Expiring`]: the one in-memory map with a time to live per entry, under
//! the single-node adapters (tickets, sessions, counters, account-flow
//! records, OIDC codes and grants).
//!
//! The sweep rule: an expired entry is never returned; it is dropped when
//! it is touched by key, and every expired entry is dropped by a sweep that
//! runs on an insert once the map has doubled since the last sweep (and
//! holds at least [`MIN_SWEEP`] entries). A sweep costs one pass over the
//! map, paid for by the inserts since the previous one, so an insert stays
//! O(1) amortised; and the map never holds more than twice its live
//! entries at the last sweep plus [`MIN_SWEEP`], however many keys are
//! written and never read again.
//!
//! Time is an argument (`now`), read by the callers from the monotonic
//! clock, so that tests step it forward instead of sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Below this size the map is not swept (a sweep of a few hundred entries
/// would cost more than it frees).
pub(crate) const MIN_SWEEP: usize = 1024;

/// A map from string keys to values that expire.
pub(crate) struct Expiring<V> {
    entries: HashMap<String, (V, Instant)>,
    /// The size at which the next insert sweeps.
    sweep_at: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Self { entries: HashMap::new(), sweep_at: MIN_SWEEP }
    }
}

impl<V> Expiring<V> {
    /// Stores `value` under `key` until `now + ttl`, replacing any older
    /// value. Returns true when this insert swept the map (see the module
    /// documentation), so that an index kept beside the map can be pruned
    /// at the same moments.
    pub(crate) fn insert(&mut self, key: String, value: V, ttl: Duration, now: Instant) -> bool {
        let swept = self.entries.len() >= self.sweep_at;
        if swept {
            self.sweep(now);
        }
        self.entries.insert(key, (value, now + ttl));
        swept
    }

    /// The live value under `key`; an expired one is dropped.
    pub(crate) fn get_mut(&mut self, key: &str, now: Instant) -> Option<&mut V> {
        if self.entries.get(key).is_some_and(|(_, until)| *until <= now) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key).map(|(v, _)| v)
    }

    /// The live value under `key`, leaving the map as it is.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<&V> {
        self.entries.get(key).filter(|(_, until)| *until > now).map(|(v, _)| v)
    }

    /// Whether `key` holds a live value.
    pub(crate) fn contains(&self, key: &str, now: Instant) -> bool {
        self.get(key, now).is_some()
    }

    /// Removes the entry under `key` and returns its value if it was live.
    pub(crate) fn remove(&mut self, key: &str, now: Instant) -> Option<V> {
        let (value, until) = self.entries.remove(key)?;
        (until > now).then_some(value)
    }

    /// How many entries the map holds, expired ones not yet dropped
    /// included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops every expired entry and sets the size of the next sweep.
    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, (_, until)| *until > now);
        self.sweep_at = (self.entries.len() * 2).max(MIN_SWEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn an_expired_entry_is_never_returned() {
        let t0 = Instant::now();
        let mut map = Expiring::default();
        map.insert("a".into(), 1, MINUTE, t0);
        assert_eq!(map.get("a", t0), Some(&1));
        assert!(map.contains("a", t0 + MINUTE - Duration::from_secs(1)));
        let later = t0 + MINUTE;
        assert_eq!(map.get("a", later), None);
        assert!(!map.contains("a", later));
        assert_eq!(map.get_mut("a", later), None);
        assert_eq!(map.len(), 0, "touching an expired entry drops it");
        map.insert("b".into(), 2, MINUTE, t0);
        assert_eq!(map.remove("b", later), None);
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn insert_replaces_and_restarts_the_ttl() {
        let t0 = Instant::now();
        let mut map = Expiring::default();
        map.insert("a".into(), 1, MINUTE, t0);
        map.insert("a".into(), 2, MINUTE, t0 + MINUTE / 2);
        assert_eq!(map.get("a", t0 + MINUTE), Some(&2));
        if let Some(v) = map.get_mut("a", t0 + MINUTE) {
            *v = 3;
        }
        assert_eq!(map.remove("a", t0 + MINUTE), Some(3));
        assert_eq!(map.remove("a", t0 + MINUTE), None);
    }

    #[test]
    fn sweeps_keep_memory_bounded_by_the_live_entries() {
        let mut now = Instant::now();
        let mut map = Expiring::default();
        let mut sweeps = 0;
        // Keys written once and never read again, each living one second,
        // one written per tenth of a second: about ten are live at a time.
        for i in 0..100_000u32 {
            now += Duration::from_millis(100);
            if map.insert(format!("k{i}"), i, Duration::from_secs(1), now) {
                sweeps += 1;
            }
            assert!(map.len() <= MIN_SWEEP, "{} entries after {i} inserts", map.len());
        }
        assert!(sweeps >= 100_000 / MIN_SWEEP, "{sweeps} sweeps");
    }

    #[test]
    fn a_large_live_map_is_swept_rarely() {
        let now = Instant::now();
        let mut map = Expiring::default();
        let mut sweeps = 0;
        for i in 0..10_000u32 {
            sweeps += usize::from(map.insert(format!("k{i}"), i, MINUTE, now));
        }
        // Nothing expired: each sweep doubles the next threshold.
        assert_eq!(map.len(), 10_000);
        assert!(sweeps <= 5, "{sweeps} sweeps");
    }
}
