//! Single logout: the services that got a ticket in the session receive a
//! back-channel `logoutRequest` POST; a failing one does not block logout.

use axum::extract::State;
use axum::routing::post;
use axum::{Form, Router};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

use idp_core::account::Profile;

use crate::helpers::{result, spawn_app};

/// A service's logout endpoint on 127.0.0.1:0 that reports what it gets.
pub(crate) async fn logout_listener() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/logout",
            post(|State(tx): State<mpsc::UnboundedSender<String>>, Form(form): Form<HashMap<String, String>>| async move {
                let _ = tx.send(form.get("logoutRequest").cloned().unwrap_or_default());
                "ok"
            }),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/logout", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn logout_sends_a_logout_request_to_each_service_that_got_a_ticket() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Parent).await;
    let (logout_url, mut received) = logout_listener().await;
    app.service("messagerie", r"https://messagerie\.example\.test/.*", &[], Some(&logout_url)).await;
    // A service whose logout URL does not answer must not block anything.
    app.service("cassee", r"https://cassee\.example\.test/.*", &[], Some("http://127.0.0.1:9/logout")).await;
    app.service("sans-slo", r"https://sans-slo\.example\.test/.*", &[], None).await;
    let first = app.login(Some("https://messagerie.example.test/"), "c.martin", "Bonjour-2026!").await.ticket();
    let second = app.get_login(&[("service", "https://messagerie.example.test/boite")]).await.ticket();
    app.get_login(&[("service", "https://cassee.example.test/")]).await.ticket();
    app.get_login(&[("service", "https://sans-slo.example.test/")]).await.ticket();

    let started = std::time::Instant::now();
    let r = result(app.client.get(app.url("/cas/logout")).send().await.unwrap()).await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(2), "logout must not wait for the services");

    let mut indexes = Vec::new();
    for _ in 0..2 {
        let message =
            tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("a logout request").unwrap();
        assert!(message.starts_with("<samlp:LogoutRequest"), "{message}");
        assert!(message.contains(r#"xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol""#));
        assert!(message.contains("<saml:NameID>@NOT_USED@</saml:NameID>"));
        let index = message.split("<samlp:SessionIndex>").nth(1).unwrap().split('<').next().unwrap().to_owned();
        indexes.push(index);
    }
    indexes.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(indexes, expected);
    // Nothing more: the session is gone, a second logout sends nothing.
    result(app.client.get(app.url("/cas/logout")).send().await.unwrap()).await;
    assert!(tokio::time::timeout(Duration::from_millis(500), received.recv()).await.is_err());
}

#[tokio::test]
async fn a_service_that_is_briefly_down_gets_the_logout_request_again() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Parent).await;
    // The service answers 503 to the first attempt, 200 to the next.
    let (tx, mut received) = mpsc::unbounded_channel::<(usize, String)>();
    let calls = Arc::new(AtomicUsize::new(0));
    let listener_app = Router::new().route(
        "/logout",
        post(move |Form(form): Form<HashMap<String, String>>| {
            let (tx, calls) = (tx.clone(), calls.clone());
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send((n, form.get("logoutRequest").cloned().unwrap_or_default()));
                if n == 0 { axum::http::StatusCode::SERVICE_UNAVAILABLE } else { axum::http::StatusCode::OK }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let logout_url = format!("http://{}/logout", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, listener_app).await });
    app.service("messagerie", r"https://messagerie\.example\.test/.*", &[], Some(&logout_url)).await;
    let ticket = app.login(Some("https://messagerie.example.test/"), "c.martin", "Bonjour-2026!").await.ticket();
    result(app.client.get(app.url("/cas/logout")).send().await.unwrap()).await;
    for expected in 0..2 {
        let (n, message) =
            tokio::time::timeout(Duration::from_secs(10), received.recv()).await.expect("an attempt").unwrap();
        assert_eq!(n, expected);
        assert!(message.contains(&ticket), "{message}");
    }
    // Delivered on the second attempt: no third one.
    assert!(tokio::time::timeout(Duration::from_secs(4), received.recv()).await.is_err());
}
