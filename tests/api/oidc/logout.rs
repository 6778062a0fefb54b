//! Logout: one session end, both protocols. CAS logout sends the OIDC
//! back-channel logout token and revokes the session's tokens; OIDC
//! RP-initiated logout ends the CAS session and sends the CAS single logout.

use axum::extract::State;
use axum::routing::post;
use axum::{Form, Router};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

use super::*;

/// An endpoint on 127.0.0.1:0 that reports the value of the form field
/// `field` of each POST it gets.
async fn listener(field: &'static str) -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app =
        Router::new()
            .route(
                "/logout",
                post(
                    move |State(tx): State<mpsc::UnboundedSender<String>>,
                          Form(form): Form<HashMap<String, String>>| async move {
                        let _ = tx.send(form.get(field).cloned().unwrap_or_default());
                        "ok"
                    },
                ),
            )
            .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/logout", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a back-channel POST").unwrap()
}

#[tokio::test]
async fn cas_logout_sends_the_back_channel_logout_token_and_ends_the_tokens() {
    let app = oidc_app().await;
    let (uri, mut received) = listener("logout_token").await;
    add_client(&app, "messagerie", Some(SECRET), &[REDIRECT], |c| c.backchannel_logout_uri = Some(uri)).await;
    let tokens = app.tokens().await;
    let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
    // The second client gets a code in the same session (SSO).
    let mut params = auth_params("m");
    params[1].1 = "messagerie".into();
    assert!(param(&app.authorize(&params).await.location.unwrap(), "code").is_some());

    let r = app.client.get(app.url("/cas/logout")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let token = next(&mut received).await;
    assert_eq!(jwt_header(&token)["typ"], "logout+jwt");
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], app.address);
    assert_eq!(claims["aud"], "messagerie");
    assert_eq!(claims["sub"], "c.martin");
    assert_eq!(claims["sid"], sid);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    // The session's tokens are gone.
    assert_eq!(app.introspect(tokens["access_token"].as_str().unwrap()).await["active"], false);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // And the next authorization asks for the login again.
    let r = app.authorize(&auth_params("after")).await;
    assert!(r.location.unwrap().starts_with("/cas/login?"));
}

#[tokio::test]
async fn oidc_logout_ends_the_cas_session_with_its_single_logout_and_returns_to_the_client() {
    let app = oidc_app().await;
    let (slo, mut slo_received) = listener("logoutRequest").await;
    app.service("cdt", r"https://cdt\.example\.test/.*", &["uid"], Some(&slo)).await;
    add_client(&app, "portail", Some(SECRET), &[REDIRECT], |c| {
        c.post_logout_redirect_uris = vec!["https://portail.example.test/au-revoir".into()];
    })
    .await;
    let ticket = app.login(Some("https://cdt.example.test/"), "c.martin", PASSWORD).await.ticket();
    let tokens = app.tokens().await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // An unregistered return URI: refused, and nothing is ended.
    let r = app
        .client
        .get(app.url("/oidc/logout"))
        .query(&[("client_id", "portail"), ("post_logout_redirect_uri", "https://evil.example.test/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("location").is_none());
    assert!(param(&app.authorize(&auth_params("still")).await.location.unwrap(), "code").is_some());

    // The ID token names another client than the one the URI belongs to.
    let r = app
        .client
        .get(app.url("/oidc/logout"))
        .query(&[("id_token_hint", id_token), ("post_logout_redirect_uri", "https://portail.example.test/au-revoir")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = app
        .client
        .get(app.url("/oidc/logout"))
        .query(&[
            ("client_id", "portail"),
            ("post_logout_redirect_uri", "https://portail.example.test/au-revoir"),
            ("state", "bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "https://portail.example.test/au-revoir?state=bye");
    let message = next(&mut slo_received).await;
    assert!(message.contains(&format!("<samlp:SessionIndex>{ticket}</samlp:SessionIndex>")), "{message}");
    // The CAS session is over: the login page shows the form again.
    let page = app.get_login(&[("service", "https://cdt.example.test/")]).await;
    assert_eq!(page.status, 200);
    assert_eq!(app.introspect(tokens["access_token"].as_str().unwrap()).await["active"], false);
}

#[tokio::test]
async fn end_session_with_an_id_token_hint_shows_the_logged_out_page() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let r = app
        .client
        .get(app.url("/oidc/logout"))
        .query(&[("id_token_hint", tokens["id_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("Déconnexion réussie"), "{body}");
    let forged = format!("{}x", tokens["id_token"].as_str().unwrap());
    let r = app.client.get(app.url("/oidc/logout")).query(&[("id_token_hint", forged)]).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn offline_access_tokens_outlive_the_session() {
    let app = oidc_app().await;
    add_client(&app, "mobile", None, &[REDIRECT], |c| c.scopes.push("offline_access".into())).await;
    let mut params = auth_params("o");
    params[1].1 = "mobile".into();
    params[3].1 = "openid offline_access".into();
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap();
    let c = reqwest::Client::new();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", "mobile"),
    ];
    let tokens: Value = c.post(app.url("/oidc/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().expect("offline_access gives a public client a refresh token");
    app.client.get(app.url("/cas/logout")).send().await.unwrap();
    let r = c
        .post(app.url("/oidc/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "mobile")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
