//! Per-service rules beyond attribute release: who may use the service
//! (profiles, schools), whether single sign-on applies, which identifier
//! the service receives, and whether it may proxy.

use std::fmt;

use crate::Result;
use crate::account::{Account, Profile, parse_uai};
use crate::ent;
use crate::proxy::ProxyPolicy;

/// Everything a service decides besides its URL and released attributes.
#[derive(Clone, Debug)]
pub struct ServicePolicy {
    pub access: AccessRule,
    /// `false` forces the person to type their credentials for this service
    /// even within an SSO session (Apereo's `ssoEnabled`).
    pub sso_enabled: bool,
    /// What `<cas:user>` carries.
    pub user_id: UserId,
    /// None: the service may not obtain proxy-granting tickets (the default).
    pub proxy: Option<ProxyPolicy>,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        Self { access: AccessRule::default(), sso_enabled: true, user_id: UserId::Login, proxy: None }
    }
}

/// The identifier a service receives as the user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserId {
    /// The login name.
    #[default]
    Login,
    /// A random identifier stored for this (service, account) pair: stable at
    /// each login, different for each service (see [`crate::pseudonym`]).
    Pseudonym,
}

impl UserId {
    pub fn parse(value: &str) -> Result<UserId> {
        match value {
            "login" => Ok(UserId::Login),
            "pseudonym" => Ok(UserId::Pseudonym),
            other => Err(crate::Error::invalid("user id", format!("'{other}': login or pseudonym expected"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserId::Login => "login",
            UserId::Pseudonym => "pseudonym",
        }
    }
}

/// Who may get tickets for a service. Empty lists allow everyone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessRule {
    /// The person must have one of these profiles.
    pub profiles: Vec<ProfileMatch>,
    /// The person must belong to one of these schools (UAI).
    pub schools: Vec<String>,
}

/// An allowed profile: a login profile (`personnel`) or a national code
/// (`National_ENS`, `National_4`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileMatch {
    Login(Profile),
    National(&'static str),
}

impl ProfileMatch {
    pub fn parse(value: &str) -> Result<ProfileMatch> {
        match Profile::parse(value) {
            Ok(p) => Ok(ProfileMatch::Login(p)),
            Err(_) => ent::parse_profile_code(value).map(ProfileMatch::National).map_err(|_| {
                crate::Error::invalid(
                    "profile",
                    format!("'{value}' is neither eleve, parent, personnel, autre nor a national profile code"),
                )
            }),
        }
    }

    fn matches(&self, account: &Account) -> bool {
        match self {
            ProfileMatch::Login(p) => account.profile == *p,
            ProfileMatch::National(code) => ent::profiles_of(account)
                .iter()
                .any(|own| own.eq_ignore_ascii_case(code) || ent::numeric_profile(own).is_some_and(|n| n == *code)),
        }
    }
}

impl fmt::Display for ProfileMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileMatch::Login(p) => f.write_str(p.as_str()),
            ProfileMatch::National(code) => f.write_str(code),
        }
    }
}

/// Why a person may not use a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// Their profile is not among the allowed ones.
    Profile,
    /// None of their schools is among the allowed ones.
    School,
}

impl AccessRule {
    /// Parses the operator's lists (profiles and UAI codes).
    pub fn parse(profiles: &[String], schools: &[String]) -> Result<AccessRule> {
        let mut rule = AccessRule::default();
        for p in profiles {
            let p = ProfileMatch::parse(p)?;
            if !rule.profiles.contains(&p) {
                rule.profiles.push(p);
            }
        }
        for s in schools {
            let s = parse_uai(s)?;
            if !rule.schools.contains(&s) {
                rule.schools.push(s);
            }
        }
        Ok(rule)
    }

    /// Whether `account` may get tickets for the service.
    pub fn check(&self, account: &Account) -> Result<(), Denial> {
        if !self.profiles.is_empty() && !self.profiles.iter().any(|p| p.matches(account)) {
            return Err(Denial::Profile);
        }
        if !self.schools.is_empty() && !account.schools.iter().any(|s| self.schools.contains(s)) {
            return Err(Denial::School);
        }
        Ok(())
    }
}

/// An active account for unit tests, with its schools and national codes.
#[cfg(test)]
pub(crate) fn test_account(profile: Profile, schools: &[&str], codes: &[&str]) -> Account {
    use crate::account::{AccountState, Login};
    use chrono::Utc;
    let mut attributes = std::collections::BTreeMap::new();
    if !codes.is_empty() {
        attributes.insert(ent::PROFILS.to_owned(), codes.iter().map(|c| c.to_string()).collect());
    }
    Account {
        id: 1,
        login: Login::parse("x").unwrap(),
        profile,
        given_name: "A".into(),
        family_name: "B".into(),
        email: None,
        schools: schools.iter().map(|s| s.to_string()).collect(),
        state: AccountState::Active,
        password_hash: None,
        provisional_hash: None,
        provisional_set_at: None,
        cgu_version: None,
        cgu_accepted_at: None,
        sessions_valid_after: Utc::now(),
        failed_logins: 0,
        attributes,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        last_login_at: None,
        version: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(profile: Profile, schools: &[&str], codes: &[&str]) -> Account {
        test_account(profile, schools, codes)
    }

    #[test]
    fn profiles_and_schools() {
        let staff = AccessRule::parse(&["personnel".into(), "National_DOC".into()], &[]).unwrap();
        assert_eq!(staff.check(&account(Profile::Parent, &[], &[])), Err(Denial::Profile));
        assert_eq!(staff.check(&account(Profile::Personnel, &[], &[])), Ok(()));
        assert_eq!(staff.check(&account(Profile::Autre, &[], &["National_DOC"])), Ok(()));
        let numeric = AccessRule::parse(&["National_4".into()], &[]).unwrap();
        assert_eq!(numeric.check(&account(Profile::Personnel, &[], &["National_DIR"])), Ok(()));
        let school = AccessRule::parse(&[], &["0370001a".into()]).unwrap();
        assert_eq!(school.check(&account(Profile::Eleve, &["0370002B"], &[])), Err(Denial::School));
        assert_eq!(school.check(&account(Profile::Eleve, &["0370002B", "0370001A"], &[])), Ok(()));
        assert!(AccessRule::parse(&["prof".into()], &[]).is_err());
        assert_eq!(AccessRule::default().check(&account(Profile::Parent, &[], &[])), Ok(()));
    }
}
