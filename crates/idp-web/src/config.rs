//! What the web layer needs from configuration.

use serde::Deserialize;
use std::path::PathBuf;
use url::Url;

/// How a login profile authenticates. Only `local` (the account database)
/// exists for now; upstream identity providers come later.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Local,
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
}

fn local() -> AuthMethod {
    AuthMethod::Local
}

/// The three choices of the seed.
pub fn default_profiles() -> Vec<LoginProfile> {
    vec![
        LoginProfile { id: "eleve-parent".into(), label: "Élève ou parent".into(), method: AuthMethod::Local },
        LoginProfile {
            id: "personnel".into(),
            label: "Personnel de l'éducation nationale".into(),
            method: AuthMethod::Local,
        },
        LoginProfile {
            id: "autre".into(),
            label: "Autre public (personnel de collectivité, entreprise, utilisateur local, ...)".into(),
            method: AuthMethod::Local,
        },
    ]
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
}
