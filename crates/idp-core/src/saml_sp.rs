//! SAML service providers registered with our identity provider (the GAR,
//! publishers' and académie services that speak only SAML), and their
//! registry port.
//!
//! A registration keeps the SP's metadata as given (entity id, assertion
//! consumers, keys and logout endpoints are read from it), the NameID it
//! gets, whether assertions are encrypted to it, and the same release rules
//! and access policy as a CAS service: a login for an SP goes through the
//! CAS login pipeline as the SP's own internal service
//! ([`SamlSp::login_service`]), so the profile choice, upstreams, charter
//! and access rules apply, and the attributes are released by the CAS rules.

use async_trait::async_trait;

use crate::access::{ServicePolicy, UserId};
use crate::service::{Service, ServiceId, UrlPattern};
use crate::{Error, Result};

/// The NameID an SP receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NameIdKind {
    /// A new random value at each assertion.
    #[default]
    Transient,
    /// The account's pseudonym for this SP: stable, different for each SP.
    Persistent,
    /// The login.
    Unspecified,
}

impl NameIdKind {
    /// `transient`, `persistent` or `unspecified`.
    pub fn parse(value: &str) -> Result<NameIdKind> {
        match value {
            "transient" => Ok(NameIdKind::Transient),
            "persistent" => Ok(NameIdKind::Persistent),
            "unspecified" => Ok(NameIdKind::Unspecified),
            other => Err(Error::invalid("name id", format!("'{other}': transient, persistent or unspecified"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NameIdKind::Transient => "transient",
            NameIdKind::Persistent => "persistent",
            NameIdKind::Unspecified => "unspecified",
        }
    }
}

/// A registered SAML service provider.
#[derive(Clone, Debug)]
pub struct SamlSp {
    /// The operator's name for it (its login service is `saml.<id>`).
    pub id: ServiceId,
    pub name: String,
    /// The SP's entity id, read from its metadata at registration.
    pub entity_id: String,
    /// The SP's metadata document, as registered.
    pub metadata: String,
    pub name_id: NameIdKind,
    /// Assertions are encrypted to the SP's encryption certificate.
    pub encrypt: bool,
    /// AuthnRequests must be signed, whatever the metadata says.
    pub require_signed_requests: bool,
    /// The SP may start a login itself (`/saml/idp/sso?sp=ID`).
    pub idp_initiated: bool,
    /// Release rules, as for a CAS service (`IDO=pseudonym`, `UAI=school`).
    pub attributes: Vec<String>,
    /// Access rules and single sign-on, as for a CAS service.
    pub policy: ServicePolicy,
}

/// How the login services of SAML SPs are named among CAS services (so
/// that an SP and a CAS service of the same id get different pseudonyms).
pub const LOGIN_SERVICE_PREFIX: &str = "saml.";

/// Refuses a CAS service id in the namespace of SP login services
/// (`saml.…`, in any case): such a service would be shadowed by, or
/// stand in for, an SP's login service.
pub fn check_service_id(id: &crate::service::ServiceId) -> Result<()> {
    let reserved =
        id.as_str().get(..LOGIN_SERVICE_PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(LOGIN_SERVICE_PREFIX));
    match reserved {
        true => Err(crate::Error::invalid(
            "service id",
            format!(
                "'{id}': ids starting with '{LOGIN_SERVICE_PREFIX}' are reserved for the login services of SAML SPs (see `idp saml-sp`)"
            ),
        )),
        false => Ok(()),
    }
}

/// The path the CAS login comes back to after a login for an SP.
pub const RESUME_PATH: &str = "/saml/idp/resume";

impl SamlSp {
    /// The internal service the login pipeline sees for this SP: only our
    /// own `<public_base>/saml/idp/resume/<id>?…` URLs match it, and a
    /// persistent NameID makes its user id the SP's pseudonym.
    pub fn login_service(&self, public_base: &str) -> Result<Service> {
        let base = format!("{}{RESUME_PATH}/{}", public_base.trim_end_matches('/'), self.id);
        let mut policy = self.policy.clone();
        policy.user_id = match self.name_id {
            NameIdKind::Persistent => UserId::Pseudonym,
            _ => UserId::Login,
        };
        policy.proxy = None;
        Ok(Service {
            id: ServiceId::parse(&format!("{LOGIN_SERVICE_PREFIX}{}", self.id))?,
            name: self.name.clone(),
            url_pattern: UrlPattern::parse(&format!(r"{}\?key=[A-Za-z0-9]+", UrlPattern::escape(&base)))?,
            attributes: self.attributes.clone(),
            logout_url: None,
            evaluation_order: i32::MIN,
            policy,
        })
    }
}

/// The registered SAML service providers. Changes made by the CLI or
/// another node are seen at once.
#[async_trait]
pub trait SamlSpRegistry: Send + Sync {
    async fn get(&self, id: &ServiceId) -> Result<Option<SamlSp>>;
    async fn by_entity_id(&self, entity_id: &str) -> Result<Option<SamlSp>>;
    async fn list(&self) -> Result<Vec<SamlSp>>;
    /// Fails with [`Error::Conflict`] when the id or the entity id is taken.
    async fn add(&self, sp: SamlSp) -> Result<()>;
    async fn remove(&self, id: &ServiceId) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceUrl;

    #[test]
    fn only_our_resume_urls_of_this_sp_match_its_login_service() {
        let sp = SamlSp {
            id: ServiceId::parse("gar").unwrap(),
            name: "GAR".into(),
            entity_id: "https://sp".into(),
            metadata: String::new(),
            name_id: NameIdKind::Persistent,
            encrypt: false,
            require_signed_requests: false,
            idp_initiated: false,
            attributes: vec![],
            policy: ServicePolicy::default(),
        };
        let s = sp.login_service("https://ent.example.fr").unwrap();
        assert_eq!(s.policy.user_id, UserId::Pseudonym);
        assert_eq!(s.id.as_str(), "saml.gar");
        let url = |u: &str| ServiceUrl::parse(u).unwrap();
        assert!(s.matches(&url("https://ent.example.fr/saml/idp/resume/gar?key=abc123")));
        assert!(!s.matches(&url("https://ent.example.fr/saml/idp/resume/gar2?key=abc")));
        assert!(!s.matches(&url("https://ent.example.fr/saml/idp/resume/gar?key=a&x=https://evil")));
        assert!(!s.matches(&url("https://evil.fr/saml/idp/resume/gar?key=abc")));
    }

    #[test]
    fn name_id_kinds_parse() {
        assert_eq!(NameIdKind::parse("persistent").unwrap(), NameIdKind::Persistent);
        assert!(NameIdKind::parse("email").is_err());
    }
}
