//! Generated-input tests of the parsers that take outside input, beside
//! the OIDC ones (`oidc/generated.rs`): CAS validation queries, the
//! samlValidate SOAP body, the login form, cookies, and the CSV import.
//! Whatever comes in: no 5xx, the protocol's own error format, the server
//! stays up; the import exits with a message, never a panic.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio::runtime::Handle;

use idp_core::account::Profile;

use crate::cli::Idp;
use crate::helpers::{TestApp, hidden_inputs, spawn_app};

const SERVICE: &str = "https://cahier-de-textes.example.test/";
const PATTERN: &str = r"https://cahier-de-textes\.example\.test/.*";

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Often almost right: a valid value, an empty one, or anything printable.
fn value(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(valid).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => "[A-Za-z0-9-]{30,60}",
        3 => "\\PC{0,60}",
        1 => ".{0,30}",
    ]
}

const VALIDATE_NAMES: &[&str] =
    &["service", "ticket", "renew", "format", "pgtUrl", "pgt", "targetService", "TARGET", "method", "gateway"];

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![9 => proptest::sample::select(VALIDATE_NAMES).prop_map(str::to_owned), 1 => "\\PC{0,12}"];
    let value =
        value(&[SERVICE, "ST-inconnu", "PT-x", "TGT-x:svc", "true", "JSON", "XML", "https://pgt.example.test/"]);
    proptest::collection::vec((name, value), 0..8)
}

async fn app() -> Arc<TestApp> {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid", "mail"], None).await;
    Arc::new(app)
}

/// Runs `cases` generated inputs against `app` from a blocking thread.
async fn run<S: Strategy + Send + 'static>(
    app: &Arc<TestApp>,
    cases: u32,
    input: S,
    check: impl Fn(&TestApp, S::Value) -> Result<(), TestCaseError> + Send + 'static,
) where
    S::Value: Send,
{
    let shared = app.clone();
    let outcome = tokio::task::spawn_blocking(move || runner(cases).run(&input, |v| check(&shared, v))).await.unwrap();
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_validation_queries_get_a_cas_answer_never_a_5xx() {
    let app = app().await;
    let handle = Handle::current();
    let paths = [
        "/cas/validate",
        "/cas/serviceValidate",
        "/cas/p3/serviceValidate",
        "/cas/proxyValidate",
        "/cas/p3/proxyValidate",
        "/cas/proxy",
        "/cas/login",
        "/cas/logout",
    ];
    run(&app, 256, (pairs(), 0..paths.len()), move |app, (pairs, which)| {
        handle.block_on(async {
            let path = paths[which];
            let r = app.client.get(app.url(path)).query(&pairs).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            prop_assert!(status < 500, "{} {:?} answered {}", path, pairs, status);
            if path.contains("Validate") || path == "/cas/proxy" {
                prop_assert!(body.contains("serviceResponse"), "{} {:?}: {}", path, pairs, body);
            }
            Ok(())
        })
    })
    .await;
}

/// A SOAP body: the real shape with a generated artifact and request id,
/// or anything.
fn soap_body() -> impl Strategy<Value = Vec<u8>> {
    let wrapped = ("\\PC{0,50}", "\\PC{0,20}").prop_map(|(artifact, id)| {
        format!(
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="{id}" IssueInstant="2026-01-01T00:00:00Z"><samlp:AssertionArtifact>{artifact}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
        )
        .into_bytes()
    });
    prop_oneof![
        3 => wrapped,
        1 => "[ -~]{0,300}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => Just(b"<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]><x>&b;</x>".to_vec()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_saml_validate_bodies_get_a_soap_answer_never_a_5xx() {
    let app = app().await;
    let handle = Handle::current();
    run(&app, 256, (soap_body(), value(&[SERVICE])), move |app, (body, target)| {
        handle.block_on(async {
            let r = app
                .client
                .post(app.url("/cas/samlValidate"))
                .query(&[("TARGET", &target)])
                .header("content-type", "text/xml")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            prop_assert!(status < 500, "samlValidate answered {}", status);
            prop_assert!(text.contains("SOAP-ENV:Envelope"), "{}", text);
            Ok(())
        })
    })
    .await;
}

const FORM_NAMES: &[&str] = &["username", "password", "service", "renew", "method", "jeton", "accepte", "csrf_token"];

#[tokio::test(flavor = "multi_thread")]
async fn generated_login_forms_and_cookies_never_get_a_5xx() {
    let app = app().await;
    let page = app.get_login(&[("profile", "eleve-parent")]).await;
    let csrf = hidden_inputs(&page.body).into_iter().find(|(n, _)| n == "csrf_token").unwrap().1;
    let handle = Handle::current();
    let name = prop_oneof![9 => proptest::sample::select(FORM_NAMES).prop_map(str::to_owned), 1 => "\\PC{0,12}"];
    let fields = proptest::collection::vec((name, value(&["c.martin", "Bonjour-2026!", SERVICE, "POST", "oui"])), 0..8);
    let cookie = prop_oneof![
        Just(String::new()),
        "[ -~]{0,120}",
        "\\PC{0,40}".prop_map(|v| format!("TGC={v}; idp_csrf={v}; idp_profile={v}")),
    ];
    let paths = ["/cas/login", "/cas/login/cgu", "/compte/activation", "/compte/mot-de-passe-oublie/reponses"];
    run(&app, 192, (fields, cookie, 0..paths.len(), any::<bool>()), move |app, (fields, cookie, which, keep)| {
        handle.block_on(async {
            let mut form = fields;
            if keep {
                form.push(("csrf_token".into(), csrf.clone()));
            }
            let mut request = app.client.post(app.url(paths[which])).form(&form);
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&cookie) {
                request = request.header("cookie", v);
            }
            let status = request.send().await.unwrap().status().as_u16();
            prop_assert!(status < 500, "{} {:?} (cookie {:?}) answered {}", paths[which], form, cookie, status);
            let mut get = app.client.get(app.url("/compte/"));
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&cookie) {
                get = get.header("cookie", v);
            }
            let status = get.send().await.unwrap().status().as_u16();
            prop_assert!(status < 500, "/compte/ with cookie {:?} answered {}", cookie, status);
            Ok(())
        })
    })
    .await;
}

/// A CSV file: the right header and generated rows, or anything.
fn csv_file() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        Just("eleve".to_owned()),
        Just("parent".to_owned()),
        "[a-z.]{1,12}",
        "\\PC{0,16}",
        Just("\"a;b\"".to_owned()),
        Just("=HYPERLINK(\"x\")".to_owned()),
    ];
    let row = proptest::collection::vec(cell, 0..8).prop_map(|cells| cells.join(";"));
    let rows = proptest::collection::vec(row, 0..6);
    prop_oneof![
        4 => rows.prop_map(|rows| format!("login;profile;given_name;family_name;email;school\n{}\n", rows.join("\n")).into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => "[ -~\n]{0,200}".prop_map(String::into_bytes),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_csv_imports_end_with_a_message_never_a_panic() {
    let app = spawn_app().await;
    let idp = Idp::new(app.data_dir.path());
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("import.csv");
    let handle = Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        runner(40).run(&csv_file(), |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            let out = handle.block_on(idp.run(&["account", "import", path.to_str().unwrap()]));
            prop_assert!(out.code == Some(0) || out.code == Some(1), "exit {:?}: {}", out.code, out.stderr);
            prop_assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
            if !out.success() {
                prop_assert!(out.stdout.is_empty(), "all-or-nothing: nothing on stdout after a failure");
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
