//! Secrets and random tokens.
//!
//! A [`Secret`] never shows its value in `Debug` and is not `Serialize`, so
//! it cannot reach a log or a response by accident. Tokens (tickets, session
//! ids, CSRF tokens) come from the operating system's CSPRNG.

use subtle::ConstantTimeEq;

/// A secret string: a password, a provisional password, a ticket.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the few places that must use it (hashing, a cookie).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// Read from configuration (a client secret); never written back.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Compares two secrets in constant time (for a given length).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A random token of `chars` characters from `[A-Za-z0-9]`, drawn from the
/// OS CSPRNG without modulo bias (each character carries log2(62) ≈ 5.95
/// bits, so 32 characters carry more than 190 bits).
pub fn random_token(chars: usize) -> crate::Result<String> {
    let mut out = String::with_capacity(chars);
    let mut buf = [0u8; 64];
    while out.len() < chars {
        getrandom::fill(&mut buf).map_err(|e| crate::Error::Random(e.into()))?;
        for b in buf {
            // 248 = 4 * 62: values above would bias the first characters.
            if b < 248 {
                if let Some(c) = ALPHABET.get(usize::from(b % 62)) {
                    out.push(char::from(*c));
                }
                if out.len() == chars {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// A provisional password that a person can type from a letter: 10
/// characters without the look-alikes (0/O, 1/l/I).
pub fn provisional_password() -> crate::Result<String> {
    const READABLE: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut out = String::with_capacity(10);
    let mut buf = [0u8; 32];
    while out.len() < 10 {
        getrandom::fill(&mut buf).map_err(|e| crate::Error::Random(e.into()))?;
        let limit = (256 / READABLE.len() * READABLE.len()) as u8;
        for b in buf {
            if b < limit {
                if let Some(c) = READABLE.get(usize::from(b) % READABLE.len()) {
                    out.push(char::from(*c));
                }
                if out.len() == 10 {
                    break;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_in_the_cas_alphabet() {
        let a = random_token(40).unwrap();
        let b = random_token(40).unwrap();
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn provisional_passwords_avoid_lookalikes() {
        let p = provisional_password().unwrap();
        assert_eq!(p.len(), 10);
        assert!(!p.contains(['0', 'O', '1', 'l', 'I']));
    }
}
