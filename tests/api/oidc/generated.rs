//! Generated-input tests of the OIDC request parsers: authorization
//! requests (GET query and POST form, consent answers included) and the
//! forms and `Authorization` headers of the token, introspection and
//! revocation endpoints. Whatever comes in, the server answers without a
//! 5xx, with an OAuth error body at the JSON endpoints, and stays up.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use tokio::runtime::Handle;

use super::*;

/// A value that is often almost right: a valid one, an empty one, a long
/// one, or anything printable (controls and non-ASCII included).
fn value(valid: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(valid).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => "[A-Za-z0-9._~-]{40,140}",
        3 => "\\PC{0,60}",
        1 => ".{0,30}",
    ]
}

const AUTHORIZE_NAMES: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "response_mode",
    "ticket",
    "consent",
    "consent_id",
    "csrf_token",
];

fn authorize_value(name: &str) -> BoxedStrategy<String> {
    match name {
        "response_type" => value(&["code", "token", "code id_token"]).boxed(),
        "client_id" => value(&["vie-scolaire", "inconnu"]).boxed(),
        "redirect_uri" => value(&[REDIRECT, "https://evil.example.test/"]).boxed(),
        "scope" => value(&["openid", "openid profile email ent", "openid offline_access", "admin"]).boxed(),
        "code_challenge" => value(&["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"]).boxed(),
        "code_challenge_method" => value(&["S256", "plain"]).boxed(),
        "prompt" => value(&["none", "login", "consent", "none login", "select_account"]).boxed(),
        "max_age" => value(&["0", "60", "-1", "99999999999999999999", "1e3"]).boxed(),
        "login_hint" => value(&["c.martin", "autre.personne"]).boxed(),
        "response_mode" => value(&["query", "fragment", "form_post"]).boxed(),
        "ticket" => value(&["ST-inconnu", "PT-x", "ST-"]).boxed(),
        "consent" => value(&["accept", "deny"]).boxed(),
        _ => value(&["abc"]).boxed(),
    }
}

/// Parameters named from `names` (some repeated, some unknown), each with
/// a value for its name.
fn params(names: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![9 => proptest::sample::select(names).prop_map(str::to_owned), 1 => "\\PC{0,12}"];
    proptest::collection::vec(name, 0..12).prop_flat_map(|names| {
        names.into_iter().map(|n| authorize_value(&n).prop_map(move |v| (n.clone(), v))).collect::<Vec<_>>()
    })
}

/// A raw query or form body: encoded pairs, or bytes as they come.
fn raw_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,200}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..200),
        "([a-z_]{1,15}=(%[0-9A-Fa-f]{0,2}|[^&]){0,20}&){0,8}".prop_map(String::into_bytes),
    ]
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

fn no_5xx(status: u16, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{} answered {}", what, status);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_authorization_requests_never_get_a_5xx() {
    let app = oidc_app().await;
    // A live session, so that the checks past the login are reached too.
    app.tokens().await;
    add_client(&app, "tiers", Some(SECRET), &[REDIRECT], |c| c.require_consent = true).await;
    let handle = Handle::current();
    let app = std::sync::Arc::new(app);
    let shared = app.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let app = shared;
        let input = (params(AUTHORIZE_NAMES), raw_body(), any::<bool>());
        runner(256).run(&input, |(pairs, raw, post)| {
            handle.block_on(async {
                let r = if post {
                    app.client.post(app.url("/oidc/authorize")).form(&pairs).send().await
                } else {
                    app.client.get(app.url("/oidc/authorize")).query(&pairs).send().await
                };
                no_5xx(r.unwrap().status().as_u16(), "authorize")?;
                let raw_query = String::from_utf8_lossy(&raw).replace(['#', ' '], "+");
                if let Ok(r) = app.client.get(app.url(&format!("/oidc/authorize?{raw_query}"))).send().await {
                    no_5xx(r.status().as_u16(), "authorize (raw query)")?;
                }
                let r = app
                    .client
                    .post(app.url("/oidc/authorize"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(raw)
                    .send()
                    .await
                    .unwrap();
                no_5xx(r.status().as_u16(), "authorize (raw form)")
            })
        })
    })
    .await
    .unwrap();
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
}

const TOKEN_NAMES: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
];

fn token_value(name: &str) -> BoxedStrategy<String> {
    match name {
        "grant_type" => value(&["authorization_code", "refresh_token", "client_credentials", "password"]).boxed(),
        "code" | "token" | "refresh_token" => {
            value(&["inconnu", "abc.def", ".", "a.b.c", "eyJhbGciOiJub25lIn0.e30."]).boxed()
        }
        "redirect_uri" => value(&[REDIRECT]).boxed(),
        "code_verifier" => value(&[VERIFIER]).boxed(),
        "client_id" => value(&["vie-scolaire", "inconnu"]).boxed(),
        "client_secret" => value(&[SECRET, "mauvais"]).boxed(),
        "scope" => value(&["openid", "openid offline_access"]).boxed(),
        _ => value(&["access_token", "refresh_token"]).boxed(),
    }
}

fn token_params() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![9 => proptest::sample::select(TOKEN_NAMES).prop_map(str::to_owned), 1 => "\\PC{0,12}"];
    proptest::collection::vec(name, 0..10).prop_flat_map(|names| {
        names.into_iter().map(|n| token_value(&n).prop_map(move |v| (n.clone(), v))).collect::<Vec<_>>()
    })
}

/// An `Authorization` header, or none.
fn authorization() -> impl Strategy<Value = Option<String>> {
    use base64::Engine;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    prop_oneof![
        2 => Just(None),
        2 => Just(Some(format!("Basic {}", b64(format!("vie-scolaire:{SECRET}"))))),
        2 => "\\PC{0,40}".prop_map(move |s| Some(format!("Basic {}", b64(s)))),
        1 => "[ -~]{0,60}".prop_map(Some),
        1 => "[ -~]{0,40}".prop_map(|s| Some(format!("Basic {s}"))),
        1 => "[ -~]{0,40}".prop_map(|s| Some(format!("Bearer {s}"))),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_token_requests_get_an_oauth_answer_never_a_5xx() {
    let app = oidc_app().await;
    let handle = Handle::current();
    let base = app.address.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let http = reqwest::Client::new();
        let input = (token_params(), raw_body(), authorization(), 0..4usize);
        runner(256).run(&input, |(pairs, raw, auth, endpoint)| {
            handle.block_on(async {
                let path = ["/oidc/token", "/oidc/introspect", "/oidc/revoke", "/oidc/userinfo"][endpoint];
                let with_auth = |mut r: reqwest::RequestBuilder| {
                    if let Some(a) = &auth
                        && let Ok(v) = reqwest::header::HeaderValue::from_str(a)
                    {
                        r = r.header("authorization", v);
                    }
                    r
                };
                let r = with_auth(http.post(format!("{base}{path}"))).form(&pairs).send().await.unwrap();
                let status = r.status().as_u16();
                no_5xx(status, path)?;
                if status != 200 {
                    let body: Value = r.json().await.map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
                    prop_assert!(body["error"].is_string(), "{} answered {} {}", path, status, body);
                }
                let r = with_auth(http.post(format!("{base}{path}")))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(raw)
                    .send()
                    .await
                    .unwrap();
                no_5xx(r.status().as_u16(), path)
            })
        })
    })
    .await
    .unwrap();
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
}
