//! Configuration: defaults, then the TOML file (`--config`), then the
//! `IDP_*` environment variables (docs/operations.md).

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
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
    /// A file holding the password of `database_url` (a Kubernetes or
    /// Docker secret), so that the URL itself carries none.
    pub database_password_file: Option<PathBuf>,
    /// The database password from `database_password_file` or the
    /// environment, put into the URL when it is used.
    #[serde(skip)]
    pub database_password: Option<String>,
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
    /// Proxies (load balancers) whose `X-Forwarded-For` is believed:
    /// addresses (`10.0.0.5`) or ranges (`10.42.0.0/16`).
    #[serde(deserialize_with = "proxy_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Lifetimes of OIDC codes and tokens (`[oidc]`).
    pub oidc: OidcLifetimes,
    /// The account flows: link lifetimes, secret questions (docs/accounts.md).
    pub accounts: LifecyclePolicy,
    /// A file holding `accounts.decoy_key` (a Kubernetes or Docker secret).
    pub decoy_key_file: Option<PathBuf>,
    /// What a chosen password must be.
    pub password_policy: PasswordPolicy,
    /// How e-mails leave: the outbox folder, or SMTP.
    pub mail: MailSettings,
    /// Who must use a second factor (`[mfa] required_for`).
    pub mfa: idp_core::second_factor::MfaPolicy,
    /// The SAML identity provider's keys (`[saml_idp]`).
    pub saml_idp: SamlIdpSettings,
}

/// `[saml_idp]`: the PEM key and certificate that sign our assertions, and
/// the next pair published ahead of a rollover. Without `key_file`, a pair
/// is made at the first start and kept in the database (sealed under the
/// key-encryption key), shared by every node.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlIdpSettings {
    pub key_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub next_key_file: Option<PathBuf>,
    pub next_cert_file: Option<PathBuf>,
}

/// E-mail settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "MailFile")]
pub struct MailSettings {
    /// The sender of every e-mail (an address that receives nothing).
    pub from: String,
    /// SMTP server; without it, e-mails are written to `<data_dir>/outbox/`.
    pub smtp: Option<SmtpSettings>,
    /// `mail.smtp.password_file`: the file of the SMTP password, read when
    /// the settings are loaded.
    pub smtp_password_file: Option<PathBuf>,
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
            smtp_password_file: None,
            retry_poll_seconds: 5,
            dkim: None,
        }
    }
}

/// `[mail]` as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MailFile {
    from: String,
    smtp: Option<SmtpFile>,
    retry_poll_seconds: u64,
    dkim: Option<DkimSettings>,
}

impl Default for MailFile {
    fn default() -> Self {
        let d = MailSettings::default();
        Self { from: d.from, smtp: None, retry_poll_seconds: d.retry_poll_seconds, dkim: None }
    }
}

impl TryFrom<MailFile> for MailSettings {
    type Error = String;

    fn try_from(file: MailFile) -> Result<Self, String> {
        let (smtp, smtp_password_file) = match file.smtp {
            Some(s) => {
                if s.password.is_some() && s.password_file.is_some() {
                    return Err("mail.smtp: password and password_file, give one of them".into());
                }
                let settings = SmtpSettings {
                    host: s.host,
                    port: s.port,
                    security: s.security,
                    username: s.username,
                    password: s.password,
                    ca_file: s.ca_file,
                };
                (Some(settings), s.password_file)
            }
            None => (None, None),
        };
        Ok(Self {
            from: file.from,
            smtp,
            smtp_password_file,
            retry_poll_seconds: file.retry_poll_seconds,
            dkim: file.dkim,
        })
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
            database_password_file: None,
            database_password: None,
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
            mfa: idp_core::second_factor::MfaPolicy::default(),
            decoy_key_file: None,
            password_policy: PasswordPolicy::default(),
            mail: MailSettings::default(),
            saml_idp: SamlIdpSettings::default(),
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
    /// On SIGTERM or SIGINT, the longest wait for requests in flight,
    /// single logout messages and due e-mails before the process exits.
    pub shutdown_drain_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self { header_read_timeout_secs: 30, max_connections: 1024, metrics_bind: None, shutdown_drain_secs: 20 }
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
        settings.apply_env(|name| std::env::var(name).ok())?;
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
    /// Then the secrets are read: for each, `IDP_<NAME>` (the value), else
    /// `IDP_<NAME>_FILE` (a file holding it), else the `*_file` key, else
    /// the value in the file.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("IDP_TRUSTED_PROXIES") {
            self.trusted_proxies =
                v.split(',').map(|p| parse_proxy(p.trim())).collect::<Result<_, _>>().map_err(|e| {
                    format!(
                        "IDP_TRUSTED_PROXIES: {e} (comma-separated addresses or ranges, e.g. 10.0.0.5,10.42.0.0/16)"
                    )
                })?;
        }
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
        let secret = |name: &str, file_key: Option<&Path>| -> Result<Option<String>, String> {
            if let Some(v) = get(name) {
                return Ok(Some(v));
            }
            match (get(&format!("{name}_FILE")), file_key) {
                (Some(path), _) => read_secret(Path::new(&path)).map(Some).map_err(|e| format!("{name}_FILE: {e}")),
                (None, Some(path)) => read_secret(path).map(Some),
                (None, None) => Ok(None),
            }
        };
        if let Some(password) = secret("IDP_DATABASE_PASSWORD", self.database_password_file.as_deref())? {
            self.database_password = Some(password);
        }
        if let Some(key) = secret("IDP_DECOY_KEY", self.decoy_key_file.as_deref())? {
            self.accounts.decoy_key = Some(key);
        }
        if let Some(password) = secret("IDP_SMTP_PASSWORD", self.mail.smtp_password_file.as_deref())? {
            let Some(smtp) = self.mail.smtp.as_mut() else {
                return Err("IDP_SMTP_PASSWORD is set but there is no [mail.smtp] server to use it with".into());
            };
            smtp.password = Some(password);
        }
        for u in &mut self.upstreams {
            if let Some(path) = u.client_secret_file.take() {
                if u.client_secret.is_some() {
                    return Err(format!("upstream '{}': client_secret and client_secret_file, give one of them", u.id));
                }
                let secret = read_secret(&path).map_err(|e| format!("upstream '{}': client_secret_file: {e}", u.id))?;
                u.client_secret = Some(idp_core::secret::Secret::new(secret));
            }
        }
        Ok(())
    }

    /// `idp serve` on an address other hosts reach needs the URL they use:
    /// without it, the issuer and the links in e-mails would name the bind
    /// address (`http://0.0.0.0:8080`).
    pub fn check_serving(&self) -> Result<(), String> {
        if self.public_url.is_some() || bind_is_loopback(&self.bind) {
            return Ok(());
        }
        Err(format!(
            "bind = \"{}\" is not a loopback address, and public_url is not set: set public_url \
             (or IDP_PUBLIC_URL) to the address users and services reach, e.g. https://ent.example.fr",
            self.bind
        ))
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
            _ => {
                for id in &p.upstreams {
                    let Some(u) = self.upstreams.iter().find(|u| &u.id == id) else {
                        return Err(format!("login.profiles '{}': no [[upstreams]] with id '{id}'", p.id));
                    };
                    // An account created through this profile needs a profile.
                    if u.create_missing && p.account_profile().is_none() {
                        return Err(format!(
                            "login.profiles '{}': upstream '{id}' creates missing accounts: set account_profile \
                             (eleve, parent, personnel or autre)",
                            p.id
                        ));
                    }
                }
                Ok(())
            }
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
        if self.server.shutdown_drain_secs > 3600 {
            return Err("server.shutdown_drain_secs: at most 3600".into());
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

    /// The database URL, with the password from `database_password_file`
    /// or `IDP_DATABASE_PASSWORD` when one is given.
    pub fn database_url(&self) -> String {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("idp.db").display()));
        let Some(password) = &self.database_password else { return url };
        let Ok(mut parsed) = url::Url::parse(&url) else { return url };
        if !parsed.scheme().starts_with("postgres") || parsed.set_password(Some(password)).is_err() {
            return url;
        }
        parsed.to_string()
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

/// `host:port` on the machine itself only.
fn bind_is_loopback(bind: &str) -> bool {
    if let Ok(address) = bind.parse::<std::net::SocketAddr>() {
        return address.ip().is_loopback();
    }
    bind.rsplit_once(':').is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

/// A trusted proxy: an address, or a range in CIDR notation.
fn parse_proxy(text: &str) -> Result<IpNet, String> {
    if text.contains('/') {
        return text.parse::<IpNet>().map(|net| net.trunc()).map_err(|_| format!("'{text}' is not an address range"));
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| format!("'{text}' is not an IP address"))
}

fn proxy_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts.iter().map(|t| parse_proxy(t.trim())).collect::<Result<_, _>>().map_err(serde::de::Error::custom)
}

/// A secret kept in a file: its content without the final line break.
fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_owned())
}

/// `[mail.smtp]` as written in the file: [`SmtpSettings`] and
/// `password_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmtpFile {
    host: String,
    port: u16,
    #[serde(default = "starttls")]
    security: String,
    username: Option<String>,
    password: Option<String>,
    /// A file holding the password (a Kubernetes or Docker secret).
    password_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
}

fn starttls() -> String {
    "starttls".into()
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
        })
        .unwrap();
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
        s.apply_env(|n| (n == "IDP_KEY_ENCRYPTION_KEY_FILE").then(|| "/run/secrets/kek".into())).unwrap();
        assert_eq!(s.key_encryption_key_file(), (PathBuf::from("/run/secrets/kek"), true));
    }

    #[test]
    fn create_missing_needs_the_account_profile_of_each_profile_routing_there() {
        let toml = |profile: &str| {
            format!(
                "[[login.profiles]]\nid = \"eleve-parent\"\nlabel = \"Élève ou parent\"\nmethod = \"upstream\"\n\
                 upstreams = [\"fc\"]\n{profile}\n\
                 [[upstreams]]\nid = \"fc\"\nlabel = \"FranceConnect\"\nkind = \"oidc\"\n\
                 issuer = \"https://fc.example.fr\"\nclient_id = \"ent\"\nclient_secret = \"s\"\n\
                 link_from = \"sub\"\nlink_to = \"ENTPersonJointure\"\ncreate_missing = true\n"
            )
        };
        let s: Settings = toml::from_str(&toml("")).unwrap();
        assert!(s.check().unwrap_err().contains("account_profile"));
        let s: Settings = toml::from_str(&toml("account_profile = \"parent\"")).unwrap();
        s.check().unwrap();
    }

    #[test]
    fn an_upstream_client_secret_comes_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "le-secret\n").unwrap();
        let entry = "[[upstreams]]\nid = \"fc\"\nlabel = \"FC\"\nkind = \"oidc\"\nissuer = \"https://fc.example.fr\"\n\
                     client_id = \"ent\"\nlink_from = \"sub\"\nlink_to = \"login\"\n";
        let mut s: Settings = toml::from_str(&format!("{entry}client_secret_file = \"{}\"\n", path.display())).unwrap();
        s.apply_env(|_| None).unwrap();
        assert_eq!(s.upstreams[0].client_secret.as_ref().map(|s| s.expose()), Some("le-secret"));
        s.check().unwrap();
        let both = format!("{entry}client_secret = \"x\"\nclient_secret_file = \"{}\"\n", path.display());
        assert!(toml::from_str::<Settings>(&both).unwrap().apply_env(|_| None).unwrap_err().contains("give one"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Settings>("bnid = \"x\"").is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges_from_the_file_or_the_environment() {
        let s: Settings = toml::from_str("trusted_proxies = [\"10.0.0.5\", \"10.42.0.0/16\", \"fd00::/8\"]").unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.5/32", "10.42.0.0/16", "fd00::/8"]);
        assert!(s.trusted_proxies[1].contains(&"10.42.7.9".parse::<IpAddr>().unwrap()));
        let err = toml::from_str::<Settings>("trusted_proxies = [\"10.0.0.300\"]").unwrap_err().to_string();
        assert!(err.contains("10.0.0.300"), "{err}");
        let mut s = s;
        s.apply_env(|n| (n == "IDP_TRUSTED_PROXIES").then(|| "127.0.0.0/8, 192.168.1.1".into())).unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.0/8", "192.168.1.1/32"]);
        let err = s.apply_env(|n| (n == "IDP_TRUSTED_PROXIES").then(|| "ingress".into())).unwrap_err();
        assert!(err.contains("IDP_TRUSTED_PROXIES") && err.contains("ingress"), "{err}");
    }

    #[test]
    fn secrets_come_from_files_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let (smtp, db, decoy) = (file("smtp", "mot-de-passe\n"), file("db", "p@ss/word\n"), file("decoy", "clé\n"));
        let toml = format!(
            "database_url = \"postgres://idp@db.example.fr/idp\"\ndatabase_password_file = {db:?}\n\
             decoy_key_file = {decoy:?}\n[mail.smtp]\nhost = \"smtp.example.fr\"\nport = 587\n\
             username = \"idp\"\npassword_file = {smtp:?}\n"
        );
        let mut s: Settings = toml::from_str(&toml).unwrap();
        s.apply_env(|_| None).unwrap();
        assert_eq!(s.mail.smtp.as_ref().unwrap().password.as_deref(), Some("mot-de-passe"));
        assert_eq!(s.database_url(), "postgres://idp:p%40ss%2Fword@db.example.fr/idp");
        assert_eq!(s.accounts.decoy_key.as_deref(), Some("clé"));
        // The environment wins over the files.
        let other = file("other", "autre");
        s.apply_env(|n| match n {
            "IDP_SMTP_PASSWORD" => Some("env-smtp".into()),
            "IDP_DATABASE_PASSWORD_FILE" => Some(other.clone()),
            "IDP_DECOY_KEY" => Some("env-decoy".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.mail.smtp.as_ref().unwrap().password.as_deref(), Some("env-smtp"));
        assert_eq!(s.database_url(), "postgres://idp:autre@db.example.fr/idp");
        assert_eq!(s.accounts.decoy_key.as_deref(), Some("env-decoy"));
        // A missing file, both password keys, an SMTP password for no server.
        let bad = "[mail.smtp]\nhost = \"h\"\nport = 25\npassword_file = \"/nonexistent/smtp\"\n";
        let err = toml::from_str::<Settings>(bad).unwrap().apply_env(|_| None).unwrap_err();
        assert!(err.contains("/nonexistent/smtp"), "{err}");
        let both = format!("[mail.smtp]\nhost = \"h\"\nport = 25\npassword = \"x\"\npassword_file = {smtp:?}\n");
        assert!(toml::from_str::<Settings>(&both).unwrap_err().to_string().contains("password_file"));
        let err = Settings::default().apply_env(|n| (n == "IDP_SMTP_PASSWORD").then(|| "x".into())).unwrap_err();
        assert!(err.contains("[mail.smtp]"), "{err}");
    }

    #[test]
    fn serving_on_a_public_address_needs_a_public_url() {
        let on = |bind: &str, public_url: Option<&str>| {
            Settings { bind: bind.into(), public_url: public_url.map(Into::into), ..Settings::default() }
                .check_serving()
        };
        assert!(on("127.0.0.1:8080", None).is_ok());
        assert!(on("[::1]:8080", None).is_ok());
        assert!(on("localhost:8080", None).is_ok());
        assert!(on("0.0.0.0:8080", Some("https://ent.example.fr")).is_ok());
        let err = on("0.0.0.0:8080", None).unwrap_err();
        assert!(err.contains("public_url") && err.contains("IDP_PUBLIC_URL"), "{err}");
        assert!(on("sso.example.fr:8080", None).is_err());
    }
}
