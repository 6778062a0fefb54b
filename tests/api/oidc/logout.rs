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
    let sub = jwt_claims(tokens["id_token"].as_str().unwrap())["sub"].clone();
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
    assert_eq!(claims["sub"], sub, "the subject the clients get (both are public)");
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

/// Exchanges a code of the public client `mobile`.
async fn exchange_public(app: &TestApp, code: &str) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", "mobile"),
    ];
    reqwest::Client::new().post(app.url("/oidc/token")).form(&form).send().await.unwrap().json().await.unwrap()
}

/// A refresh of the public client `mobile`: the status and the body.
async fn refresh_public(app: &TestApp, refresh: &str) -> (u16, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "mobile")];
    let r = reqwest::Client::new().post(app.url("/oidc/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The authorization parameters of `mobile` asking for `openid offline_access`.
fn offline_params() -> Vec<(&'static str, String)> {
    let mut params = auth_params("o");
    params[1].1 = "mobile".into();
    params[3].1 = "openid offline_access".into();
    params
}

#[tokio::test]
async fn offline_access_tokens_outlive_the_session_after_consent() {
    let app = oidc_app().await;
    add_client(&app, "mobile", None, &[REDIRECT], |c| c.scopes.push("offline_access".into())).await;
    let params = offline_params();
    // Logged in, the person is asked first (OIDC Core §11), even though the
    // client does not require consent otherwise.
    let first = app.authorize(&params).await;
    let service = param(&first.location.unwrap(), "service").unwrap();
    let logged = app.login(Some(&service), "c.martin", PASSWORD).await;
    let page = app.follow(&logged.location.unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(crate::helpers::unescape(&page.body).contains("un accès qui continue quand vous êtes déconnecté(e)"));
    let mut form = crate::helpers::hidden_inputs(&page.body);
    form.push(("consent".into(), "accept".into()));
    let r = result(app.client.post(app.url("/oidc/authorize")).form(&form).send().await.unwrap()).await;
    let code = param(&r.location.unwrap(), "code").unwrap();
    let tokens = exchange_public(&app, &code).await;
    assert_eq!(tokens["scope"], "openid offline_access");
    let refresh = tokens["refresh_token"].as_str().expect("offline_access gives a public client a refresh token");
    app.client.get(app.url("/cas/logout")).send().await.unwrap();
    let (status, body) = refresh_public(&app, refresh).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn offline_access_is_ignored_for_a_client_not_registered_with_it() {
    let app = oidc_app().await;
    add_client(&app, "mobile", None, &[REDIRECT], |_| {}).await;
    let location = app.authorize_with_login(&offline_params(), "c.martin").await;
    let code = param(&location, "code").expect("not an error: the scope is ignored");
    let tokens = exchange_public(&app, &code).await;
    assert_eq!(tokens["scope"], "openid");
    assert!(tokens.get("refresh_token").is_none(), "a public client gets no refresh token without offline_access");

    // A confidential client gets a refresh token bound to the session: it
    // dies at logout.
    let mut params = offline_params();
    params[1].1 = "vie-scolaire".into();
    let location = app.authorize(&params).await.location.unwrap();
    let (status, tokens) = app.exchange(&param(&location, "code").unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    app.client.get(app.url("/cas/logout")).send().await.unwrap();
    let (status, body) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}
