//! How a [`ServicePolicy`] is stored: one JSON text column of the services
//! table, so that new rules need no new column. An absent or empty column
//! is the default policy (everyone, SSO, login, no proxy).

use serde::{Deserialize, Serialize};

use idp_core::access::{AccessRule, ServicePolicy, UserId};
use idp_core::proxy::ProxyPolicy;
use idp_core::service::UrlPattern;
use idp_core::{Error, Result};

#[derive(Serialize, Deserialize)]
struct Row {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_schools: Vec<String>,
    #[serde(default = "yes")]
    sso_enabled: bool,
    #[serde(default = "login")]
    user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy_callback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy_targets: Option<String>,
}

fn yes() -> bool {
    true
}

fn login() -> String {
    UserId::Login.as_str().to_owned()
}

/// Reads the column.
pub(crate) fn from_column(column: Option<&str>) -> Result<ServicePolicy> {
    let Some(text) = column.filter(|t| !t.trim().is_empty()) else {
        return Ok(ServicePolicy::default());
    };
    let row: Row = serde_json::from_str(text).map_err(Error::Json)?;
    let proxy = match (row.proxy_callback, row.proxy_targets) {
        (Some(callback), Some(targets)) => {
            Some(ProxyPolicy { callback: UrlPattern::parse(&callback)?, targets: UrlPattern::parse(&targets)? })
        }
        _ => None,
    };
    Ok(ServicePolicy {
        access: AccessRule::parse(&row.allowed_profiles, &row.allowed_schools)?,
        sso_enabled: row.sso_enabled,
        user_id: UserId::parse(&row.user_id)?,
        proxy,
    })
}

/// Writes the column.
pub(crate) fn to_column(policy: &ServicePolicy) -> Result<String> {
    let row = Row {
        allowed_profiles: policy.access.profiles.iter().map(ToString::to_string).collect(),
        allowed_schools: policy.access.schools.clone(),
        sso_enabled: policy.sso_enabled,
        user_id: policy.user_id.as_str().to_owned(),
        proxy_callback: policy.proxy.as_ref().map(|p| p.callback.as_str().to_owned()),
        proxy_targets: policy.proxy.as_ref().map(|p| p.targets.as_str().to_owned()),
    };
    serde_json::to_string(&row).map_err(Error::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_default() {
        let default = from_column(None).unwrap();
        assert!(default.sso_enabled && default.proxy.is_none() && default.access.profiles.is_empty());
        let policy = ServicePolicy {
            access: AccessRule::parse(&["personnel".into(), "National_DOC".into()], &["0370001A".into()]).unwrap(),
            sso_enabled: false,
            user_id: UserId::Pseudonym,
            proxy: Some(ProxyPolicy {
                callback: UrlPattern::parse("https://p/.*").unwrap(),
                targets: UrlPattern::parse("https://t/.*").unwrap(),
            }),
        };
        let back = from_column(Some(&to_column(&policy).unwrap())).unwrap();
        assert_eq!(back.access, policy.access);
        assert!(!back.sso_enabled);
        assert_eq!(back.user_id, UserId::Pseudonym);
        assert_eq!(back.proxy.unwrap().targets.as_str(), "https://t/.*");
    }
}
