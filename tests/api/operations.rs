//! Running the real binary as an operator does: signals and the drain,
//! configuration and secrets from the environment, trusted proxy ranges,
//! metrics and the access log.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::cas_proxy::{CDT_PATTERN, PORTAL, PORTAL_PATTERN, TestCa, test_ca};
use crate::cli::{CHEAP_CONFIG, Idp, install_crypto_provider};
use crate::helpers::{browser, hidden_inputs, result};

pub(crate) const PASSWORD: &str = "Bonjour-2026!";

/// The variables of the parent environment that would change what the
/// binary does.
const IDP_VARIABLES: [&str; 9] = [
    "IDP_BIND",
    "IDP_PUBLIC_URL",
    "IDP_DATABASE_URL",
    "IDP_REDIS_URL",
    "IDP_DATA_DIR",
    "IDP_LOG",
    "IDP_CONFIG",
    "IDP_TRUSTED_PROXIES",
    "IDP_SMTP_PASSWORD",
];

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `idp serve` run by the test, its standard error in a file; killed when
/// dropped.
pub(crate) struct Serving {
    child: tokio::process::Child,
    pub(crate) base: String,
    log_path: PathBuf,
}

impl Serving {
    /// Runs `idp ARGS` in `dir` on a free port with only the `env` given
    /// (besides `IDP_BIND`), and waits for `/healthz` (20 s at most).
    pub(crate) async fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serving {
        install_crypto_provider();
        let port = free_port();
        let log_path = dir.join(format!("serve-{port}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_idp"));
        cmd.args(args);
        for name in IDP_VARIABLES {
            cmd.env_remove(name);
        }
        cmd.env("IDP_BIND", format!("127.0.0.1:{port}"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(log)).kill_on_drop(true);
        let mut child = cmd.spawn().expect("idp serve starts");
        let base = format!("http://127.0.0.1:{port}");
        let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let started = std::time::Instant::now();
        loop {
            if plain.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("idp serve exited with {status}: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "idp serve did not answer /healthz within 20 s: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Serving { child, base, log_path }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the server still runs").to_string();
        let status = std::process::Command::new("kill").args([format!("-{signal}"), pid]).status().unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits until the log contains `needle` (20 s at most).
    async fn wait_for_log(&self, needle: &str) {
        let started = std::time::Instant::now();
        while !self.log().contains(needle) {
            assert!(started.elapsed() < Duration::from_secs(20), "no {needle:?} in the log: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the listener is closed: a new connection is refused
    /// (20 s at most).
    async fn wait_until_refused(&self) {
        let address = self.base.trim_start_matches("http://").to_owned();
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(&address).await.is_ok() {
            assert!(started.elapsed() < Duration::from_secs(20), "still accepting connections: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit status, waiting `limit` at most.
    pub(crate) async fn exit_code(mut self, limit: Duration) -> Option<i32> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.unwrap().code(),
            Err(_) => panic!("the server did not exit within {limit:?}: {}", self.log()),
        }
    }
}

/// A CAS login through the server's pages; returns the service ticket.
async fn login_ticket(base: &str, service: &str, login: &str, password: &str) -> String {
    let client = browser();
    let page = client.get(format!("{base}/cas/login")).query(&[("profile", "eleve-parent"), ("service", service)]);
    let page = result(page.send().await.unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = hidden_inputs(&page.body);
    form.push(("username".into(), login.into()));
    form.push(("password".into(), password.into()));
    let r = result(client.post(format!("{base}/cas/login")).form(&form).send().await.unwrap()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    r.ticket()
}

/// An https listener that takes one request, says it arrived, and answers
/// 200 only when released.
struct HeldCallback {
    base: String,
    arrived: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl HeldCallback {
    async fn spawn(ca: &TestCa) -> HeldCallback {
        let (acceptor, listener, base) = ca.tls_listener().await;
        let (arrived_tx, arrived) = oneshot::channel();
        let (release, released) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 2048];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = arrived_tx.send(());
            let _ = released.await;
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            let _ = tls.shutdown().await;
        });
        HeldCallback { base, arrived, release }
    }
}

// ---------------------------------------------------------------------------
// Signals

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_request_in_flight_end_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca("idp drain CA");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let extra = format!("outbound_extra_ca_file = {:?}\n[server]\nshutdown_drain_secs = 20\n", ca_file);
    let idp = Idp::with_config(dir.path(), &extra);
    let callbacks = r"https://127\.0\.0\.1:\d+/pgt.*";
    idp.run(&[
        "service",
        "add",
        "portail",
        "--name",
        "Portail",
        "--url-pattern",
        PORTAL_PATTERN,
        "--proxy-callback",
        callbacks,
        "--proxy-target",
        CDT_PATTERN,
    ])
    .await
    .ok();
    idp.create_active("p.prof", PASSWORD).await;
    let config = dir.path().join("idp-cli-test.toml");
    let data_dir = dir.path().to_str().unwrap();
    let server =
        Serving::start(dir.path(), &["--config", config.to_str().unwrap(), "serve"], &[("IDP_DATA_DIR", data_dir)])
            .await;
    let ticket = login_ticket(&server.base, PORTAL, "p.prof", PASSWORD).await;

    // A validation whose proxy callback the test holds: the request is in
    // flight in the server until the callback answers.
    let callback = HeldCallback::spawn(&ca).await;
    let pgt_url = format!("{}/pgt", callback.base);
    let validate = reqwest::Client::new()
        .get(format!("{}/cas/p3/serviceValidate", server.base))
        .query(&[("service", PORTAL), ("ticket", ticket.as_str()), ("pgtUrl", pgt_url.as_str())])
        .send();
    let validate = tokio::spawn(validate);
    callback.arrived.await.expect("the server calls the proxy callback");

    server.signal("TERM");
    server.wait_for_log("SIGTERM: shutting down").await;
    server.wait_until_refused().await;
    callback.release.send(()).unwrap();

    let response = validate.await.unwrap().expect("the request in flight gets its answer");
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("<cas:authenticationSuccess>"), "{body}");
    assert!(body.contains("<cas:proxyGrantingTicket>PGTIOU-"), "{body}");
    let log = server.log();
    assert_eq!(server.exit_code(Duration::from_secs(20)).await, Some(0), "exit status after SIGTERM: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_an_idle_server_with_status_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.toml"), CHEAP_CONFIG).unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let server = Serving::start(dir.path(), &["--config", "idp.toml", "serve"], &[("IDP_DATA_DIR", data_dir)]).await;
    server.signal("INT");
    let log = server.log();
    assert_eq!(server.exit_code(Duration::from_secs(20)).await, Some(0), "exit status after SIGINT: {log}");
}

// ---------------------------------------------------------------------------
// Configuration from the environment

/// Runs `idp ARGS` in `dir` with only the `env` given; returns the exit
/// code and standard error.
pub(crate) async fn run_idp(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_idp"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).kill_on_drop(true);
    for name in IDP_VARIABLES {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await.expect("idp ends").unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn idp_config_names_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("elsewhere.toml");
    std::fs::write(&config, format!("data_dir = \"from-idp-config\"\n{CHEAP_CONFIG}")).unwrap();
    let (code, stderr) = run_idp(dir.path(), &["migrate"], &[("IDP_CONFIG", config.to_str().unwrap())]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("from-idp-config/idp.db").is_file(), "the data_dir of the IDP_CONFIG file");
    assert!(!dir.path().join("data").exists(), "not the default data folder");
    // A file that does not exist is named in the error.
    let (code, stderr) = run_idp(dir.path(), &["migrate"], &[("IDP_CONFIG", "/nonexistent/idp.toml")]).await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("/nonexistent/idp.toml"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serving_on_a_public_address_without_a_public_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("IDP_BIND", "0.0.0.0:0"), ("IDP_DATA_DIR", dir.path().to_str().unwrap())];
    let (code, stderr) = run_idp(dir.path(), &["serve"], &env).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("0.0.0.0:0") && stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("set public_url (or IDP_PUBLIC_URL)"), "what to set: {stderr}");
    // The other commands, which do not serve, still run with that bind.
    let (code, stderr) = run_idp(dir.path(), &["migrate"], &env).await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idp_trusted_proxies_takes_ranges_and_throttles_the_forwarded_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let idp = Idp::new(dir.path());
    idp.run(&["service", "add", "portail", "--name", "Portail", "--url-pattern", PORTAL_PATTERN]).await.ok();
    idp.create_active("c.martin", PASSWORD).await;
    let config = dir.path().join("idp-cli-test.toml");
    let env = [("IDP_DATA_DIR", dir.path().to_str().unwrap()), ("IDP_TRUSTED_PROXIES", "10.9.9.9, 127.0.0.0/8")];
    let server = Serving::start(dir.path(), &["--config", config.to_str().unwrap(), "serve"], &env).await;

    let client = browser();
    let attempt = |from: &'static str, password: &'static str| {
        let (client, base) = (client.clone(), server.base.clone());
        async move {
            let page =
                client.get(format!("{base}/cas/login")).query(&[("profile", "eleve-parent"), ("service", PORTAL)]);
            let page = result(page.send().await.unwrap()).await;
            let mut form = hidden_inputs(&page.body);
            form.push(("username".into(), "c.martin".into()));
            form.push(("password".into(), password.into()));
            let post = client.post(format!("{base}/cas/login")).header("x-forwarded-for", from).form(&form);
            result(post.send().await.unwrap()).await
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("10.0.0.1", "faux").await.status, 401);
    }
    // The sixth from 10.0.0.1 is refused, even with the right password.
    let refused = attempt("10.0.0.1", PASSWORD).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body.contains("Trop de tentatives"), "{}", refused.body);
    // Another address behind the same proxy is not.
    let other = attempt("10.0.0.2", PASSWORD).await;
    assert_eq!(other.status, 303, "{}", other.body);
    assert!(other.ticket().starts_with("ST-"));
}

// ---------------------------------------------------------------------------
// Metrics and the access log

#[tokio::test(flavor = "multi_thread")]
async fn metrics_have_help_text_and_request_durations_by_matched_route() {
    let app = crate::helpers::spawn_app().await;
    assert_eq!(app.get_login(&[]).await.status, 200);
    let (status, _, _) = app.validate("/cas/serviceValidate", &[("service", PORTAL), ("ticket", "ST-secret-1")]).await;
    assert_eq!(status, 200);
    let missing = reqwest::get(app.url("/nowhere/ST-secret-2")).await.unwrap();
    assert_eq!(missing.status(), 404);

    let text = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    let typed: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
    assert!(typed.contains(&"idp_http_request_duration_seconds"), "{text}");
    for name in typed {
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP text for {name}:\n{text}");
    }
    assert!(text.contains("# TYPE idp_http_request_duration_seconds histogram"), "{text}");
    for route in ["/cas/login", "/cas/serviceValidate", "unmatched"] {
        let series = format!("route=\"{route}\"");
        assert!(
            text.lines().any(|l| l.starts_with("idp_http_request_duration_seconds_bucket{") && l.contains(&series)),
            "a duration histogram for {route}:\n{text}"
        );
    }
    assert!(!text.contains("secret") && !text.contains("/nowhere"), "paths and queries stay out:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_names_method_route_status_and_duration_but_never_the_query() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.toml"), CHEAP_CONFIG).unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let server = Serving::start(dir.path(), &["--config", "idp.toml", "serve"], &[("IDP_DATA_DIR", data_dir)]).await;
    let validate = format!("{}/cas/p3/serviceValidate?service={PORTAL}&ticket=ST-0123-not-logged", server.base);
    assert_eq!(reqwest::get(validate).await.unwrap().status(), 200);
    let oidc = format!("{}/nowhere?code=code-not-logged", server.base);
    assert_eq!(reqwest::get(oidc).await.unwrap().status(), 404);
    server.signal("TERM");
    let log = server.log();
    assert_eq!(server.exit_code(Duration::from_secs(20)).await, Some(0), "{log}");

    let access: Vec<&str> = log.lines().filter(|l| l.contains("idp::access")).collect();
    let line = access
        .iter()
        .find(|l| l.contains("route=/cas/p3/serviceValidate"))
        .unwrap_or_else(|| panic!("an access line for the validation: {log}"));
    for part in ["method=GET", "status=200", "duration_ms="] {
        assert!(line.contains(part), "{part} in {line}");
    }
    assert!(access.iter().any(|l| l.contains("route=unmatched") && l.contains("status=404")), "{log}");
    assert!(!log.contains("ST-0123-not-logged") && !log.contains("code-not-logged"), "a query reached the log: {log}");
}

#[tokio::test]
async fn metrics_tell_the_hashing_pool_and_the_sso_sessions() {
    let app = crate::helpers::spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", idp_core::account::Profile::Eleve).await;
    assert_eq!(app.login(None, "c.martin", "Bonjour-2026!").await.status, 200);
    let r = app.client.get(app.url("/cas/logout")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    for name in [
        "idp_hashing_in_flight",
        "idp_hashing_wait_seconds",
        "idp_sso_sessions_opened_total",
        "idp_sso_sessions_ended_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(text.lines().any(|l| l.starts_with(name) && !l.starts_with('#')), "a value for {name}:\n{text}");
    }
}

/// A login that finds the hashing queue full is refused at once with the
/// French 503 page (CORE0011), whatever the login, and the next login once
/// the queue has room goes through.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_beyond_the_hashing_queue_is_refused_at_once_with_a_french_page() {
    // One hashing thread, no queue, and a hash slow enough (~a second) for
    // the login below to arrive while it runs.
    let app = crate::helpers::spawn_app_with(|s| {
        s.hashing_concurrency = Some(1);
        s.hashing_queue = Some(0);
        s.argon2 = idp_core::password::Argon2Params { memory_kib: 32 * 1024, iterations: 16, parallelism: 1 };
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", idp_core::account::Profile::Eleve).await;
    let hashing = app.stores.hashing.clone();
    let busy = tokio::spawn(async move { hashing.hash(idp_core::secret::Secret::new("occupé")).await });
    let in_flight = |text: &str| text.lines().any(|l| l == "idp_hashing_in_flight 1");
    while !in_flight(&reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap()) {
        tokio::task::yield_now().await;
    }
    for login in ["c.martin", "inconnu"] {
        let r = app.login(None, login, "Bonjour-2026!").await;
        assert_eq!(r.status, 503, "{login}: {}", r.body);
        assert!(r.body.contains("Service momentanément indisponible") && r.body.contains("CORE0011"), "{}", r.body);
    }
    assert!(!busy.is_finished(), "the hash ended before the logins: the test proves nothing, make it slower");
    busy.await.unwrap().unwrap();
    assert_eq!(app.login(None, "c.martin", "Bonjour-2026!").await.status, 200);
    let text = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    let refused = text.lines().find(|l| l.starts_with("idp_hashing_refused_total ")).unwrap_or_default();
    assert_eq!(refused, "idp_hashing_refused_total 2", "{text}");
}
