//! Accounts: who can log in, in which state, with which attributes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

use crate::{Error, Result};

/// A login name ("identifiant"). Case is kept as given; lookups are
/// case-insensitive because schools print them in any case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Login(String);

impl TryFrom<String> for Login {
    type Error = Error;

    fn try_from(value: String) -> Result<Login> {
        Login::parse(&value)
    }
}

impl Login {
    /// Accepts 1 to 64 characters of `[A-Za-z0-9._@-]`, the characters ENT
    /// directories use in identifiants.
    pub fn parse(value: &str) -> Result<Login> {
        let value = value.trim();
        if value.is_empty() || value.len() > 64 {
            return Err(Error::invalid("login", "1 to 64 characters expected"));
        }
        if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')) {
            return Err(Error::invalid("login", "only letters, digits and . _ @ - are allowed"));
        }
        Ok(Login(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for lookups and throttling keys.
    pub fn canonical(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Login({})", self.0)
    }
}

/// The kind of person an account belongs to (the `--profile` of `idp account create`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Eleve,
    Parent,
    Personnel,
    Autre,
}

impl Profile {
    pub const ALL: [Profile; 4] = [Profile::Eleve, Profile::Parent, Profile::Personnel, Profile::Autre];

    pub fn parse(value: &str) -> Result<Profile> {
        match value.trim().to_ascii_lowercase().as_str() {
            "eleve" | "élève" => Ok(Profile::Eleve),
            "parent" => Ok(Profile::Parent),
            "personnel" => Ok(Profile::Personnel),
            "autre" => Ok(Profile::Autre),
            other => Err(Error::invalid("profile", format!("'{other}' is not one of eleve, parent, personnel, autre"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Eleve => "eleve",
            Profile::Parent => "parent",
            Profile::Personnel => "personnel",
            Profile::Autre => "autre",
        }
    }

    /// The national ENT profile code (SDET `ENTPersonProfils`).
    pub fn national_code(self) -> &'static str {
        match self {
            Profile::Eleve => "National_ELV",
            Profile::Parent => "National_TUT",
            Profile::Personnel => "National_ENS",
            Profile::Autre => "National_COL",
        }
    }
}

/// The life cycle of an account (docs/accounts.md). Only `Active` accounts get
/// tickets; a provisional password (states `Provisioned` and `Reset`) only
/// opens the activation wizard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    Provisioned,
    Active,
    Reset,
    Locked,
    Disabled,
}

impl AccountState {
    pub const ALL: [AccountState; 5] = [
        AccountState::Provisioned,
        AccountState::Active,
        AccountState::Reset,
        AccountState::Locked,
        AccountState::Disabled,
    ];

    pub fn parse(value: &str) -> Result<AccountState> {
        match value {
            "provisioned" => Ok(AccountState::Provisioned),
            "active" => Ok(AccountState::Active),
            "reset" => Ok(AccountState::Reset),
            "locked" => Ok(AccountState::Locked),
            "disabled" => Ok(AccountState::Disabled),
            other => Err(Error::invalid("account state", other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Provisioned => "provisioned",
            AccountState::Active => "active",
            AccountState::Reset => "reset",
            AccountState::Locked => "locked",
            AccountState::Disabled => "disabled",
        }
    }

    /// Whether the account must go through the activation wizard.
    pub fn must_activate(self) -> bool {
        matches!(self, AccountState::Provisioned | AccountState::Reset)
    }
}

/// A stored account.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: i64,
    pub login: Login,
    pub profile: Profile,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    /// UAI codes of the schools the person belongs to.
    pub schools: Vec<String>,
    pub state: AccountState,
    /// The argon2id PHC string of the chosen password (state `Active`).
    pub password_hash: Option<String>,
    /// The argon2id PHC string of the provisional password (states
    /// `Provisioned` and `Reset`).
    pub provisional_hash: Option<String>,
    pub provisional_set_at: Option<DateTime<Utc>>,
    /// The CGU (terms of use) version the person accepted, if any.
    pub cgu_version: Option<String>,
    pub cgu_accepted_at: Option<DateTime<Utc>>,
    /// Sessions created before this instant are no longer valid: a reset,
    /// disable or password change from any node or the CLI ends them.
    pub sessions_valid_after: DateTime<Utc>,
    /// Consecutive failed logins, for the optional lock policy.
    pub failed_logins: i32,
    /// More directory attributes (ENT attributes), multi-valued.
    pub attributes: BTreeMap<String, Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The version of the stored row this value was read from; the
    /// repository refuses to write it back once the row has changed since.
    pub version: i64,
}

impl Account {
    /// "Prénom Nom", as pages greet the person.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name).trim().to_owned()
    }

    /// An operator's reset: the account goes back to `reset`, opened only by
    /// the new provisional password (`provisional_hash`) through the
    /// activation wizard; the chosen password is forgotten and every
    /// session opened before `now` ends.
    pub fn reset(&mut self, provisional_hash: String, now: DateTime<Utc>) {
        self.provisional_hash = Some(provisional_hash);
        self.provisional_set_at = Some(now);
        self.password_hash = None;
        self.state = AccountState::Reset;
        self.sessions_valid_after = now;
        self.updated_at = now;
    }

    /// An operator's disable: no login, and every session opened before
    /// `now` ends.
    pub fn disable(&mut self, now: DateTime<Utc>) {
        self.state = AccountState::Disabled;
        self.sessions_valid_after = now;
        self.updated_at = now;
    }

    /// Undoes [`Account::disable`]; an account in another state is left as
    /// it is.
    pub fn enable(&mut self, now: DateTime<Utc>) {
        if self.state == AccountState::Disabled {
            self.state = self.state_before_block();
        }
        self.updated_at = now;
    }

    /// An account waiting for its activation (provisioned or reset) whose
    /// owner proved who they are at an upstream identity provider: it is
    /// active from now on, and its provisional password no longer opens
    /// anything. The charter is still asked at the login.
    pub fn activate_by_upstream(&mut self, now: DateTime<Utc>) {
        if self.state.must_activate() {
            self.state = AccountState::Active;
            self.provisional_hash = None;
            self.updated_at = now;
        }
    }

    /// Undoes the lock of the failed-login policy and forgets the failures.
    pub fn unlock(&mut self, now: DateTime<Utc>) {
        if self.state == AccountState::Locked {
            self.state = self.state_before_block();
        }
        self.failed_logins = 0;
        self.updated_at = now;
    }

    /// The state a locked or disabled account goes back to: a chosen
    /// password means active; a provisional one means reset when the person
    /// had already activated once (accepted the CGU or logged in), else
    /// provisioned.
    fn state_before_block(&self) -> AccountState {
        if self.password_hash.is_some() {
            AccountState::Active
        } else if self.cgu_version.is_some() || self.last_login_at.is_some() {
            AccountState::Reset
        } else {
            AccountState::Provisioned
        }
    }
}

/// What an operator or an import gives to create an account.
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub login: Login,
    pub profile: Profile,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub schools: Vec<String>,
    pub state: AccountState,
    pub password_hash: Option<String>,
    pub provisional_hash: Option<String>,
    pub cgu_version: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// Checks a person's name as given by a school export.
pub fn parse_name(what: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 128 {
        return Err(Error::invalid(what, "1 to 128 characters expected"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(what, "control characters are not allowed"));
    }
    Ok(value.to_owned())
}

/// Checks an e-mail address enough to refuse typing mistakes; the real
/// check is the validation link sent to it.
pub fn parse_email(value: &str) -> Result<String> {
    let value = value.trim();
    let ok = value.len() <= 254
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !value.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    if ok { Ok(value.to_owned()) } else { Err(Error::invalid("email", format!("'{value}' is not an e-mail address"))) }
}

/// Checks a school UAI code (7 digits and a letter, e.g. 0370001A).
pub fn parse_uai(value: &str) -> Result<String> {
    let value = value.trim().to_ascii_uppercase();
    let bytes = value.as_bytes();
    let ok = bytes.len() == 8
        && bytes.iter().take(7).all(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_uppercase);
    if ok {
        Ok(value)
    } else {
        Err(Error::invalid("school", format!("'{value}' is not a UAI code (7 digits and a letter)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins() {
        assert!(Login::parse("jean.dupont1").is_ok());
        assert!(Login::parse(" j-d@x ").is_ok());
        assert!(Login::parse("").is_err());
        assert!(Login::parse("a b").is_err());
        assert!(Login::parse("é").is_err());
        assert!(Login::parse(&"a".repeat(65)).is_err());
        assert_eq!(Login::parse("JDupont").unwrap().canonical(), "jdupont");
    }

    #[test]
    fn profiles_and_states_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.as_str()).unwrap(), p);
        }
        assert!(Profile::parse("prof").is_err());
        assert!(AccountState::Reset.must_activate());
        assert!(!AccountState::Active.must_activate());
    }

    fn account(state: AccountState) -> Account {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        Account {
            id: 1,
            login: Login::parse("jdupont").unwrap(),
            profile: Profile::Eleve,
            given_name: "Jean".into(),
            family_name: "Dupont".into(),
            email: None,
            schools: Vec::new(),
            state,
            password_hash: Some("$argon2id$chosen".into()),
            provisional_hash: None,
            provisional_set_at: None,
            cgu_version: Some("1".into()),
            cgu_accepted_at: Some(epoch),
            sessions_valid_after: epoch,
            failed_logins: 3,
            attributes: BTreeMap::new(),
            created_at: epoch,
            updated_at: epoch,
            last_login_at: Some(epoch),
            version: 0,
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn reset_forgets_the_password_and_ends_the_sessions() {
        let mut a = account(AccountState::Active);
        a.reset("$argon2id$provisional".into(), at(100));
        assert_eq!(a.state, AccountState::Reset);
        assert_eq!(a.password_hash, None);
        assert_eq!(a.provisional_hash.as_deref(), Some("$argon2id$provisional"));
        assert_eq!(a.provisional_set_at, Some(at(100)));
        assert_eq!(a.sessions_valid_after, at(100));
        assert_eq!(a.updated_at, at(100));
    }

    #[test]
    fn disable_then_enable_comes_back_to_the_state_before() {
        let mut a = account(AccountState::Active);
        a.disable(at(100));
        assert_eq!((a.state, a.sessions_valid_after), (AccountState::Disabled, at(100)));
        a.enable(at(200));
        assert_eq!((a.state, a.updated_at), (AccountState::Active, at(200)));

        let mut reset = account(AccountState::Active);
        reset.reset("$argon2id$provisional".into(), at(100));
        reset.disable(at(150));
        reset.enable(at(200));
        assert_eq!(reset.state, AccountState::Reset, "activated once: back to reset");

        let mut new = account(AccountState::Provisioned);
        (new.password_hash, new.cgu_version, new.last_login_at) = (None, None, None);
        new.disable(at(100));
        new.enable(at(200));
        assert_eq!(new.state, AccountState::Provisioned);
    }

    #[test]
    fn enable_and_unlock_leave_other_states_alone() {
        let mut a = account(AccountState::Reset);
        a.enable(at(100));
        assert_eq!(a.state, AccountState::Reset);
        a.unlock(at(100));
        assert_eq!((a.state, a.failed_logins), (AccountState::Reset, 0));
        let mut disabled = account(AccountState::Disabled);
        disabled.unlock(at(100));
        assert_eq!(disabled.state, AccountState::Disabled, "unlock does not enable");
    }

    #[test]
    fn unlock_forgets_the_failures() {
        let mut a = account(AccountState::Locked);
        a.unlock(at(100));
        assert_eq!((a.state, a.failed_logins, a.updated_at), (AccountState::Active, 0, at(100)));
    }

    #[test]
    fn uai_and_email() {
        assert_eq!(parse_uai("0370001a").unwrap(), "0370001A");
        assert!(parse_uai("037001A").is_err());
        assert!(parse_email("a@b.fr").is_ok());
        assert!(parse_email("a@b").is_err());
        assert!(parse_email("a b@c.fr").is_err());
    }
}
