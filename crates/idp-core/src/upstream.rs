//! Upstream identity providers: the académie's CAS server today (the
//! ÉduConnect SAML and OpenID Connect kinds plug into the same place),
//! and how an identity they assert is linked to a local account.
//!
//! Linking compares a value the upstream asserts (`link_from`: the CAS
//! user or one of its attributes) with a value of the local account
//! (`link_to`: its login, its e-mail or a directory attribute). A local
//! value matches when it is equal, or when it is `source$id` (the SDET
//! `ENTPersonJointure` shape) and the upstream value is `id`.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use crate::account::Account;
use crate::{Error, Result};

/// One `[[upstreams]]` entry of the configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `[a-z0-9-]+`, used in `/upstream/<id>/…`.
    pub id: String,
    /// The words on the button of the login page.
    pub label: String,
    pub kind: UpstreamKind,
    /// The CAS server's base URL (`https://cas.ac-exemple.fr/cas`): its
    /// `/login`, `/p3/serviceValidate` and `/logout` are used.
    pub cas_url: Option<String>,
    /// SAML: the identity provider's metadata, a file path or an `https://` URL.
    #[serde(default)]
    pub idp_metadata: Option<String>,
    /// SAML: our key and certificate (PEM files); without them a pair is
    /// generated at first start and kept in the store.
    #[serde(default)]
    pub sp_key_file: Option<String>,
    #[serde(default)]
    pub sp_cert_file: Option<String>,
    /// `user` (the CAS user) or the name of an attribute the upstream sends.
    pub link_from: String,
    /// `login`, `email` or the name of an ENT directory attribute.
    pub link_to: String,
    /// Create an account for an identity that matches none. Not supported
    /// yet: refused at start rather than ignored.
    #[serde(default)]
    pub create_missing: bool,
}

/// The protocol an upstream speaks.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    Cas,
    Oidc,
    Saml,
}

impl UpstreamConfig {
    /// Checks an entry: the id's shape, a CAS URL for the CAS kind
    /// (`https://`, or `http://` on a loopback address only), and the kinds
    /// and options this version supports.
    pub fn check(&self) -> Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(Error::invalid("upstreams.id", "only a-z, 0-9 and '-' are allowed"));
        }
        if self.create_missing {
            return Err(Error::invalid(
                "upstreams.create_missing",
                "not supported by this version: link existing accounts",
            ));
        }
        match self.kind {
            UpstreamKind::Cas => self.cas_base().map(|_| ()),
            UpstreamKind::Saml => self.check_saml(),
            UpstreamKind::Oidc => Err(Error::invalid(
                "upstreams.kind",
                "\"cas\" and \"saml\" are supported by this version (\"oidc\" is not yet)",
            )),
        }
    }

    /// A SAML upstream names its IdP metadata (an `https://` URL, `http://`
    /// on loopback only, or a file), and gives both or neither key files.
    fn check_saml(&self) -> Result<()> {
        let source = self
            .idp_metadata
            .as_deref()
            .ok_or(Error::invalid("upstreams.idp_metadata", "required for kind = \"saml\""))?;
        if source.contains("://") {
            let url = Url::parse(source).map_err(|e| Error::invalid("upstreams.idp_metadata", e.to_string()))?;
            check_scheme(&url)?;
        }
        if self.sp_key_file.is_some() != self.sp_cert_file.is_some() {
            return Err(Error::invalid("upstreams.sp_key_file", "sp_key_file and sp_cert_file go together"));
        }
        Ok(())
    }

    /// The CAS server's base URL, without a trailing `/`.
    pub fn cas_base(&self) -> Result<Url> {
        let raw = self.cas_url.as_deref().ok_or(Error::invalid("upstreams.cas_url", "required for kind = \"cas\""))?;
        let url =
            Url::parse(raw.trim_end_matches('/')).map_err(|e| Error::invalid("upstreams.cas_url", e.to_string()))?;
        check_scheme(&url)?;
        Ok(url)
    }

    /// The value the local account must match, among what the upstream
    /// asserted: the user for `link_from = "user"`, else the attribute's
    /// values.
    pub fn asserted<'a>(&self, user: &'a str, attributes: &'a BTreeMap<String, Vec<String>>) -> Vec<&'a str> {
        if self.link_from == "user" {
            return vec![user];
        }
        attributes.get(&self.link_from).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
    }
}

/// `https://`, or `http://` on a loopback address (tests).
fn check_scheme(url: &Url) -> Result<()> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::invalid("upstreams.cas_url", "https:// is required (http:// only on a loopback address)")),
    }
}

/// What `link_to` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkTo {
    Login,
    Email,
    Attribute(String),
}

impl LinkTo {
    pub fn parse(value: &str) -> LinkTo {
        match value {
            "login" => LinkTo::Login,
            "email" => LinkTo::Email,
            other => LinkTo::Attribute(other.to_owned()),
        }
    }
}

/// Whether a local `value` matches the upstream's `asserted` one: equal, or
/// `source$asserted`.
pub fn value_matches(local: &str, asserted: &str) -> bool {
    !asserted.is_empty()
        && (local == asserted
            || local.rsplit_once('$').is_some_and(|(source, id)| !source.is_empty() && id == asserted))
}

/// Whether `account` carries a value that matches `asserted` under `link`.
pub fn account_matches(account: &Account, link: &LinkTo, asserted: &str) -> bool {
    match link {
        LinkTo::Login => account.login.as_str().eq_ignore_ascii_case(asserted),
        LinkTo::Email => account.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(asserted)),
        LinkTo::Attribute(name) => {
            account.attributes.get(name).is_some_and(|values| values.iter().any(|v| value_matches(v, asserted)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jointure_values_match_with_or_without_their_source() {
        assert!(value_matches("1234", "1234"));
        assert!(value_matches("AC-ORLEANS-TOURS$1234", "1234"));
        assert!(!value_matches("AC-ORLEANS-TOURS$12345", "1234"));
        assert!(!value_matches("$1234", "1234"));
        assert!(!value_matches("1234", ""));
    }

    #[test]
    fn only_cas_upstreams_with_a_safe_url_are_accepted() {
        let cas = |url: &str| UpstreamConfig {
            id: "academie".into(),
            label: "Académie".into(),
            kind: UpstreamKind::Cas,
            cas_url: Some(url.into()),
            idp_metadata: None,
            sp_key_file: None,
            sp_cert_file: None,
            link_from: "user".into(),
            link_to: "login".into(),
            create_missing: false,
        };
        assert!(cas("https://cas.ac-exemple.fr/cas").check().is_ok());
        assert!(cas("http://127.0.0.1:9000/cas").check().is_ok());
        assert!(cas("http://cas.ac-exemple.fr/cas").check().is_err());
        let mut oidc = cas("https://x.fr");
        oidc.kind = UpstreamKind::Oidc;
        assert!(oidc.check().is_err());
        let mut bad = cas("https://x.fr");
        bad.id = "Académie".into();
        assert!(bad.check().is_err());
        let mut saml = cas("https://x.fr");
        saml.kind = UpstreamKind::Saml;
        assert!(saml.check().is_err());
        saml.idp_metadata = Some("/etc/idp/educonnect.xml".into());
        assert!(saml.check().is_ok());
        saml.idp_metadata = Some("http://educonnect.example.fr/md".into());
        assert!(saml.check().is_err());
        saml.idp_metadata = Some("https://educonnect.example.fr/md".into());
        saml.sp_key_file = Some("/etc/idp/sp.key".into());
        assert!(saml.check().is_err());
    }
}
