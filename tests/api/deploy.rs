//! What deploy/ relies on: the example configuration as it is, the
//! configurations of the container files, `idp healthcheck`, migrations
//! started at once by several nodes, Redis over TLS, `idp backup`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::{CHEAP_CONFIG, Idp};
use crate::operations::{PASSWORD, Serving, free_port, run_idp};

// ---------------------------------------------------------------------------
// The example configuration and the health check

fn example_config() -> PathBuf {
    crate::helpers::repo_root().join("deploy/idp.example.toml")
}

/// The example with every commented setting (`# key = …`, `# [table]`)
/// uncommented.
fn uncommented(example: &str) -> String {
    let setting = regex::Regex::new(r"^# (\[\[?[a-z_.]+\]\]?(\s.*)?|[a-z_]+ = .*)$").unwrap();
    example.lines().map(|l| if setting.is_match(l) { &l[2..] } else { l }).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_example_configuration_with_every_production_line_uncommented_still_parses() {
    let example = std::fs::read_to_string(example_config()).unwrap();
    let all = uncommented(&example);
    assert_ne!(all, example);
    for key in
        ["public_url", "database_password_file", "hashing_concurrency", "metrics_bind", "password_file", "algorithm"]
    {
        assert!(all.lines().any(|l| l.starts_with(&format!("{key} = "))), "{key} is in the example");
    }
    let settings: idp::settings::Settings =
        toml::from_str(&all).unwrap_or_else(|e| panic!("the uncommented example is refused: {e}\n{all}"));
    assert_eq!(settings.hashing_concurrency, Some(4), "hashing_concurrency is a top-level key");
    assert_eq!(settings.server.metrics_bind.as_deref(), Some("10.0.0.5:9100"));
    assert!(settings.mail.smtp.is_some() && settings.mail.dkim.is_some());
    assert_eq!(settings.mail.smtp_password_file.as_deref(), Some(Path::new("/run/secrets/smtp-password")));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_configuration_as_it_is_starts_a_server_and_healthcheck_says_ready() {
    let dir = tempfile::tempdir().unwrap();
    let example = example_config();
    let server = Serving::start(dir.path(), &["--config", example.to_str().unwrap(), "serve"], &[]).await;
    assert!(dir.path().join("data/idp.db").is_file(), "data_dir = ./data of the example");
    let port = server.base.rsplit(':').next().unwrap().to_owned();

    // `idp healthcheck` reads the bind address of the settings…
    let bind = format!("127.0.0.1:{port}");
    let (code, stderr) =
        run_idp(dir.path(), &["--config", example.to_str().unwrap(), "healthcheck"], &[("IDP_BIND", &bind)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // … a wildcard bind is asked on loopback …
    let wildcard = format!("0.0.0.0:{port}");
    let (code, stderr) = run_idp(dir.path(), &["healthcheck"], &[("IDP_BIND", &wildcard)]).await;
    assert_eq!(code, Some(0), "{stderr}");
    // … or the URL given; anything but 200 is a failure.
    let (code, stderr) = run_idp(dir.path(), &["healthcheck", &server.base], &[]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run_idp(dir.path(), &["healthcheck", &format!("{}/nowhere", server.base)], &[]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("404"), "{stderr}");
    let closed = format!("http://127.0.0.1:{}/readyz", free_port());
    let (code, stderr) = run_idp(dir.path(), &["healthcheck", &closed], &[]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot connect"), "{stderr}");

    server.signal("TERM");
    let log = server.log();
    assert_eq!(server.exit_code(Duration::from_secs(20)).await, Some(0), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_fails_when_the_server_is_not_ready() {
    // A listener of the test answers as a node whose database is down.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let answer = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 20\r\n\r\nnot ready: database\n";
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_idp(dir.path(), &["healthcheck", &url], &[]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("503"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Migrations

#[tokio::test(flavor = "multi_thread")]
async fn several_nodes_migrating_a_fresh_postgres_database_at_once_all_succeed() {
    let Some(admin_url) = crate::cluster::postgres_url() else { return };
    let db = crate::cluster::TestDatabase::create(&admin_url).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.toml"), CHEAP_CONFIG).unwrap();
    let env = [("IDP_DATABASE_URL", db.url.as_str()), ("IDP_DATA_DIR", dir.path().to_str().unwrap())];
    let migrate = || run_idp(dir.path(), &["--config", "idp.toml", "migrate"], &env);
    let (a, b, c, d) = tokio::join!(migrate(), migrate(), migrate(), migrate());
    for (code, stderr) in [a, b, c, d] {
        assert_eq!(code, Some(0), "a concurrent migrate failed: {stderr}");
    }
    // Each migration recorded once.
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    use sea_orm::ConnectionTrait;
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT version, count(*) AS n FROM seaql_migrations GROUP BY version HAVING count(*) > 1",
        ))
        .await
        .unwrap();
    assert!(rows.is_empty(), "a migration recorded twice");
    let _ = conn.close().await;
}

/// The `idp.toml` of the Kubernetes ConfigMap (the block under `idp.toml: |`).
fn k8s_config() -> String {
    let manifest = std::fs::read_to_string(crate::helpers::repo_root().join("deploy/k8s/idp.yaml")).unwrap();
    let mut lines = manifest.lines().skip_while(|l| l.trim() != "idp.toml: |").skip(1);
    let mut block = Vec::new();
    for line in lines.by_ref() {
        match line.strip_prefix("    ") {
            Some(rest) => block.push(rest),
            None if line.trim().is_empty() => block.push(""),
            None => break,
        }
    }
    assert!(!block.is_empty(), "an idp.toml in the ConfigMap of deploy/k8s/idp.yaml");
    block.join("\n")
}

#[test]
fn the_configurations_of_deploy_parse() {
    for (name, text) in [
        ("k8s ConfigMap", k8s_config()),
        ("compose", std::fs::read_to_string(crate::helpers::repo_root().join("deploy/compose/idp.toml")).unwrap()),
    ] {
        let settings: idp::settings::Settings =
            toml::from_str(&text).unwrap_or_else(|e| panic!("the {name} configuration is refused: {e}\n{text}"));
        assert!(!settings.trusted_proxies.is_empty(), "{name}: trusted_proxies set");
    }
}

// ---------------------------------------------------------------------------
// Redis over TLS

#[tokio::test(flavor = "multi_thread")]
async fn a_rediss_url_opens_a_tls_connection() {
    // A listener of the test in place of Redis: the first bytes it gets
    // are a TLS ClientHello (record type 22, version 3.x), not a command.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("rediss://127.0.0.1:{}/0", listener.local_addr().unwrap().port());
    let first_bytes = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.unwrap();
        head
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp.toml"), CHEAP_CONFIG).unwrap();
    let env = [("IDP_REDIS_URL", url.as_str()), ("IDP_DATA_DIR", dir.path().to_str().unwrap())];
    let (code, stderr) = run_idp(dir.path(), &["--config", "idp.toml", "service", "list"], &env).await;
    assert_ne!(code, Some(0), "no Redis answers there");
    assert!(stderr.contains("cannot connect to Redis"), "{stderr}");
    assert!(!stderr.contains("feature is not enabled"), "TLS support is built in: {stderr}");
    assert_eq!(first_bytes.await.unwrap(), [0x16, 0x03], "a TLS handshake");
}

// ---------------------------------------------------------------------------
// Backup

#[tokio::test(flavor = "multi_thread")]
async fn backup_copies_the_sqlite_database_while_the_server_runs() {
    let app = crate::helpers::spawn_app().await;
    app.active_account("c.martin", PASSWORD, idp_core::account::Profile::Eleve).await;
    let idp = Idp::new(app.data_dir.path());
    let saved = tempfile::tempdir().unwrap();
    let copy = saved.path().join("idp.db");
    let out = idp.run(&["backup", copy.to_str().unwrap()]).await;
    out.ok();
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("key-encryption key"), "a reminder of the key: {}", out.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // The server still serves.
    assert_eq!(reqwest::get(app.url("/readyz")).await.unwrap().status(), 200);

    // Restored elsewhere, with its key beside it: a whole database.
    std::fs::copy(app.data_dir.path().join("key-encryption.key"), saved.path().join("key-encryption.key")).unwrap();
    let restored = Idp::new(saved.path()).env("IDP_DATABASE_URL", &format!("sqlite://{}?mode=rwc", copy.display()));
    assert_eq!(restored.field("c.martin", "state").await, "active");

    // Never over an existing file; PostgreSQL has pg_dump.
    idp.run(&["backup", copy.to_str().unwrap()]).await.fails_with("cannot create");
    let on_postgres = Idp::new(saved.path()).env("IDP_DATABASE_URL", "postgres://idp@127.0.0.1:1/idp");
    on_postgres.run(&["backup", "x.db"]).await.fails_with("pg_dump");
}
