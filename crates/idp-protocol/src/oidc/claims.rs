//! Which claims a scope releases. A client gets only the scopes it was
//! registered with, so claims are released per client as CAS attributes
//! are per service.
//!
//! The ENT scope releases the ENT profile (`eleve`, `parent`, `personnel`,
//! `autre`) as `profile`, as ENT services ask, and also as `ent_profile`:
//! OIDC Core §5.1 defines a `profile` claim holding a profile page URL, which
//! this provider never releases, so a client that wants an unambiguous name
//! reads `ent_profile`. The national code travels as `ENTPersonProfils` (as
//! in CAS), the schools as `school` (UAI codes).

use serde_json::{Map, Value, json};

use idp_core::account::Account;
use idp_core::oidc::ENT_SCOPE;

/// The claim names each scope releases (for discovery).
pub const SCOPE_CLAIMS: &[(&str, &[&str])] = &[
    ("openid", &["sub"]),
    ("profile", &["name", "given_name", "family_name", "preferred_username"]),
    ("email", &["email", "email_verified"]),
    (ENT_SCOPE, &["profile", "ent_profile", "ENTPersonProfils", "school"]),
];

/// The claims about `account` that `scopes` release (besides `sub`).
/// `email_verified` tells whether the address was proven by a validation
/// link (activation or Mon compte).
pub fn for_scopes(account: &Account, scopes: &[String], email_verified: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        out.insert("name".into(), json!(account.display_name()));
        out.insert("given_name".into(), json!(account.given_name));
        out.insert("family_name".into(), json!(account.family_name));
        out.insert("preferred_username".into(), json!(account.login.as_str()));
    }
    if has("email")
        && let Some(email) = &account.email
    {
        out.insert("email".into(), json!(email));
        // Only a followed validation link proves the address; a directory
        // import is not a proof.
        out.insert("email_verified".into(), json!(email_verified));
    }
    if has(ENT_SCOPE) {
        out.insert("profile".into(), json!(account.profile.as_str()));
        out.insert("ent_profile".into(), json!(account.profile.as_str()));
        let national = idp_core::attributes::values_of(account, "ENTPersonProfils");
        out.insert("ENTPersonProfils".into(), json!(national));
        out.insert("school".into(), json!(account.schools));
    }
    out
}

/// The subject identifier: the login, as CAS releases it.
pub fn subject(account: &Account) -> String {
    account.login.as_str().to_owned()
}
