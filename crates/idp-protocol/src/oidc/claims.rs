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

use idp_core::Result;
use idp_core::account::Account;
use idp_core::oidc::{ENT_SCOPE, OidcClient, SubjectType};
use idp_core::pseudonym::{PseudonymStore, new_pseudonym};

use super::sha256_b64;

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

/// The subject identifier (`sub`) of the account `account_id` for `client`:
/// never the login, which stays in `preferred_username` (scope `profile`).
///
/// A `public` client gets one opaque value per account, the same for every
/// public client; a `pairwise` client gets its own value per account. Both
/// are random values stored with the CAS pseudonyms (same table, same
/// race-safe creation), not an HMAC of the account id: there is no key to
/// keep, rotate or leak (a leaked key would let anyone compute subjects from
/// account ids, a lost one would change every subject at once), the value
/// survives a change of login, and it goes with the account (a recreated
/// account is a new subject). The cost is one primary-key read per token.
pub async fn subject(pseudonyms: &dyn PseudonymStore, client: &OidcClient, account_id: i64) -> Result<String> {
    pseudonyms.get_or_create_keyed(&subject_key(client), account_id, new_pseudonym()?).await
}

/// The pseudonym key of the subjects `client` gets: `oidc:*` for every
/// public client, `oidc:<client id>` for a pairwise one (`oidc:#<SHA-256>`
/// when that would pass the 64 bytes of a key). Service ids have no `:` and
/// client ids no `*` nor `#`, so no two uses share a key.
pub fn subject_key(client: &OidcClient) -> String {
    match client.subject_type {
        SubjectType::Public => "oidc:*".to_owned(),
        SubjectType::Pairwise => {
            let key = format!("oidc:{}", client.id);
            if key.len() <= 64 { key } else { format!("oidc:#{}", sha256_b64(client.id.as_str().as_bytes())) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idp_core::oidc::ClientId;

    fn client(id: &str, subject_type: SubjectType) -> OidcClient {
        OidcClient {
            id: ClientId::parse(id).unwrap(),
            name: id.into(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            scopes: vec![],
            require_consent: false,
            subject_type,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn subject_keys_are_distinct_and_fit_the_table() {
        assert_eq!(subject_key(&client("a", SubjectType::Public)), "oidc:*");
        assert_eq!(subject_key(&client("b", SubjectType::Public)), "oidc:*");
        assert_eq!(subject_key(&client("a", SubjectType::Pairwise)), "oidc:a");
        let long = "x".repeat(64);
        let key = subject_key(&client(&long, SubjectType::Pairwise));
        assert!(key.starts_with("oidc:#") && key.len() <= 64, "{key}");
        assert_ne!(key, subject_key(&client(&"x".repeat(63), SubjectType::Pairwise)));
    }
}
