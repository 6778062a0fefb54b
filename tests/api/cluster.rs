//! Against the real engines of a cluster: PostgreSQL (`IDP_TEST_DATABASE_URL`)
//! and Redis (`IDP_TEST_REDIS_URL`). Without them the tests say they are
//! skipped, unless `IDP_TEST_REQUIRE_SERVICES=1` (CI), where they fail.
//!
//! Two in-process servers sharing one SQLite file and one Redis prefix are
//! two nodes behind a load balancer.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::ConnectionTrait;

use idp_core::account::{Login, Profile};
use idp_core::ports::TicketRegistry;
use idp_core::secret::random_token;
use idp_core::session::{ServiceTicket, TicketId};
use idp_store::redis_store::{Redis, RedisTickets};

use crate::cli::Idp;
use crate::helpers::{LoginResult, TestApp, assert_valid_cas_xml, hidden_inputs, result, spawn_app_with};

const SERVICE: &str = "https://cahier-de-textes.example.test/";
const PATTERN: &str = r"https://cahier-de-textes\.example\.test/.*";
const PASSWORD: &str = "Bonjour-2026!";

/// The URL of a test service from the environment, or None (skipped) when
/// not set; a failure when `IDP_TEST_REQUIRE_SERVICES=1`.
fn service_url(var: &str, what: &str) -> Option<String> {
    if let Some(url) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        return Some(url);
    }
    let message = format!("skipped: {var} not set ({what} tests need it)");
    if std::env::var("IDP_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message}");
    }
    println!("{message}");
    eprintln!("{message}");
    None
}

pub(crate) fn postgres_url() -> Option<String> {
    service_url("IDP_TEST_DATABASE_URL", "PostgreSQL")
}

pub(crate) fn redis_url() -> Option<String> {
    service_url("IDP_TEST_REDIS_URL", "Redis")
}

pub(crate) fn random_suffix() -> String {
    random_token(12).unwrap().to_lowercase()
}

// ---------------------------------------------------------------------------
// PostgreSQL

/// A fresh database, dropped (best effort) when the guard goes.
pub(crate) struct TestDatabase {
    admin_url: String,
    name: String,
    pub(crate) url: String,
}

impl TestDatabase {
    pub(crate) async fn create(admin_url: &str) -> TestDatabase {
        let admin = sea_orm::Database::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to IDP_TEST_DATABASE_URL {admin_url}: {e}"));
        let name = format!("idp_t_{}", random_suffix());
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
        let _ = admin.close().await;
        let mut url = url::Url::parse(admin_url).expect("IDP_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        TestDatabase { admin_url: admin_url.to_owned(), name, url: url.to_string() }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Its own runtime: the test's may be shutting down (or panicking).
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_cas_flow_works_on_postgresql() {
    let Some(admin_url) = postgres_url() else { return };
    let db = TestDatabase::create(&admin_url).await;
    let url = db.url.clone();
    let app = spawn_app_with(|s| s.database_url = Some(url)).await;
    app.active_account("c.martin", PASSWORD, Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid", "email", "school"], None).await;

    // Wrong password: refused, counted in the database.
    let bad = app.login(Some(SERVICE), "c.martin", "pas-le-bon").await;
    assert_eq!(bad.status, 401);
    let account = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap();
    assert_eq!(account.failed_logins, 1);

    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ticket = r.ticket();
    let (status, content_type, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_eq!(status, 200);
    assert!(content_type.contains("xml"), "{content_type}");
    assert!(body.contains("<cas:user>c.martin</cas:user>"), "{body}");
    assert!(body.contains("<cas:email>c.martin@example.fr</cas:email>"), "{body}");
    assert!(
        body.contains("<cas:school>0370001A</cas:school>") && body.contains("<cas:school>0370002B</cas:school>"),
        "{body}"
    );
    assert_valid_cas_xml(&body);

    // Single use.
    let (_, _, again) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(again.contains(r#"code="INVALID_TICKET""#), "{again}");
    assert_valid_cas_xml(&again);

    // SSO, and the last login time written to PostgreSQL.
    let sso = app.get_login(&[("service", SERVICE)]).await;
    assert_eq!(sso.status, 302, "{}", sso.body);
    let (_, _, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &sso.ticket())]).await;
    assert!(body.contains("<cas:authenticationSuccess>"), "{body}");
    let account = app.stores.accounts.find_by_login(&Login::parse("C.Martin").unwrap()).await.unwrap().unwrap();
    assert!(account.last_login_at.is_some());
    assert_eq!(account.failed_logins, 0, "a success resets the count");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_imports_and_administers_accounts_on_postgresql() {
    let Some(admin_url) = postgres_url() else { return };
    let db = TestDatabase::create(&admin_url).await;
    let url = db.url.clone();
    let app = spawn_app_with(|s| s.database_url = Some(url)).await;
    let idp = Idp::new(app.data_dir.path()).env("IDP_DATABASE_URL", &db.url);

    // Services too: the server reads them from PostgreSQL at once.
    idp.run(&["service", "add", "cdt", "--name", "Cahier de textes", "--url-pattern", PATTERN]).await.ok();

    let file = app.data_dir.path().join("import.csv");
    std::fs::write(
        &file,
        b"\xEF\xBB\xBFlogin;profile;given_name;family_name;email;school\n\
          j.dupont;eleve;J\xC3\xA9r\xC3\xB4me;Dupont;j.dupont@example.fr;0370001A\n\
          m.lefevre;parent;Ma\xC3\xABlle;Lef\xC3\xA8vre;;\n",
    )
    .unwrap();
    let out = idp.run(&["account", "import", file.to_str().unwrap()]).await;
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(lines[0], "login,provisional_password");
    assert!(lines[1].starts_with("j.dupont,") && lines[2].starts_with("m.lefevre,"), "{}", out.stdout);
    let provisional = lines[1].split_once(',').unwrap().1.to_owned();

    // Nothing but PostgreSQL holds them: the in-process server finds them.
    let a = app.stores.accounts.find_by_login(&Login::parse("j.dupont").unwrap()).await.unwrap().expect("imported");
    assert_eq!(a.given_name, "Jérôme");
    assert_eq!(a.schools, ["0370001A"]);
    let r = app.login(Some(SERVICE), "j.dupont", &provisional).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("doit être activé") || r.body.contains("Activer mon compte"), "{}", r.body);
    assert!(r.location.is_none());

    // Again with a change: an update.
    std::fs::write(&file, "login,profile,given_name,family_name\nj.dupont,eleve,Jérôme,Dupont-Moreau\n").unwrap();
    let out = idp.run(&["account", "import", file.to_str().unwrap()]).await;
    out.ok();
    assert_eq!(out.stdout, "login,provisional_password\n");
    assert_eq!(idp.field("j.dupont", "family_name").await, "Dupont-Moreau");

    // All or nothing on PostgreSQL too: a bad row on line 3 and the good
    // row on line 2 is not created.
    std::fs::write(
        &file,
        "login,profile,given_name,family_name\nn.nouveau,eleve,Noé,Nouveau\nx.mauvais,eleve,,Mauvais\n",
    )
    .unwrap();
    idp.run(&["account", "import", file.to_str().unwrap()]).await.fails_with("line 3");
    assert!(app.stores.accounts.find_by_login(&Login::parse("n.nouveau").unwrap()).await.unwrap().is_none());

    // An active account made by the CLI logs in on the server.
    idp.create_active("c.martin", PASSWORD).await;
    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let (_, _, body) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &r.ticket())]).await;
    assert!(body.contains("<cas:user>c.martin</cas:user>"), "{body}");
    assert_valid_cas_xml(&body);
}

// ---------------------------------------------------------------------------
// Redis: two nodes

struct Nodes {
    a: TestApp,
    b: TestApp,
}

/// Two servers on one SQLite file and one Redis prefix (fresh per test).
async fn two_nodes(redis_url: &str) -> Nodes {
    let prefix = format!("idp-test-{}:", random_suffix());
    let (url, p) = (redis_url.to_owned(), prefix.clone());
    let a = spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = p;
    })
    .await;
    assert_eq!(a.stores.ticket_store, "redis");
    let sqlite = format!("sqlite://{}?mode=rwc", a.data_dir.path().join("idp.db").display());
    let url = redis_url.to_owned();
    let b = spawn_app_with(move |s| {
        s.database_url = Some(sqlite);
        s.redis_url = Some(url);
        s.redis_prefix = prefix;
    })
    .await;
    a.active_account("c.martin", PASSWORD, Profile::Eleve).await;
    a.active_account("l.petit", PASSWORD, Profile::Parent).await;
    a.service("cdt", PATTERN, &["uid"], None).await;
    Nodes { a, b }
}

/// A login on `app` through its pages; also returns the TGC cookie value set.
async fn login_with_tgc(app: &TestApp, service: &str, username: &str, password: &str) -> (LoginResult, Option<String>) {
    let page = app.get_login(&[("profile", "eleve-parent"), ("service", service)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = hidden_inputs(&page.body);
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    let r = app.client.post(app.url("/cas/login")).form(&form).send().await.unwrap();
    let tgc = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("TGC="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned());
    (result(r).await, tgc)
}

/// A client that keeps no cookie and follows no redirect.
fn plain() -> reqwest::Client {
    crate::cli::install_crypto_provider();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn get_with_tgc(app: &TestApp, path: &str, query: &[(&str, &str)], tgc: &str) -> LoginResult {
    let r = plain().get(app.url(path)).query(query).header("cookie", format!("TGC={tgc}")).send().await.unwrap();
    result(r).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ticket_issued_by_one_node_validates_once_on_the_other() {
    let Some(redis) = redis_url() else { return };
    let nodes = two_nodes(&redis).await;

    let r = nodes.a.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ticket = r.ticket();

    let (status, _, body) =
        nodes.b.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_eq!(status, 200);
    assert!(body.contains("<cas:user>c.martin</cas:user>"), "node B validates node A's ticket: {body}");
    assert_valid_cas_xml(&body);

    // Spent for every node.
    let (_, _, again) = nodes.a.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(again.contains(r#"code="INVALID_TICKET""#), "{again}");
    let (_, _, again) = nodes.b.validate("/cas/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(again.contains(r#"code="INVALID_TICKET""#), "{again}");

    // Both nodes are ready (database and Redis answer).
    for node in [&nodes.a, &nodes.b] {
        assert_eq!(plain().get(node.url("/readyz")).send().await.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sso_session_is_shared_and_logout_on_one_node_ends_it_on_all() {
    let Some(redis) = redis_url() else { return };
    let nodes = two_nodes(&redis).await;

    let (r, tgc) = login_with_tgc(&nodes.a, SERVICE, "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    r.ticket();
    let tgc = tgc.expect("a TGC cookie from node A");

    // Node B knows the session opened on node A.
    let sso = get_with_tgc(&nodes.b, "/cas/login", &[("service", SERVICE)], &tgc).await;
    assert_eq!(sso.status, 302, "SSO on node B: {}", sso.body);
    let ticket = sso.ticket();
    let (_, _, body) = nodes.a.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(body.contains("<cas:user>c.martin</cas:user>"), "{body}");
    assert!(body.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"), "{body}");

    // Logout on node B ...
    let out = get_with_tgc(&nodes.b, "/cas/logout", &[], &tgc).await;
    assert_eq!(out.status, 200, "{}", out.body);

    // ... ends the session for node A (whose browser still has the cookie).
    let after = nodes.a.get_login(&[("service", SERVICE)]).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(after.location.is_none(), "no ticket after logout on the other node: {:?}", after.location);
    let after_b = get_with_tgc(&nodes.b, "/cas/login", &[("service", SERVICE)], &tgc).await;
    assert_eq!(after_b.status, 200);
    assert!(after_b.location.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_counters_are_shared_by_the_nodes() {
    let Some(redis) = redis_url() else { return };
    let nodes = two_nodes(&redis).await;

    // Default policy: 5 failures per login.
    for i in 0..5 {
        let r = nodes.a.login(Some(SERVICE), "c.martin", "mauvais-mot-de-passe").await;
        assert_eq!(r.status, 401, "attempt {i}: {}", r.body);
    }
    let b = nodes.b.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(b.status, 429, "node B knows node A's failures: {}", b.body);
    assert!(b.location.is_none());
    let a = nodes.a.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(a.status, 429);

    // Another login from the same address is not blocked.
    let other = nodes.b.login(Some(SERVICE), "l.petit", PASSWORD).await;
    assert_eq!(other.status, 303, "{}", other.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn account_unlock_by_the_cli_clears_the_shared_throttling_counters() {
    let Some(redis) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", random_suffix());
    let (url, p) = (redis.clone(), prefix.clone());
    let app = spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = p;
    })
    .await;
    app.active_account("c.martin", PASSWORD, Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    for _ in 0..5 {
        assert_eq!(app.login(Some(SERVICE), "c.martin", "mauvais-mot-de-passe").await.status, 401);
    }
    assert_eq!(app.login(Some(SERVICE), "c.martin", PASSWORD).await.status, 429);

    let idp =
        Idp::with_config(app.data_dir.path(), &format!("redis_prefix = \"{prefix}\"")).env("IDP_REDIS_URL", &redis);
    let out = idp.run(&["account", "unlock", "c.martin"]).await;
    out.ok();
    assert_eq!(out.stdout, "");

    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "unlocked for every node: {}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_tickets_are_taken_by_exactly_one_of_two_concurrent_takers() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", random_suffix());
    // Two connections, as two nodes have.
    let one = Arc::new(RedisTickets(Redis::connect(&url, &prefix).await.expect("Redis answers")));
    let two = Arc::new(RedisTickets(Redis::connect(&url, &prefix).await.expect("Redis answers")));
    one.ping().await.unwrap();

    let now = Utc::now();
    for round in 0..25 {
        let ticket = ServiceTicket {
            id: TicketId::from_raw(format!("ST-{}", random_token(32).unwrap())),
            service_url: SERVICE.into(),
            service_id: "cdt".into(),
            session_id: TicketId::from_raw(format!("TGT-{}", random_token(32).unwrap())),
            account_id: 7,
            login: "c.martin".into(),
            authenticated_at: now,
            from_new_login: round % 2 == 0,
            expires_at: now + chrono::Duration::seconds(10),
            amr: Vec::new(),
        };
        one.put(&ticket, Duration::from_secs(10)).await.unwrap();
        let (t1, t2) = (one.clone(), two.clone());
        let (id1, id2) = (ticket.id.expose().to_owned(), ticket.id.expose().to_owned());
        let first = tokio::spawn(async move { t1.take(&id1).await.unwrap() });
        let second = tokio::spawn(async move { t2.take(&id2).await.unwrap() });
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        let taken: Vec<_> = [first, second].into_iter().flatten().collect();
        assert_eq!(taken.len(), 1, "round {round}: exactly one taker gets the ticket");
        assert_eq!(taken[0], ticket, "the ticket comes back as it was put");
        assert!(one.take(ticket.id.expose()).await.unwrap().is_none(), "spent");
    }
    assert!(two.take("ST-never-put").await.unwrap().is_none());
}

#[tokio::test]
async fn redis_sessions_are_indexed_by_account_for_ending_them_all() {
    use idp_core::ports::SessionStore;
    use idp_core::session::SsoSession;
    use idp_store::redis_store::RedisSessions;
    let Some(url) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", random_suffix());
    let sessions = RedisSessions(Redis::connect(&url, &prefix).await.expect("Redis answers"));
    let now = Utc::now();
    let session = |id: &str, account_id| SsoSession {
        id: id.into(),
        account_id,
        login: "c.martin".into(),
        authenticated_at: now,
        last_used_at: now,
        upstream: None,
        amr: Vec::new(),
    };
    for (id, account) in [("TGT-a", 7), ("TGT-b", 7), ("TGT-c", 8)] {
        sessions.create(&session(id, account), Duration::from_secs(60)).await.unwrap();
    }
    let mut of_7 = sessions.sessions_of(7).await.unwrap();
    of_7.sort();
    assert_eq!(of_7, vec!["TGT-a".to_owned(), "TGT-b".to_owned()]);
    sessions.remove("TGT-a").await.unwrap().unwrap();
    assert_eq!(sessions.sessions_of(7).await.unwrap(), vec!["TGT-b".to_owned()]);
    assert_eq!(sessions.sessions_of(8).await.unwrap(), vec!["TGT-c".to_owned()]);
    assert!(sessions.sessions_of(9).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn account_reset_by_the_cli_sends_single_logout_for_the_sessions_in_redis() {
    let Some(redis) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", random_suffix());
    let (url, p) = (redis.clone(), prefix.clone());
    let app = spawn_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = p;
    })
    .await;
    let (logout_url, mut received) = crate::slo::logout_listener().await;
    app.active_account("c.martin", PASSWORD, Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], Some(&logout_url)).await;
    let ticket = app.login(Some(SERVICE), "c.martin", PASSWORD).await.ticket();

    let idp =
        Idp::with_config(app.data_dir.path(), &format!("redis_prefix = \"{prefix}\"")).env("IDP_REDIS_URL", &redis);
    let out = idp.run(&["account", "reset", "c.martin"]).await;
    out.secret_line();
    assert!(out.stderr.contains("1 session(s) ended"), "{}", out.stderr);
    let message = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the CLI sends the logout request before it exits")
        .unwrap();
    assert!(message.contains(&format!("<samlp:SessionIndex>{ticket}</samlp:SessionIndex>")), "{message}");
    // The session is gone for the server too.
    let again = app.get_login(&[("service", SERVICE)]).await;
    assert!(again.location.is_none(), "no ticket from the ended session");
}

#[tokio::test]
async fn redis_reauthentication_keeps_the_session_and_its_services_and_extends_them() {
    use idp_core::ports::SessionStore;
    use idp_core::session::{SessionService, SsoSession};
    use idp_store::redis_store::RedisSessions;
    let Some(url) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", random_suffix());
    let sessions = RedisSessions(Redis::connect(&url, &prefix).await.expect("Redis answers"));
    let start = Utc::now();
    let session = SsoSession {
        id: "TGT-r".into(),
        account_id: 7,
        login: "c.martin".into(),
        authenticated_at: start,
        last_used_at: start,
        upstream: None,
        amr: Vec::new(),
    };
    sessions.create(&session, Duration::from_secs(5)).await.unwrap();
    let service = SessionService { ticket: "ST-1".into(), service_url: SERVICE.into(), service_id: "cdt".into() };
    sessions.add_service("TGT-r", service.clone()).await.unwrap();
    let later = start + chrono::Duration::seconds(30);
    let again = sessions.reauthenticate("TGT-r", later, None, Duration::from_secs(600)).await.unwrap().unwrap();
    assert_eq!((again.authenticated_at, again.last_used_at), (later, later));
    let redis = redis::Client::open(url.as_str()).unwrap();
    let mut c = redis.get_multiplexed_async_connection().await.unwrap();
    for key in [format!("{prefix}tgt:TGT-r"), format!("{prefix}tgt:TGT-r:svc"), format!("{prefix}acct-tgt:7")] {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut c).await.unwrap();
        assert!(ttl > 500, "{key} lives on: {ttl}");
    }
    let (_, services) = sessions.remove("TGT-r").await.unwrap().unwrap();
    assert_eq!(services, vec![service]);
    assert!(sessions.reauthenticate("TGT-r", later, None, Duration::from_secs(600)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_forged_session_cookie_never_reaches_a_redis_key_of_another_kind() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", random_suffix());
    let (u, p) = (url.clone(), prefix.clone());
    let app = spawn_app_with(move |s| {
        s.redis_url = Some(u);
        s.redis_prefix = p;
    })
    .await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    // A key of another type where a session would be looked up.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SADD").arg(format!("{prefix}tgt:TGT-x:svc")).arg("a").query_async(&mut c).await.unwrap();
    let r = get_with_tgc(&app, "/cas/login", &[("service", SERVICE)], "TGT-x:svc").await;
    assert_eq!(r.status, 200, "the login page, not a 503: {}", r.body);
}
