//! The OIDC provider on the engines of a cluster: codes and grants in Redis
//! (taken and rotated atomically), clients and keys in PostgreSQL, two
//! nodes sharing one issuer.

use serde_json::Value;

use super::*;
use crate::cluster::{TestDatabase, postgres_url, random_suffix, redis_url};

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_redis_share_codes_grants_and_keys() {
    let Some(redis) = redis_url() else { return };
    let prefix = format!("idp-test-{}:", random_suffix());
    let (url, p) = (redis.clone(), prefix.clone());
    let a = oidc_app_with(move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = p;
    })
    .await;
    let sqlite = format!("sqlite://{}?mode=rwc", a.data_dir.path().join("idp.db").display());
    let issuer = a.address.clone();
    let b = spawn_app_with(move |s| {
        s.database_url = Some(sqlite);
        s.redis_url = Some(redis);
        s.redis_prefix = prefix;
        s.public_url = Some(issuer);
    })
    .await;
    // Node B answers for node A's issuer: point its helpers at node B.
    let code = a.code("cluster").await;
    let node_b = |path: &str| b.url(path);
    let exchange = |form: Vec<(&'static str, String)>| {
        reqwest::Client::new().post(node_b("/oidc/token")).basic_auth("vie-scolaire", Some(SECRET)).form(&form).send()
    };
    let r = exchange(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", VERIFIER.into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    // Same keys on both nodes: A's JWKS has the kid B signed with.
    let kid = jwt_header(tokens["id_token"].as_str().unwrap())["kid"].as_str().unwrap().to_owned();
    let jwks: Value = reqwest::get(a.url("/oidc/jwks")).await.unwrap().json().await.unwrap();
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid.as_str()));
    // Replay on the other node: refused, and the tokens are revoked.
    let (status, body) = a.exchange(&code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(a.introspect(tokens["access_token"].as_str().unwrap()).await["active"], false);

    // A new grant; the same refresh token presented on both nodes at once:
    // exactly one rotation wins (Lua compare-and-set).
    let tokens = a.tokens().await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form: Vec<(&str, String)> = vec![("grant_type", "refresh_token".into()), ("refresh_token", refresh.clone())];
    let on_a =
        reqwest::Client::new().post(a.url("/oidc/token")).basic_auth("vie-scolaire", Some(SECRET)).form(&form).send();
    let on_b = exchange(form.clone());
    let (ra, rb) = tokio::join!(on_a, on_b);
    let statuses = [ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    // The loser was a reuse: the whole family is gone.
    let (status, _) = a.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 400);

    // In Redis too, a forged token of a grant revokes nothing, and only a
    // rotated-out one revokes the family.
    let tokens = a.tokens().await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let forged = format!("{}.{}", refresh.split('.').next().unwrap(), "B".repeat(43));
    let (status, _) = a.token(&[("grant_type", "refresh_token"), ("refresh_token", &forged)]).await;
    assert_eq!(status, 400);
    let (status, next) = a.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 200, "{next}");
    let (status, _) = a.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 400);
    let newest = next["refresh_token"].as_str().unwrap();
    let (status, _) = a.token(&[("grant_type", "refresh_token"), ("refresh_token", newest)]).await;
    assert_eq!(status, 400, "the family was revoked by the reuse");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_code_flow_works_on_postgresql() {
    let Some(admin_url) = postgres_url() else { return };
    let db = TestDatabase::create(&admin_url).await;
    let url = db.url.clone();
    let app = oidc_app_with(|s| s.database_url = Some(url)).await;
    let tokens = app.tokens().await;
    let (status, info, _) = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(info["school"], serde_json::json!(["0370001A", "0370002B"]));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 200);
}
