//! The token endpoint and the token life cycle: single-use codes and replay,
//! refresh rotation and reuse detection, expiry, client authentication,
//! introspection and revocation.

use serde_json::Value;

use super::*;

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_the_tokens_it_gave() {
    let app = oidc_app().await;
    let code = app.code("r").await;
    let (status, tokens) = app.exchange(&code).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.introspect(access).await["active"], true);
    let (status, again) = app.exchange(&code).await;
    assert_eq!(status, 400);
    assert_eq!(again["error"], "invalid_grant");
    assert_eq!(app.introspect(access).await["active"], false, "RFC 6749 §10.5");
    assert_eq!(app.introspect(refresh).await["active"], false);
    let (status, _, _) = app.userinfo(access).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let first_access = tokens["access_token"].as_str().unwrap().to_owned();
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first, "rotated");
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.introspect(&first_access).await["active"], false, "superseded");
    assert_eq!(app.introspect(&second_access).await["active"], true);
    assert_eq!(app.introspect(&first).await["active"], false);
    // The old refresh token comes back: the whole family is revoked.
    let (status, reuse) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &first)]).await;
    assert_eq!(status, 400);
    assert_eq!(reuse["error"], "invalid_grant");
    assert_eq!(app.introspect(&second_access).await["active"], false);
    let (status, after) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &second_refresh)]).await;
    assert_eq!(status, 400, "{after}");
    assert_eq!(after["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_can_narrow_but_not_widen_the_scope() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = app
        .token(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "openid offline_access")])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_scope");
    let (status, body) =
        app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "openid")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid");
}

#[tokio::test]
async fn expired_codes_and_access_tokens_are_refused() {
    let app = oidc_app().await;
    let code = app.code("x").await;
    app.clock.advance(chrono::Duration::seconds(61));
    let (status, body) = app.exchange(&code).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");

    let tokens = app.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.0, 200);
    app.clock.advance(chrono::Duration::seconds(301));
    let (status, body, challenge) = app.userinfo(access).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    assert_eq!(app.introspect(access).await["active"], false);
    // The refresh token still works and gives a live access token.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn client_authentication_errors_are_invalid_client_with_401() {
    let app = oidc_app().await;
    let code = app.code("c").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let c = reqwest::Client::new();
    let r =
        c.post(app.url("/oidc/token")).basic_auth("vie-scolaire", Some("mauvais")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Basic"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // A confidential client cannot pass as public.
    let mut public = form.to_vec();
    public.push(("client_id", "vie-scolaire"));
    let r = c.post(app.url("/oidc/token")).form(&public).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // The code was not spent by failed client authentications.
    let (status, body) = app.exchange(&code).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn token_request_errors_use_the_rfc_codes() {
    let app = oidc_app().await;
    let (status, body) = app.token(&[("grant_type", "urn:example:unknown")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    let (_, body) = app.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(body["error"], "unauthorized_client");
    let (_, body) = app.token(&[("code", "x")]).await;
    assert_eq!(body["error"], "invalid_request");
    let (_, body) = app.token(&[("grant_type", "authorization_code")]).await;
    assert_eq!(body["error"], "invalid_request");
    let (_, body) = app.token(&[("grant_type", "authorization_code"), ("code", "inconnu")]).await;
    assert_eq!(body["error"], "invalid_grant");
    let code = app.code("w").await;
    let (_, body) = app
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://vie-scolaire.example.test/autre"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(body["error"], "invalid_grant");
    // Not a form at all: still an OAuth error, never a 500.
    let r = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn revocation_of_a_refresh_token_revokes_the_grant_and_of_an_access_token_only_it() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let info = app.introspect(access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "vie-scolaire");
    assert_eq!(info["sub"], jwt_claims(tokens["id_token"].as_str().unwrap())["sub"]);
    assert_eq!(info["username"], "c.martin", "the token has the profile scope");
    assert_eq!(app.introspect(refresh).await["token_type"], "refresh_token");
    let revoke = |token: &str| {
        reqwest::Client::new()
            .post(app.url("/oidc/revoke"))
            .basic_auth("vie-scolaire", Some(SECRET))
            .form(&[("token", token.to_owned())])
            .send()
    };
    assert_eq!(revoke(access).await.unwrap().status(), 200);
    assert_eq!(app.introspect(access).await["active"], false);
    assert_eq!(app.introspect(refresh).await["active"], true);
    assert_eq!(revoke(refresh).await.unwrap().status(), 200);
    assert_eq!(app.introspect(refresh).await["active"], false);
    assert_eq!(revoke("inconnu").await.unwrap().status(), 200, "RFC 7009: unknown tokens are fine");
    // Introspection needs client authentication.
    let r = reqwest::Client::new().post(app.url("/oidc/introspect")).form(&[("token", access)]).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn userinfo_without_a_token_is_a_bearer_challenge() {
    let app = oidc_app().await;
    let r = reqwest::Client::new().get(app.url("/oidc/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let (status, _, _) = app.userinfo("pas.un.jwt").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn key_rotation_keeps_the_old_key_published_until_its_tokens_expire() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let old_kid = jwt_header(access)["kid"].as_str().unwrap().to_owned();
    let keys = idp_protocol::oidc::keys::Keys::new(
        app.stores.keys.clone(),
        app.clock.clone(),
        app.settings.oidc.longest_signed(),
    );
    keys.rotate().await.unwrap();
    let kids = || async {
        let jwks: Value = reqwest::get(app.url("/oidc/jwks")).await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert!(kids().await.contains(&old_kid), "still published");
    assert_eq!(kids().await.len(), 4);
    assert_eq!(app.userinfo(access).await.0, 200, "old tokens still verify");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (_, fresh) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_ne!(jwt_header(fresh["access_token"].as_str().unwrap())["kid"].as_str().unwrap(), old_kid);
    app.clock.advance(chrono::Duration::seconds(301));
    assert!(!kids().await.contains(&old_kid), "dropped after the longest token lifetime");
    assert_eq!(kids().await.len(), 2);
}

#[tokio::test]
async fn a_disabled_account_loses_its_tokens_at_once() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let login = idp_core::account::Login::parse("c.martin").unwrap();
    let mut account = app.stores.accounts.find_by_login(&login).await.unwrap().unwrap();
    account.state = idp_core::account::AccountState::Disabled;
    app.stores.accounts.update(&account).await.unwrap();
    assert_eq!(app.introspect(access).await["active"], false);
    assert_eq!(app.userinfo(access).await.0, 401);
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, body) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_session_bound_refresh_token_ends_with_the_idle_session() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    // Past the SSO idle timeout (2 h), nobody having used the session.
    app.clock.advance(chrono::Duration::hours(2) + chrono::Duration::seconds(1));
    let (status, body) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn an_access_token_does_not_name_its_grant() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let grant_id = tokens["refresh_token"].as_str().unwrap().split('.').next().unwrap().to_owned();
    let jti = jwt_claims(tokens["access_token"].as_str().unwrap())["jti"].as_str().unwrap().to_owned();
    assert!(!jti.contains(&grant_id) && !jti.contains('.'), "random jti: {jti}");
    assert!(jti.len() >= 32, "{jti}");
    assert_eq!(app.userinfo(tokens["access_token"].as_str().unwrap()).await.0, 200, "still found");
}

#[tokio::test]
async fn a_forged_refresh_token_is_refused_without_revoking_the_grant() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let grant_id = refresh.split('.').next().unwrap();
    // Whoever learnt the grant id (from a leaked token) writes a token of it.
    let forged = format!("{grant_id}.{}", "A".repeat(43));
    let (status, body) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &forged)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(app.introspect(access).await["active"], true, "the family lives on");
    let (status, body) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 200, "the real refresh token still works: {body}");
}
