//! E-mail over SMTP against a real SMTP server (Python `aiosmtpd`, started
//! by the test): the message arrives with the right headers; while the
//! server is down the message waits in the database queue, and is
//! delivered once the server is back.

use chrono::TimeDelta;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use idp_core::account::{Login, Profile};
use idp_core::clock::Clock;
use idp_core::lifecycle::AccountExtras;
use idp_store::mail::SmtpSettings;
use sea_orm::{ConnectionTrait, Statement};

use crate::account_helpers::{decode_qp, post};
use crate::helpers::{TestApp, python, repo_root, spawn_app_with};

/// A running aiosmtpd; killed when dropped.
struct SmtpSink {
    child: Child,
    dir: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_aiosmtpd(python: &Path) {
    let ok = Command::new(python).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
    if !ok {
        // A virtualenv made before aiosmtpd joined the requirements.
        let status = Command::new(python)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(repo_root().join("tests/interop/requirements.txt"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot install aiosmtpd");
    }
}

fn start_sink(port: u16, dir: &Path) -> SmtpSink {
    start_sink_with(port, dir, None, None)
}

/// Asks the sink for implicit TLS (`SINK_TLS_MODE=wrapper`).
fn tls_wrapper(command: &mut Command, wrapper: bool) {
    if wrapper {
        command.env("SINK_TLS_MODE", "wrapper");
    }
}

/// `tls`: the certificate and key PEM files for STARTTLS.
fn start_sink_with(port: u16, dir: &Path, auth: Option<&str>, tls: Option<(&Path, &Path)>) -> SmtpSink {
    start_sink_full(port, dir, auth, tls, false)
}

/// `wrapper`: implicit TLS instead of STARTTLS.
fn start_sink_full(port: u16, dir: &Path, auth: Option<&str>, tls: Option<(&Path, &Path)>, wrapper: bool) -> SmtpSink {
    let python = python();
    ensure_aiosmtpd(&python);
    let mut command = Command::new(&python);
    command.arg(repo_root().join("tests/interop/smtp_sink.py")).arg(port.to_string()).arg(dir);
    if let Some(auth) = auth {
        command.arg(auth);
    }
    if let Some((cert, key)) = tls {
        command.env("SINK_TLS_CERT", cert).env("SINK_TLS_KEY", key);
    }
    tls_wrapper(&mut command, wrapper);
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    SmtpSink { child, dir: dir.to_path_buf() }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn received(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

async fn wait_for_mail(dir: &Path, seconds: u64) -> Vec<String> {
    for _ in 0..seconds * 10 {
        let mails = received(dir);
        if !mails.is_empty() {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Vec::new()
}

async fn app_with_smtp(port: u16) -> TestApp {
    let app = spawn_app_with(|s| {
        s.mail.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: "none".into(),
            username: None,
            password: None,
            ca_file: None,
        });
        s.mail.retry_poll_seconds = 1;
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Parent).await;
    let a = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap();
    let extras =
        AccountExtras { email_verified: a.email.clone(), email_verified_at: Some(app.clock.now()), questions: None };
    app.stores.security.save(a.id, &extras).await.unwrap();
    app
}

async fn forgot(app: &TestApp) {
    let r = post(
        app,
        "/compte/mot-de-passe-oublie",
        "/compte/mot-de-passe-oublie/courriel",
        &[("identifiant", "c.martin"), ("courriel", "c.martin@example.fr")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn queued(app: &TestApp) -> i64 {
    let row = app
        .stores
        .db
        .query_one_raw(Statement::from_string(
            app.stores.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM mail_queue",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn mail_arrives_over_smtp_with_the_right_headers() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink(port, dir.path());
    let app = app_with_smtp(port).await;
    forgot(&app).await;
    let mails = wait_for_mail(&sink.dir, 15).await;
    assert_eq!(mails.len(), 1, "the message reached the SMTP server");
    let mail = decode_qp(&mails[0]);
    assert!(mail.contains("X-Envelope-From: confirmation-ent@touraine-eschool.fr"), "{mail}");
    assert!(mail.contains("X-Envelope-To: c.martin@example.fr"), "{mail}");
    let header = |name: &str| mail.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_owned();
    assert!(header("From: ").contains("<confirmation-ent@touraine-eschool.fr>"), "{mail}");
    assert!(header("To: ").contains("c.martin@example.fr"));
    assert!(header("Subject: ").contains("Nouveau mot de passe pour ENT"), "{mail}");
    assert!(!header("Date: ").is_empty() && !header("Message-ID: ").is_empty(), "{mail}");
    assert!(mail.contains("multipart/alternative"));
    assert!(mail.contains("/compte/mot-de-passe-oublie/nouveau?code="));
    assert_eq!(queued(&app).await, 0, "sent messages leave the queue");
    assert!(!app.data_dir.path().join("outbox").read_dir().is_ok_and(|mut d| d.next().is_some()));
}

#[tokio::test]
async fn mail_waits_while_the_smtp_server_is_down_and_is_delivered_when_it_is_back() {
    let port = free_port();
    let app = app_with_smtp(port).await;
    forgot(&app).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(queued(&app).await, 1, "the message waits in the queue");
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink(port, dir.path());
    // The next try is due after the back-off (the clock is the app's).
    app.clock.advance(TimeDelta::minutes(6));
    let mails = wait_for_mail(&sink.dir, 15).await;
    assert_eq!(mails.len(), 1, "delivered once the server is back");
    assert!(decode_qp(&mails[0]).contains("si vous n'êtes pas Camille Martin"));
    for _ in 0..20 {
        if queued(&app).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queued(&app).await, 0);
}

#[tokio::test]
async fn messages_are_dkim_signed_when_a_key_is_configured() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("dkim.key");
    // The base64 of a 32-byte Ed25519 secret (a test key).
    std::fs::write(&key_file, "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n").unwrap();
    let app = spawn_app_with(move |s| {
        s.mail.dkim = Some(idp_store::mail::DkimSettings {
            domain: "touraine-eschool.fr".into(),
            selector: "ent2026".into(),
            private_key_file: key_file,
            algorithm: "ed25519".into(),
        });
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Parent).await;
    let a = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap();
    let extras =
        AccountExtras { email_verified: a.email.clone(), email_verified_at: Some(app.clock.now()), questions: None };
    app.stores.security.save(a.id, &extras).await.unwrap();
    forgot(&app).await;
    let mails = crate::account_helpers::wait_for_outbox(&app, 1).await;
    assert_eq!(mails.len(), 1);
    let signature = mails[0].split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
    let line = signature.lines().find(|l| l.starts_with("DKIM-Signature:")).unwrap_or_else(|| panic!("{signature}"));
    for part in ["a=ed25519-sha256", "d=touraine-eschool.fr", "s=ent2026", "h=From:Subject:To:Date", "b="] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

#[tokio::test]
async fn queued_mail_survives_a_restart() {
    let port = free_port();
    let first = app_with_smtp(port).await;
    forgot(&first).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(queued(&first).await, 1);
    // The SMTP server comes back and a new process starts on the same
    // database (the old one's worker is still retrying: only one sends).
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink(port, dir.path());
    let sqlite = format!("sqlite://{}?mode=rwc", first.data_dir.path().join("idp.db").display());
    let second = spawn_app_with(move |s| {
        s.database_url = Some(sqlite);
        s.mail.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: "none".into(),
            username: None,
            password: None,
            ca_file: None,
        });
        s.mail.retry_poll_seconds = 1;
    })
    .await;
    second.clock.advance(TimeDelta::minutes(6));
    let mails = wait_for_mail(&sink.dir, 15).await;
    assert_eq!(mails.len(), 1, "the queued message was delivered after the restart");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received(&sink.dir).len(), 1, "and only once");
}

#[tokio::test]
async fn smtp_authentication_is_used_when_configured() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink_with(port, dir.path(), Some("ent-relay:s3cret"), None);
    let app = spawn_app_with(|s| {
        s.mail.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: "none".into(),
            username: Some("ent-relay".into()),
            password: Some("s3cret".into()),
            ca_file: None,
        });
        s.mail.retry_poll_seconds = 1;
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Parent).await;
    let a = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap();
    let extras =
        AccountExtras { email_verified: a.email.clone(), email_verified_at: Some(app.clock.now()), questions: None };
    app.stores.security.save(a.id, &extras).await.unwrap();
    forgot(&app).await;
    let mails = wait_for_mail(&sink.dir, 15).await;
    assert_eq!(mails.len(), 1, "accepted after authentication");
    assert!(mails[0].contains("X-Auth-User: ent-relay"), "{}", mails[0]);
}

/// A private certificate authority and a server certificate for 127.0.0.1.
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

#[tokio::test]
async fn starttls_with_a_private_certificate_authority() {
    tls_delivery(false).await;
}

#[tokio::test]
async fn implicit_tls_with_a_private_certificate_authority() {
    tls_delivery(true).await;
}

async fn tls_delivery(wrapper: bool) {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(certs.path());
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink_full(port, dir.path(), Some("ent-relay:s3cret"), Some((&cert, &key)), wrapper);
    let security = if wrapper { "tls" } else { "starttls" };
    let app = spawn_app_with(move |s| {
        s.mail.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: security.into(),
            username: Some("ent-relay".into()),
            password: Some("s3cret".into()),
            ca_file: Some(ca),
        });
        s.mail.retry_poll_seconds = 1;
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Parent).await;
    let a = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap();
    let extras =
        AccountExtras { email_verified: a.email.clone(), email_verified_at: Some(app.clock.now()), questions: None };
    app.stores.security.save(a.id, &extras).await.unwrap();
    forgot(&app).await;
    let mails = wait_for_mail(&sink.dir, 15).await;
    assert_eq!(mails.len(), 1, "sent over {security}");
    assert!(mails[0].contains("X-Auth-User: ent-relay"));
}

#[tokio::test]
async fn a_message_refused_for_good_is_not_retried() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sink = start_sink(port, dir.path());
    let app = app_with_smtp(port).await;
    app.active_account("inconnu", "Bonjour-2026!", Profile::Parent).await;
    let a = app.stores.accounts.find_by_login(&Login::parse("inconnu").unwrap()).await.unwrap().unwrap();
    let extras =
        AccountExtras { email_verified: a.email.clone(), email_verified_at: Some(app.clock.now()), questions: None };
    app.stores.security.save(a.id, &extras).await.unwrap();
    let r = post(
        &app,
        "/compte/mot-de-passe-oublie",
        "/compte/mot-de-passe-oublie/courriel",
        &[("identifiant", "inconnu"), ("courriel", "inconnu@example.fr")],
    )
    .await;
    assert_eq!(r.status, 200);
    // Then a good one, which arrives: the refused one is no longer queued.
    forgot(&app).await;
    let mails = wait_for_mail(&sink.dir, 15).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("X-Envelope-To: c.martin@example.fr"));
    for _ in 0..30 {
        if queued(&app).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queued(&app).await, 0, "the refused message was dropped, not kept for retries");
}
