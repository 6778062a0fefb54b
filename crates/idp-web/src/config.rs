//! What the web layer needs from configuration.

use idp_core::account::Profile;
use serde::Deserialize;
use std::path::PathBuf;
use url::Url;

/// How a login profile authenticates: `local` (the account database) or
/// `upstream` (the identity providers the profile lists).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Local,
    Upstream,
}

/// One choice of the profile page ("Élève ou parent", ...).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginProfile {
    /// Short id used in URLs and the profile cookie (`eleve-parent`).
    pub id: String,
    /// The words on the button.
    pub label: String,
    #[serde(default = "local")]
    pub method: AuthMethod,
    /// With `method = "upstream"`: the ids of its `[[upstreams]]`; one goes
    /// straight there, several are offered as choices.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// The profile of the accounts an upstream's `create_missing` creates
    /// for a login through this profile (`eleve`, `parent`, `personnel`,
    /// `autre`); by default the profile's id when it is one of these.
    #[serde(default)]
    pub account_profile: Option<Profile>,
}

impl LoginProfile {
    /// The profile of an account created for a login through this one.
    pub fn account_profile(&self) -> Option<Profile> {
        self.account_profile.or_else(|| Profile::parse(&self.id).ok())
    }
}

fn local() -> AuthMethod {
    AuthMethod::Local
}

/// The three profile choices of the login page.
pub fn default_profiles() -> Vec<LoginProfile> {
    vec![
        LoginProfile {
            id: "eleve-parent".into(),
            label: "Élève ou parent".into(),
            method: AuthMethod::Local,
            upstreams: Vec::new(),
            account_profile: None,
        },
        LoginProfile {
            id: "personnel".into(),
            label: "Personnel de l'éducation nationale".into(),
            method: AuthMethod::Local,
            upstreams: Vec::new(),
            account_profile: None,
        },
        LoginProfile {
            id: "autre".into(),
            label: "Autre public (personnel de collectivité, entreprise, utilisateur local, ...)".into(),
            method: AuthMethod::Local,
            upstreams: Vec::new(),
            account_profile: None,
        },
    ]
}

/// Words of the pages that come from configuration rather than from the
/// theme; every template sees them.
#[derive(Clone, Debug, Default)]
pub struct PageTexts {
    /// The browser versions the login page lists after « Version
    /// nécessaire : ».
    pub browser_versions: Vec<String>,
    /// The operator's charter (HTML, trusted: it comes from the
    /// configuration), shown instead of the theme's text.
    pub charter: Option<String>,
}

/// The versions listed when the configuration names none.
pub fn default_browser_versions() -> Vec<String> {
    ["Firefox 115 ou plus récent", "Chrome 120 ou plus récent", "Edge 120 ou plus récent", "Safari 16 ou plus récent"]
        .map(String::from)
        .to_vec()
}

/// Settings of the web layer.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// The public URL users and services see (issuer, links in e-mails).
    pub public_url: Url,
    /// Theme name (`touraine-eschool`).
    pub theme: String,
    /// A folder of themes on disk that overrides the embedded ones.
    pub theme_dir: Option<PathBuf>,
    /// The site name shown in page headers.
    pub site_name: String,
    pub profiles: Vec<LoginProfile>,
    /// Proxies whose `X-Forwarded-For` is believed (addresses are ranges
    /// of one).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `/metrics` is served on a listener of its own, not on this one.
    pub metrics_elsewhere: bool,
    /// The label of each upstream identity provider, by id.
    pub upstream_labels: Vec<(String, String)>,
    /// Signs the CSRF tokens of forms; the same on every node.
    pub csrf_key: idp_core::secret::Secret,
}

impl WebConfig {
    /// Cookies are `Secure` and HSTS is sent when the public URL is https.
    pub fn https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    pub fn profile(&self, id: &str) -> Option<&LoginProfile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// The words on the button of upstream `id` (its id when unknown).
    pub fn upstream_label(&self, id: &str) -> String {
        self.upstream_labels.iter().find(|(u, _)| u == id).map_or_else(|| id.to_owned(), |(_, l)| l.clone())
    }
}
