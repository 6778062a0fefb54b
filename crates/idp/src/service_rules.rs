//! The options of `idp service add|update` beyond URL and attributes:
//! access rules (profiles, schools), single sign-on, the user identifier
//! and the proxy policy (docs/services.md).

use anyhow::bail;
use clap::Args;

use idp_core::access::{AccessRule, ServicePolicy, UserId};
use idp_core::proxy::ProxyPolicy;
use idp_core::service::UrlPattern;

/// The policy options of `service add`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Only these profiles get tickets (repeat): eleve, parent, personnel,
    /// autre or a national code (National_ENS, National_4…). Default: all.
    #[arg(long = "allow-profile", value_name = "PROFILE")]
    pub allow_profiles: Vec<String>,
    /// Only people of these schools get tickets (repeat). Default: all.
    #[arg(long = "allow-school", value_name = "UAI")]
    pub allow_schools: Vec<String>,
    /// false: credentials are asked at every login to this service.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub sso_enabled: bool,
    /// What the service receives as the user: login, or pseudonym (a stable
    /// random identifier, different for each service).
    #[arg(long, value_name = "KIND", default_value = "login")]
    pub user_id: String,
    /// Allows proxying: the pgtUrl callbacks (https) the service may give.
    #[arg(long, value_name = "REGEX", requires = "proxy_target")]
    pub proxy_callback: Option<String>,
    /// With --proxy-callback: the target services it may get proxy tickets for.
    #[arg(long, value_name = "REGEX", requires = "proxy_callback")]
    pub proxy_target: Option<String>,
}

impl PolicyArgs {
    /// The policy of a new service.
    pub fn policy(&self) -> anyhow::Result<ServicePolicy> {
        Ok(ServicePolicy {
            access: AccessRule::parse(&self.allow_profiles, &self.allow_schools)?,
            sso_enabled: self.sso_enabled,
            user_id: UserId::parse(&self.user_id)?,
            proxy: match (&self.proxy_callback, &self.proxy_target) {
                (Some(c), Some(t)) => Some(proxy_policy(c, t)?),
                _ => None,
            },
        })
    }
}

/// The policy options of `service update`: options given replace the old
/// values.
#[derive(Debug, Args)]
pub struct PolicyUpdateArgs {
    /// Replace the allowed profiles (repeat for several).
    #[arg(long = "allow-profile", value_name = "PROFILE")]
    pub allow_profiles: Vec<String>,
    /// Allow every profile again.
    #[arg(long, conflicts_with = "allow_profiles")]
    pub any_profile: bool,
    /// Replace the allowed schools (repeat for several).
    #[arg(long = "allow-school", value_name = "UAI")]
    pub allow_schools: Vec<String>,
    /// Allow every school again.
    #[arg(long, conflicts_with = "allow_schools")]
    pub any_school: bool,
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub sso_enabled: Option<bool>,
    /// login or pseudonym.
    #[arg(long, value_name = "KIND")]
    pub user_id: Option<String>,
    #[arg(long, value_name = "REGEX")]
    pub proxy_callback: Option<String>,
    #[arg(long, value_name = "REGEX")]
    pub proxy_target: Option<String>,
    /// Withdraw the right to proxy.
    #[arg(long, conflicts_with_all = ["proxy_callback", "proxy_target"])]
    pub no_proxy: bool,
}

impl PolicyUpdateArgs {
    /// `p` with the options given applied: they replace the old values.
    pub fn apply(&self, mut p: ServicePolicy) -> anyhow::Result<ServicePolicy> {
        if !self.allow_profiles.is_empty() || self.any_profile {
            p.access.profiles = AccessRule::parse(&self.allow_profiles, &[])?.profiles;
        }
        if !self.allow_schools.is_empty() || self.any_school {
            p.access.schools = AccessRule::parse(&[], &self.allow_schools)?.schools;
        }
        if let Some(sso) = self.sso_enabled {
            p.sso_enabled = sso;
        }
        if let Some(kind) = &self.user_id {
            p.user_id = UserId::parse(kind)?;
        }
        if self.no_proxy {
            p.proxy = None;
        }
        if self.proxy_callback.is_some() || self.proxy_target.is_some() {
            let old = p.proxy.as_ref().map(|o| (o.callback.as_str().to_owned(), o.targets.as_str().to_owned()));
            let (Some(callback), Some(targets)) = (
                self.proxy_callback.clone().or_else(|| old.as_ref().map(|o| o.0.clone())),
                self.proxy_target.clone().or_else(|| old.as_ref().map(|o| o.1.clone())),
            ) else {
                bail!("a service that may proxy needs both --proxy-callback and --proxy-target");
            };
            p.proxy = Some(proxy_policy(&callback, &targets)?);
        }
        Ok(p)
    }
}

/// The policy as `service list` shows it.
pub fn describe(p: &ServicePolicy) -> String {
    let list = |v: Vec<String>| if v.is_empty() { "*".to_owned() } else { v.join(",") };
    format!(
        "profiles={}\tschools={}\tsso={}\tuser={}\tproxy={}",
        list(p.access.profiles.iter().map(ToString::to_string).collect()),
        list(p.access.schools.clone()),
        p.sso_enabled,
        p.user_id.as_str(),
        p.proxy
            .as_ref()
            .map(|x| format!("{} -> {}", x.callback.as_str(), x.targets.as_str()))
            .unwrap_or_else(|| "-".into())
    )
}

/// A proxy policy from the operator's patterns, written as Apereo CAS
/// writes them or not (`^https://…`: patterns match the whole URL anyway).
fn proxy_policy(callback: &str, targets: &str) -> anyhow::Result<ProxyPolicy> {
    if !callback.trim_start_matches('^').starts_with("https") {
        bail!("the proxy callback pattern must only match https URLs (start it with https or ^https)");
    }
    Ok(ProxyPolicy { callback: UrlPattern::parse(callback)?, targets: UrlPattern::parse(targets)? })
}
