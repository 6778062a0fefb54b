//! The password policy: what a chosen password must be, and how strong it
//! looks. One estimator decides both: the page's live indicator asks the
//! server, which answers with [`PasswordPolicy::evaluate`], and the form's
//! submission goes through [`PasswordPolicy::check`], so the label shown
//! while typing and the verdict never disagree.
//!
//! The rules follow NIST SP 800-63B and the ANSSI guidance: length and a
//! blocklist matter, composition rules alone do not (they apply only when
//! `min_classes` is configured). A password is refused, in this order, when:
//!
//! 1. it has more than [`MAX_LENGTH`] characters;
//! 2. it has fewer than `min_length` characters;
//! 3. it mixes fewer than `min_classes` kinds among lower case, upper case,
//!    digits and others (0, the default, turns this rule off);
//! 4. it contains a contextual word: the login, the given or family name,
//!    a school code, or a word of the site's name (compared without case
//!    or accents; names of at least 3 letters, site words of at least 4);
//! 5. its letters alone are a common password of the blocklist
//!    (`Soleil2024!` is `soleil`);
//! 6. its zxcvbn score (0 to 4, from the estimated number of guesses, with
//!    the contextual words and the blocklist as user inputs) is below the
//!    `min_strength` level.
//!
//! The strength words are the zxcvbn scores: 0 « Très faible », 1
//! « Faible », 2 « Moyen », 3 « Sûr », 4 « Très sûr ». A password refused by
//! a rule is shown below the required level, so a refused password is never
//! labelled strong enough.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// More characters than this are refused (hashing cost, typing mistakes).
pub const MAX_LENGTH: usize = 128;

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

impl Strength {
    /// The level just below this one (`VeryWeak` stays).
    fn below(self) -> Strength {
        match self {
            Strength::VeryWeak | Strength::Weak => Strength::VeryWeak,
            Strength::Medium => Strength::Weak,
            Strength::Strong => Strength::Medium,
            Strength::VeryStrong => Strength::Strong,
        }
    }

    fn of_score(score: zxcvbn::Score) -> Strength {
        match u8::from(score) {
            0 => Strength::VeryWeak,
            1 => Strength::Weak,
            2 => Strength::Medium,
            3 => Strength::Strong,
            _ => Strength::VeryStrong,
        }
    }
}

/// Why a password is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Password and confirmation differ.
    Mismatch,
    /// Fewer characters than the policy's minimum.
    TooShort { min: usize },
    /// More than [`MAX_LENGTH`] characters.
    TooLong { max: usize },
    /// Not enough kinds of characters (only when configured).
    TooFewClasses { min: usize },
    /// Contains the login, a name, a school or the site's name.
    Personal,
    /// A common password of the blocklist.
    Common,
    /// The estimator's level is below the policy's minimum.
    TooWeak { min: Strength },
}

/// The estimator's answer for one password: its strength and, when it is
/// refused, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub strength: Strength,
    pub refusal: Option<Refusal>,
}

/// The policy, from config (`[password_policy]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// Kinds of characters required among lower case, upper case, digits
    /// and others; 0 (the default) requires none.
    pub min_classes: usize,
    /// The lowest accepted level of the estimator.
    pub min_strength: Strength,
    /// Common passwords refused besides the built-in list, compared on
    /// their letters without case or accents.
    pub blocklist: Vec<String>,
    /// Whether the built-in list of common passwords applies.
    pub builtin_blocklist: bool,
    /// Words of the site's name, refused inside a password; set from the
    /// `site_name` setting, not read from the policy's section.
    #[serde(skip)]
    pub site_words: Vec<String>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            min_classes: 0,
            min_strength: Strength::Strong,
            blocklist: Vec::new(),
            builtin_blocklist: true,
            site_words: Vec::new(),
        }
    }
}

/// Some of the most used passwords in France and elsewhere, compared on the
/// letters of a password (without case or accents).
pub const COMMON: &[&str] = &[
    "password",
    "motdepasse",
    "motdepass",
    "azerty",
    "azertyuiop",
    "qwerty",
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
    "passw",
    "college",
    "ecole",
    "lycee",
    "chouchou",
    "pokemon",
    "minecraft",
];

/// Lower case, without accents: `Léa` and `LEA` compare equal.
fn fold(s: &str) -> String {
    s.nfd().filter(|c| !('\u{300}'..='\u{36f}').contains(c)).flat_map(char::to_lowercase).collect()
}

fn classes(password: &str) -> usize {
    let lower = password.chars().any(|c| c.is_lowercase());
    let upper = password.chars().any(|c| c.is_uppercase());
    let digit = password.chars().any(|c| c.is_ascii_digit());
    let other = password.chars().any(|c| !c.is_alphanumeric());
    [lower, upper, digit, other].iter().filter(|b| **b).count()
}

impl PasswordPolicy {
    /// The policy with the words of the site's name (`ENT Touraine
    /// e-school` gives `touraine` and `school`) as contextual words.
    pub fn for_site(mut self, site_name: &str) -> Self {
        self.site_words = fold(site_name)
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 4)
            .map(str::to_owned)
            .collect();
        self
    }

    /// The blocklist in force (built-in and configured), folded.
    fn blocked(&self) -> impl Iterator<Item = String> + '_ {
        let builtin = if self.builtin_blocklist { COMMON } else { &[] };
        builtin.iter().map(|w| fold(w)).chain(self.blocklist.iter().map(|w| fold(w)))
    }

    /// The contextual words: the person's (`personal`, names of at least 3
    /// letters) and the site's.
    fn contextual(&self, personal: &[&str]) -> Vec<String> {
        let people = personal.iter().map(|p| fold(p.trim())).filter(|p| p.chars().count() >= 3);
        people.chain(self.site_words.iter().cloned()).collect()
    }

    /// The first rule `password` breaks before the estimator is asked.
    fn rule(&self, password: &str, context: &[String]) -> Option<Refusal> {
        let length = password.chars().count();
        if length > MAX_LENGTH {
            return Some(Refusal::TooLong { max: MAX_LENGTH });
        }
        if length < self.min_length {
            return Some(Refusal::TooShort { min: self.min_length });
        }
        let min_classes = self.min_classes.min(4);
        if classes(password) < min_classes {
            return Some(Refusal::TooFewClasses { min: min_classes });
        }
        let folded = fold(password);
        if context.iter().any(|w| folded.contains(w.as_str())) {
            return Some(Refusal::Personal);
        }
        let letters: String = folded.chars().filter(|c| c.is_alphabetic()).collect();
        if self.blocked().any(|w| w == letters || w == folded) {
            return Some(Refusal::Common);
        }
        None
    }

    /// The estimator's verdict on `password` for the person whose login,
    /// names and school codes are `personal`.
    pub fn evaluate(&self, password: &str, personal: &[&str]) -> Verdict {
        let context = self.contextual(personal);
        // The estimator reads at most 100 characters itself; the length
        // rule refuses longer passwords anyway.
        let inputs: Vec<String> = context.iter().cloned().chain(self.blocked()).collect();
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let strength = Strength::of_score(zxcvbn::zxcvbn(password, &inputs).score());
        match self.rule(password, &context) {
            Some(refusal) => Verdict { strength: strength.min(self.min_strength.below()), refusal: Some(refusal) },
            None if strength < self.min_strength => {
                Verdict { strength, refusal: Some(Refusal::TooWeak { min: self.min_strength }) }
            }
            None => Verdict { strength, refusal: None },
        }
    }

    /// Checks a new password and its confirmation. On success, the
    /// strength (for the page).
    pub fn check(&self, password: &str, confirmation: &str, personal: &[&str]) -> Result<Strength, Refusal> {
        let verdict = self.evaluate(password, personal);
        if let Some(refusal) = verdict.refusal {
            return Err(refusal);
        }
        if password != confirmation {
            return Err(Refusal::Mismatch);
        }
        Ok(verdict.strength)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::default().for_site("ENT Touraine e-school")
    }

    #[test]
    fn refusals_come_with_their_rule() {
        let p = policy();
        assert_eq!(p.check("Ab1!", "Ab1!", &[]), Err(Refusal::TooShort { min: 8 }));
        assert_eq!(p.check(&"a".repeat(129), "", &[]), Err(Refusal::TooLong { max: 128 }));
        assert_eq!(p.check("Soleil2024!", "Soleil2024!", &[]), Err(Refusal::Common));
        assert_eq!(p.check("bicyclette", "bicyclette", &[]), Err(Refusal::TooWeak { min: Strength::Strong }));
        assert_eq!(p.check("Touraine2024!", "Touraine2024!", &[]), Err(Refusal::Personal));
        let martin = ["jmartin", "Jean", "Martin"];
        assert_eq!(p.check("Martin.2024!x", "Martin.2024!x", &martin), Err(Refusal::Personal));
        assert_eq!(p.check("Lea.Petit42", "Lea.Petit42", &["l.petit", "Léa", "Petit"]), Err(Refusal::Personal));
        assert_eq!(p.check("kR7#pq2Z", "kR7#pq2Z", &[]), Err(Refusal::TooWeak { min: Strength::Strong }));
        assert_eq!(p.check("Vélo-Rouge-27", "Vélo-Rouge-28", &[]), Err(Refusal::Mismatch));
    }

    #[test]
    fn a_long_passphrase_is_accepted_without_composition_rules() {
        let p = policy();
        let phrase = "cheval lampe orage velo";
        assert_eq!(p.check(phrase, phrase, &["jmartin", "Jean", "Martin"]), Ok(Strength::VeryStrong));
    }

    #[test]
    fn composition_applies_only_when_configured() {
        let p = PasswordPolicy { min_classes: 3, ..policy() };
        let phrase = "cheval lampe orage velo";
        assert_eq!(p.check(phrase, phrase, &[]), Err(Refusal::TooFewClasses { min: 3 }));
    }

    #[test]
    fn a_refused_password_is_labelled_below_the_minimum() {
        let p = policy();
        let v = p.evaluate("Martin.2024!x", &["jmartin", "Jean", "Martin"]);
        assert!(v.strength < p.min_strength);
        assert_eq!(p.evaluate("cheval lampe orage velo", &[]).refusal, None);
    }

    #[test]
    fn short_names_and_site_words_do_not_refuse_everything() {
        let p = policy();
        // "ENT" and "e" are too short to count; a two-letter name too.
        assert_eq!(p.evaluate("argent vent levant dent", &["li"]).refusal, None);
    }
}
