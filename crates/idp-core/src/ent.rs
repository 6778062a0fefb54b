//! The directory attributes of the national ENT framework (SDET, "annexe
//! opérationnelle annuaire") that ENT services expect, and how their values
//! are checked when an operator imports them.
//!
//! They live in [`crate::account::Account::attributes`] under their SDET
//! names. The e-mail (`mail`) and the schools' UAI (`ENTPersonStructRattachRNE`)
//! are the account's own `email` and `schools` fields.

use chrono::NaiveDate;

use crate::account::Account;
use crate::{Error, Result};

pub const JOINTURE: &str = "ENTPersonJointure";
pub const LOGIN: &str = "ENTPersonLogin";
pub const PROFILS: &str = "ENTPersonProfils";
pub const STRUCT_RATTACH: &str = "ENTPersonStructRattach";
pub const ELEVE_CLASSES: &str = "ENTEleveClasses";
pub const ELEVE_MEF: &str = "ENTEleveMEF";
pub const AUX_ENS_CLASSES: &str = "ENTAuxEnsClasses";
pub const DATE_NAISSANCE: &str = "ENTPersonDateNaissance";

/// The SDET attributes an account may carry, as import columns and `account
/// show` lines.
pub const KNOWN: [&str; 8] =
    [JOINTURE, LOGIN, PROFILS, STRUCT_RATTACH, ELEVE_CLASSES, ELEVE_MEF, AUX_ENS_CLASSES, DATE_NAISSANCE];

/// The national profile codes (`ENTPersonProfils`).
pub const PROFILE_CODES: [&str; 9] = [
    "National_ELV",
    "National_TUT",
    "National_ENS",
    "National_DIR",
    "National_EVS",
    "National_ETA",
    "National_DOC",
    "National_COL",
    "National_ACA",
];

/// The numeric form some services ask for (Pronote's `categories`).
pub const NUMERIC_CODES: [&str; 4] = ["National_1", "National_2", "National_3", "National_4"];

/// The SDET name of a known attribute, matched without regard to case (CSV
/// headers are typed by hand).
pub fn canonical_name(name: &str) -> Option<&'static str> {
    KNOWN.into_iter().find(|k| k.eq_ignore_ascii_case(name.trim()))
}

/// A profile code in its canonical spelling: one of [`PROFILE_CODES`] or
/// [`NUMERIC_CODES`], accepted in any case (GAR sends `National_elv`).
pub fn parse_profile_code(value: &str) -> Result<&'static str> {
    let value = value.trim();
    PROFILE_CODES
        .into_iter()
        .chain(NUMERIC_CODES)
        .find(|c| c.eq_ignore_ascii_case(value))
        .ok_or_else(|| Error::invalid("profile code", format!("'{value}' is not a national profile code")))
}

/// The numeric form of a profile code: élève 1, responsable 2, enseignant 3,
/// every other personnel 4.
pub fn numeric_profile(code: &str) -> Option<&'static str> {
    let code = parse_profile_code(code).ok()?;
    match code {
        "National_ELV" => Some("National_1"),
        "National_TUT" => Some("National_2"),
        "National_ENS" => Some("National_3"),
        "National_DIR" | "National_EVS" | "National_ETA" | "National_DOC" | "National_COL" | "National_ACA" => {
            Some("National_4")
        }
        numeric => Some(numeric),
    }
}

/// The account's profile codes: its `ENTPersonProfils` when the directory
/// gave them, else the code of its login profile.
pub fn profiles_of(account: &Account) -> Vec<String> {
    match account.attributes.get(PROFILS) {
        Some(codes) if !codes.is_empty() => codes.clone(),
        _ => vec![account.profile.national_code().to_owned()],
    }
}

/// Checks the values of attribute `name` (one of [`KNOWN`]) given in one
/// cell: several values are separated by `|`; empty values are dropped.
pub fn parse_values(name: &'static str, cell: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for value in cell.split('|').map(str::trim).filter(|v| !v.is_empty()) {
        let value = match name {
            PROFILS => parse_profile_code(value)?.to_owned(),
            DATE_NAISSANCE => parse_birth_date(value)?,
            JOINTURE => parse_jointure(value)?,
            _ => parse_text(name, value)?,
        };
        if !out.contains(&value) {
            out.push(value);
        }
    }
    if name == DATE_NAISSANCE && out.len() > 1 {
        return Err(Error::invalid("ENTPersonDateNaissance", "one date of birth expected"));
    }
    Ok(out)
}

/// A date of birth as SDET writes it, `JJ/MM/AAAA`; `AAAA-MM-JJ` is accepted
/// and rewritten.
pub fn parse_birth_date(value: &str) -> Result<String> {
    let date =
        NaiveDate::parse_from_str(value, "%d/%m/%Y")
            .or_else(|_| NaiveDate::parse_from_str(value, "%Y-%m-%d"))
            .map_err(|_| Error::invalid("ENTPersonDateNaissance", format!("'{value}' is not a date (JJ/MM/AAAA)")))?;
    Ok(date.format("%d/%m/%Y").to_string())
}

/// `<source>$<identifiant>`, e.g. `AC-ORLEANS-TOURS$1234567`.
fn parse_jointure(value: &str) -> Result<String> {
    match value.split_once('$') {
        Some((source, id)) if !source.is_empty() && !id.is_empty() => parse_text(JOINTURE, value),
        _ => Err(Error::invalid("ENTPersonJointure", format!("'{value}' is not <source>$<identifiant>"))),
    }
}

fn parse_text(name: &'static str, value: &str) -> Result<String> {
    if value.chars().count() > 256 || value.chars().any(char::is_control) {
        return Err(Error::invalid(name, "at most 256 characters, without control characters"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_codes() {
        assert_eq!(parse_profile_code("national_elv").unwrap(), "National_ELV");
        assert_eq!(parse_profile_code("National_3").unwrap(), "National_3");
        assert!(parse_profile_code("National_XYZ").is_err());
        assert_eq!(numeric_profile("National_TUT"), Some("National_2"));
        assert_eq!(numeric_profile("National_DOC"), Some("National_4"));
        assert_eq!(numeric_profile("National_1"), Some("National_1"));
    }

    #[test]
    fn values() {
        assert_eq!(parse_values(PROFILS, "National_ENS | national_dir").unwrap(), ["National_ENS", "National_DIR"]);
        assert_eq!(parse_values(DATE_NAISSANCE, "2012-03-04").unwrap(), ["04/03/2012"]);
        assert!(parse_values(DATE_NAISSANCE, "31/02/2012").is_err());
        assert!(parse_values(DATE_NAISSANCE, "01/02/2012|02/02/2012").is_err());
        assert!(parse_values(JOINTURE, "1234567").is_err());
        assert_eq!(parse_values(ELEVE_CLASSES, "0370001A$3A||0370001A$3A").unwrap(), ["0370001A$3A"]);
        assert_eq!(canonical_name("entelevemef"), Some(ELEVE_MEF));
    }
}
