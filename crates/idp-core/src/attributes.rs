//! Attribute release: which values of an account a service receives. The
//! release rules (renaming, shapes) are in [`crate::release`].

use crate::account::Account;
use crate::ent;
use crate::service::Service;

/// The attributes that can be released and where their values come from.
/// Any other name is looked up in the account's directory attributes.
pub const BUILT_IN: &[&str] = &[
    "uid",
    "profile",
    "ENTPersonProfils",
    "given_name",
    "family_name",
    "display_name",
    "email",
    "mail",
    "school",
    "ENTPersonStructRattachRNE",
    "ENTPersonStructRattachUAI",
    "ENTPersonLogin",
    crate::release::PSEUDONYM,
    // The LDAP names operators of other identity providers type.
    "sn",
    "givenName",
    "cn",
    "displayName",
];

/// Whether `name` can be a release source: a built-in attribute (LDAP
/// aliases included), a known SDET directory attribute, or another `ENT…`
/// directory attribute. Anything else would release nothing: refused where
/// a service is registered rather than silently empty.
pub fn is_known_source(name: &str) -> bool {
    BUILT_IN.contains(&name) || ent::KNOWN.contains(&name) || name.starts_with("ENT")
}

/// The values of attribute `name` for `account` (empty when it has none).
/// Directory attributes with an SDET name win over the derived ones.
pub fn values_of(account: &Account, name: &str) -> Vec<String> {
    match name {
        "uid" => vec![account.login.as_str().to_owned()],
        "profile" => vec![account.profile.as_str().to_owned()],
        ent::PROFILS => ent::profiles_of(account),
        ent::LOGIN if !account.attributes.contains_key(name) => vec![account.login.as_str().to_owned()],
        "given_name" | "givenName" => vec![account.given_name.clone()],
        "family_name" | "sn" => vec![account.family_name.clone()],
        "display_name" | "displayName" | "cn" => vec![account.display_name()],
        "email" | "mail" => account.email.iter().cloned().collect(),
        "school" => account.schools.clone(),
        "ENTPersonStructRattachRNE" | "ENTPersonStructRattachUAI" if !account.attributes.contains_key(name) => {
            account.schools.clone()
        }
        other => account.attributes.get(other).cloned().unwrap_or_default(),
    }
}

/// What `service` receives about `account`: the service's rules, in their
/// order, without empty attributes. Nothing else leaves.
pub fn release(account: &Account, service: &Service) -> Vec<(String, Vec<String>)> {
    crate::release::release_with(account, service, None)
}
