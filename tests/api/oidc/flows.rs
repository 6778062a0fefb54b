//! Discovery, JWKS and the authorization code flow: SSO with CAS, PKCE,
//! prompt, max_age, login_hint, consent, and the errors of the
//! authorization endpoint.

use serde_json::Value;

use super::*;
use crate::helpers::hidden_inputs;

#[tokio::test]
async fn discovery_lists_every_endpoint_under_the_issuer_and_s256_only() {
    let app = oidc_app().await;
    let meta: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(meta["issuer"], app.address);
    for (key, path) in [
        ("authorization_endpoint", "/oidc/authorize"),
        ("token_endpoint", "/oidc/token"),
        ("userinfo_endpoint", "/oidc/userinfo"),
        ("jwks_uri", "/oidc/jwks"),
        ("introspection_endpoint", "/oidc/introspect"),
        ("revocation_endpoint", "/oidc/revoke"),
        ("end_session_endpoint", "/oidc/logout"),
    ] {
        assert_eq!(meta[key], format!("{}{path}", app.address), "{key}");
    }
    assert_eq!(meta["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(meta["backchannel_logout_supported"], true);
    let jwks: Value = reqwest::get(app.url("/oidc/jwks")).await.unwrap().json().await.unwrap();
    let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert!(algs.contains(&"ES256") && algs.contains(&"RS256"), "{jwks}");
    for key in jwks["keys"].as_array().unwrap() {
        assert!(key.get("d").is_none(), "no private part in the JWKS");
        assert_eq!(key["use"], "sig");
    }
}

#[tokio::test]
async fn code_flow_goes_through_the_cas_login_and_gives_signed_tokens_and_userinfo() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].is_string(), "a confidential client gets a refresh token");
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], app.address);
    assert_eq!(id["aud"], "vie-scolaire");
    let sub = id["sub"].as_str().unwrap();
    assert!(sub.len() >= 32 && !sub.contains("martin"), "an opaque subject, not the login: {sub}");
    assert_eq!(id["preferred_username"], "c.martin", "the login comes with the profile scope");
    assert_eq!(id["nonce"], "nonce-s1");
    assert!(id["auth_time"].is_i64() && id["sid"].is_string() && id["at_hash"].is_string());
    assert_eq!(jwt_header(tokens["id_token"].as_str().unwrap())["alg"], "RS256");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(jwt_header(access)["typ"], "at+jwt");
    let at = jwt_claims(access);
    assert_eq!(at["client_id"], "vie-scolaire");
    assert_eq!(at["scope"], "openid profile email ent");
    let (status, info, _) = app.userinfo(access).await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], sub);
    assert_eq!(info["preferred_username"], "c.martin");
    assert_eq!(info["given_name"], "Camille");
    assert_eq!(info["family_name"], "Martin");
    assert_eq!(info["email"], "c.martin@example.fr");
    assert_eq!(info["ent_profile"], "eleve");
    assert_eq!(info["profile"], "eleve");
    assert_eq!(info["ENTPersonProfils"], serde_json::json!(["National_ELV"]));
    assert_eq!(info["school"], serde_json::json!(["0370001A", "0370002B"]));
}

#[tokio::test]
async fn a_person_logged_in_for_a_cas_service_is_not_asked_again() {
    let app = oidc_app().await;
    app.service("cdt", r"https://cdt\.example\.test/.*", &["uid"], None).await;
    app.login(Some("https://cdt.example.test/"), "c.martin", PASSWORD).await.ticket();
    let r = app.authorize(&auth_params("sso")).await;
    assert_eq!(r.status, 302);
    let location = r.location.unwrap();
    assert!(location.starts_with(REDIRECT), "straight back to the client: {location}");
    assert!(param(&location, "code").is_some());
    assert_eq!(param(&location, "iss").as_deref(), Some(app.address.as_str()));
}

#[tokio::test]
async fn claims_follow_the_scopes_the_client_may_get() {
    let app = oidc_app().await;
    add_client(&app, "minimal", Some(SECRET), &[REDIRECT], |c| c.scopes = vec!["openid".into()]).await;
    let mut params = auth_params("m");
    params[1].1 = "minimal".into();
    let location = app.authorize(&params).await.location.unwrap();
    assert_eq!(param(&location, "error").as_deref(), Some("invalid_scope"), "{location}");
    params[3].1 = "openid".into();
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap();
    let r = reqwest::Client::new()
        .post(app.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "minimal"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "client_secret_post works");
    let tokens: Value = r.json().await.unwrap();
    let (_, info, _) = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sub"], "openid alone releases only sub: {info}");
    assert!(!info["sub"].as_str().unwrap().contains("martin"), "and not the login: {info}");
}

pub fn serde_urlencoded(params: &[(&str, String)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    q.finish()
}

#[tokio::test]
async fn an_unknown_client_or_unregistered_redirect_uri_is_never_redirected_to() {
    let app = oidc_app().await;
    let mut params = auth_params("x");
    params[2].1 = "https://evil.example.test/callback".into();
    let r = app.authorize(&params).await;
    assert_eq!(r.status, 403);
    assert!(r.location.is_none());
    assert!(r.body.contains("Application non autorisée"), "{}", r.body);
    // A prefix of a registered URI is not enough either.
    params[2].1 = format!("{REDIRECT}/more");
    assert_eq!(app.authorize(&params).await.status, 403);
    params[2].1 = REDIRECT.into();
    params[1].1 = "inconnu".into();
    let r = app.authorize(&params).await;
    assert_eq!(r.status, 403);
    assert!(r.location.is_none());
}

#[tokio::test]
async fn request_errors_go_back_to_the_client_with_the_rfc_codes() {
    let app = oidc_app().await;
    add_client(&app, "spa", None, &[REDIRECT], |_| {}).await;
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("response_type", "token".into())], "unsupported_response_type"),
        (vec![("scope", "openid admin".into())], "invalid_scope"),
        (vec![("code_challenge_method", "plain".into())], "invalid_request"),
        (vec![("prompt", "none".into())], "login_required"),
        (vec![("max_age", "abc".into())], "invalid_request"),
        (vec![("client_id", "spa".into()), ("code_challenge", String::new())], "invalid_request"),
    ];
    for (changes, expected) in cases {
        let mut params: Vec<(&str, String)> = auth_params("e")
            .into_iter()
            .filter(|(k, _)| !changes.iter().any(|(c, v)| c == k && v.is_empty()))
            .collect();
        for (k, v) in changes.iter().filter(|(_, v)| !v.is_empty()) {
            match params.iter_mut().find(|(p, _)| p == k) {
                Some(p) => p.1 = v.clone(),
                None => params.push((k, v.clone())),
            }
        }
        if changes.iter().any(|(k, _)| *k == "code_challenge") {
            params.retain(|(k, _)| *k != "code_challenge_method");
        }
        let r = app.authorize(&params).await;
        assert_eq!(r.status, 302, "{changes:?}: {}", r.body);
        let location = r.location.unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(param(&location, "error").as_deref(), Some(expected), "{changes:?}: {location}");
        assert_eq!(param(&location, "state").as_deref(), Some("e"));
    }
}

#[tokio::test]
async fn pkce_is_required_for_public_clients_and_a_wrong_verifier_fails() {
    let app = oidc_app().await;
    add_client(&app, "spa", None, &[REDIRECT], |_| {}).await;
    let mut params = auth_params("p");
    params[1].1 = "spa".into();
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap();
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", verifier.to_owned()),
            ("client_id", "spa".to_owned()),
        ]
    };
    let c = reqwest::Client::new();
    let wrong = "wrong-verifier-wrong-verifier-wrong-verifier-0";
    let r = c.post(app.url("/oidc/token")).form(&form(&code, wrong)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The code was spent by the failed attempt.
    let r = c.post(app.url("/oidc/token")).form(&form(&code, VERIFIER)).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // A fresh code with the right verifier works; a public client gets no
    // refresh token without offline_access.
    let location = app.follow(&app.url(&format!("/oidc/authorize?{}", serde_urlencoded(&params)))).await;
    let code = param(&location.location.unwrap(), "code").unwrap();
    let r = c.post(app.url("/oidc/token")).form(&form(&code, VERIFIER)).send().await.unwrap();
    let tokens: Value = r.json().await.unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens.get("refresh_token").is_none());
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_the_password_again_prompt_none_does_not() {
    let app = oidc_app().await;
    app.tokens().await;
    let mut params = auth_params("n");
    params.push(("prompt", "none".into()));
    let r = app.authorize(&params).await;
    assert!(param(&r.location.unwrap(), "code").is_some(), "prompt=none with a session gives a code");

    app.clock.advance(chrono::Duration::minutes(10));
    let mut params = auth_params("a");
    params.push(("max_age", "60".into()));
    let r = app.authorize(&params).await;
    let to_login = r.location.unwrap();
    assert!(to_login.starts_with("/cas/login?"), "{to_login}");
    assert_eq!(param(&to_login, "renew").as_deref(), Some("true"));
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap();
    let (_, tokens) = app.exchange(&code).await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"].as_i64().unwrap(), idp_core::clock::Clock::now(app.clock.as_ref()).timestamp());

    let mut params = auth_params("l");
    params.push(("prompt", "login".into()));
    let to_login = app.authorize(&params).await.location.unwrap();
    assert_eq!(param(&to_login, "renew").as_deref(), Some("true"));
    params.push(("login_hint", "autre.personne".into()));
    params.retain(|(k, _)| *k != "prompt");
    let to_login = app.authorize(&params).await.location.unwrap();
    assert!(to_login.starts_with("/cas/login?"), "another person is hinted: {to_login}");
}

#[tokio::test]
async fn a_client_that_requires_consent_shows_a_french_page_with_a_csrf_token() {
    let app = oidc_app().await;
    add_client(&app, "tiers", Some(SECRET), &[REDIRECT], |c| c.require_consent = true).await;
    let mut params = auth_params("c");
    params[1].1 = "tiers".into();
    app.tokens().await;
    let page = app.authorize(&params).await;
    assert_eq!(page.status, 200);
    let body = crate::helpers::unescape(&page.body);
    assert!(body.contains("Autoriser l'accès") && body.contains("Application tiers"), "{body}");
    let mut form = hidden_inputs(&page.body);
    assert!(form.iter().any(|(k, _)| k == "csrf_token"));
    // Without the CSRF token: refused.
    let mut no_csrf: Vec<_> = form.iter().filter(|(k, _)| k != "csrf_token").cloned().collect();
    no_csrf.push(("consent".into(), "accept".into()));
    let r = app.client.post(app.url("/oidc/authorize")).form(&no_csrf).send().await.unwrap();
    assert_eq!(r.status(), 400);
    form.push(("consent".into(), "accept".into()));
    let r = result(app.client.post(app.url("/oidc/authorize")).form(&form).send().await.unwrap()).await;
    assert!(param(&r.location.unwrap(), "code").is_some());
    // Remembered: no page the next time.
    let r = app.authorize(&params).await;
    assert_eq!(r.status, 302);
    assert!(param(&r.location.unwrap(), "code").is_some());
    // prompt=consent asks again; refusing is access_denied for the client.
    params.push(("prompt", "consent".into()));
    let page = app.authorize(&params).await;
    let mut form = hidden_inputs(&page.body);
    form.push(("consent".into(), "deny".into()));
    let r = result(app.client.post(app.url("/oidc/authorize")).form(&form).send().await.unwrap()).await;
    assert_eq!(param(&r.location.unwrap(), "error").as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn the_authorization_request_may_be_sent_by_post() {
    let app = oidc_app().await;
    app.tokens().await;
    let r = result(app.client.post(app.url("/oidc/authorize")).form(&auth_params("post")).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let location = r.location.unwrap();
    assert!(location.starts_with(REDIRECT) && param(&location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn a_new_charter_is_accepted_before_any_code_is_issued() {
    let app = oidc_app().await;
    let done = app.authorize_with_login(&auth_params("first"), "c.martin").await;
    assert!(param(&done, "code").is_some(), "{done}");
    // The operator publishes a new charter version the person has not accepted.
    let login = idp_core::account::Login::parse("c.martin").unwrap();
    let mut account = app.stores.accounts.find_by_login(&login).await.unwrap().unwrap();
    account.cgu_version = Some("0".into());
    app.stores.accounts.update(&account).await.unwrap();
    // Without interaction: an error for the client, no code.
    let mut silent = auth_params("silent");
    silent.push(("prompt", "none".into()));
    let r = app.authorize(&silent).await;
    let location = r.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(param(&location, "error").as_deref(), Some("interaction_required"));
    assert!(param(&location, "code").is_none());
    // With interaction: the CAS login page asks for the charter on the same session.
    let r = app.authorize(&auth_params("again")).await;
    let to_login = r.location.unwrap();
    assert!(to_login.starts_with("/cas/login?"), "{to_login}");
    let page = app.follow(&format!("{}{to_login}", app.address)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Conditions Générales d'Utilisation") || page.body.contains("Conditions G"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn accepting_a_new_charter_is_not_a_new_login() {
    let app = oidc_app().await;
    let done = app.authorize_with_login(&auth_params("first"), "c.martin").await;
    let (_, tokens) = app.exchange(&param(&done, "code").unwrap()).await;
    let logged_in_at = jwt_claims(tokens["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
    let login = idp_core::account::Login::parse("c.martin").unwrap();
    let mut account = app.stores.accounts.find_by_login(&login).await.unwrap().unwrap();
    account.cgu_version = Some("0".into());
    app.stores.accounts.update(&account).await.unwrap();
    app.clock.advance(chrono::Duration::minutes(10));
    // The charter on the same session, read for ten minutes, then ticked.
    let to_login = app.authorize(&auth_params("again")).await.location.unwrap();
    let page = app.follow(&format!("{}{to_login}", app.address)).await;
    let mut form = hidden_inputs(&page.body);
    form.push(("accepte".into(), "oui".into()));
    let accepted =
        crate::helpers::result(app.client.post(app.url("/cas/login/cgu")).form(&form).send().await.unwrap()).await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    let done = app.follow(&accepted.location.unwrap()).await;
    let code = param(&done.location.unwrap(), "code").unwrap();
    let (_, tokens) = app.exchange(&code).await;
    let id = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"].as_i64().unwrap(), logged_in_at, "the session keeps the time of the password");
    // max_age counts from the password, not from the tick.
    let mut params = auth_params("fresh");
    params.push(("max_age", "300".into()));
    let r = app.authorize(&params).await;
    assert_eq!(param(&r.location.unwrap(), "renew").as_deref(), Some("true"));
}

#[tokio::test]
async fn browser_applications_may_call_the_token_endpoints_from_a_registered_origin_only() {
    let app = oidc_app().await;
    let c = reqwest::Client::new();
    let preflight = |origin: &'static str, path: &'static str| {
        c.request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    // The origin of a registered redirect URI (https://vie-scolaire.example.test/callback).
    for path in ["/oidc/token", "/oidc/userinfo", "/oidc/revoke"] {
        let r = preflight("https://vie-scolaire.example.test", path).await.unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "https://vie-scolaire.example.test", "{path}");
        assert!(r.headers().get("access-control-allow-credentials").is_none(), "never with cookies");
        let r = preflight("https://evil.example.test", path).await.unwrap();
        assert!(r.headers().get("access-control-allow-origin").is_none(), "{path}: not for other origins");
    }
    // Public documents: any origin.
    let r =
        c.get(app.url("/.well-known/openid-configuration")).header("origin", "https://x.example").send().await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // The pages a browser visits: no CORS at all.
    let r =
        c.get(app.url("/oidc/authorize")).header("origin", "https://vie-scolaire.example.test").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn token_requests_are_counted_for_the_operators() {
    let app = oidc_app().await;
    let code = app.code("metrics").await;
    let (status, _) = app.exchange(&code).await;
    assert_eq!(status, 200);
    let (status, _) = app.exchange(&code).await;
    assert_eq!(status, 400, "a replayed code");
    let text = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"idp_oidc_token_requests_total{grant="authorization_code",result="issued"}"#), "{text}");
    assert!(text.contains(r#"idp_oidc_token_requests_total{grant="authorization_code",result="refused"}"#), "{text}");
}

#[tokio::test]
async fn login_hint_pre_fills_the_identifiant_of_the_login_form() {
    let app = oidc_app().await;
    let mut params = auth_params("hint");
    params.push(("login_hint", "c.martin".into()));
    let to_login = app.authorize(&params).await.location.unwrap();
    assert!(to_login.starts_with("/cas/login?"), "{to_login}");
    assert_eq!(param(&to_login, "username").as_deref(), Some("c.martin"));
    // The profile page keeps it in its links, and the form shows it.
    let chooser = app.follow(&format!("{}{to_login}", app.address)).await;
    let body = crate::helpers::unescape(&chooser.body);
    let link = regex::Regex::new(r#"href="(/cas/login\?profile=eleve-parent[^"]*)""#).unwrap();
    let href = link.captures(&body).unwrap_or_else(|| panic!("{body}"))[1].to_owned();
    assert!(href.contains("username=c.martin"), "{href}");
    let form = app.follow(&format!("{}{href}", app.address)).await;
    assert!(form.body.contains(r#"name="username" value="c.martin""#), "{}", form.body);
    // Anything that is not a login is ignored.
    let r = app.get_login(&[("profile", "eleve-parent"), ("username", "<b>x</b>")]).await;
    assert!(r.body.contains(r#"name="username" value="""#), "{}", r.body);
}

#[tokio::test]
async fn email_verified_is_true_only_for_an_address_validated_by_link() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let (_, info, _) = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["email"], "c.martin@example.fr");
    assert_eq!(info["email_verified"], false, "a directory address is not a proof");
    // The person validated this very address by link (activation or Mon compte).
    let login = idp_core::account::Login::parse("c.martin").unwrap();
    let account = app.stores.accounts.find_by_login(&login).await.unwrap().unwrap();
    let extras = idp_core::lifecycle::AccountExtras {
        email_verified: account.email.clone(),
        email_verified_at: Some(chrono::Utc::now()),
        questions: None,
    };
    app.stores.security.save(account.id, &extras).await.unwrap();
    let tokens = app.tokens().await;
    let (_, info, _) = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["email_verified"], true);
    assert_eq!(jwt_claims(tokens["id_token"].as_str().unwrap())["email_verified"], true);
}

/// Posts the consent form `form` with `answer`.
async fn answer_consent(app: &TestApp, form: &[(String, String)], answer: &str) -> crate::helpers::LoginResult {
    let mut form = form.to_vec();
    form.push(("consent".into(), answer.into()));
    result(app.client.post(app.url("/oidc/authorize")).form(&form).send().await.unwrap()).await
}

#[tokio::test]
async fn a_consent_answer_counts_only_for_a_consent_page_the_server_showed() {
    let app = oidc_app().await;
    add_client(&app, "tiers", Some(SECRET), &[REDIRECT], |c| c.require_consent = true).await;
    app.tokens().await;
    let mut params = auth_params("c");
    params[1].1 = "tiers".into();
    let page = app.authorize(&params).await;
    assert_eq!(page.status, 200);
    let form = hidden_inputs(&page.body);
    assert!(form.iter().any(|(k, v)| k == "consent_id" && v.len() >= 32), "{form:?}");

    // Without the pending consent id: refused, even with a good CSRF token.
    let no_id: Vec<_> = form.iter().filter(|(k, _)| k != "consent_id").cloned().collect();
    let r = answer_consent(&app, &no_id, "accept").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.location.is_none());

    // For another request (here one that asks for a new login): refused, so
    // prompt=login cannot be skipped by posting the form.
    let mut other = form.clone();
    other.push(("prompt".into(), "login".into()));
    let r = answer_consent(&app, &other, "accept").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut with_login = params.clone();
    with_login.push(("prompt", "login".into()));
    let r = app.authorize(&with_login).await;
    assert!(r.location.unwrap().starts_with("/cas/login?"), "prompt=login still asks for the password");

    // The right answer once; the same answer twice is refused.
    let form = hidden_inputs(&app.authorize(&params).await.body);
    let r = answer_consent(&app, &form, "accept").await;
    assert!(param(&r.location.unwrap(), "code").is_some());
    let mut again = params.clone();
    again.push(("prompt", "consent".into()));
    let form = hidden_inputs(&app.authorize(&again).await.body);
    assert_eq!(answer_consent(&app, &form, "deny").await.status, 302);
    let r = answer_consent(&app, &form, "accept").await;
    assert_eq!(r.status, 400, "single use: {}", r.body);

    // A pending consent of another session is refused too.
    let form = hidden_inputs(&app.authorize(&again).await.body);
    assert!(form.iter().any(|(k, _)| k == "consent_id"));
    let other_browser = app.another_browser();
    other_browser.login(None, "c.martin", PASSWORD).await;
    let mut stolen = form.clone();
    stolen.push(("consent".into(), "accept".into()));
    let csrf_page = other_browser.authorize(&again).await;
    let csrf = hidden_inputs(&csrf_page.body).into_iter().find(|(k, _)| k == "csrf_token").unwrap();
    stolen.retain(|(k, _)| k != "csrf_token");
    stolen.push(csrf);
    let r = result(other_browser.client.post(app.url("/oidc/authorize")).form(&stolen).send().await.unwrap()).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

/// The `sub` of the ID token `client` gets in the browser's session (a
/// confidential client with the test secret, scope `scope`).
async fn subject_for(app: &TestApp, client: &str, scope: &str) -> Value {
    let mut params = auth_params("sub");
    params[1].1 = client.into();
    params[3].1 = scope.into();
    let location = app.authorize_with_login(&params, "c.martin").await;
    let code = param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let r = reqwest::Client::new().post(app.url("/oidc/token")).basic_auth(client, Some(SECRET)).form(&form);
    let tokens: Value = r.send().await.unwrap().json().await.unwrap();
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn the_subject_is_opaque_stable_and_pairwise_for_the_clients_that_ask() {
    use idp_core::oidc::SubjectType;
    let app = oidc_app().await;
    add_client(&app, "cantine", Some(SECRET), &[REDIRECT], |_| {}).await;
    for id in ["tiers-a", "tiers-b"] {
        add_client(&app, id, Some(SECRET), &[REDIRECT], |c| c.subject_type = SubjectType::Pairwise).await;
    }
    let public = subject_for(&app, "vie-scolaire", "openid").await;
    assert!(public.get("preferred_username").is_none(), "no login without the profile scope: {public}");
    let public = public["sub"].clone();
    assert!(!public.as_str().unwrap().contains("martin"), "{public}");
    assert_eq!(subject_for(&app, "cantine", "openid").await["sub"], public, "one public subject per account");
    let a = subject_for(&app, "tiers-a", "openid profile").await;
    assert_eq!(a["preferred_username"], "c.martin", "the login where the client may have it");
    let b = subject_for(&app, "tiers-b", "openid").await["sub"].clone();
    assert_ne!(a["sub"], public);
    assert_ne!(a["sub"], b, "pairwise: two clients cannot link their users");
    // Stable: the same after a new login.
    app.client.get(app.url("/cas/logout")).send().await.unwrap();
    assert_eq!(subject_for(&app, "vie-scolaire", "openid").await["sub"], public);
    assert_eq!(subject_for(&app, "tiers-a", "openid").await["sub"], a["sub"]);
    // Another account gets another subject.
    app.active_account("d.durand", PASSWORD, Profile::Eleve).await;
    let other = app.another_browser();
    let mut params = auth_params("other");
    params[3].1 = "openid".into();
    let location = other.authorize_with_login(&params, "d.durand").await;
    let (_, tokens) = other.exchange(&param(&location, "code").unwrap()).await;
    assert_ne!(jwt_claims(tokens["id_token"].as_str().unwrap())["sub"], public);
    let meta: Value = reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(meta["subject_types_supported"], serde_json::json!(["public", "pairwise"]));
}
