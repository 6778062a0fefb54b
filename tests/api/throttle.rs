//! Throttling of guesses: counted before hashing (parallel guesses cannot
//! slip through), refused per (login, address), only slowed down per login
//! or per address (nobody can lock someone else out, a school behind one
//! address keeps working), and a bounded hashing queue.

use std::time::Instant;

use idp_core::account::Profile;

use crate::helpers::{TestApp, hidden_inputs, result, spawn_app_with};

const SERVICE: &str = "https://cahier-de-textes.example.test/";
const PATTERN: &str = r"https://cahier-de-textes\.example\.test/.*";

/// A server that trusts `X-Forwarded-For` from the test client, so that a
/// test can speak from several addresses.
async fn app() -> TestApp {
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    app
}

/// The login form's fields (with this browser's CSRF token).
async fn form(app: &TestApp, username: &str, password: &str) -> Vec<(String, String)> {
    let page = app.get_login(&[("profile", "eleve-parent"), ("service", SERVICE)]).await;
    let mut form = hidden_inputs(&page.body);
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    form
}

async fn login_from(app: &TestApp, address: &str, username: &str, password: &str) -> crate::helpers::LoginResult {
    let form = form(app, username, password).await;
    let r = app.client.post(app.url("/cas/login")).header("x-forwarded-for", address).form(&form).send().await.unwrap();
    result(r).await
}

#[tokio::test]
async fn parallel_guesses_are_counted_before_any_is_checked() {
    let app = app().await;
    let form = form(&app, "c.martin", "faux").await;
    let guesses: Vec<_> = (0..40)
        .map(|_| {
            let request = app.client.post(app.url("/cas/login")).header("x-forwarded-for", "10.0.0.66").form(&form);
            tokio::spawn(async move { result(request.send().await.unwrap()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for guess in guesses {
        answers.push(guess.await.unwrap());
    }
    let checked = answers.iter().filter(|r| r.status == 401).count();
    let refused = answers.iter().filter(|r| r.status == 429 && r.body.contains("Trop de tentatives")).count();
    assert_eq!(checked, 5, "only the first five guesses are checked");
    assert_eq!(refused, 35);
}

#[tokio::test]
async fn a_classmate_cannot_lock_a_child_out() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.throttle.per_login = 8;
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    // Eight guesses reach the password check (five from one address, three
    // from another); the next ones from the first address are refused.
    for (address, times) in [("10.0.0.66", 7), ("10.0.0.67", 3)] {
        for _ in 0..times {
            login_from(&app, address, "c.martin", "faux").await;
        }
    }
    // From the guessing address: refused, even with the right password.
    assert_eq!(login_from(&app, "10.0.0.66", "c.martin", "Bonjour-2026!").await.status, 429);
    // From the child's address: slowed down, then in.
    let started = Instant::now();
    let r = login_from(&app, "10.0.0.7", "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.ticket().starts_with("ST-"));
    assert!(started.elapsed().as_millis() >= 1000, "the login is over its limit: each attempt waits");
    // A success forgets the login's attempts: the next login is not slowed.
    let other = app.another_browser();
    let started = Instant::now();
    assert_eq!(login_from(&other, "10.0.0.8", "c.martin", "Bonjour-2026!").await.status, 303);
    assert!(started.elapsed().as_millis() < 1000);
}

#[tokio::test]
async fn a_school_behind_one_address_keeps_working() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.throttle.per_address = 3;
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    for login in ["a1", "a2", "a3", "a4"] {
        assert_eq!(login_from(&app, "192.0.2.1", login, "faux").await.status, 401);
    }
    let started = Instant::now();
    let r = login_from(&app, "192.0.2.1", "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 303, "slowed, not refused: {}", r.body);
    assert!(started.elapsed().as_millis() >= 1000);
}
