//! The school's CSV import, shared by `idp account import` and the help
//! desk console (`/gestion/import`): the file is decoded and read
//! ([`parse`]), compared with the stored accounts ([`plan`]: per row,
//! create, update with the fields that change, or unchanged), then
//! written all or nothing in one transaction ([`apply`]).
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
//! an empty cell keeps the stored value, as for `email` and `school`.
//!
//! A refused file names its first bad line and what is wrong with it, in
//! French ([`ImportError`]); nothing is written.

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

use crate::account::{Account, AccountState, Login, NewAccount, Profile, parse_email, parse_name, parse_uai};
use crate::admin::Scope;
use crate::ent;
use crate::ports::{AccountRepository, PasswordHashing};
use crate::secret::{Secret, provisional_password};
use crate::{Error, Result};

/// A line of the file that cannot be imported, and why (in French).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ligne {line} : {problem}")]
pub struct ImportError {
    /// The line in the file (1 for the header).
    pub line: u64,
    pub problem: String,
}

impl ImportError {
    fn new(line: u64, problem: impl Into<String>) -> Self {
        ImportError { line, problem: problem.into() }
    }
}

/// One checked row of the file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub line: u64,
    pub login: Login,
    pub profile: Profile,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub provisional_password: Option<String>,
    /// The schools' UAIs, when the cell is given.
    pub schools: Option<Vec<String>>,
    /// SDET attributes given in this row (non-empty cells only), by their
    /// canonical name.
    pub ent: Vec<(String, Vec<String>)>,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row").field("line", &self.line).field("login", &self.login).finish_non_exhaustive()
    }
}

/// Decodes the file: UTF-8 (BOM stripped), else Windows-1252.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

const KNOWN: [&str; 7] = ["login", "profile", "given_name", "family_name", "email", "provisional_password", "school"];

/// Decodes and reads every row of the file; the first bad line refuses it.
pub fn parse(bytes: &[u8]) -> std::result::Result<Vec<Row>, ImportError> {
    parse_text(&decode(bytes))
}

fn parse_text(text: &str) -> std::result::Result<Vec<Row>, ImportError> {
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.contains(';') && !first.contains(',') { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|_| ImportError::new(1, "l'en-tête ne se lit pas comme une ligne CSV"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    if let Some(unknown) = headers.iter().find(|h| !KNOWN.contains(&h.as_str()) && ent::canonical_name(h).is_none()) {
        return Err(ImportError::new(
            1,
            format!(
                "colonne inconnue « {unknown} » (colonnes connues : {}, {})",
                KNOWN.join(", "),
                ent::KNOWN.join(", ")
            ),
        ));
    }
    let ent_columns: Vec<(usize, &'static str)> =
        headers.iter().enumerate().filter_map(|(i, h)| ent::canonical_name(h).map(|n| (i, n))).collect();
    let (Some(c_login), Some(c_profile), Some(c_given), Some(c_family)) =
        (col("login"), col("profile"), col("given_name"), col("family_name"))
    else {
        return Err(ImportError::new(
            1,
            "l'en-tête doit comporter les colonnes login, profile, given_name et family_name",
        ));
    };
    let (c_email, c_pass, c_school) = (col("email"), col("provisional_password"), col("school"));
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            ImportError::new(line, "la ligne n'a pas autant de colonnes que l'en-tête, ou ne se lit pas comme du CSV")
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::trim).filter(|v| !v.is_empty());
        let at = |column: &'static str| move |e: Error| ImportError::new(line, problem(column, &e));
        let login = Login::parse(get(Some(c_login)).unwrap_or_default()).map_err(at("login"))?;
        if !seen.insert(login.canonical()) {
            return Err(ImportError::new(line, format!("l'identifiant « {login} » figure deux fois dans le fichier")));
        }
        let provisional_password = get(c_pass).map(str::to_owned);
        if provisional_password.as_ref().is_some_and(|p| p.chars().count() < 8) {
            return Err(ImportError::new(line, "le mot de passe provisoire doit compter au moins 8 caractères"));
        }
        let mut ent_values = Vec::new();
        for (c, name) in &ent_columns {
            if let Some(cell) = get(Some(*c)) {
                ent_values.push(((*name).to_owned(), ent::parse_values(name, cell).map_err(at(name))?));
            }
        }
        rows.push(Row {
            line,
            ent: ent_values,
            profile: Profile::parse(get(Some(c_profile)).unwrap_or_default()).map_err(at("profile"))?,
            given_name: parse_name("given_name", get(Some(c_given)).unwrap_or_default()).map_err(at("given_name"))?,
            family_name: parse_name("family_name", get(Some(c_family)).unwrap_or_default())
                .map_err(at("family_name"))?,
            email: get(c_email).map(parse_email).transpose().map_err(at("email"))?,
            provisional_password,
            schools: get(c_school)
                .map(|cell| cell.split(['|', ' ']).filter(|s| !s.is_empty()).map(parse_uai).collect::<Result<Vec<_>>>())
                .transpose()
                .map_err(at("school"))?,
            login,
        });
    }
    Ok(rows)
}

/// What is wrong with the cell of `column`, in French.
fn problem(column: &str, e: &Error) -> String {
    match column {
        "login" => "l'identifiant doit compter de 1 à 64 caractères : lettres sans accent, chiffres et . _ @ -".into(),
        "profile" => "le profil doit être eleve, parent, personnel ou autre".into(),
        "given_name" => "le prénom est obligatoire (128 caractères au plus, sans caractère de contrôle)".into(),
        "family_name" => "le nom est obligatoire (128 caractères au plus, sans caractère de contrôle)".into(),
        "email" => "l'adresse électronique n'est pas valide".into(),
        "school" => "le code UAI doit compter sept chiffres et une lettre (par exemple 0370001A)".into(),
        ent::DATE_NAISSANCE => format!("la date de naissance ({column}) doit s'écrire JJ/MM/AAAA"),
        ent::PROFILS => format!("la colonne {column} n'accepte que des codes de profil nationaux (National_ELV…)"),
        ent::JOINTURE => format!("la colonne {column} attend source$identifiant"),
        _ => match e {
            Error::Invalid { .. } => format!("la valeur de la colonne {column} n'est pas valide"),
            other => format!("la colonne {column} ne peut être lue ({})", other.code()),
        },
    }
}

/// One field an update changes, as the console shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The column's name (`family_name`, `ENTEleveClasses`…).
    pub field: String,
    pub before: String,
    pub after: String,
}

/// What the import does with one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Create,
    /// The stored account (by id, as read at `version`) changes.
    Update {
        id: i64,
        version: i64,
        changes: Vec<Change>,
    },
    /// The stored account already holds every value of the row.
    Unchanged {
        id: i64,
        version: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRow {
    pub row: Row,
    pub action: Action,
}

/// What an import will do, row by row, in the file's order. Applying it
/// checks first that the accounts it read have not changed since.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub rows: Vec<PlannedRow>,
}

impl Plan {
    fn count(&self, f: impl Fn(&Action) -> bool) -> usize {
        self.rows.iter().filter(|r| f(&r.action)).count()
    }

    pub fn created(&self) -> usize {
        self.count(|a| matches!(a, Action::Create))
    }

    pub fn updated(&self) -> usize {
        self.count(|a| matches!(a, Action::Update { .. }))
    }

    pub fn unchanged(&self) -> usize {
        self.count(|a| matches!(a, Action::Unchanged { .. }))
    }
}

/// The message of a row outside the administrator's schools: the same
/// whether its account exists elsewhere or not.
pub const FOREIGN_ROW: &str = "ce compte n'est pas rattaché à l'un de vos établissements : la colonne school doit \
                               donner l'UAI de l'un d'eux, et un identifiant déjà utilisé par un autre \
                               établissement ne peut pas être importé ici";

/// Compares `rows` with the stored accounts `existing` (by canonical
/// login). With a scope of schools, every row must stay within them: its
/// `school` cell names only the scope's UAIs, the account it updates
/// belongs to one of them, and a new account names one. The schools of an
/// updated account outside the scope are kept: an administrator changes
/// the membership of their own schools only.
pub fn plan(
    rows: Vec<Row>,
    existing: &HashMap<String, Account>,
    scope: &Scope,
) -> std::result::Result<Plan, ImportError> {
    let mut planned = Vec::with_capacity(rows.len());
    for mut row in rows {
        let stored = existing.get(&row.login.canonical());
        if !within(scope, &row, stored) {
            return Err(ImportError::new(row.line, FOREIGN_ROW));
        }
        if let (Some(uais), Some(before), Some(given)) = (scope.schools(), stored, row.schools.as_mut()) {
            let others: Vec<String> =
                before.schools.iter().filter(|s| !uais.contains(s) && !given.contains(s)).cloned().collect();
            given.extend(others);
        }
        let action = match stored {
            None => Action::Create,
            Some(before) => {
                let mut after = before.clone();
                merge(&mut after, &row);
                match changes(before, &after) {
                    changes if changes.is_empty() => Action::Unchanged { id: before.id, version: before.version },
                    changes => Action::Update { id: before.id, version: before.version, changes },
                }
            }
        };
        planned.push(PlannedRow { row, action });
    }
    Ok(Plan { rows: planned })
}

fn within(scope: &Scope, row: &Row, stored: Option<&Account>) -> bool {
    let Some(uais) = scope.schools() else { return true };
    let inside = |schools: &[String]| schools.iter().all(|s| uais.contains(s));
    let given = row.schools.as_deref().filter(|s| !s.is_empty());
    let after = given.or(stored.map(|a| a.schools.as_slice())).unwrap_or_default();
    given.is_none_or(inside) && stored.is_none_or(|a| scope.sees(a)) && !after.is_empty()
}

/// The values of `row` written over `account`: an empty e-mail, school or
/// SDET cell keeps the stored value; the state and passwords are kept.
pub fn merge(account: &mut Account, row: &Row) {
    account.profile = row.profile;
    account.given_name.clone_from(&row.given_name);
    account.family_name.clone_from(&row.family_name);
    if row.email.is_some() {
        account.email.clone_from(&row.email);
    }
    if let Some(schools) = &row.schools {
        account.schools.clone_from(schools);
    }
    account.attributes.extend(row.ent.iter().cloned());
}

fn changes(before: &Account, after: &Account) -> Vec<Change> {
    let mut out = Vec::new();
    let mut compare = |field: &str, b: String, a: String| {
        if b != a {
            out.push(Change { field: field.to_owned(), before: b, after: a });
        }
    };
    compare("profile", before.profile.as_str().to_owned(), after.profile.as_str().to_owned());
    compare("given_name", before.given_name.clone(), after.given_name.clone());
    compare("family_name", before.family_name.clone(), after.family_name.clone());
    compare("email", before.email.clone().unwrap_or_default(), after.email.clone().unwrap_or_default());
    compare("school", before.schools.join(" "), after.schools.join(" "));
    for (name, values) in &after.attributes {
        let old = before.attributes.get(name).map(|v| v.join(" | ")).unwrap_or_default();
        compare(name, old, values.join(" | "));
    }
    out
}

/// The stored accounts of `rows`, by canonical login.
pub async fn existing(accounts: &dyn AccountRepository, rows: &[Row]) -> Result<HashMap<String, Account>> {
    let mut found = HashMap::new();
    for row in rows {
        if let Some(account) = accounts.find_by_login(&row.login).await? {
            found.insert(row.login.canonical(), account);
        }
    }
    Ok(found)
}

/// An account an import created, with its provisional password (to show
/// once and print).
#[derive(Clone)]
pub struct Created {
    pub login: Login,
    pub display_name: String,
    pub provisional_password: String,
}

impl std::fmt::Debug for Created {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Created").field("login", &self.login).finish_non_exhaustive()
    }
}

/// What an applied plan did.
#[derive(Debug)]
pub struct Applied {
    /// In the file's order.
    pub created: Vec<Created>,
    pub updated: usize,
    pub unchanged: usize,
}

/// Provisional passwords hashed at once by [`apply`].
const HASHES_IN_FLIGHT: usize = 4;

/// Writes `plan` in one transaction: all or nothing. Fails with
/// [`Error::Conflict`] when an account it read changed since (or a login
/// it creates was taken meanwhile): the plan no longer holds, nothing is
/// written.
pub async fn apply(plan: &Plan, accounts: &dyn AccountRepository, hashing: &dyn PasswordHashing) -> Result<Applied> {
    let stale = |login: &Login| Error::Conflict(format!("account '{login}' changed since the import was planned"));
    let mut update = Vec::new();
    let mut new_rows = Vec::new();
    for PlannedRow { row, action } in &plan.rows {
        match action {
            Action::Create => {
                if accounts.find_by_login(&row.login).await?.is_some() {
                    return Err(stale(&row.login));
                }
                let password = match &row.provisional_password {
                    Some(p) => p.clone(),
                    None => provisional_password()?,
                };
                new_rows.push((row, password));
            }
            Action::Update { id, version, .. } | Action::Unchanged { id, version } => {
                let mut account = match accounts.find_by_id(*id).await? {
                    Some(a) if a.version == *version => a,
                    _ => return Err(stale(&row.login)),
                };
                if matches!(action, Action::Update { .. }) {
                    merge(&mut account, row);
                    update.push(account);
                }
            }
        }
    }
    // A few hashes in flight at once: the pool's queue is bounded and
    // shared with the logins, which must not find it full.
    let pending: Vec<_> = new_rows.iter().map(|(_, password)| hashing.hash(Secret::new(password.clone()))).collect();
    let hashes: Vec<String> = stream::iter(pending).buffered(HASHES_IN_FLIGHT).try_collect().await?;
    let mut create = Vec::with_capacity(new_rows.len());
    let mut created = Vec::with_capacity(new_rows.len());
    for ((row, password), hash) in new_rows.into_iter().zip(hashes) {
        create.push(new_account(row, hash));
        created.push(Created {
            login: row.login.clone(),
            display_name: format!("{} {}", row.given_name, row.family_name).trim().to_owned(),
            provisional_password: password,
        });
    }
    let updated = update.len();
    accounts.apply_batch(create, update).await?;
    Ok(Applied { created, updated, unchanged: plan.unchanged() })
}

fn new_account(row: &Row, provisional_hash: String) -> NewAccount {
    NewAccount {
        login: row.login.clone(),
        profile: row.profile,
        given_name: row.given_name.clone(),
        family_name: row.family_name.clone(),
        email: row.email.clone(),
        schools: row.schools.clone().unwrap_or_default(),
        state: AccountState::Provisioned,
        password_hash: None,
        provisional_hash: Some(provisional_hash),
        cgu_version: None,
        attributes: row.ent.iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::test_account;

    #[test]
    fn header_delimiters_and_encodings() {
        let rows = parse(
            b"\xEF\xBB\xBFlogin;profile;given_name;family_name;school\nj.d;eleve;Jean;Dupont;0370001A|0370002B\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].schools.as_ref().unwrap().len(), 2);
        let latin1 = b"login,profile,given_name,family_name\nc.h,parent,Ch\xE9rine,H\xF4tel\n";
        let rows = parse(latin1).unwrap();
        assert_eq!(rows[0].given_name, "Chérine");
        assert_eq!(rows[0].family_name, "Hôtel");
    }

    #[test]
    fn sdet_columns() {
        let rows = parse_text(concat!(
            "login;profile;given_name;family_name;entpersonprofils;ENTEleveClasses;ENTPersonDateNaissance\n",
            "l.p;eleve;Léa;Petit;National_ELV;0370001A$3A|0370001A$LATIN;2012-03-04\n",
            "m.d;personnel;Marc;Durand;National_ENS|national_dir;;\n",
        ))
        .unwrap();
        assert_eq!(rows[0].ent.len(), 3);
        let values = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(rows[0].ent[1], ("ENTEleveClasses".to_owned(), values(&["0370001A$3A", "0370001A$LATIN"])));
        assert_eq!(rows[0].ent[2], ("ENTPersonDateNaissance".to_owned(), values(&["04/03/2012"])));
        assert_eq!(rows[1].ent, vec![("ENTPersonProfils".to_owned(), values(&["National_ENS", "National_DIR"]))]);
        let err = parse_text("login,profile,given_name,family_name,ENTPersonProfils\na,eleve,A,B,Prof\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.problem.contains("codes de profil nationaux"), "{err}");
    }

    #[test]
    fn a_bad_row_names_its_line_in_french() {
        let err = parse_text("login,profile,given_name,family_name\na,eleve,A,B\nb,prof,A,B\n").unwrap_err();
        assert_eq!(err.to_string(), "ligne 3 : le profil doit être eleve, parent, personnel ou autre");
        let err = parse_text("login,profile,given_name,family_name\na,eleve,A,B\nA,eleve,A,B\n").unwrap_err();
        assert_eq!((err.line, err.problem.contains("deux fois")), (3, true), "{err}");
        assert_eq!(parse_text("login,profile\n").unwrap_err().line, 1);
        assert_eq!(parse_text("login,profile,given_name,family_name,age\n").unwrap_err().line, 1);
        let err = parse_text("login,profile,given_name,family_name\na,eleve,A\n").unwrap_err();
        assert_eq!((err.line, err.problem.contains("colonnes")), (2, true), "{err}");
        let err = parse_text("login;profile;given_name;family_name;school\na;eleve;A;B;12345\n").unwrap_err();
        assert!(err.problem.contains("UAI"), "{err}");
    }

    fn stored(login: &str, schools: &[&str], version: i64) -> Account {
        let mut a = test_account(Profile::Eleve, schools, &[]);
        a.login = Login::parse(login).unwrap();
        a.given_name = "Léa".into();
        a.family_name = "Petit".into();
        a.version = version;
        a
    }

    fn rows(csv: &str) -> Vec<Row> {
        parse_text(&format!("login;profile;given_name;family_name;school;ENTEleveClasses\n{csv}")).unwrap()
    }

    #[test]
    fn plan_tells_created_updated_and_unchanged_rows_with_what_changes() {
        let mut existing = HashMap::new();
        let mut lea = stored("l.petit", &["0370001A"], 7);
        lea.id = 11;
        existing.insert("l.petit".to_owned(), lea);
        let mut tom = stored("t.morel", &["0370001A"], 3);
        (tom.id, tom.given_name, tom.family_name) = (12, "Tom".into(), "Morel".into());
        existing.insert("t.morel".to_owned(), tom);
        let plan = plan(
            rows("n.neuf;eleve;Noé;Neuf;0370001A;\nL.PETIT;eleve;Léa;Petit-Durand;;0370001A$4B\nt.morel;eleve;Tom;Morel;;\n"),
            &existing,
            &Scope::Schools(vec!["0370001A".into()]),
        )
        .unwrap();
        assert_eq!((plan.created(), plan.updated(), plan.unchanged()), (1, 1, 1));
        assert_eq!(plan.rows[0].action, Action::Create);
        let Action::Update { id, version, changes } = &plan.rows[1].action else { panic!("{:?}", plan.rows[1]) };
        assert_eq!((*id, *version), (11, 7));
        let fields: Vec<(&str, &str, &str)> =
            changes.iter().map(|c| (c.field.as_str(), c.before.as_str(), c.after.as_str())).collect();
        assert_eq!(fields, [("family_name", "Petit", "Petit-Durand"), ("ENTEleveClasses", "", "0370001A$4B")]);
        assert_eq!(plan.rows[2].action, Action::Unchanged { id: 12, version: 3 }, "empty cells keep stored values");
    }

    #[test]
    fn plan_keeps_every_row_within_the_administrators_schools() {
        let ours = Scope::Schools(vec!["0370001A".into()]);
        let mut existing = HashMap::new();
        existing.insert("h.autre".to_owned(), stored("h.autre", &["0370002B"], 1));
        existing.insert("p.partage".to_owned(), stored("p.partage", &["0370001A", "0370002B"], 1));
        existing.insert("l.petit".to_owned(), stored("l.petit", &["0370001A"], 1));
        let refused = |csv: &str| plan(rows(csv), &existing, &ours).unwrap_err();
        // A foreign UAI, whether the account exists or not: the same words.
        let absent = refused("x.nouveau;eleve;X;Y;0370002B;\n");
        let present = refused("h.autre;eleve;X;Y;0370002B;\n");
        assert_eq!((absent.line, &absent.problem), (2, &present.problem));
        assert_eq!(refused("h.autre;eleve;X;Y;0370001A;\n").problem, FOREIGN_ROW, "an account of another school");
        let shared = plan(rows("p.partage;eleve;X;Y;0370001A;\n"), &existing, &ours).unwrap();
        let kept = &shared.rows[0].row.schools;
        assert_eq!(
            kept.as_deref(),
            Some(&["0370001A".to_owned(), "0370002B".to_owned()][..]),
            "the other school's kept"
        );
        assert_eq!(refused("x.nouveau;eleve;X;Y;;\n").problem, FOREIGN_ROW, "a new account needs a school");
        assert_eq!(refused("l.petit;eleve;X;Y;;\nx.y;eleve;X;Y;0370001A 0370002B;\n").line, 3);
        assert!(plan(rows("l.petit;eleve;X;Y;;\nx.y;eleve;X;Y;0370001A;\n"), &existing, &ours).is_ok());
        assert!(plan(rows("h.autre;eleve;X;Y;;\nx.y;eleve;X;Y;;\n"), &existing, &Scope::Global).is_ok());
    }
}
