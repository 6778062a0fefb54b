//! Attribute release: which values of an account a service receives.

use crate::account::Account;
use crate::service::Service;

/// The attributes that can be released and where their values come from.
/// Any other name is looked up in the account's directory attributes.
pub const BUILT_IN: &[&str] =
    &["uid", "profile", "ENTPersonProfils", "given_name", "family_name", "display_name", "email", "school"];

/// The values of attribute `name` for `account` (empty when it has none).
pub fn values_of(account: &Account, name: &str) -> Vec<String> {
    match name {
        "uid" => vec![account.login.as_str().to_owned()],
        "profile" => vec![account.profile.as_str().to_owned()],
        "ENTPersonProfils" if !account.attributes.contains_key(name) => {
            vec![account.profile.national_code().to_owned()]
        }
        "given_name" => vec![account.given_name.clone()],
        "family_name" => vec![account.family_name.clone()],
        "display_name" => vec![account.display_name()],
        "email" => account.email.iter().cloned().collect(),
        "school" => account.schools.clone(),
        other => account.attributes.get(other).cloned().unwrap_or_default(),
    }
}

/// What `service` receives about `account`: the service's list, in its
/// order, without empty attributes. Nothing else leaves.
pub fn release(account: &Account, service: &Service) -> Vec<(String, Vec<String>)> {
    service
        .attributes
        .iter()
        .map(|name| (name.clone(), values_of(account, name)))
        .filter(|(_, values)| !values.is_empty())
        .collect()
}
