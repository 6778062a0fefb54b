//! Trusted devices over HTTP: « Faire confiance à cet appareil pendant 30
//! jours » on the code page sets a 30-day cookie; the next password login
//! of the same account from that browser skips the code step, with `amr`
//! `pwd` only (no second factor was presented), so `/gestion/` still asks
//! for it. Another account's cookie, an expired device (fixed clock), a
//! device removed in Mon compte, after `idp account mfa-reset` or a
//! password change: the code is asked again.

use chrono::TimeDelta;

use idp_core::account::{Login, Profile};
use idp_core::clock::Clock;

use crate::account_helpers::{get, post, text};
use crate::cli::Idp;
use crate::helpers::{LoginResult, TestApp, hidden_inputs, result, spawn_app, spawn_app_with};
use crate::second_factor::{ADMIN, ADMIN_PASSWORD, App, SERVICE, code_page, enrol_in_mon_compte, logout, with_admin};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const PASSWORD: &str = "Bonjour-2026!";

/// Posts the right code on the code page `page`, with the box ticked when
/// `trust`; returns the answer and its `Set-Cookie` headers.
async fn send_code(app: &TestApp, page: &LoginResult, code: &str, trust: bool) -> (LoginResult, Vec<String>) {
    let mut form = hidden_inputs(&page.body);
    form.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    form.push(("code".into(), code.into()));
    if trust {
        form.push(("confiance".into(), "oui".into()));
    }
    let r = app.client.post(app.url("/cas/login/code")).header("User-Agent", FIREFOX).form(&form).send().await.unwrap();
    let cookies = r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect();
    (result(r).await, cookies)
}

/// An account with TOTP enrolled; this browser logged out. Returns the
/// authenticator.
async fn enrolled(app: &TestApp, login: &str) -> App {
    app.active_account(login, PASSWORD, Profile::Personnel).await;
    let (authenticator, _) = enrol_in_mon_compte(app, login, PASSWORD).await;
    logout(app).await;
    authenticator
}

/// A login with the code and the box ticked; the browser is then trusted
/// and logged out.
async fn trust_this_browser(app: &TestApp, login: &str, authenticator: &App) -> String {
    app.clock.advance(TimeDelta::seconds(30));
    let page = code_page(app, login, PASSWORD).await;
    let (ok, cookies) = send_code(app, &page, &authenticator.code(app), true).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let cookie = cookies.into_iter().find(|c| c.starts_with("idp_appareil=")).expect("the trusted-device cookie");
    logout(app).await;
    cookie
}

/// The CDT, a CAS service.
async fn cdt(app: &TestApp) {
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
}

/// The `authenticationMethod` values of a ticket for the CDT.
async fn methods(app: &TestApp, ticket: &str) -> String {
    let (status, _, xml) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", ticket)]).await;
    assert_eq!(status, 200);
    xml
}

#[tokio::test]
async fn a_trusted_browser_logs_in_with_the_password_alone_and_amr_pwd() {
    let app = spawn_app().await;
    cdt(&app).await;
    let authenticator = enrolled(&app, "c.martin").await;
    let cookie = trust_this_browser(&app, "c.martin", &authenticator).await;
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not Secure over http: {cookie}");

    // Password only: a ticket, without the code step.
    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "no code step: {}", r.body);
    let xml = methods(&app, &r.ticket()).await;
    assert!(xml.contains("<cas:authenticationMethod>pwd</cas:authenticationMethod>"), "{xml}");
    assert!(!xml.contains("<cas:authenticationMethod>otp</cas:authenticationMethod>"), "no otp: {xml}");

    // Mon compte lists it, with its label and its last use.
    let page = text(&get(&app, "/compte/deux-etapes").await);
    assert!(page.contains("Appareils de confiance"), "{page}");
    assert!(page.contains("Firefox sous Linux"), "{page}");
    assert!(page.contains("Dernière utilisation le"), "{page}");
    assert!(page.contains("Retirer tous les appareils"), "{page}");
}

#[tokio::test]
async fn the_box_unticked_sets_no_cookie_and_the_code_is_asked_again() {
    let app = spawn_app().await;
    cdt(&app).await;
    let authenticator = enrolled(&app, "c.martin").await;
    app.clock.advance(TimeDelta::seconds(30));
    let page = code_page(&app, "c.martin", PASSWORD).await;
    assert!(text(&page).contains("Faire confiance à cet appareil pendant 30 jours"), "{}", page.body);
    assert!(!page.body.contains("name=\"confiance\" value=\"oui\" checked"), "unticked by default");
    let (ok, cookies) = send_code(&app, &page, &authenticator.code(&app), false).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert!(!cookies.iter().any(|c| c.starts_with("idp_appareil=")), "{cookies:?}");
    logout(&app).await;
    code_page(&app, "c.martin", PASSWORD).await;
}

#[tokio::test]
async fn another_accounts_device_and_an_expired_one_do_not_count() {
    let app = spawn_app().await;
    cdt(&app).await;
    let authenticator = enrolled(&app, "c.martin").await;
    enrolled(&app, "l.petit").await;
    trust_this_browser(&app, "c.martin", &authenticator).await;
    // The same browser, trusted by c.martin: l.petit still types a code.
    code_page(&app, "l.petit", PASSWORD).await;

    // 30 days later the device is no longer trusted.
    app.clock.advance(TimeDelta::days(30));
    code_page(&app, "c.martin", PASSWORD).await;
}

#[tokio::test]
async fn a_device_removed_in_mon_compte_is_asked_the_code_again() {
    let app = spawn_app().await;
    cdt(&app).await;
    let authenticator = enrolled(&app, "c.martin").await;
    trust_this_browser(&app, "c.martin", &authenticator).await;
    // Another browser of the same person removes it.
    let other = app.another_browser();
    let page = code_page(&other, "c.martin", PASSWORD).await;
    other.clock.advance(TimeDelta::seconds(30));
    let (ok, _) = send_code(&other, &page, &authenticator.code(&other), false).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let list = get(&other, "/compte/deux-etapes").await;
    let id = regex::Regex::new(r#"name="appareil" value="(\d+)""#).unwrap().captures(&list.body).expect("a device")[1]
        .to_owned();

    // Without the CSRF token: refused, nothing removed.
    let forged = other
        .client
        .post(other.url("/compte/deux-etapes/appareils/retirer"))
        .form(&[("appareil", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(text(&get(&other, "/compte/deux-etapes").await).contains("Firefox sous Linux"));
    // An unknown device: the page with the reason.
    let unknown =
        post(&other, "/compte/deux-etapes", "/compte/deux-etapes/appareils/retirer", &[("appareil", "999999")]).await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert!(text(&unknown).contains("Cet appareil n'est plus dans la liste"), "{}", unknown.body);

    let done = post(&other, "/compte/deux-etapes", "/compte/deux-etapes/appareils/retirer", &[("appareil", &id)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let shown = text(&get(&other, done.location.as_deref().unwrap()).await);
    assert!(shown.contains("L'appareil est retiré"), "{shown}");
    assert!(shown.contains("Aucun appareil de confiance"), "{shown}");
    code_page(&app, "c.martin", PASSWORD).await;
}

#[tokio::test]
async fn all_devices_removed_at_once_then_after_mfa_reset_and_a_password_change() {
    let app = spawn_app().await;
    cdt(&app).await;
    let authenticator = enrolled(&app, "c.martin").await;

    // « Retirer tous les appareils ».
    trust_this_browser(&app, "c.martin", &authenticator).await;
    let r = app.login(None, "c.martin", PASSWORD).await;
    assert_eq!(r.status, 200, "trusted: {}", r.body);
    let done =
        post(&app, "/compte/deux-etapes", "/compte/deux-etapes/appareils/retirer", &[("appareil", "tous")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(text(&get(&app, done.location.as_deref().unwrap()).await).contains("Tous les appareils sont retirés"));
    logout(&app).await;
    code_page(&app, "c.martin", PASSWORD).await;

    // A password change ends the trust.
    trust_this_browser(&app, "c.martin", &authenticator).await;
    app.login(None, "c.martin", PASSWORD).await;
    app.clock.advance(TimeDelta::seconds(1));
    let fields =
        [("mot_de_passe_actuel", PASSWORD), ("mot_de_passe", "Train-Vert-88"), ("confirmation", "Train-Vert-88")];
    let changed = post(&app, "/compte/", "/compte/mot-de-passe", &fields).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    logout(&app).await;
    code_page(&app, "c.martin", "Train-Vert-88").await;

    // idp account mfa-reset removes the devices with the factor: after a
    // new enrolment, the code is asked again.
    let app = spawn_app().await;
    cdt(&app).await;
    let authenticator = enrolled(&app, "c.martin").await;
    trust_this_browser(&app, "c.martin", &authenticator).await;
    let out = Idp::new(app.data_dir.path()).run(&["account", "mfa-reset", "c.martin"]).await;
    assert!(out.success(), "{}", out.stderr);
    let id = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap().id;
    assert!(app.stores.second_factors.trusted_devices(id).await.unwrap().is_empty());
    enrol_in_mon_compte(&app, "c.martin", PASSWORD).await;
    logout(&app).await;
    code_page(&app, "c.martin", PASSWORD).await;
}

#[tokio::test]
async fn the_console_still_asks_an_administrator_for_the_second_factor() {
    let app = with_admin().await;
    // Enrolled at login (the policy), the box ticked on a later login.
    let r = app.login(None, ADMIN, ADMIN_PASSWORD).await;
    let authenticator = App::scan(&r.body);
    let mut form = hidden_inputs(&r.body);
    form.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    form.push(("code".into(), authenticator.code(&app)));
    let codes = result(app.client.post(app.url("/cas/login/enrolement")).form(&form).send().await.unwrap()).await;
    let mut go_on = hidden_inputs(&codes.body);
    go_on.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    app.client.post(app.url("/cas/login/codes-de-secours")).form(&go_on).send().await.unwrap();
    logout(&app).await;
    app.clock.advance(TimeDelta::seconds(30));
    let page = app.login(None, ADMIN, ADMIN_PASSWORD).await;
    let (ok, _) = send_code(&app, &page, &authenticator.code(&app), true).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(get(&app, "/gestion/").await.status, 200, "logged in with the code");
    logout(&app).await;

    // Trusted: the password alone, but the console asks for the factor.
    let r = app.login(None, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!text(&r).contains("Code de vérification"), "{}", r.body);
    let closed = get(&app, "/gestion/").await;
    assert_eq!(closed.status, 403, "{}", closed.body);
    assert!(text(&closed).contains("Validation en deux étapes nécessaire"), "{}", closed.body);
    // Its link logs in again with renew: the code is asked despite the
    // trusted device.
    let r = app.login_with(None, ADMIN, ADMIN_PASSWORD, &[("renew", "true")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(text(&r).contains("<label for=\"code\">Code de vérification</label>"), "{}", r.body);
}

/// On PostgreSQL (`IDP_TEST_DATABASE_URL`): the table, a trusted login and
/// its last use recorded, and the removal of every device.
#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_a_trusted_device_is_kept_used_and_removed() {
    let Some(admin_url) = crate::cluster::postgres_url() else { return };
    let db = crate::cluster::TestDatabase::create(&admin_url).await;
    let url = db.url.clone();
    let app = spawn_app_with(|s| s.database_url = Some(url)).await;
    cdt(&app).await;
    let authenticator = enrolled(&app, "c.martin").await;
    trust_this_browser(&app, "c.martin", &authenticator).await;
    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "no code step: {}", r.body);
    let id = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap().id;
    let devices = app.stores.second_factors.trusted_devices(id).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].last_used_at, Some(app.clock.now()));
    assert_eq!(devices[0].label, "Firefox sous Linux");
    let done =
        post(&app, "/compte/deux-etapes", "/compte/deux-etapes/appareils/retirer", &[("appareil", "tous")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(app.stores.second_factors.trusted_devices(id).await.unwrap().is_empty());
}
