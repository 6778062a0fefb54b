//! Configuration: defaults, then the TOML file (`--config`), then the
//! `IDP_*` environment variables (docs/operations.md).

use serde::Deserialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use idp_core::lifecycle::LifecyclePolicy;
use idp_core::password::Argon2Params;
use idp_core::password_policy::PasswordPolicy;
use idp_core::session::SessionPolicy;
use idp_core::throttle::ThrottlePolicy;
use idp_core::upstream::UpstreamConfig;
use idp_protocol::oidc::OidcLifetimes;
use idp_store::mail::{DkimSettings, SmtpSettings};
use idp_web::config::{AuthMethod, LoginProfile, PageTexts, default_browser_versions, default_profiles};

/// Every setting, with its default. Unknown keys are refused, so that a
/// typing mistake in the file is reported instead of ignored.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `host:port` to listen on.
    pub bind: String,
    /// Connection limits and the metrics listener (`[server]`).
    pub server: ServerSettings,
    /// The URL users and services see; `http://<bind>` when not set.
    pub public_url: Option<String>,
    /// Where the embedded default keeps its database and outbox.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; `sqlite://<data_dir>/idp.db` when not set.
    pub database_url: Option<String>,
    /// The file of the key that encrypts the OIDC signing keys in the
    /// database (32 bytes in base64). When not set, `key-encryption.key`
    /// beside the SQLite database (or in `data_dir`), made at first start.
    pub key_encryption_key_file: Option<PathBuf>,
    /// `redis://…` for tickets, sessions and counters shared by several
    /// nodes; in memory when not set.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
    pub theme: String,
    /// A folder holding `<theme>/templates` and `<theme>/static` that
    /// overrides the embedded themes.
    pub theme_dir: Option<PathBuf>,
    pub site_name: String,
    /// The current version of the terms of use (CGU).
    pub cgu_version: String,
    /// An HTML file with the charter (CGU) text, shown instead of the
    /// theme's; raise `cgu_version` whenever it changes.
    pub cgu_file: Option<PathBuf>,
    pub argon2: Argon2Params,
    /// Password hashes computed at once; the number of CPUs when not set.
    pub hashing_concurrency: Option<usize>,
    /// Password hashes that may wait for a free slot; beyond, a login gets
    /// the "momentanément indisponible" page at once. 32 per slot when not
    /// set.
    pub hashing_queue: Option<usize>,
    pub tickets: TicketSettings,
    pub throttle: ThrottlePolicy,
    pub login: LoginSettings,
    /// The upstream identity providers profiles may route to.
    pub upstreams: Vec<UpstreamConfig>,
    /// Timeout of outbound HTTP calls (single logout), in seconds.
    pub outbound_timeout_seconds: u64,
    /// A PEM file of CA certificates trusted for outbound https (CAS proxy
    /// callbacks) besides the system's roots: a private CA, a test CA.
    pub outbound_extra_ca_file: Option<PathBuf>,
    /// Proxies (load balancers) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Lifetimes of OIDC codes and tokens (`[oidc]`).
    pub oidc: OidcLifetimes,
    /// The account flows: link lifetimes, secret questions (docs/accounts.md).
    pub accounts: LifecyclePolicy,
    /// What a chosen password must be.
    pub password_policy: PasswordPolicy,
    /// How e-mails leave: the outbox folder, or SMTP.
    pub mail: MailSettings,
}

/// E-mail settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// The sender of every e-mail (an address that receives nothing).
    pub from: String,
    /// SMTP server; without it, e-mails are written to `<data_dir>/outbox/`.
    pub smtp: Option<SmtpSettings>,
    /// Seconds between two looks at the queue of unsent e-mails.
    pub retry_poll_seconds: u64,
    /// DKIM signing of every e-mail, when set.
    pub dkim: Option<DkimSettings>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            from: "ENT Touraine-eschool <confirmation-ent@touraine-eschool.fr>".into(),
            smtp: None,
            retry_poll_seconds: 5,
            dkim: None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            server: ServerSettings::default(),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            database_url: None,
            key_encryption_key_file: None,
            redis_url: None,
            redis_prefix: "idp:".into(),
            theme: "touraine-eschool".into(),
            theme_dir: None,
            site_name: "ENT Touraine e-school".into(),
            cgu_version: "1".into(),
            cgu_file: None,
            argon2: Argon2Params::default(),
            hashing_concurrency: None,
            hashing_queue: None,
            tickets: TicketSettings::default(),
            throttle: ThrottlePolicy::default(),
            login: LoginSettings::default(),
            upstreams: Vec::new(),
            outbound_timeout_seconds: 5,
            outbound_extra_ca_file: None,
            trusted_proxies: Vec::new(),
            log_format: "text".into(),
            oidc: OidcLifetimes::default(),
            accounts: LifecyclePolicy::default(),
            password_policy: PasswordPolicy::default(),
            mail: MailSettings::default(),
        }
    }
}

/// How the HTTP server treats connections.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// A client that has not sent a whole request head within this many
    /// seconds is disconnected; an idle keep-alive connection is closed
    /// after the same time.
    pub header_read_timeout_secs: u64,
    /// Connections open at once; beyond, a new connection gets a 503 and is
    /// closed.
    pub max_connections: usize,
    /// `host:port` of a listener of its own for `/metrics`, answering
    /// whoever reaches it; the main listener then no longer serves
    /// `/metrics`. When not set, `/metrics` on the main listener answers
    /// loopback addresses and `trusted_proxies` only.
    pub metrics_bind: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { header_read_timeout_secs: 30, max_connections: 1024, metrics_bind: None }
    }
}

/// Lifetimes of tickets and SSO sessions, in seconds.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketSettings {
    pub service_ticket_seconds: i64,
    pub sso_idle_seconds: i64,
    pub sso_hard_seconds: i64,
}

impl Default for TicketSettings {
    fn default() -> Self {
        Self { service_ticket_seconds: 10, sso_idle_seconds: 7200, sso_hard_seconds: 28800 }
    }
}

/// The profile page: its choices and how each authenticates.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    pub profiles: Vec<LoginProfile>,
    /// The help block's « Version nécessaire : » list.
    pub browser_versions: Vec<String>,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self { profiles: default_profiles(), browser_versions: default_browser_versions() }
    }
}

impl Settings {
    /// Reads the file (when given), then applies the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, String> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str(&text).map_err(|e| format!("invalid configuration {}: {e}", path.display()))?
            }
            None => Settings::default(),
        };
        settings.apply_env(|name| std::env::var(name).ok());
        settings.check()?;
        Ok(settings)
    }

    /// The words of the pages taken from the configuration.
    pub fn page_texts(&self) -> Result<PageTexts, String> {
        let charter = match &self.cgu_file {
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| format!("cannot read cgu_file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(PageTexts { browser_versions: self.login.browser_versions.clone(), charter })
    }

    /// The `IDP_*` variables override the file; empty values are ignored.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("IDP_BIND") {
            self.bind = v;
        }
        if let Some(v) = get("IDP_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("IDP_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("IDP_KEY_ENCRYPTION_KEY_FILE") {
            self.key_encryption_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("IDP_REDIS_URL") {
            self.redis_url = Some(v);
        }
        if let Some(v) = get("IDP_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
    }

    /// A `method = "upstream"` profile names one or more configured
    /// upstreams; a local one names none.
    fn check_profile_upstreams(&self, p: &LoginProfile) -> Result<(), String> {
        match p.method {
            AuthMethod::Local if !p.upstreams.is_empty() => {
                Err(format!("login.profiles '{}': upstreams are for method = \"upstream\"", p.id))
            }
            AuthMethod::Upstream if p.upstreams.is_empty() => {
                Err(format!("login.profiles '{}': method = \"upstream\" needs upstreams = [\"…\"]", p.id))
            }
            _ => match p.upstreams.iter().find(|id| !self.upstreams.iter().any(|u| &u.id == *id)) {
                Some(id) => Err(format!("login.profiles '{}': no [[upstreams]] with id '{id}'", p.id)),
                None => Ok(()),
            },
        }
    }

    fn check(&self) -> Result<(), String> {
        self.public_url()?;
        if self.login.profiles.is_empty() {
            return Err("login.profiles: at least one profile is needed".into());
        }
        for p in &self.login.profiles {
            let ok =
                !p.id.is_empty() && p.id != "choose" && p.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(format!("login.profiles: id '{}' must be letters, digits and '-'", p.id));
            }
            self.check_profile_upstreams(p)?;
        }
        for u in &self.upstreams {
            u.check().map_err(|e| format!("upstream '{}': {e}", u.id))?;
            if self.upstreams.iter().filter(|o| o.id == u.id).count() > 1 {
                return Err(format!("upstreams: id '{}' is given twice", u.id));
            }
        }
        if self.server.header_read_timeout_secs == 0 {
            return Err("server.header_read_timeout_secs: at least 1".into());
        }
        if !(1..=1_000_000).contains(&self.server.max_connections) {
            return Err("server.max_connections: between 1 and 1000000".into());
        }
        let t = &self.tickets;
        if t.service_ticket_seconds <= 0 || t.sso_idle_seconds <= 0 || t.sso_hard_seconds <= 0 {
            return Err("tickets: lifetimes must be positive".into());
        }
        self.oidc.check()?;
        if self.accounts.questions.len() < 2 {
            return Err("accounts.questions: at least two secret questions are needed".into());
        }
        if self.accounts.email_link_hours <= 0 || self.accounts.reset_link_minutes <= 0 {
            return Err("accounts: link lifetimes must be positive".into());
        }
        if !(8..=idp_core::password_policy::MAX_LENGTH).contains(&self.password_policy.min_length) {
            return Err("password_policy.min_length: between 8 and 128".into());
        }
        if self.password_policy.min_classes > 4 {
            return Err("password_policy.min_classes: between 0 and 4".into());
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err("log_format: 'text' or 'json'".into());
        }
        Ok(())
    }

    pub fn public_url(&self) -> Result<url::Url, String> {
        let raw = self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.bind));
        let url = url::Url::parse(&raw).map_err(|e| format!("public_url '{raw}': {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("public_url '{raw}': http or https expected"));
        }
        Ok(url)
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("idp.db").display()))
    }

    /// The key-encryption key file, and whether the settings name it (else
    /// it is made when missing): the configured file, else
    /// `key-encryption.key` in the folder of the SQLite database, so that
    /// processes sharing that file share the key, else in `data_dir`.
    pub fn key_encryption_key_file(&self) -> (PathBuf, bool) {
        if let Some(path) = &self.key_encryption_key_file {
            return (path.clone(), true);
        }
        let dir = idp_store::db::sqlite_path(&self.database_url())
            .and_then(|db| PathBuf::from(db).parent().map(Path::to_path_buf))
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| self.data_dir.clone());
        (dir.join("key-encryption.key"), false)
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            service_ticket_ttl: chrono::Duration::seconds(self.tickets.service_ticket_seconds),
            sso_idle_timeout: chrono::Duration::seconds(self.tickets.sso_idle_seconds),
            sso_hard_timeout: chrono::Duration::seconds(self.tickets.sso_hard_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_default() {
        let s = Settings::default();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.database_url(), "sqlite://./data/idp.db?mode=rwc");
        assert_eq!(s.public_url().unwrap().as_str(), "http://127.0.0.1:8080/");
        assert!(s.redis_url.is_none());
        assert_eq!(s.login.profiles.len(), 3);
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut s: Settings =
            toml::from_str("bind = \"0.0.0.0:9000\"\n[tickets]\nservice_ticket_seconds = 5\n").unwrap();
        s.apply_env(|n| match n {
            "IDP_BIND" => Some("127.0.0.1:1".into()),
            "IDP_REDIS_URL" => Some("".into()),
            _ => None,
        });
        assert_eq!(s.bind, "127.0.0.1:1");
        assert!(s.redis_url.is_none());
        assert_eq!(s.tickets.service_ticket_seconds, 5);
    }

    #[test]
    fn the_key_encryption_key_sits_beside_the_sqlite_database_by_default() {
        let s = Settings::default();
        assert_eq!(s.key_encryption_key_file(), (PathBuf::from("./data/key-encryption.key"), false));
        let s = Settings { database_url: Some("sqlite:///srv/idp/db/idp.db?mode=rwc".into()), ..Settings::default() };
        assert_eq!(s.key_encryption_key_file().0, PathBuf::from("/srv/idp/db/key-encryption.key"));
        let s = Settings { database_url: Some("postgres://h/idp".into()), ..Settings::default() };
        assert_eq!(s.key_encryption_key_file().0, PathBuf::from("./data/key-encryption.key"));
        let mut s = Settings::default();
        s.apply_env(|n| (n == "IDP_KEY_ENCRYPTION_KEY_FILE").then(|| "/run/secrets/kek".into()));
        assert_eq!(s.key_encryption_key_file(), (PathBuf::from("/run/secrets/kek"), true));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Settings>("bnid = \"x\"").is_err());
    }
}
