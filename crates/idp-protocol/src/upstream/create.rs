//! `create_missing`: an active account for an identity that matches none,
//! from what the upstream asserted (names, e-mail), with the profile of
//! the profile chosen on the login page, carrying the `link_to` value so
//! that the next login links to it.

use std::collections::BTreeMap;

use unicode_normalization::UnicodeNormalization;

use idp_core::account::{Account, AccountState, Login, NewAccount, Profile, parse_email, parse_name};
use idp_core::ports::AuditEvent;
use idp_core::upstream::{LinkTo, UpstreamConfig};

use super::{Asserted, Upstreams};
use crate::Result;

/// The claim or attribute names a given name, a family name and an e-mail
/// come under: OpenID claims first, then the usual CAS/LDAP attributes.
const GIVEN_NAME: [&str; 3] = ["given_name", "givenName", "prenom"];
const FAMILY_NAME: [&str; 3] = ["family_name", "sn", "nom"];
const EMAIL: [&str; 2] = ["email", "mail"];

/// How many numbered logins (`prenom.nom2`, …) are tried after the plain one.
const LOGIN_ATTEMPTS: u32 = 50;

impl Upstreams {
    /// Creates the account, or None (with the reason logged) when the
    /// profile or the names are missing, or no free login was found.
    pub(super) async fn create(
        &self,
        upstream: &UpstreamConfig,
        asserted: &Asserted,
        profile: Option<Profile>,
    ) -> Result<Option<Account>> {
        let Some(profile) = profile else {
            tracing::warn!(upstream = %upstream.id, "create_missing: no profile was chosen for this login");
            return Ok(None);
        };
        let Some(link_value) = upstream.asserted(&asserted.user, &asserted.attributes).first().map(|v| v.to_string())
        else {
            return Ok(None);
        };
        let names = (first(asserted, &GIVEN_NAME), first(asserted, &FAMILY_NAME));
        let (Some(Ok(given_name)), Some(Ok(family_name))) =
            (names.0.map(|n| parse_name("given_name", n)), names.1.map(|n| parse_name("family_name", n)))
        else {
            tracing::warn!(upstream = %upstream.id, "create_missing: the upstream gave no usable given and family names");
            return Ok(None);
        };
        let mut email = first(asserted, &EMAIL).and_then(|e| parse_email(e).ok());
        let mut attributes = BTreeMap::new();
        let link = LinkTo::parse(&upstream.link_to);
        match &link {
            LinkTo::Login => {}
            LinkTo::Email => email = parse_email(&link_value).ok(),
            LinkTo::Attribute(name) => {
                attributes.insert(name.clone(), vec![link_value.clone()]);
            }
        }
        let logins: Vec<Login> = match &link {
            LinkTo::Login => Login::parse(&link_value).into_iter().collect(),
            _ => derived_logins(&given_name, &family_name),
        };
        let Some(login) = logins.first().cloned() else { return Ok(None) };
        let new = NewAccount {
            login,
            profile,
            given_name,
            family_name,
            email,
            schools: Vec::new(),
            state: AccountState::Active,
            password_hash: None,
            provisional_hash: None,
            cgu_version: None,
            attributes,
        };
        for login in logins {
            match self.accounts.create(NewAccount { login, ..new.clone() }).await {
                Ok(account) => {
                    let login = account.login.as_str().to_owned();
                    self.audit.record(AuditEvent::AccountCreatedByUpstream { login, upstream: upstream.id.clone() });
                    return Ok(Some(account));
                }
                Err(idp_core::Error::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        tracing::warn!(upstream = %upstream.id, "create_missing: no free login for this identity");
        Ok(None)
    }
}

fn first<'a>(asserted: &'a Asserted, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| asserted.attributes.get(*n).and_then(|v| v.first())).map(String::as_str)
}

/// `prenom.nom`, then `prenom.nom2` … : lower case, accents removed (by
/// Unicode decomposition), any other character dropped, at most 60
/// characters before the number, so that each one is a valid [`Login`].
fn derived_logins(given_name: &str, family_name: &str) -> Vec<Login> {
    let fold = |name: &str| -> String {
        let folded: String = name
            .nfd()
            .filter(char::is_ascii)
            .map(|c| if c == ' ' || c == '\'' { '-' } else { c.to_ascii_lowercase() })
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        folded.trim_matches('-').to_owned()
    };
    let base: String = match (fold(given_name), fold(family_name)) {
        (g, f) if g.is_empty() && f.is_empty() => "compte".to_owned(),
        (g, f) if g.is_empty() || f.is_empty() => format!("{g}{f}"),
        (g, f) => format!("{g}.{f}"),
    };
    let base: String = base.chars().take(60).collect();
    let numbered = (2..LOGIN_ATTEMPTS + 2).map(|n| format!("{base}{n}"));
    std::iter::once(base.clone()).chain(numbered).filter_map(|l| Login::parse(&l).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::derived_logins;

    #[test]
    fn derived_logins_are_valid_and_numbered() {
        let logins = derived_logins("Zoé", "Le Bihan-Ça'va");
        assert_eq!(logins[0].as_str(), "zoe.le-bihan-ca-va");
        assert_eq!(logins[1].as_str(), "zoe.le-bihan-ca-va2");
        assert_eq!(logins.len(), 51);
        assert_eq!(derived_logins("李", "王")[0].as_str(), "compte");
        assert!(derived_logins(&"a".repeat(100), "b")[50].as_str().len() <= 64);
    }
}
