//! Test support: spawn the app, drive it like a browser, check XML against
//! the CAS 3.0 schema, find Python for the interop check.

#![allow(dead_code)]

use chrono::{DurationRound, TimeDelta, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use idp::app::Application;
use idp::settings::Settings;
use idp::stores::Stores;
use idp_core::account::{AccountState, Login, NewAccount, Profile};
use idp_core::clock::FixedClock;
use idp_core::password::Argon2Params;
use idp_core::secret::Secret;
use idp_core::service::{Service, ServiceId, UrlPattern};

/// The root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Cheap argon2 parameters: tests check behaviour, not cost.
pub const CHEAP_ARGON2: Argon2Params = Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };

/// Settings of a test server: port 0, a fresh data folder, cheap hashing.
pub fn test_settings(data_dir: &Path) -> Settings {
    Settings {
        bind: "127.0.0.1:0".into(),
        data_dir: data_dir.to_path_buf(),
        argon2: CHEAP_ARGON2,
        public_url: Some("http://127.0.0.1".into()),
        // No second factor required: the tests of other features log
        // administrators in with a password; tests/api/second_factor.rs
        // sets the policy it checks.
        mfa: idp_core::second_factor::MfaPolicy { required_for: Vec::new() },
        ..Settings::default()
    }
}

/// A running server with its stores, its fixed clock and a browser-like
/// client (keeps cookies, never follows redirects).
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub clock: Arc<FixedClock>,
    pub stores: Stores,
    pub settings: Settings,
    pub data_dir: tempfile::TempDir,
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns a server after `tweak` has changed its settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(data_dir.path());
    tweak(&mut settings);
    // Whole seconds, as the XML dates show them.
    let start = Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap();
    let clock = Arc::new(FixedClock::new(start));
    let app = Application::build(&settings, clock.clone()).await.expect("the test server builds");
    let port = app.port();
    let stores = app.stores.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp { address: format!("http://127.0.0.1:{port}"), port, client: browser(), clock, stores, settings, data_dir }
}

/// What a login attempt gave back.
pub struct LoginResult {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl LoginResult {
    /// The `ticket` parameter of the redirect.
    pub fn ticket(&self) -> String {
        let location =
            self.location.as_deref().unwrap_or_else(|| panic!("no redirect (status {}): {}", self.status, self.body));
        let url = url::Url::parse(location).unwrap();
        url.query_pairs().find(|(k, _)| k == "ticket").map(|(_, v)| v.into_owned()).expect("a ticket in the redirect")
    }
}

impl TestApp {
    /// The same server seen from another browser (its own cookies). The
    /// data folder stays with the original.
    pub fn another_browser(&self) -> TestApp {
        TestApp {
            address: self.address.clone(),
            port: self.port,
            client: browser(),
            clock: self.clock.clone(),
            stores: self.stores.clone(),
            settings: self.settings.clone(),
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Creates an active account with `password`.
    pub async fn active_account(&self, login: &str, password: &str, profile: Profile) {
        self.active_account_with(login, password, profile, Default::default()).await;
    }

    /// Creates an active account with `password` and directory attributes.
    pub async fn active_account_with(
        &self,
        login: &str,
        password: &str,
        profile: Profile,
        attributes: std::collections::BTreeMap<String, Vec<String>>,
    ) {
        let hash = self.stores.hashing.hash(Secret::new(password)).await.unwrap();
        self.stores
            .accounts
            .create(NewAccount {
                login: Login::parse(login).unwrap(),
                profile,
                given_name: "Camille".into(),
                family_name: "Martin".into(),
                email: Some(format!("{login}@example.fr")),
                schools: vec!["0370001A".into(), "0370002B".into()],
                state: AccountState::Active,
                password_hash: Some(hash),
                provisional_hash: None,
                cgu_version: Some("1".into()),
                attributes,
            })
            .await
            .unwrap();
    }

    /// Creates a `provisioned` account with a provisional password.
    pub async fn provisioned_account(&self, login: &str, provisional: &str) {
        let hash = self.stores.hashing.hash(Secret::new(provisional)).await.unwrap();
        self.stores
            .accounts
            .create(NewAccount {
                login: Login::parse(login).unwrap(),
                profile: Profile::Eleve,
                given_name: "Léa".into(),
                family_name: "Petit".into(),
                email: None,
                schools: vec![],
                state: AccountState::Provisioned,
                password_hash: None,
                provisional_hash: Some(hash),
                cgu_version: None,
                attributes: Default::default(),
            })
            .await
            .unwrap();
    }

    /// Registers a service.
    pub async fn service(&self, id: &str, pattern: &str, attributes: &[&str], logout_url: Option<&str>) {
        self.service_with_policy(id, pattern, attributes, logout_url, Default::default()).await;
    }

    /// Registers a service with access rules, SSO, user id or proxy policy.
    pub async fn service_with_policy(
        &self,
        id: &str,
        pattern: &str,
        attributes: &[&str],
        logout_url: Option<&str>,
        policy: idp_core::access::ServicePolicy,
    ) {
        self.stores
            .services
            .add(Service {
                id: ServiceId::parse(id).unwrap(),
                name: format!("Service {id}"),
                url_pattern: UrlPattern::parse(pattern).unwrap(),
                attributes: attributes.iter().map(|s| s.to_string()).collect(),
                logout_url: logout_url.map(|u| url::Url::parse(u).unwrap()),
                evaluation_order: 0,
                policy,
            })
            .await
            .unwrap();
    }

    /// `GET /cas/login?…`.
    pub async fn get_login(&self, query: &[(&str, &str)]) -> LoginResult {
        let r = self.client.get(self.url("/cas/login")).query(query).send().await.unwrap();
        result(r).await
    }

    /// Chooses the first profile, then posts the credentials form, as a
    /// browser does (the CSRF token comes from the page).
    pub async fn login(&self, service: Option<&str>, username: &str, password: &str) -> LoginResult {
        self.login_with(service, username, password, &[]).await
    }

    pub async fn login_with(
        &self,
        service: Option<&str>,
        username: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> LoginResult {
        let mut query = vec![("profile", "eleve-parent")];
        if let Some(s) = service {
            query.push(("service", s));
        }
        query.extend_from_slice(extra);
        let page = self.get_login(&query).await;
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let mut form: Vec<(String, String)> = hidden_inputs(&page.body);
        form.push(("username".into(), username.into()));
        form.push(("password".into(), password.into()));
        let r = self.client.post(self.url("/cas/login")).form(&form).send().await.unwrap();
        result(r).await
    }

    /// A validation call: `path` is `/cas/validate`, `/cas/p3/serviceValidate`, …
    pub async fn validate(&self, path: &str, query: &[(&str, &str)]) -> (u16, String, String) {
        let r = reqwest::Client::new().get(self.url(path)).query(query).send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, ct, r.text().await.unwrap())
    }
}

pub async fn result(r: reqwest::Response) -> LoginResult {
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    LoginResult { status, location, body: r.text().await.unwrap() }
}

/// The hidden inputs of the page's form (`name`, `value`), HTML-unescaped.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(r#"<input type="hidden" name="([^"]+)" value="([^"]*)""#).unwrap();
    re.captures_iter(html).map(|c| (c[1].to_owned(), unescape(&c[2]))).collect()
}

/// Undoes minijinja's HTML escaping.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Asserts that `xml` is valid against the CAS 3.0 response schema, with
/// xmllint when installed, else with the Python `xmlschema` package.
pub fn assert_valid_cas_xml(xml: &str) {
    let schema = repo_root().join("tests/schemas/cas-3.0-response.xsd");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), xml).unwrap();
    let output = if which("xmllint") {
        std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(file.path())
            .output()
            .unwrap()
    } else {
        let script = "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])";
        std::process::Command::new(python()).args(["-c", script]).arg(&schema).arg(file.path()).output().unwrap()
    };
    assert!(
        output.status.success(),
        "not valid against the CAS 3.0 schema:\n{xml}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn which(cmd: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(cmd).is_file()))
}

/// A Python with the interop requirements: `IDP_TEST_PYTHON`, else the
/// repository's `.venv-interop`, created on first use (under a lock, since
/// tests run in parallel processes).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("IDP_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let root = repo_root();
    let venv = root.join(".venv-interop");
    let python = venv.join("bin/python");
    // The marker holds the requirements it was built from: a changed
    // requirements file installs again.
    let requirements = std::fs::read_to_string(root.join("tests/interop/requirements.txt")).unwrap();
    let ready = venv.join(".idp-ready");
    let is_ready = || std::fs::read_to_string(&ready).is_ok_and(|r| r == requirements);
    if is_ready() {
        return python;
    }
    let lock = root.join("target/.venv-interop.lock");
    std::fs::create_dir_all(root.join("target")).unwrap();
    // A lock left by a killed test run is stale after 10 minutes.
    if std::fs::metadata(&lock).and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() > 600)) {
        let _ = std::fs::remove_dir(&lock);
    }
    let started = std::time::Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        assert!(started.elapsed().as_secs() < 600, "waited too long for {}", lock.display());
        std::thread::sleep(std::time::Duration::from_millis(200));
        if is_ready() {
            return python;
        }
    }
    let run = |cmd: &mut std::process::Command| {
        let status = cmd.status().unwrap();
        assert!(status.success(), "{cmd:?} failed");
    };
    if !python.exists() {
        run(std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv));
    }
    run(std::process::Command::new(&python)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(root.join("tests/interop/requirements.txt")));
    std::fs::write(&ready, &requirements).unwrap();
    let _ = std::fs::remove_dir(&lock);
    python
}

/// The folder `under` (tests/a11y, tests/interop/oidc_upstream) with its
/// node_modules installed from package-lock.json (`npm ci`), once: a copy
/// of the lock file in node_modules says it is up to date; a lock directory
/// keeps parallel test processes from installing at the same time.
pub fn npm_ready(under: &str) -> PathBuf {
    let root = repo_root();
    let dir = root.join(under);
    let lockfile =
        std::fs::read(dir.join("package-lock.json")).unwrap_or_else(|e| panic!("{under}/package-lock.json: {e}"));
    let stamp = dir.join("node_modules/.idp-package-lock.json");
    let up_to_date = || std::fs::read(&stamp).is_ok_and(|s| s == lockfile);
    if up_to_date() {
        return dir;
    }
    std::fs::create_dir_all(root.join("target")).unwrap();
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock = root.join(format!("target/.{name}-npm.lock"));
    let started = std::time::Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        // A lock left by a killed run: older than any install takes.
        let stale = std::fs::metadata(&lock)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e.as_secs() > 600));
        if stale {
            let _ = std::fs::remove_dir(&lock);
            continue;
        }
        assert!(started.elapsed().as_secs() < 600, "waited too long for {}", lock.display());
        std::thread::sleep(std::time::Duration::from_millis(200));
        if up_to_date() {
            return dir;
        }
    }
    let result = std::panic::catch_unwind(|| {
        if !up_to_date() {
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm runs (Node 20 + npm are needed)");
            assert!(status.success(), "npm ci in {under} failed");
            std::fs::write(&stamp, &lockfile).unwrap();
        }
    });
    let _ = std::fs::remove_dir(&lock);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    dir
}

/// Starts a third-party peer that prints the port it listens on (on
/// 127.0.0.1) as its first line; its base URL and the process, killed when
/// dropped.
pub async fn start_peer(command: &mut tokio::process::Command, what: &str) -> (String, tokio::process::Child) {
    let mut child = command.stdout(std::process::Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut port = String::new();
    let stdout = child.stdout.take().unwrap();
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut port).await.unwrap();
    assert!(port.trim().parse::<u16>().is_ok(), "{what} did not start: {port:?}");
    (format!("http://127.0.0.1:{}", port.trim()), child)
}

/// The path and query of `location` (absolute, or already a path).
pub fn path_and_query(location: &str) -> String {
    let url = url::Url::parse(location).or_else(|_| url::Url::parse(&format!("http://x{location}"))).unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}
