//! `idp service import` and `idp service export`: Apereo CAS JSON service
//! definitions (one file per service, as Apereo's JSON service registry
//! keeps them), so that operators moving from Apereo CAS bring their
//! registry as it is.
//!
//! Read: `serviceId`, `name`, `id`, `evaluationOrder`, `logoutUrl`,
//! `attributeReleasePolicy.allowedAttributes` (a plain list or Apereo's
//! `["java.util.ArrayList", [...]]`), `proxyPolicy.pattern`. Anything else
//! of the file is ignored and said so on standard error.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use idp_core::access::ServicePolicy;
use idp_core::proxy::ProxyPolicy;
use idp_core::service::{Service, ServiceId, UrlPattern};

/// The keys of a definition this import reads; others are reported.
const READ: &[&str] = &[
    "@class",
    "serviceId",
    "name",
    "id",
    "evaluationOrder",
    "logoutUrl",
    "attributeReleasePolicy",
    "proxyPolicy",
    "description",
];

/// The JSON files of `path`: the file itself, or the `*.json` files of a
/// folder, by name.
pub fn files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// One Apereo definition as a service of ours (checked as `service add`
/// checks its options).
pub fn read(
    file: &Path,
    parse_attributes: impl Fn(&[String]) -> anyhow::Result<Vec<String>>,
) -> anyhow::Result<Service> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{}: not a JSON document", file.display()))?;
    let at = |what: &str| format!("{}: {what}", file.display());
    let Some(object) = v.as_object() else { bail!(at("a JSON object is expected")) };
    for key in object.keys().filter(|k| !READ.contains(&k.as_str())) {
        eprintln!("{}: '{key}' is not imported", file.display());
    }
    let pattern = v["serviceId"].as_str().with_context(|| at("serviceId is missing"))?;
    let name = v["name"].as_str().with_context(|| at("name is missing"))?;
    let number = v["id"].as_i64().with_context(|| at("id (a number) is missing"))?;
    let attributes = allowed_attributes(&v["attributeReleasePolicy"]);
    let proxy = match v["proxyPolicy"]["pattern"].as_str() {
        Some(callback) => Some(ProxyPolicy {
            callback: UrlPattern::parse(callback).with_context(|| at("proxyPolicy.pattern"))?,
            // Apereo lets a proxy reach any registered service.
            targets: UrlPattern::parse(".*")?,
        }),
        None => None,
    };
    Ok(Service {
        id: ServiceId::parse(&service_id(name, number)).with_context(|| at("id"))?,
        name: name.trim().to_owned(),
        url_pattern: UrlPattern::parse(pattern).with_context(|| at("serviceId"))?,
        attributes: parse_attributes(&attributes).with_context(|| at("allowedAttributes"))?,
        logout_url: match v["logoutUrl"].as_str() {
            Some(u) => Some(url::Url::parse(u).with_context(|| at("logoutUrl"))?),
            None => None,
        },
        evaluation_order: v["evaluationOrder"].as_i64().and_then(|o| i32::try_from(o).ok()).unwrap_or(0),
        policy: ServicePolicy { proxy, ..ServicePolicy::default() },
    })
}

/// `allowedAttributes`, in either of Apereo's shapes.
fn allowed_attributes(policy: &Value) -> Vec<String> {
    let list = match &policy["allowedAttributes"] {
        Value::Array(items) if items.len() == 2 && items[0].is_string() && items[1].is_array() => &items[1],
        other => other,
    };
    list.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

/// Our id for Apereo's `name` and numeric `id`: the name in lower-case
/// letters, digits and `-`, then the number (`Cahier de textes`, 1001 →
/// `cahier-de-textes-1001`).
pub fn service_id(name: &str, number: i64) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(fold).map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    if slug.is_empty() { format!("service-{number}") } else { format!("{slug}-{number}") }
}

/// `é` → `e`, for ids.
fn fold(c: char) -> impl Iterator<Item = char> {
    let plain = match c {
        'à' | 'â' | 'ä' | 'À' | 'Â' | 'Ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'î' | 'ï' | 'Î' | 'Ï' => 'i',
        'ô' | 'ö' | 'Ô' | 'Ö' => 'o',
        'ù' | 'û' | 'ü' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ç' | 'Ç' => 'c',
        other => other,
    };
    std::iter::once(plain)
}

/// A service as an Apereo definition; `number` is its Apereo `id`.
pub fn write(service: &Service, number: i64) -> Value {
    let mut v = json!({
        "@class": "org.apereo.cas.services.CasRegisteredService",
        "serviceId": service.url_pattern.as_str(),
        "name": service.name,
        "id": number,
        "evaluationOrder": service.evaluation_order,
        "attributeReleasePolicy": {
            "@class": "org.apereo.cas.services.ReturnAllowedAttributeReleasePolicy",
            "allowedAttributes": ["java.util.ArrayList", service.attributes],
        },
    });
    if let Some(u) = &service.logout_url {
        v["logoutUrl"] = json!(u.as_str());
    }
    if let Some(p) = &service.policy.proxy {
        v["proxyPolicy"] = json!({
            "@class": "org.apereo.cas.services.RegexMatchingRegisteredServiceProxyPolicy",
            "pattern": p.callback.as_str(),
        });
    }
    v
}

/// The Apereo `id` of a service: the number its id ends with, as an import
/// made it, else `1000 + position`.
pub fn number(service: &Service, position: usize) -> i64 {
    service
        .id
        .as_str()
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1000 + i64::try_from(position).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_name_and_the_number() {
        assert_eq!(service_id("Cahier de textes", 1001), "cahier-de-textes-1001");
        assert_eq!(service_id("Vie scolaire (Pronote) !", 7), "vie-scolaire-pronote-7");
        assert_eq!(service_id("Élève — ENT", 3), "eleve-ent-3");
        assert_eq!(service_id("!!!", 5), "service-5");
    }

    #[test]
    fn both_shapes_of_allowed_attributes_are_read() {
        let typed = json!({"allowedAttributes": ["java.util.ArrayList", ["cn", "mail"]]});
        assert_eq!(allowed_attributes(&typed), ["cn", "mail"]);
        let plain = json!({"allowedAttributes": ["uid", "sn"]});
        assert_eq!(allowed_attributes(&plain), ["uid", "sn"]);
        assert!(allowed_attributes(&Value::Null).is_empty());
    }
}
