//! Secret questions: the default list, the normalisation of answers, and
//! choosing and checking two of them.
//!
//! Answers are compared after normalisation: accents, case and runs of
//! spaces are folded ("  Médor " = "medor"), other characters stay. They
//! are stored as argon2id hashes of the normalised form, never in clear.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::lifecycle::{FlowError, FlowResult, Lifecycle, SecretAnswers};
use crate::secret::Secret;

/// The questions offered when the config gives none.
pub fn default_questions() -> Vec<String> {
    [
        "Quel est le nom de votre premier animal de compagnie ?",
        "Dans quelle ville êtes-vous né(e) ?",
        "Quel est le prénom de votre meilleur(e) ami(e) d'enfance ?",
        "Quel est le nom de votre école primaire ?",
        "Quel est votre plat préféré ?",
        "Quel est le nom de jeune fille de votre grand-mère ?",
        "Quelle est la marque de votre première voiture ou de votre premier vélo ?",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// The comparable form of an answer: without accents, lower case, spaces
/// trimmed and folded to one.
pub fn normalise_answer(answer: &str) -> String {
    let stripped: String = answer.nfd().filter(|c| !is_combining_mark(*c)).collect();
    stripped.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Lifecycle {
    /// Checks a choice of two questions and their answers, and hashes the
    /// answers.
    pub async fn secret_answers(&self, q1: &str, a1: &str, q2: &str, a2: &str) -> FlowResult<SecretAnswers> {
        let known = |q: &str| self.policy.questions.iter().any(|k| k == q);
        if !known(q1) || !known(q2) {
            return Err(FlowError::UnknownQuestion);
        }
        if q1 == q2 {
            return Err(FlowError::SameQuestion);
        }
        let (n1, n2) = (normalise_answer(a1), normalise_answer(a2));
        let ok = |n: &str| !n.is_empty() && n.chars().count() <= 100;
        if !ok(&n1) || !ok(&n2) {
            return Err(FlowError::BadAnswer);
        }
        Ok(SecretAnswers {
            question1: q1.to_owned(),
            answer1_hash: self.hashing.hash(Secret::new(n1)).await?,
            question2: q2.to_owned(),
            answer2_hash: self.hashing.hash(Secret::new(n2)).await?,
        })
    }

    /// Two questions for a login that has none (or does not exist), always
    /// the same for one login, so that the page does not tell whether the
    /// account exists.
    pub(crate) fn decoy_questions(&self, login: &str) -> (String, String) {
        let key = self.policy.decoy_key.as_deref().unwrap_or("idp-decoy");
        let digest = Sha256::digest(format!("{key}:{}", login.trim().to_lowercase()).as_bytes());
        let n = self.policy.questions.len().max(2);
        let first = digest.first().map(|b| usize::from(*b)).unwrap_or(0) % n;
        let mut second = digest.get(1).map(|b| usize::from(*b)).unwrap_or(1) % n;
        if second == first {
            second = (first + 1) % n;
        }
        let q = |i: usize| self.policy.questions.get(i).cloned().unwrap_or_default();
        (q(first), q(second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_compared_without_case_accents_and_extra_spaces() {
        assert_eq!(normalise_answer("  Médor  le   Chien "), "medor le chien");
        assert_eq!(normalise_answer("ÉCOLE Jules-Ferry"), "ecole jules-ferry");
        assert_eq!(normalise_answer("   "), "");
    }
}
