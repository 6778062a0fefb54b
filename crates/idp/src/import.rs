//! `idp account import FILE.csv`: creates new accounts and updates existing
//! ones from a school export, all or nothing.
//!
//! Header: `login,profile,given_name,family_name`, then optionally
//! `email,provisional_password,school` in any order; `,` or `;` separated;
//! UTF-8 (with or without BOM) or Latin-1 (Windows-1252, as spreadsheets
//! export). Several schools in one cell are separated by `|` or spaces.
//!
//! Optional SDET columns carry the directory attributes ENT services use
//! (`ENTPersonJointure`, `ENTPersonLogin`, `ENTPersonProfils`,
//! `ENTPersonStructRattach`, `ENTEleveClasses`, `ENTEleveMEF`,
//! `ENTAuxEnsClasses`, `ENTPersonDateNaissance`; header case does not
//! matter); several values in one cell are separated by `|`. On an update,
//! an empty cell keeps the stored value, as for `email`.
//!
//! The output cells that a spreadsheet would take for a formula get a
//! leading `'` (see `as_text`).

use anyhow::{Context, bail};
use std::collections::{HashMap, HashSet};

use idp_core::account::{AccountState, Login, NewAccount, Profile, parse_email, parse_name, parse_uai};
use idp_core::ent;
use idp_core::secret::{Secret, provisional_password};

use crate::stores::Stores;

/// What an import did.
pub struct ImportReport {
    /// `login,provisional_password` of the created accounts, with a header.
    pub csv: String,
    pub created: usize,
    pub updated: usize,
}

/// One checked row.
struct Row {
    line: u64,
    login: Login,
    profile: Profile,
    given_name: String,
    family_name: String,
    email: Option<String>,
    provisional_password: Option<String>,
    schools: Option<Vec<String>>,
    /// SDET attributes given in this row (non-empty cells only).
    ent: Vec<(&'static str, Vec<String>)>,
}

/// Decodes the file: UTF-8 (BOM stripped), else Windows-1252.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

fn parse_rows(text: &str) -> anyhow::Result<Vec<Row>> {
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.contains(';') && !first.contains(',') { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> =
        reader.headers().context("line 1: cannot read the header")?.iter().map(|h| h.to_ascii_lowercase()).collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let known = ["login", "profile", "given_name", "family_name", "email", "provisional_password", "school"];
    if let Some(unknown) = headers.iter().find(|h| !known.contains(&h.as_str()) && ent::canonical_name(h).is_none()) {
        bail!("line 1: unknown column '{unknown}' (known: {}, {})", known.join(", "), ent::KNOWN.join(", "));
    }
    let ent_columns: Vec<(usize, &'static str)> =
        headers.iter().enumerate().filter_map(|(i, h)| ent::canonical_name(h).map(|n| (i, n))).collect();
    let (Some(c_login), Some(c_profile), Some(c_given), Some(c_family)) =
        (col("login"), col("profile"), col("given_name"), col("family_name"))
    else {
        bail!("line 1: the header must start with login,profile,given_name,family_name");
    };
    let (c_email, c_pass, c_school) = (col("email"), col("provisional_password"), col("school"));
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| anyhow::anyhow!("line {}: {e}", e.position().map(|p| p.line()).unwrap_or(0)))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::trim).filter(|v| !v.is_empty());
        let at = |e: idp_core::Error| anyhow::anyhow!("line {line}: {e}");
        let login = Login::parse(get(Some(c_login)).unwrap_or_default()).map_err(at)?;
        if !seen.insert(login.canonical()) {
            bail!("line {line}: login '{login}' appears twice in the file");
        }
        let provisional_password = get(c_pass).map(str::to_owned);
        if provisional_password.as_ref().is_some_and(|p| p.chars().count() < 8) {
            bail!("line {line}: the provisional password must have at least 8 characters");
        }
        let mut ent_values = Vec::new();
        for (c, name) in &ent_columns {
            if let Some(cell) = get(Some(*c)) {
                ent_values.push((*name, ent::parse_values(name, cell).map_err(at)?));
            }
        }
        rows.push(Row {
            line,
            ent: ent_values,
            profile: Profile::parse(get(Some(c_profile)).unwrap_or_default()).map_err(at)?,
            given_name: parse_name("given_name", get(Some(c_given)).unwrap_or_default()).map_err(at)?,
            family_name: parse_name("family_name", get(Some(c_family)).unwrap_or_default()).map_err(at)?,
            email: get(c_email).map(parse_email).transpose().map_err(at)?,
            provisional_password,
            schools: get(c_school)
                .map(|cell| {
                    cell.split(['|', ' ']).filter(|s| !s.is_empty()).map(parse_uai).collect::<Result<Vec<_>, _>>()
                })
                .transpose()
                .map_err(at)?,
            login,
        });
    }
    Ok(rows)
}

/// Checks every row, then writes them all in one transaction.
pub async fn import(bytes: &[u8], stores: &Stores) -> anyhow::Result<ImportReport> {
    let rows = parse_rows(&decode(bytes))?;
    let mut existing = HashMap::new();
    for row in &rows {
        if let Some(a) = stores.accounts.find_by_login(&row.login).await? {
            existing.insert(row.line, a);
        }
    }
    // Hash the new provisional passwords concurrently (the pool bounds it).
    let mut hashing = tokio::task::JoinSet::new();
    let mut passwords = HashMap::new();
    for row in rows.iter().filter(|r| !existing.contains_key(&r.line)) {
        let password = match &row.provisional_password {
            Some(p) => p.clone(),
            None => provisional_password()?,
        };
        passwords.insert(row.line, password.clone());
        let hasher = stores.hashing.clone();
        let line = row.line;
        hashing.spawn(async move { (line, hasher.hash(Secret::new(password)).await) });
    }
    let mut hashes = HashMap::new();
    while let Some(done) = hashing.join_next().await {
        let (line, hash) = done.context("hashing task failed")?;
        hashes.insert(line, hash?);
    }
    let (mut create, mut update) = (Vec::new(), Vec::new());
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["login", "provisional_password"])?;
    for row in rows {
        if let Some(mut a) = existing.remove(&row.line) {
            a.profile = row.profile;
            a.given_name = row.given_name;
            a.family_name = row.family_name;
            if row.email.is_some() {
                a.email = row.email;
            }
            if let Some(schools) = row.schools {
                a.schools = schools;
            }
            a.attributes.extend(row.ent.into_iter().map(|(name, values)| (name.to_owned(), values)));
            update.push(a);
        } else {
            let password = passwords.remove(&row.line).unwrap_or_default();
            out.write_record([as_text(row.login.as_str()).as_bytes(), as_text(&password).as_bytes()])?;
            create.push(NewAccount {
                login: row.login,
                profile: row.profile,
                given_name: row.given_name,
                family_name: row.family_name,
                email: row.email,
                schools: row.schools.unwrap_or_default(),
                state: AccountState::Provisioned,
                password_hash: None,
                provisional_hash: hashes.remove(&row.line),
                cgu_version: None,
                attributes: row.ent.into_iter().map(|(name, values)| (name.to_owned(), values)).collect(),
            });
        }
    }
    let csv = String::from_utf8(out.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
    let (created, updated) = (create.len(), update.len());
    stores.accounts.apply_batch(create, update).await.context("nothing was imported")?;
    Ok(ImportReport { csv, created, updated })
}

/// A cell of the output as a spreadsheet must read it: text. A cell
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return would be
/// taken for a formula (which can run commands or leak the sheet), so it
/// gets a leading `'`, the spreadsheets' mark of a text cell.
fn as_text(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}").into() } else { cell.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_delimiters_and_encodings() {
        let rows = parse_rows(&decode(
            b"\xEF\xBB\xBFlogin;profile;given_name;family_name;school\nj.d;eleve;Jean;Dupont;0370001A|0370002B\n",
        ))
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].schools.as_ref().unwrap().len(), 2);
        let latin1 = b"login,profile,given_name,family_name\nc.h,parent,Ch\xE9rine,H\xF4tel\n";
        let rows = parse_rows(&decode(latin1)).unwrap();
        assert_eq!(rows[0].given_name, "Chérine");
        assert_eq!(rows[0].family_name, "Hôtel");
    }

    #[test]
    fn sdet_columns() {
        let rows = parse_rows(concat!(
            "login;profile;given_name;family_name;entpersonprofils;ENTEleveClasses;ENTPersonDateNaissance\n",
            "l.p;eleve;Léa;Petit;National_ELV;0370001A$3A|0370001A$LATIN;2012-03-04\n",
            "m.d;personnel;Marc;Durand;National_ENS|national_dir;;\n",
        ))
        .unwrap();
        assert_eq!(rows[0].ent.len(), 3);
        assert_eq!(rows[0].ent[1], ("ENTEleveClasses", vec!["0370001A$3A".to_owned(), "0370001A$LATIN".to_owned()]));
        assert_eq!(rows[0].ent[2], ("ENTPersonDateNaissance", vec!["04/03/2012".to_owned()]));
        assert_eq!(rows[1].ent, vec![("ENTPersonProfils", vec!["National_ENS".to_owned(), "National_DIR".to_owned()])]);
        let err =
            parse_rows("login,profile,given_name,family_name,ENTPersonProfils\na,eleve,A,B,Prof\n").err().unwrap();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }

    #[test]
    fn formula_cells_are_written_as_text() {
        for cell in ["=1+1", "+33", "-2", "@SUM(A1)", "\t=x"] {
            assert_eq!(as_text(cell), format!("'{cell}"));
        }
        assert_eq!(as_text("Provisoire-42"), "Provisoire-42");
        assert_eq!(as_text(""), "");
    }

    #[test]
    fn a_bad_row_names_its_line() {
        let err = parse_rows("login,profile,given_name,family_name\na,eleve,A,B\nb,prof,A,B\n").err().unwrap();
        assert!(err.to_string().starts_with("line 3:"), "{err}");
        let err = parse_rows("login,profile,given_name,family_name\na,eleve,A,B\nA,eleve,A,B\n").err().unwrap();
        assert!(err.to_string().contains("twice"), "{err}");
        assert!(parse_rows("login,profile\n").is_err());
    }
}
