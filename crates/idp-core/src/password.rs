//! Password hashing policy: argon2id with parameters from config.
//!
//! Hashing is CPU-bound (tens of milliseconds); callers reach it through the
//! [`crate::ports::PasswordHashing`] port, whose adapter runs it on a bounded
//! blocking pool, never on the async runtime.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;

use crate::secret::Secret;
use crate::{Error, Result};

/// argon2id cost parameters. The defaults are OWASP's (m=19456 KiB, t=2,
/// p=1); tests use cheaper ones.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self { memory_kib: 19456, iterations: 2, parallelism: 1 }
    }
}

/// Hashes and verifies passwords with argon2id. Synchronous on purpose.
#[derive(Clone)]
pub struct Argon2Hasher {
    argon2: Argon2<'static>,
    /// A hash of a random password, verified when the login is unknown so
    /// that unknown logins cost the same time as wrong passwords.
    dummy_hash: String,
}

impl Argon2Hasher {
    pub fn new(params: Argon2Params) -> Result<Self> {
        let p = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| Error::invalid("argon2 parameters", e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut hasher = Self { argon2, dummy_hash: String::new() };
        hasher.dummy_hash = hasher.hash(&Secret::new(crate::secret::random_token(24)?))?;
        Ok(hasher)
    }

    /// The PHC string (`$argon2id$v=19$m=...`) of `password` with a fresh salt.
    pub fn hash(&self, password: &Secret) -> Result<String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::Random(e.into()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Hashing(e.into()))?;
        self.argon2
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Hashing(e.into()))
    }

    /// Whether `password` matches `hash`. With no hash (unknown login, no
    /// password set), verifies against the dummy hash and answers false, so
    /// the time spent does not tell which case it was. The comparison inside
    /// argon2 is constant-time.
    pub fn verify(&self, password: &Secret, hash: Option<&str>) -> bool {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            // A corrupt stored hash must not be faster than a real one.
            let _ = self.verify(password, None);
            return false;
        };
        // Stored hashes keep their own parameters; verify with them.
        let ok = self.argon2.verify_password(password.expose().as_bytes(), &parsed).is_ok();
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn hash_then_verify() {
        let h = cheap();
        let hash = h.hash(&Secret::new("Correct-Horse-1")).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(h.verify(&Secret::new("Correct-Horse-1"), Some(&hash)));
        assert!(!h.verify(&Secret::new("correct-horse-1"), Some(&hash)));
        assert!(!h.verify(&Secret::new("x"), None));
        assert!(!h.verify(&Secret::new("x"), Some("not a hash")));
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(Argon2Hasher::new(Argon2Params { memory_kib: 1, iterations: 0, parallelism: 1 }).is_err());
    }
}
