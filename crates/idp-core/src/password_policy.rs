//! The password policy: what a chosen password must be, and how strong it
//! looks.
//!
//! The server-side check is the authority (the page works without
//! JavaScript). The strength is an estimate in bits, documented here so the
//! help desk can explain a refusal:
//!
//! - the pool is the sum of the character classes used (26 lower case, 26
//!   upper case, 10 digits, 33 others), the estimate is
//!   `length × log2(pool)`;
//! - a password that is, or contains, a very common password, the login, or
//!   the person's name, or that is made of one repeated character or an
//!   alphabet/keyboard run, counts as "Très faible";
//! - levels: < 28 bits very weak, < 36 weak, < 60 medium, < 80 strong,
//!   ≥ 80 very strong.
//!
//! A password is accepted when it has at least `min_length` characters, at
//! least `min_classes` character classes, and a strength of at least
//! `min_strength`.

use serde::{Deserialize, Serialize};

/// How strong a password looks (shown in words on the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strength {
    VeryWeak,
    Weak,
    Medium,
    Strong,
    VeryStrong,
}

/// Why a password is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Password and confirmation differ.
    Mismatch,
    /// Fewer characters than the policy's minimum.
    TooShort { min: usize },
    /// Not enough kinds of characters.
    TooFewClasses { min: usize },
    /// Common, or made from the login or name.
    Guessable,
    /// Too weak for the policy, though long enough.
    TooWeak,
    /// More than 128 characters (hashing cost, typing mistakes).
    TooLong,
}

/// The policy, from config.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// Character classes required among lower case, upper case, digits and
    /// others.
    pub min_classes: usize,
    pub min_strength: Strength,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self { min_length: 8, min_classes: 3, min_strength: Strength::Medium }
    }
}

/// A few of the most used passwords (French and international lists);
/// matched case-insensitively, also as a part of the password.
const COMMON: &[&str] = &[
    "password",
    "motdepasse",
    "azerty",
    "qwerty",
    "123456",
    "soleil",
    "bonjour",
    "loulou",
    "doudou",
    "marseille",
    "chocolat",
    "jetaime",
    "coucou",
    "football",
    "iloveyou",
    "admin",
    "welcome",
    "princesse",
    "nicolas",
    "camille",
    "motdepass",
    "passw0rd",
    "touraine",
    "eschool",
    "college",
    "ecole",
];

/// Runs that people type when asked for "something complicated".
const RUNS: &[&str] =
    &["abcdefghijklmnopqrstuvwxyz", "azertyuiopqsdfghjklmwxcvbn", "qwertyuiopasdfghjklzxcvbnm", "01234567890"];

fn classes(password: &str) -> usize {
    let lower = password.chars().any(|c| c.is_lowercase());
    let upper = password.chars().any(|c| c.is_uppercase());
    let digit = password.chars().any(|c| c.is_ascii_digit());
    let other = password.chars().any(|c| !c.is_alphanumeric());
    [lower, upper, digit, other].iter().filter(|b| **b).count()
}

fn guessable(password: &str, personal: &[&str]) -> bool {
    let lower = password.to_lowercase();
    let first = lower.chars().next();
    if lower.chars().all(|c| Some(c) == first) {
        return true;
    }
    if RUNS.iter().any(|run| run.contains(&lower)) {
        return true;
    }
    if COMMON.iter().any(|c| lower.contains(c) && c.len() * 2 > lower.len()) {
        return true;
    }
    personal.iter().map(|p| p.trim().to_lowercase()).filter(|p| p.chars().count() >= 3).any(|p| lower.contains(&p))
}

impl PasswordPolicy {
    /// The estimated strength of `password`; `personal` are the login and
    /// names of the person, which make a password guessable.
    pub fn strength(&self, password: &str, personal: &[&str]) -> Strength {
        if guessable(password, personal) {
            return Strength::VeryWeak;
        }
        let mut pool = 0u32;
        if password.chars().any(|c| c.is_lowercase()) {
            pool += 26;
        }
        if password.chars().any(|c| c.is_uppercase()) {
            pool += 26;
        }
        if password.chars().any(|c| c.is_ascii_digit()) {
            pool += 10;
        }
        if password.chars().any(|c| !c.is_alphanumeric()) {
            pool += 33;
        }
        let bits = password.chars().count() as f64 * f64::from(pool.max(1)).log2();
        match bits {
            b if b < 28.0 => Strength::VeryWeak,
            b if b < 36.0 => Strength::Weak,
            b if b < 60.0 => Strength::Medium,
            b if b < 80.0 => Strength::Strong,
            _ => Strength::VeryStrong,
        }
    }

    /// Checks a new password and its confirmation. On success, the
    /// strength (for the page).
    pub fn check(&self, password: &str, confirmation: &str, personal: &[&str]) -> Result<Strength, Refusal> {
        let length = password.chars().count();
        if length > 128 {
            return Err(Refusal::TooLong);
        }
        if length < self.min_length {
            return Err(Refusal::TooShort { min: self.min_length });
        }
        if classes(password) < self.min_classes.min(4) {
            return Err(Refusal::TooFewClasses { min: self.min_classes.min(4) });
        }
        if guessable(password, personal) {
            return Err(Refusal::Guessable);
        }
        let strength = self.strength(password, personal);
        if strength < self.min_strength {
            return Err(Refusal::TooWeak);
        }
        if password != confirmation {
            return Err(Refusal::Mismatch);
        }
        Ok(strength)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_with_a_reason() {
        let p = PasswordPolicy::default();
        assert_eq!(p.check("Ab1!", "Ab1!", &[]), Err(Refusal::TooShort { min: 8 }));
        assert_eq!(p.check("abcdefgh1", "abcdefgh1", &[]), Err(Refusal::TooFewClasses { min: 3 }));
        assert_eq!(p.check("Azerty123", "Azerty123", &[]), Err(Refusal::Guessable));
        assert_eq!(p.check("Lea.Petit42", "Lea.Petit42", &["l.petit", "Léa", "Petit"]), Err(Refusal::Guessable));
        assert_eq!(p.check("Vélo-Rouge-27", "Vélo-Rouge-28", &[]), Err(Refusal::Mismatch));
        assert_eq!(p.check("Vélo-Rouge-27", "Vélo-Rouge-27", &[]), Ok(Strength::VeryStrong));
        assert_eq!(p.strength("Tr4m!way", &[]), Strength::Medium);
    }
}
