//! Registered services (CAS relying parties) and how a service URL matches
//! them.

use regex::Regex;
use std::fmt;
use url::Url;

use crate::{Error, Result};

/// The operator's name for a registered service (`vie-scolaire`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(String);

impl ServiceId {
    /// 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub fn parse(value: &str) -> Result<ServiceId> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(ServiceId(value.to_owned()))
        } else {
            Err(Error::invalid("service id", format!("'{value}': 1 to 64 characters of letters, digits, . _ -")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceId({})", self.0)
    }
}

/// A regular expression that a service URL must match **entirely** (as
/// Apereo CAS's `serviceId`, which Java's `matches()` anchors).
#[derive(Clone)]
pub struct UrlPattern {
    source: String,
    regex: Regex,
}

impl UrlPattern {
    pub fn parse(source: &str) -> Result<UrlPattern> {
        if source.is_empty() || source.len() > 1024 {
            return Err(Error::invalid("url pattern", "1 to 1024 characters expected"));
        }
        let regex = Regex::new(&format!("^(?:{source})$")).map_err(|e| Error::invalid("url pattern", e.to_string()))?;
        Ok(UrlPattern { source: source.to_owned(), regex })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// `text` as a pattern that matches it literally.
    pub fn escape(text: &str) -> String {
        regex::escape(text)
    }

    /// Whether the normalised `url` matches (the URL as a browser reads it:
    /// host in lower case, default port and dot segments removed).
    pub fn matches(&self, url: &ServiceUrl) -> bool {
        self.regex.is_match(url.normalized.as_str())
    }

    /// Why the host part of the pattern may match hosts the operator did not
    /// mean, if it may: a pattern should spell its host literally
    /// (`https://app\.example\.fr/.*`), or with a class of host characters
    /// (`[a-z0-9-]+\.example\.fr`), so that no wildcard reaches past it.
    pub fn host_warning(&self) -> Option<&'static str> {
        const WILDCARD: &str = "its host part has a wildcard ('.', a negated class, \\S, \\W or \\D) that may match \
                                another host: spell the host literally (app\\.example\\.fr) or with [a-z0-9-]";
        let source = self.source.strip_prefix('^').unwrap_or(&self.source).replace(r"\/", "/");
        let Some((_, rest)) = source.split_once("://") else {
            return Some("it does not start with a scheme and a host (https://host/)");
        };
        let mut chars = rest.chars().peekable();
        let mut in_class = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.next().is_some_and(|e| matches!(e, 'S' | 'W' | 'D' | 'p' | 'P')) => {
                    return Some(WILDCARD);
                }
                '[' if !in_class => {
                    in_class = true;
                    if chars.peek() == Some(&'^') {
                        return Some(WILDCARD);
                    }
                }
                ']' => in_class = false,
                '.' if !in_class => return Some(WILDCARD),
                '/' if !in_class => return None,
                _ => {}
            }
        }
        None
    }
}

impl fmt::Debug for UrlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UrlPattern({})", self.source)
    }
}

/// A service URL as sent in `service=` (or `TARGET=`): absolute http(s),
/// without user info nor backslash, at most 2048 bytes. The string is kept
/// exactly as received, because validation compares it with the one the
/// ticket was issued for; patterns match, and redirects go to, its
/// normalised form, the URL a browser would follow.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    raw: String,
    normalized: Url,
}

impl ServiceUrl {
    pub fn parse(value: &str) -> Result<ServiceUrl> {
        if value.is_empty() || value.len() > 2048 {
            return Err(Error::invalid("service", "1 to 2048 characters expected"));
        }
        // Browsers read `\` as `/` in http(s) URLs, so `https://evil.fr\@good.fr/`
        // goes to evil.fr while its text looks like good.fr's.
        if value.contains('\\') {
            return Err(Error::invalid("service", "a backslash is not allowed in a service URL"));
        }
        let url = Url::parse(value).map_err(|e| Error::invalid("service", e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::invalid("service", "an absolute http(s) URL is expected"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid("service", "user information is not allowed in a service URL"));
        }
        Ok(ServiceUrl { raw: value.to_owned(), normalized: url })
    }

    /// The URL as received.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The normalised URL with `name=value` appended to its query, as CAS
    /// redirects (`service?ticket=ST-...`). Keeps any fragment at the end.
    pub fn with_param(&self, name: &str, value: &str) -> String {
        crate::query::with_query(self.normalized.as_str(), &[(name, value)])
    }
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceUrl({})", self.raw)
    }
}

/// The name of a released attribute: must be usable as an XML element name
/// and a JSON key (`[A-Za-z_][A-Za-z0-9_.-]*`, at most 64 characters).
pub fn parse_attribute_name(value: &str) -> Result<String> {
    let mut chars = value.chars();
    let ok = value.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !value.to_ascii_lowercase().starts_with("xml");
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid("attribute", format!("'{value}' is not a valid attribute name")))
    }
}

/// A registered service.
#[derive(Clone, Debug)]
pub struct Service {
    pub id: ServiceId,
    pub name: String,
    pub url_pattern: UrlPattern,
    /// The attributes released to this service, in this order; nothing else
    /// leaves. Each is a release rule (`NAME` or `RELEASED=SOURCE`, see
    /// [`crate::release::ReleaseRule`]).
    pub attributes: Vec<String>,
    /// Where the single logout POST goes; none means no single logout.
    pub logout_url: Option<Url>,
    /// Lower values are tried first when several patterns match.
    pub evaluation_order: i32,
    /// Access rules, single sign-on, user identifier and proxy rights.
    pub policy: crate::access::ServicePolicy,
}

impl Service {
    pub fn matches(&self, url: &ServiceUrl) -> bool {
        self.url_pattern.matches(url)
    }
}

/// Picks the service a URL belongs to: the matching service with the lowest
/// evaluation order, then the lowest id, so the choice is deterministic.
pub fn find_match<'a>(services: impl IntoIterator<Item = &'a Service>, url: &ServiceUrl) -> Option<&'a Service> {
    services
        .into_iter()
        .filter(|s| s.matches(url))
        .min_by(|a, b| a.evaluation_order.cmp(&b.evaluation_order).then_with(|| a.id.cmp(&b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, pattern: &str, order: i32) -> Service {
        Service {
            id: ServiceId::parse(id).unwrap(),
            name: id.into(),
            url_pattern: UrlPattern::parse(pattern).unwrap(),
            attributes: vec![],
            logout_url: None,
            evaluation_order: order,
            policy: Default::default(),
        }
    }

    #[test]
    fn patterns_match_the_whole_url() {
        let s = svc("a", r"https://app\.example\.fr/.*", 0);
        assert!(s.matches(&ServiceUrl::parse("https://app.example.fr/x?y=1").unwrap()));
        assert!(!s.matches(&ServiceUrl::parse("https://evil.fr/?https://app.example.fr/").unwrap()));
        let exact = svc("b", r"https://app\.example\.fr/", 0);
        assert!(!exact.matches(&ServiceUrl::parse("https://app.example.fr/evil").unwrap()));
    }

    #[test]
    fn lowest_order_wins() {
        let a = svc("a", "https://x\\.fr/.*", 10);
        let b = svc("b", "https://x\\.fr/app/.*", 1);
        let url = ServiceUrl::parse("https://x.fr/app/1").unwrap();
        assert_eq!(find_match([&a, &b], &url).unwrap().id.as_str(), "b");
    }

    #[test]
    fn service_urls() {
        assert!(ServiceUrl::parse("javascript:alert(1)").is_err());
        assert!(ServiceUrl::parse("/relative").is_err());
        assert!(ServiceUrl::parse("https://u:p@x.fr/").is_err());
        let u = ServiceUrl::parse("https://x.fr/a?b=1#top").unwrap();
        assert_eq!(u.with_param("ticket", "ST-1"), "https://x.fr/a?b=1&ticket=ST-1#top");
        assert_eq!(
            ServiceUrl::parse("https://x.fr/").unwrap().with_param("ticket", "ST-1"),
            "https://x.fr/?ticket=ST-1"
        );
    }

    #[test]
    fn a_backslash_is_refused_and_patterns_match_the_url_a_browser_follows() {
        let s = svc("a", r"https://[^/]+\.good\.fr/.*", 0);
        assert!(ServiceUrl::parse(r"https://evil.example\@x.good.fr/").is_err());
        assert!(ServiceUrl::parse(r"https://x.good.fr/a\b").is_err());
        // Matched and redirected as normalised: host in lower case, dot
        // segments resolved, the path slash added.
        let odd = ServiceUrl::parse("https://X.Good.FR/a/../b?c=1").unwrap();
        assert!(s.matches(&odd));
        assert_eq!(odd.as_str(), "https://X.Good.FR/a/../b?c=1", "kept as received for validation");
        assert_eq!(odd.with_param("ticket", "ST-1"), "https://x.good.fr/b?c=1&ticket=ST-1");
        let bare = ServiceUrl::parse("https://evil.fr#.good.fr/").unwrap();
        assert!(!s.matches(&bare));
    }

    #[test]
    fn host_warnings() {
        let warns = |p: &str| UrlPattern::parse(p).unwrap().host_warning().is_some();
        assert!(!warns(r"https://app\.example\.fr/.*"));
        assert!(!warns(r"^https?://[a-z0-9-]+\.example\.fr(:\d+)?/.*"));
        assert!(!warns(r"https://app\.example\.fr"));
        assert!(warns(r"https://app.example.fr/.*"), "unescaped dot");
        assert!(warns(r"https://.*\.example\.fr/.*"));
        assert!(warns(r"https://[^/]+\.example\.fr/.*"));
        assert!(warns(r"https://\S+/.*"));
        assert!(warns(r".*"));
    }

    #[test]
    fn attribute_names() {
        assert!(parse_attribute_name("ENTPersonProfils").is_ok());
        assert!(parse_attribute_name("1a").is_err());
        assert!(parse_attribute_name("a b").is_err());
        assert!(parse_attribute_name("xmlns").is_err());
    }
}
