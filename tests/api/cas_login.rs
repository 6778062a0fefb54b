//! The login page: profile routing, credentials, SSO, renew, gateway,
//! method=POST, logout, and the rules of the house (no open redirect, no
//! user enumeration, CSRF, throttling, security headers).

use idp_core::account::{AccountState, Login, Profile};

use crate::helpers::{TestApp, browser, hidden_inputs, result, spawn_app, spawn_app_with, unescape};

const SERVICE: &str = "https://cahier-de-textes.example.test/";
const PATTERN: &str = r"https://cahier-de-textes\.example\.test/.*";

async fn app() -> TestApp {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    app
}

fn tgc_of(r: &reqwest::Response) -> Option<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).find(|c| c.starts_with("TGC="))
}

#[tokio::test]
async fn the_profile_page_comes_first_with_the_three_profiles_of_the_real_ent() {
    let app = app().await;
    let page = app.get_login(&[("service", SERVICE)]).await;
    assert_eq!(page.status, 200);
    let body = unescape(&page.body);
    assert!(body.contains(r#"<html lang="fr">"#));
    assert!(body.contains("Bienvenue dans votre ENT !"));
    for label in ["Élève ou parent", "Personnel de l'éducation nationale", "Autre public"] {
        assert!(body.contains(label), "missing {label}");
    }
    // The choice keeps the service.
    assert!(body.contains("profile=eleve-parent&service=https%3A%2F%2Fcahier-de-textes.example.test%2F"), "{body}");
}

#[tokio::test]
async fn the_chosen_profile_shows_the_real_ent_form_and_is_remembered() {
    let app = app().await;
    let page = app.get_login(&[("profile", "personnel")]).await;
    let body = unescape(&page.body);
    for text in [
        r#"<label for="username">Identifiant</label>"#,
        r#"<label for="password">Mot de passe</label>"#,
        "EFFACER",
        "CONNEXION",
        "Mot de passe oublié ?",
        "Activer mon compte.",
        "Mon compte a été réinitialisé.",
        "Personnel de l'éducation nationale",
        "veuillez vous déconnecter et fermer votre navigateur",
        "Changer de profil",
    ] {
        assert!(body.contains(text), "missing {text}: {body}");
    }
    // Remembered for a school year at most (300 days).
    let r = app.client.get(app.url("/cas/login?profile=personnel")).send().await.unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("idp_profile="))
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.contains("Max-Age=25920000"), "{cookie}");
    // Remembered: the next visit goes straight to the form, with « Changer
    // de profil ».
    let again = unescape(&app.get_login(&[]).await.body);
    assert!(again.contains("CONNEXION") && again.contains("Personnel de l'éducation nationale"));
    assert!(again.contains("Changer de profil"), "{again}");
    // And can be changed.
    let chooser = app.get_login(&[("profile", "choose")]).await;
    assert!(chooser.body.contains("Bienvenue dans votre ENT !"));
}

#[tokio::test]
async fn login_redirects_to_the_service_with_a_ticket_and_no_cache() {
    let app = app().await;
    let page = app.get_login(&[("profile", "eleve-parent"), ("service", SERVICE)]).await;
    let mut form = hidden_inputs(&page.body);
    form.push(("username".into(), "c.martin".into()));
    form.push(("password".into(), "Bonjour-2026!".into()));
    let r = app.client.post(app.url("/cas/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = tgc_of(&r).expect("a TGC cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "no Secure flag over http: {cookie}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://cahier-de-textes.example.test/?ticket=ST-"), "{location}");
    let ticket = location.split("ticket=").nth(1).unwrap();
    assert!(ticket.len() >= 32 && ticket.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
}

#[tokio::test]
async fn over_https_cookies_are_secure_and_host_prefixed() {
    let app = spawn_app_with(|s| s.public_url = Some("https://ent.example.test".into())).await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    // reqwest does not send Secure cookies over http: carry them by hand.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = client.get(app.url("/cas/login?profile=eleve-parent")).send().await.unwrap();
    let set_cookie = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with(&format!("{name}=")))
    };
    let csrf_cookie = set_cookie(&page, "__Host-idp_csrf").expect("a __Host- CSRF cookie");
    assert!(csrf_cookie.contains("Secure") && csrf_cookie.contains("Path=/"), "{csrf_cookie}");
    let pre_session = csrf_cookie.trim_start_matches("__Host-idp_csrf=").split(';').next().unwrap().to_owned();
    let mut form = hidden_inputs(&page.text().await.unwrap());
    form.push(("username".into(), "c.martin".into()));
    form.push(("password".into(), "Bonjour-2026!".into()));
    let r = client
        .post(app.url("/cas/login"))
        .header("cookie", format!("__Host-idp_csrf={pre_session}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "logged in page");
    let cookie = set_cookie(&r, "__Host-TGC").expect("a __Host- session cookie");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"), "{cookie}");
    assert!(r.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn a_planted_csrf_cookie_or_a_post_from_another_site_is_refused() {
    let app = app().await;
    // Plain double submit is not enough: a site able to write cookies for
    // the ENT's domain sets its own value and sends the same in the form.
    let planted = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let form = [("username", "c.martin"), ("password", "Bonjour-2026!"), ("csrf_token", planted)];
    let r = browser()
        .post(app.url("/cas/login"))
        .header("cookie", format!("idp_csrf={planted}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(tgc_of(&r).is_none());
    // A genuine token, but the browser says the POST comes from elsewhere
    // (fetch metadata, or the Origin of an older browser).
    let page = app.get_login(&[("profile", "eleve-parent")]).await;
    let mut fields = hidden_inputs(&page.body);
    fields.push(("username".into(), "c.martin".into()));
    fields.push(("password".into(), "Bonjour-2026!".into()));
    for (header, value) in
        [("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site"), ("origin", "https://evil.example")]
    {
        let r = app.client.post(app.url("/cas/login")).header(header, value).form(&fields).send().await.unwrap();
        assert_eq!(r.status(), 403, "{header}: {value}");
        assert!(tgc_of(&r).is_none());
    }
    // The same form from the server's own page goes through; browsers send
    // `Origin: null` under `Referrer-Policy: no-referrer`.
    let r = app
        .client
        .post(app.url("/cas/login"))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(tgc_of(&r).is_some());
}

#[tokio::test]
async fn without_a_service_the_user_sees_that_they_are_logged_in() {
    let app = app().await;
    let r = app.login(None, "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Camille Martin"), "{}", r.body);
}

#[tokio::test]
async fn single_sign_on_gives_the_next_service_a_ticket_without_credentials() {
    let app = app().await;
    app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    let sso = app.get_login(&[("service", "https://cahier-de-textes.example.test/devoirs")]).await;
    assert_eq!(sso.status, 302);
    assert!(sso.location.unwrap().starts_with("https://cahier-de-textes.example.test/devoirs?ticket=ST-"));
}

#[tokio::test]
async fn wrong_password_and_unknown_login_look_the_same() {
    let app = app().await;
    let wrong = app.login(Some(SERVICE), "c.martin", "mauvais-mot-de-passe").await;
    let unknown = app.login(Some(SERVICE), "inconnu.x", "mauvais-mot-de-passe").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    let strip = |b: &str, login: &str| {
        let re = regex::Regex::new(r#"value="[A-Za-z0-9]{32}""#).unwrap();
        re.replace_all(b, "").replace(login, "LOGIN")
    };
    assert_eq!(strip(&wrong.body, "c.martin"), strip(&unknown.body, "inconnu.x"));
    assert!(wrong.body.contains("Identifiant ou mot de passe incorrect."));
    assert!(wrong.location.is_none());
}

#[tokio::test]
async fn failed_logins_are_throttled_per_login_and_address() {
    let app = app().await;
    for _ in 0..5 {
        assert_eq!(app.login(Some(SERVICE), "c.martin", "faux").await.status, 401);
    }
    let r = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 429, "even the right password waits");
    assert!(r.body.contains("Trop de tentatives"));
    // The same for an unknown login: no enumeration through throttling.
    for _ in 0..5 {
        app.login(None, "inconnu", "faux").await;
    }
    assert_eq!(app.login(None, "inconnu", "faux").await.status, 429);
}

#[tokio::test]
async fn a_provisional_password_leads_to_activation_never_to_a_session() {
    let app = app().await;
    app.provisioned_account("l.petit", "Provisoire-1").await;
    let page = app.get_login(&[("profile", "eleve-parent"), ("service", SERVICE)]).await;
    let mut form = hidden_inputs(&page.body);
    form.push(("username".into(), "l.petit".into()));
    form.push(("password".into(), "Provisoire-1".into()));
    let r = app.client.post(app.url("/cas/login")).form(&form).send().await.unwrap();
    assert!(tgc_of(&r).is_none(), "no session");
    let r = result(r).await;
    assert_eq!(r.status, 200);
    assert!(r.location.is_none());
    assert!(r.body.contains("doit être activé"), "{}", r.body);
    assert!(unescape(&r.body).contains("/compte/activation"));
    // Reset accounts say so.
    let mut a = app.stores.accounts.find_by_login(&Login::parse("l.petit").unwrap()).await.unwrap().unwrap();
    a.state = AccountState::Reset;
    app.stores.accounts.update(&a).await.unwrap();
    let r = app.login(Some(SERVICE), "l.petit", "Provisoire-1").await;
    assert!(r.body.contains("réinitialisé"), "{}", r.body);
}

#[tokio::test]
async fn disabled_and_locked_accounts_get_no_ticket() {
    let app = app().await;
    let mut a = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap();
    a.state = AccountState::Disabled;
    app.stores.accounts.update(&a).await.unwrap();
    let r = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("désactivé"));
    let mut a = app.stores.accounts.find_by_id(a.id).await.unwrap().unwrap();
    a.state = AccountState::Locked;
    app.stores.accounts.update(&a).await.unwrap();
    let r = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("bloqué"));
}

#[tokio::test]
async fn the_lock_policy_locks_after_consecutive_failures_when_enabled() {
    let app = spawn_app_with(|s| {
        s.throttle.lock_after = 3;
        s.throttle.per_login = 100;
    })
    .await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    for _ in 0..3 {
        app.login(None, "c.martin", "faux").await;
    }
    let a = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap();
    assert_eq!(a.state, AccountState::Locked);
    assert_eq!(app.login(None, "c.martin", "Bonjour-2026!").await.status, 403);
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let app = app().await;
    app.get_login(&[("profile", "eleve-parent")]).await;
    let form = [("username", "c.martin"), ("password", "Bonjour-2026!"), ("service", SERVICE)];
    let r = app.client.post(app.url("/cas/login")).form(&form).send().await.unwrap();
    assert!(tgc_of(&r).is_none());
    assert_eq!(r.status(), 403);
    let form =
        [("username", "c.martin"), ("password", "Bonjour-2026!"), ("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")];
    let r = app.client.post(app.url("/cas/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("expiré"));
}

#[tokio::test]
async fn an_unknown_service_is_refused_without_redirecting() {
    let app = app().await;
    for service in [
        "https://evil.example.test/",
        "javascript:alert(1)",
        "//evil.example.test",
        "https://cahier-de-textes.example.test.evil.test/",
    ] {
        let r = app.get_login(&[("service", service)]).await;
        assert_eq!(r.status, 403, "{service}");
        assert!(r.location.is_none(), "{service}");
        assert!(r.body.contains("Application non autorisée"), "{service}");
    }
    // Even with a session, and with gateway.
    app.login(None, "c.martin", "Bonjour-2026!").await;
    let r = app.get_login(&[("service", "https://evil.example.test/"), ("gateway", "true")]).await;
    assert_eq!(r.status, 403);
    assert!(r.location.is_none());
    // And on the form POST.
    let r =
        app.client.post(app.url("/cas/login")).form(&[("service", "https://evil.example.test/")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_backslash_in_the_host_part_is_refused_and_redirects_go_to_the_normalised_url() {
    let app = app().await;
    app.service("ecoles", r"https://[^/]+\.ecole\.example\.test/.*", &["uid"], None).await;
    // A browser reads `\` as `/`: this URL goes to evil.example.test.
    let evil = r"https://evil.example.test\@college.ecole.example.test/";
    let r = app.get_login(&[("service", evil)]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.location.is_none());
    let form = [("service", evil), ("username", "c.martin"), ("password", "Bonjour-2026!")];
    let r = app.client.post(app.url("/cas/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("location").is_none());
    app.login(None, "c.martin", "Bonjour-2026!").await;
    let r = app.get_login(&[("service", evil)]).await;
    assert_eq!(r.status, 403, "not even with a session");
    assert!(r.location.is_none());

    // A URL written oddly goes where a browser would go.
    let odd = "https://College.Ecole.example.test/cdt/../notes";
    let r = app.get_login(&[("service", odd)]).await;
    let location = r.location.expect("a ticket for a registered service");
    assert!(location.starts_with("https://college.ecole.example.test/notes?ticket=ST-"), "{location}");
}

#[tokio::test]
async fn gateway_returns_to_the_service_without_a_ticket_when_there_is_no_session() {
    let app = app().await;
    let r = app.get_login(&[("service", SERVICE), ("gateway", "true")]).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.location.as_deref(), Some(SERVICE));
    app.login(None, "c.martin", "Bonjour-2026!").await;
    let r = app.get_login(&[("service", SERVICE), ("gateway", "true")]).await;
    assert!(r.location.unwrap().contains("ticket=ST-"));
}

#[tokio::test]
async fn renew_asks_for_credentials_again_and_ignores_gateway() {
    let app = app().await;
    app.login(None, "c.martin", "Bonjour-2026!").await;
    let r = app.get_login(&[("service", SERVICE), ("renew", "true"), ("gateway", "true")]).await;
    assert_eq!(r.status, 200);
    assert!(r.location.is_none());
    assert!(r.body.contains(r#"name="renew" value="true""#), "the form keeps renew");
    let r = app.login_with(Some(SERVICE), "c.martin", "Bonjour-2026!", &[("renew", "true")]).await;
    let ticket = r.ticket();
    let (_, _, body) =
        app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket), ("renew", "true")]).await;
    assert!(body.contains("authenticationSuccess"), "{body}");
}

#[tokio::test]
async fn method_post_answers_with_a_self_submitting_form_and_no_inline_script() {
    let app = app().await;
    let r = app.login_with(Some(SERVICE), "c.martin", "Bonjour-2026!", &[("method", "POST")]).await;
    assert_eq!(r.status, 200);
    let body = unescape(&r.body);
    assert!(body.contains(r#"method="post""#) && body.contains(&format!(r#"action="{SERVICE}""#)), "{body}");
    assert!(body.contains(r#"name="ticket" value="ST-"#), "{body}");
    assert!(body.contains("autosubmit.js"));
    assert!(!regex::Regex::new(r"<script>[^<]").unwrap().is_match(&body), "no inline script");
    assert!(body.contains("<noscript>"));
    // Unknown methods are refused clearly.
    let r = app.get_login(&[("service", SERVICE), ("method", "TELEPATHY")]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn logout_ends_the_session_and_follows_only_registered_services() {
    let app = app().await;
    app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    let r = result(app.client.get(app.url("/cas/logout")).query(&[("service", SERVICE)]).send().await.unwrap()).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.location.as_deref(), Some(SERVICE));
    // The session is gone: the login form again.
    let again = app.get_login(&[("service", SERVICE)]).await;
    assert_eq!(again.status, 200);
    assert!(again.location.is_none());
    // An unregistered service is not followed.
    let r = result(
        app.client
            .get(app.url("/cas/logout"))
            .query(&[("service", "https://evil.example.test/")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.location.is_none());
    assert!(r.body.contains("déconnecté"));
}

#[tokio::test]
async fn the_session_id_changes_when_someone_else_logs_in_and_stays_for_the_same_person() {
    let app = app().await;
    app.active_account("l.autre", "Bonjour-2026!", Profile::Parent).await;
    let login = |app: &TestApp, who: &'static str| {
        let app_url = app.url("/cas/login");
        let client = app.client.clone();
        async move {
            let page =
                client.get(&app_url).query(&[("profile", "eleve-parent"), ("renew", "true")]).send().await.unwrap();
            let mut form = hidden_inputs(&page.text().await.unwrap());
            form.push(("username".into(), who.into()));
            form.push(("password".into(), "Bonjour-2026!".into()));
            let r = client.post(&app_url).form(&form).send().await.unwrap();
            tgc_of(&r).unwrap()
        }
    };
    let first = login(&app, "c.martin").await;
    app.clock.advance(chrono::Duration::seconds(30));
    // The same person again (renew): the same session, a new login time.
    assert_eq!(login(&app, "c.martin").await, first);
    // Someone else on this browser: a new session id, the old session ends.
    let other = login(&app, "l.autre").await;
    assert_ne!(other, first);
    let old = first.trim_start_matches("TGC=").split(';').next().unwrap().to_owned();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/cas/login"))
        .query(&[("service", SERVICE)])
        .header("cookie", format!("TGC={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the first session is over");
    // A cookie naming no session is never adopted.
    let planted = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/cas/login"))
        .query(&[("service", SERVICE)])
        .header("cookie", "TGC=TGT-planted")
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), 200);
}

#[tokio::test]
async fn typing_the_password_again_keeps_the_other_services_logged_in() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    let (logout_url, mut received) = crate::slo::logout_listener().await;
    app.service("cdt", PATTERN, &["uid"], Some(&logout_url)).await;
    let first = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    // A service that asks for the password again (renew).
    let again = app.login_with(Some(SERVICE), "c.martin", "Bonjour-2026!", &[("renew", "true")]).await;
    let (_, _, body) = app
        .validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &again.ticket()), ("renew", "true")])
        .await;
    assert!(body.contains("<cas:isFromNewLogin>true</cas:isFromNewLogin>"), "{body}");
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), received.recv()).await.is_err(),
        "no single logout: the session goes on"
    );
    assert_eq!(app.get_login(&[("service", SERVICE)]).await.status, 302, "single sign-on goes on");
    // One logout later, both tickets' services are told.
    result(app.client.get(app.url("/cas/logout")).send().await.unwrap()).await;
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    let mut indexes = vec![message];
    while let Ok(Some(m)) = tokio::time::timeout(std::time::Duration::from_secs(2), received.recv()).await {
        indexes.push(m);
    }
    assert!(indexes.iter().any(|m| m.contains(&first)), "the first ticket's session index is among them");
}

#[tokio::test]
async fn an_idle_session_ends_after_the_idle_timeout() {
    let app = app().await;
    app.login(None, "c.martin", "Bonjour-2026!").await;
    app.clock.advance(chrono::Duration::minutes(119));
    assert_eq!(app.get_login(&[("service", SERVICE)]).await.status, 302, "still alive, and used now");
    app.clock.advance(chrono::Duration::minutes(121));
    assert_eq!(app.get_login(&[("service", SERVICE)]).await.status, 200, "idle for too long");
}

#[tokio::test]
async fn a_session_ends_after_the_hard_timeout_even_when_used() {
    let app = app().await;
    app.login(None, "c.martin", "Bonjour-2026!").await;
    for _ in 0..8 {
        app.clock.advance(chrono::Duration::minutes(59));
        assert_eq!(app.get_login(&[("service", SERVICE)]).await.status, 302);
    }
    app.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(app.get_login(&[("service", SERVICE)]).await.status, 200);
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let app = app().await;
    let r = app.client.get(app.url("/cas/login")).send().await.unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(!h.contains_key("strict-transport-security"), "no HSTS over http");
}

#[tokio::test]
async fn unknown_pages_and_bad_input_get_french_pages_never_a_500() {
    let app = app().await;
    let r = result(browser().get(app.url("/nulle-part")).send().await.unwrap()).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("Page introuvable"));
    let r = result(
        browser()
            .post(app.url("/cas/login"))
            .body("%%%")
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.status < 500, "{}", r.status);
    let r = result(browser().post(app.url("/cas/login")).body(vec![b'a'; 200_000]).send().await.unwrap()).await;
    assert!(r.status < 500, "{}", r.status);
    let long_login = "x".repeat(10_000);
    let r = app.login(None, &long_login, "faux").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn health_readiness_metrics_and_static_files() {
    let app = app().await;
    let c = browser();
    assert_eq!(c.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    let m = c.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = m.text().await.unwrap();
    assert!(text.contains(r#"idp_logins_total{outcome="success"}"#), "{text}");
    assert!(text.contains("idp_service_tickets_total"), "{text}");
    let css = c.get(app.url("/static/touraine-eschool/style.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(c.get(app.url("/static/touraine-eschool/../Cargo.toml")).send().await.unwrap().status(), 404);
    assert_eq!(c.get(app.url("/static/autre-theme/style.css")).send().await.unwrap().status(), 404);
}
