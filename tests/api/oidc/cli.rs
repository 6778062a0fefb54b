//! `idp client add|list|remove` and `idp keys rotate|list`, run as the real
//! binary on the SQLite file of a running in-process server.

use serde_json::Value;

use super::*;
use crate::cli::Idp;

#[tokio::test]
async fn client_add_prints_only_the_secret_which_the_running_server_accepts() {
    let app = oidc_app().await;
    let idp = Idp::new(app.data_dir.path());
    let out = idp
        .run(&[
            "client",
            "add",
            "cantine",
            "--redirect-uri",
            "https://cantine.example.test/cb",
            "--post-logout-redirect-uri",
            "https://cantine.example.test/",
        ])
        .await;
    let secret = out.secret_line();
    assert!(secret.len() >= 32, "{secret}");
    assert!(out.stderr.contains("cantine"));
    let params: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", "cantine".into()),
        ("redirect_uri", "https://cantine.example.test/cb".into()),
        ("scope", "openid profile email ent".into()),
    ];
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let r = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth("cantine", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://cantine.example.test/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // A public client: nothing on stdout.
    let out =
        idp.run(&["client", "add", "appli-mobile", "--public", "--redirect-uri", "https://m.example.test/cb"]).await;
    out.ok();
    assert_eq!(out.stdout, "");
    // Errors: a message on stderr, nothing on stdout.
    idp.run(&["client", "add", "cantine", "--redirect-uri", "https://x.example.test/cb"]).await.fails_with("exists");
    idp.run(&["client", "add", "autre", "--redirect-uri", "pas-une-url"]).await.fails_with("redirect uri");
    idp.run(&["client", "add", "autre", "--redirect-uri", "https://x.example.test/", "--scope", "admin"])
        .await
        .fails_with("scope");
    idp.run(&["client", "add", "autre", "--redirect-uri", "https://x.example.test/", "--subject", "login"])
        .await
        .fails_with("subject");
    idp.run(&[
        "client",
        "add",
        "tiers",
        "--public",
        "--redirect-uri",
        "https://t.example.test/",
        "--subject",
        "pairwise",
    ])
    .await
    .ok();
    let list = idp.run(&["client", "list"]).await;
    assert!(list.ok().stdout.contains("cantine\t") && list.stdout.contains("appli-mobile\t"), "{}", list.stdout);
    assert!(
        list.stdout.lines().any(|l| l.starts_with("tiers\t") && l.ends_with("subject=pairwise")),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.lines().any(|l| l.starts_with("cantine\t") && l.ends_with("subject=public")),
        "{}",
        list.stdout
    );
    idp.run(&["client", "update", "tiers", "--subject", "public"]).await.ok();
    let list = idp.run(&["client", "list"]).await;
    assert!(list.stdout.lines().any(|l| l.starts_with("tiers\t") && l.ends_with("subject=public")), "{}", list.stdout);
    assert!(!list.stdout.contains(&secret), "the secret is never shown again");
    idp.run(&["client", "remove", "cantine"]).await.ok();
    idp.run(&["client", "remove", "cantine"]).await.fails_with("no client");
}

#[tokio::test]
async fn keys_rotate_publishes_new_keys_at_once_and_keeps_the_old_ones() {
    let app = oidc_app().await;
    let idp = Idp::new(app.data_dir.path());
    let before = app.tokens().await;
    let old_kid = jwt_header(before["id_token"].as_str().unwrap())["kid"].as_str().unwrap().to_owned();
    let out = idp.run(&["keys", "rotate"]).await;
    out.ok();
    assert_eq!(out.stdout, "");
    let jwks: Value = reqwest::get(app.url("/oidc/jwks")).await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4, "{jwks}");
    let refresh = before["refresh_token"].as_str().unwrap();
    let (status, after) = app.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 200);
    let new_kid = jwt_header(after["id_token"].as_str().unwrap())["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid, "the server signs with the new key without restart");
    let list = idp.run(&["keys", "list"]).await;
    assert_eq!(list.ok().stdout.lines().count(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_update_replaces_redirect_uris_and_rotates_the_secret() {
    let app = oidc_app().await;
    let idp = Idp::new(app.data_dir.path());
    let old =
        idp.run(&["client", "add", "cantine", "--redirect-uri", "https://cantine.example.test/cb"]).await.secret_line();
    let out = idp
        .run(&["client", "update", "cantine", "--redirect-uri", "https://cantine.example.test/retour", "--new-secret"])
        .await;
    let new = out.secret_line();
    assert_ne!(new, old);
    assert!(out.stderr.contains("updated"), "{}", out.stderr);
    // The old redirect URI is no longer registered: never redirected to.
    let old_uri: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", "cantine".into()),
        ("redirect_uri", "https://cantine.example.test/cb".into()),
        ("scope", "openid".into()),
    ];
    let r = app.authorize(&old_uri).await;
    assert!(r.location.is_none_or(|l| !l.starts_with("https://cantine.example.test/cb")), "no redirect to the old URI");
    // The new one works, with the new secret only.
    let params: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", "cantine".into()),
        ("redirect_uri", "https://cantine.example.test/retour".into()),
        ("scope", "openid".into()),
    ];
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let exchange = |secret: String, code: String| {
        let url = app.url("/oidc/token");
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth("cantine", Some(&secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", "https://cantine.example.test/retour"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(exchange(old, code.clone()).await, 401, "the old secret stopped working");
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap();
    assert_eq!(exchange(new, code).await, 200);
    // Errors: an unknown client, a secret for a public client.
    idp.run(&["client", "update", "inconnu", "--name", "X"]).await.fails_with("no client");
    idp.run(&["client", "add", "mobile", "--public", "--redirect-uri", "https://m.example.test/cb"]).await.ok();
    let out = idp.run(&["client", "update", "mobile", "--new-secret"]).await;
    out.fails_with("public");
    assert!(out.stdout.is_empty());
}
