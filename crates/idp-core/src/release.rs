//! Release rules: under which names and in which shape a service receives
//! attributes.
//!
//! A service lists rules ([`ReleaseRule`]): `NAME` releases the attribute
//! `NAME` as is; `RELEASED=SOURCE` releases the values of `SOURCE` under the
//! name `RELEASED` (`nom=family_name`); a `:first` suffix on the source keeps
//! one value, `:numeric` turns profile codes into their `National_1..4` form
//! (`categories=ENTPersonProfils:numeric`). The source `pseudonym` is the
//! account's pseudonymous identifier for the service.

use crate::account::Account;
use crate::attributes::values_of;
use crate::ent;
use crate::service::{Service, parse_attribute_name};
use crate::{Error, Result};

/// The source name of the per-service pseudonymous identifier.
pub const PSEUDONYM: &str = "pseudonym";

/// How the values of a source are shaped before release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Every value.
    All,
    /// The first value only (a service that wants a single value).
    First,
    /// Profile codes in their numeric form (`National_1..4`).
    Numeric,
}

/// One line of a service's release policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRule {
    /// The name the service sees.
    pub released: String,
    /// Where the values come from (see [`values_of`], [`PSEUDONYM`]).
    pub source: String,
    pub shape: Shape,
}

impl ReleaseRule {
    /// `NAME`, `RELEASED=SOURCE`, with an optional `:first` or `:numeric`
    /// after the source.
    pub fn parse(spec: &str) -> Result<ReleaseRule> {
        let spec = spec.trim();
        let (released, source) = match spec.split_once('=') {
            Some((r, s)) => (r.trim(), s.trim()),
            None => (spec.split(':').next().unwrap_or(spec), spec),
        };
        let (source, shape) = match source.split_once(':') {
            None => (source, Shape::All),
            Some((s, "first")) => (s, Shape::First),
            Some((s, "numeric")) => (s, Shape::Numeric),
            Some((_, other)) => {
                return Err(Error::invalid("attribute", format!("'{other}': the suffix is :first or :numeric")));
            }
        };
        Ok(ReleaseRule { released: parse_attribute_name(released)?, source: parse_attribute_name(source)?, shape })
    }

    /// The canonical text of the rule, as stored and listed.
    pub fn spec(&self) -> String {
        let suffix = match self.shape {
            Shape::All => "",
            Shape::First => ":first",
            Shape::Numeric => ":numeric",
        };
        if self.released == self.source {
            format!("{}{suffix}", self.source)
        } else {
            format!("{}={}{suffix}", self.released, self.source)
        }
    }

    fn values(&self, account: &Account, pseudonym: Option<&str>) -> Vec<String> {
        let values = match self.source.as_str() {
            PSEUDONYM => pseudonym.map(str::to_owned).into_iter().collect(),
            source => values_of(account, source),
        };
        match self.shape {
            Shape::All => values,
            Shape::First => values.into_iter().take(1).collect(),
            Shape::Numeric => {
                let mut out: Vec<String> = Vec::new();
                for v in values.iter().filter_map(|v| ent::numeric_profile(v)) {
                    if !out.iter().any(|o| o == v) {
                        out.push(v.to_owned());
                    }
                }
                out
            }
        }
    }
}

/// The release rules of a service; a rule that does not parse (a row edited
/// by hand) releases nothing.
pub fn rules(service: &Service) -> impl Iterator<Item = ReleaseRule> + '_ {
    service.attributes.iter().filter_map(|spec| ReleaseRule::parse(spec).ok())
}

/// Whether releasing to `service` needs the account's pseudonym for it.
pub fn needs_pseudonym(service: &Service) -> bool {
    service.policy.user_id == crate::access::UserId::Pseudonym || rules(service).any(|r| r.source == PSEUDONYM)
}

/// [`crate::attributes::release`], with the account's pseudonym for the service when it has one.
pub fn release_with(account: &Account, service: &Service, pseudonym: Option<&str>) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for rule in rules(service) {
        let values = rule.values(account, pseudonym);
        if values.is_empty() {
            continue;
        }
        // Two rules releasing one name add up to one multi-valued attribute.
        match out.iter_mut().find(|(name, _)| *name == rule.released) {
            Some((_, existing)) => existing.extend(values),
            None => out.push((rule.released, values)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_print() {
        let r = ReleaseRule::parse("uid").unwrap();
        assert_eq!((r.released.as_str(), r.source.as_str(), r.shape), ("uid", "uid", Shape::All));
        let r = ReleaseRule::parse("categories=ENTPersonProfils:numeric").unwrap();
        assert_eq!(
            (r.released.as_str(), r.source.as_str(), r.shape),
            ("categories", "ENTPersonProfils", Shape::Numeric)
        );
        assert_eq!(r.spec(), "categories=ENTPersonProfils:numeric");
        assert_eq!(ReleaseRule::parse("school:first").unwrap().spec(), "school:first");
        assert_eq!(ReleaseRule::parse(" nom = family_name ").unwrap().spec(), "nom=family_name");
        assert!(ReleaseRule::parse("a=b:last").is_err());
        assert!(ReleaseRule::parse("1a=uid").is_err());
        assert!(ReleaseRule::parse("nom=").is_err());
    }

    #[test]
    fn release_maps_shapes_merges_and_skips_empty_values() {
        use crate::access::{ServicePolicy, UserId, test_account};
        use crate::account::Profile;
        use crate::service::{ServiceId, UrlPattern};
        let account = test_account(Profile::Personnel, &["0370001A", "0370002B"], &["National_ENS", "National_DIR"]);
        let mut service = Service {
            id: ServiceId::parse("s").unwrap(),
            name: "S".into(),
            url_pattern: UrlPattern::parse("https://s/.*").unwrap(),
            attributes: [
                "nom=family_name",
                "categories=ENTPersonProfils:numeric",
                "uai=school:first",
                "email",
                "id=pseudonym",
                "nom=given_name",
            ]
            .map(String::from)
            .to_vec(),
            logout_url: None,
            evaluation_order: 0,
            policy: ServicePolicy::default(),
        };
        assert!(needs_pseudonym(&service));
        let released = release_with(&account, &service, Some("P"));
        let get = |n: &str| released.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("nom"), Some(vec!["B".to_owned(), "A".to_owned()]), "two rules, one name");
        assert_eq!(get("categories"), Some(vec!["National_3".to_owned(), "National_4".to_owned()]));
        assert_eq!(get("uai"), Some(vec!["0370001A".to_owned()]));
        assert_eq!(get("id"), Some(vec!["P".to_owned()]));
        assert_eq!(get("email"), None, "no e-mail: not sent");
        service.attributes = vec!["uid".into()];
        assert!(!needs_pseudonym(&service));
        service.policy.user_id = UserId::Pseudonym;
        assert!(needs_pseudonym(&service));
    }
}
