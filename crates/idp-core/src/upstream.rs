//! Upstream identity providers: the académie's CAS server, an OpenID
//! Connect provider (FranceConnect, an académie's OpenID provider; the
//! ÉduConnect SAML kind plugs into the same place), and how an identity
//! they assert is linked to a local account.
//!
//! Linking compares a value the upstream asserts (`link_from`: the CAS
//! user or one of its attributes, an OpenID claim) with a value of the local account
//! (`link_to`: its login, its e-mail or a directory attribute). A local
//! value matches when it is equal, or when it is `source$id` (the SDET
//! `ENTPersonJointure` shape) and the upstream value is `id`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use crate::account::Account;
use crate::secret::Secret;
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
    /// OpenID Connect: the issuer (its `/.well-known/openid-configuration`
    /// is read).
    pub issuer: Option<String>,
    /// OpenID Connect: the client id registered at the provider.
    pub client_id: Option<String>,
    /// OpenID Connect: the client secret, or `client_secret_file`.
    pub client_secret: Option<Secret>,
    /// OpenID Connect: a file holding the client secret (read at start).
    pub client_secret_file: Option<PathBuf>,
    /// OpenID Connect: the scopes asked for (`openid` is always asked).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// OpenID Connect: how the client authenticates at the token endpoint.
    #[serde(default)]
    pub token_auth: TokenAuth,
    /// OpenID Connect: the authentication context classes asked for
    /// (`acr_values`, e.g. FranceConnect's `eidas1`); when set, an ID token
    /// whose `acr` is not one of them is refused.
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// SAML: the identity provider's metadata, a file path or an `https://` URL.
    #[serde(default)]
    pub idp_metadata: Option<String>,
    /// SAML: our key and certificate (PEM files); without them a pair is
    /// generated at first start and kept in the store.
    #[serde(default)]
    pub sp_key_file: Option<String>,
    #[serde(default)]
    pub sp_cert_file: Option<String>,
    /// `user` (the CAS user), the name of an attribute the upstream sends,
    /// a SAML attribute or `NameID`, or an OpenID claim (`sub`, `email`, a
    /// provider's own claim).
    pub link_from: String,
    /// `login`, `email` or the name of an ENT directory attribute.
    pub link_to: String,
    /// Create an active account for an identity that matches none, from
    /// the asserted names and e-mail, with the profile of the profile
    /// chosen on the login page.
    #[serde(default)]
    pub create_missing: bool,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}

/// The client authentication at an OpenID provider's token endpoint.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    /// HTTP Basic with the client id and secret (the default).
    #[default]
    ClientSecretBasic,
    /// The client id and secret in the form body.
    ClientSecretPost,
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
    /// A CAS upstream (the keys of the other kinds unset).
    pub fn cas(id: &str, label: &str, cas_url: &str, link_from: &str, link_to: &str) -> Self {
        UpstreamConfig {
            id: id.to_owned(),
            label: label.to_owned(),
            kind: UpstreamKind::Cas,
            cas_url: Some(cas_url.to_owned()),
            issuer: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            scopes: default_scopes(),
            token_auth: TokenAuth::default(),
            acr_values: Vec::new(),
            idp_metadata: None,
            sp_key_file: None,
            sp_cert_file: None,
            link_from: link_from.to_owned(),
            link_to: link_to.to_owned(),
            create_missing: false,
        }
    }

    /// An OpenID Connect upstream (the keys of the other kinds unset).
    pub fn oidc(id: &str, label: &str, issuer: &str, (client_id, secret): (&str, &str), link: (&str, &str)) -> Self {
        UpstreamConfig {
            kind: UpstreamKind::Oidc,
            cas_url: None,
            issuer: Some(issuer.to_owned()),
            client_id: Some(client_id.to_owned()),
            client_secret: Some(Secret::new(secret)),
            ..UpstreamConfig::cas(id, label, "", link.0, link.1)
        }
    }

    /// A SAML upstream (the keys of the other kinds unset; SP keys generated).
    pub fn saml(id: &str, label: &str, idp_metadata: &str, (link_from, link_to): (&str, &str)) -> Self {
        UpstreamConfig {
            kind: UpstreamKind::Saml,
            cas_url: None,
            idp_metadata: Some(idp_metadata.to_owned()),
            ..UpstreamConfig::cas(id, label, "", link_from, link_to)
        }
    }

    /// Checks an entry: the id's shape, the URL of its kind (`https://`,
    /// or `http://` on a loopback address only) and the keys each kind needs.
    pub fn check(&self) -> Result<()> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(Error::invalid("upstreams.id", "only a-z, 0-9 and '-' are allowed"));
        }
        match self.kind {
            UpstreamKind::Cas => self.cas_base().map(|_| ()),
            UpstreamKind::Oidc => self.check_oidc(),
            UpstreamKind::Saml => self.check_saml(),
        }
    }

    fn check_oidc(&self) -> Result<()> {
        self.issuer_url()?;
        if self.client_id.as_deref().is_none_or(str::is_empty) {
            return Err(Error::invalid("upstreams.client_id", "required for kind = \"oidc\""));
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return Err(Error::invalid(
                "upstreams.client_secret",
                "give client_secret or client_secret_file, not both",
            ));
        }
        if self.client_secret.is_none() && self.client_secret_file.is_none() {
            return Err(Error::invalid("upstreams.client_secret", "client_secret or client_secret_file is required"));
        }
        if self.scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(Error::invalid("upstreams.scopes", "one scope per array item, without spaces"));
        }
        Ok(())
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
            check_scheme("upstreams.idp_metadata", &url)?;
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
        check_scheme("upstreams.cas_url", &url)?;
        Ok(url)
    }

    /// The OpenID provider's issuer, as configured (it must be the `iss` of
    /// its ID tokens exactly).
    pub fn issuer_url(&self) -> Result<Url> {
        let raw = self.issuer.as_deref().ok_or(Error::invalid("upstreams.issuer", "required for kind = \"oidc\""))?;
        let url = Url::parse(raw).map_err(|e| Error::invalid("upstreams.issuer", e.to_string()))?;
        check_scheme("upstreams.issuer", &url)?;
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

/// `https://`, or `http://` on a loopback address (tests). Every URL an
/// upstream's discovery document names is held to the same rule.
pub fn check_scheme(key: &'static str, url: &Url) -> Result<()> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Error::invalid(key, "https:// is required (http:// only on a loopback address)")),
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
    fn upstreams_need_a_safe_url_and_the_keys_of_their_kind() {
        let cas = |url: &str| UpstreamConfig::cas("academie", "Académie", url, "user", "login");
        assert!(cas("https://cas.ac-exemple.fr/cas").check().is_ok());
        assert!(cas("http://127.0.0.1:9000/cas").check().is_ok());
        assert!(cas("http://cas.ac-exemple.fr/cas").check().is_err());
        let mut bad = cas("https://x.fr");
        bad.id = "Académie".into();
        assert!(bad.check().is_err());
        let oidc = |issuer: &str| UpstreamConfig::oidc("fc", "FC", issuer, ("ent", "secret"), ("sub", "login"));
        assert!(oidc("https://fc.example.fr").check().is_ok());
        assert!(oidc("http://localhost:4000").check().is_ok());
        assert!(oidc("http://fc.example.fr").check().is_err());
        let mut no_secret = oidc("https://fc.example.fr");
        no_secret.client_secret = None;
        assert!(no_secret.check().is_err());
        let mut both = oidc("https://fc.example.fr");
        both.client_secret_file = Some("/run/secrets/fc".into());
        assert!(both.check().is_err());
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
