//! Profile routing to an upstream CAS server (the académie's): the profile
//! sends the browser there, the callback validates the upstream's ticket,
//! the identity links to a local account, and the login goes through the
//! same pipeline as a password (charter, session, tickets).
//!
//! The upstream is mostly a second `idp` server, a real CAS 3 server over
//! HTTP; `django_cas_server_as_the_academie` runs the same login against a
//! CAS server written elsewhere, django-cas-server (PyPI), started from
//! tests/interop/cas_upstream/.

use idp_core::account::{AccountState, Login, Profile};
use idp_core::upstream::{UpstreamConfig, UpstreamKind};
use idp_web::config::{AuthMethod, LoginProfile};

use crate::helpers::{
    LoginResult, TestApp, assert_valid_cas_xml, browser, hidden_inputs, python, repo_root, result, spawn_app,
    spawn_app_with, unescape,
};

const SERVICE: &str = "https://cahier-de-textes.example.test/";
const PATTERN: &str = r"https://cahier-de-textes\.example\.test/.*";
/// Where the upstream sends the browser back, after a login or a logout
/// (the test's public URL has no port).
const CALLBACK: &str = r"http://127\.0\.0\.1/upstream/academie/.*";

/// The académie's CAS server with one teacher, and the ENT routing its
/// "personnel" profile there, linking `link_from` to `link_to`.
async fn setup(link_to: &str, cas_url: Option<&str>) -> (TestApp, TestApp) {
    let academie = spawn_app().await;
    academie.active_account("p.prof", "Craie-Verte-42", Profile::Personnel).await;
    academie.service("ent", CALLBACK, &["uid"], None).await;
    let cas_url = cas_url.map(str::to_owned).unwrap_or(format!("{}/cas", academie.address));
    (ent_routing_to(link_to, cas_url).await, academie)
}

/// The ENT routing its "personnel" profile to the CAS server at `cas_url`.
async fn ent_routing_to(link_to: &str, cas_url: String) -> TestApp {
    let link_to = link_to.to_owned();
    let ent = spawn_app_with(move |s| {
        s.upstreams = vec![UpstreamConfig {
            id: "academie".into(),
            label: "Académie d'Orléans-Tours".into(),
            kind: UpstreamKind::Cas,
            cas_url: Some(cas_url),
            idp_metadata: None,
            sp_key_file: None,
            sp_cert_file: None,
            link_from: "user".into(),
            link_to,
            create_missing: false,
        }];
        s.login.profiles[1] = LoginProfile {
            id: "personnel".into(),
            label: "Personnel de l'éducation nationale".into(),
            method: AuthMethod::Upstream,
            upstreams: vec!["academie".into()],
        };
    })
    .await;
    ent.service("cdt", PATTERN, &["uid"], None).await;
    ent
}

/// The path and query of a URL of the ENT.
fn local(location: &str) -> String {
    let url = match location.starts_with('/') {
        true => url::Url::parse(&format!("http://x{location}")).unwrap(),
        false => url::Url::parse(location).unwrap(),
    };
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

fn param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// From the profile choice to the upstream's login page; returns the
/// callback URL the upstream must send the browser back to.
async fn leave_for_the_upstream(ent: &TestApp, academie: &TestApp) -> String {
    param(&upstream_login_url(ent, &academie.address).await, "service").unwrap()
}

/// From the profile choice to the upstream's login URL, at `upstream`.
async fn upstream_login_url(ent: &TestApp, upstream: &str) -> String {
    let r = ent.get_login(&[("profile", "personnel"), ("service", SERVICE)]).await;
    assert_eq!(r.status, 302, "one upstream: straight there: {}", r.body);
    let start = r.location.unwrap();
    assert!(start.starts_with("/upstream/academie/start?"), "{start}");
    let r = result(ent.client.get(ent.url(&start)).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let upstream_login = r.location.unwrap();
    assert!(upstream_login.starts_with(&format!("{upstream}/cas/login?")), "{upstream_login}");
    upstream_login
}

/// The teacher logs in at the académie; returns the callback with its ticket.
async fn log_in_upstream(academie: &TestApp, callback: &str, login: &str, password: &str) -> String {
    let r = academie.login(Some(callback), login, password).await;
    assert_eq!(r.status, 303, "{}", r.body);
    r.location.unwrap()
}

async fn back_at_the_ent(ent: &TestApp, callback_with_ticket: &str) -> LoginResult {
    result(ent.client.get(ent.url(&local(callback_with_ticket))).send().await.unwrap()).await
}

#[tokio::test]
async fn a_teacher_logs_in_at_the_academie_and_the_ent_service_gets_its_ticket() {
    let (ent, academie) = setup("login", None).await;
    ent.active_account("p.prof", "Local-Inutile-1", Profile::Personnel).await;
    let callback = leave_for_the_upstream(&ent, &academie).await;
    let back = log_in_upstream(&academie, &callback, "p.prof", "Craie-Verte-42").await;
    let r = back_at_the_ent(&ent, &back).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let ticket = r.ticket();
    let (_, _, xml) = ent.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_valid_cas_xml(&xml);
    assert!(xml.contains("<cas:user>p.prof</cas:user>"), "{xml}");
    // The session is the ENT's: the next service gets a ticket by SSO.
    let sso = ent.get_login(&[("service", "https://cahier-de-textes.example.test/devoirs")]).await;
    assert_eq!(sso.status, 302);
    assert!(sso.location.unwrap().contains("ticket=ST-"));
    // The callback cannot be played again.
    let again = back_at_the_ent(&ent.another_browser(), &back).await;
    assert_eq!(again.status, 400);
    assert!(unescape(&again.body).contains("Cette connexion a expiré ou a déjà été utilisée"), "{}", again.body);

    // Logout: the ENT's session ends, then the académie's, then back to the ENT.
    let r = result(ent.client.get(ent.url("/cas/logout")).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let upstream_logout = r.location.unwrap();
    assert!(upstream_logout.starts_with(&format!("{}/cas/logout?service=", academie.address)), "{upstream_logout}");
    assert_eq!(ent.get_login(&[("service", SERVICE)]).await.status, 200, "no more SSO at the ENT");
    let r = result(academie.client.get(&upstream_logout).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "the académie sends the browser back: {}", r.body);
    let r = back_at_the_ent(&ent, &r.location.unwrap()).await;
    assert_eq!(r.status, 200);
    assert!(unescape(&r.body).contains("déconnecté"), "{}", r.body);
    let at_academie = academie.get_login(&[("service", &callback)]).await;
    assert_eq!(at_academie.status, 200, "no more SSO at the académie either");
}

#[tokio::test]
async fn an_identity_that_matches_no_account_gets_no_session() {
    let (ent, academie) = setup("login", None).await;
    let callback = leave_for_the_upstream(&ent, &academie).await;
    let back = log_in_upstream(&academie, &callback, "p.prof", "Craie-Verte-42").await;
    let r = ent.client.get(ent.url(&local(&back))).send().await.unwrap();
    assert!(r.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("TGC=")));
    let r = result(r).await;
    assert_eq!(r.status, 403);
    let text = unescape(&r.body);
    assert!(text.contains("Aucun compte de l'ENT ne correspond à cette identité"), "{text}");
    assert!(text.contains("établissement"), "{text}");
}

#[tokio::test]
async fn an_ent_person_jointure_links_with_or_without_its_source() {
    let (ent, academie) = setup("ENTPersonJointure", None).await;
    let attributes = [("ENTPersonJointure".to_owned(), vec!["AC-ORLEANS-TOURS$p.prof".to_owned()])].into();
    ent.active_account_with("m.dupont", "Local-Inutile-1", Profile::Personnel, attributes).await;
    let callback = leave_for_the_upstream(&ent, &academie).await;
    let back = log_in_upstream(&academie, &callback, "p.prof", "Craie-Verte-42").await;
    let r = back_at_the_ent(&ent, &back).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let (_, _, xml) = ent.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &r.ticket())]).await;
    assert!(xml.contains("<cas:user>m.dupont</cas:user>"), "the linked local account: {xml}");
}

#[tokio::test]
async fn an_account_waiting_for_activation_is_activated_and_a_disabled_one_refused() {
    let (ent, academie) = setup("login", None).await;
    ent.provisioned_account("p.prof", "Provisoire-1").await;
    let callback = leave_for_the_upstream(&ent, &academie).await;
    let back = log_in_upstream(&academie, &callback, "p.prof", "Craie-Verte-42").await;
    let r = back_at_the_ent(&ent, &back).await;
    // Active now; the charter comes first, as after any login.
    let login = Login::parse("p.prof").unwrap();
    let account = ent.stores.accounts.find_by_login(&login).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Active);
    assert!(account.provisional_hash.is_none(), "the provisional password no longer opens anything");
    assert_eq!(r.status, 200);
    assert!(unescape(&r.body).contains("Conditions Générales d'Utilisation"), "{}", r.body);

    let mut account = ent.stores.accounts.find_by_login(&login).await.unwrap().unwrap();
    account.state = AccountState::Disabled;
    ent.stores.accounts.update(&account).await.unwrap();
    let other = ent.another_browser();
    let callback = leave_for_the_upstream(&other, &academie).await;
    let back = log_in_upstream(&academie.another_browser(), &callback, "p.prof", "Craie-Verte-42").await;
    let r = back_at_the_ent(&other, &back).await;
    assert_eq!(r.status, 403);
    assert!(unescape(&r.body).contains("Votre compte est désactivé"), "{}", r.body);
}

#[tokio::test]
async fn a_forged_state_a_bad_ticket_and_a_silent_upstream_get_french_pages() {
    let (ent, academie) = setup("login", None).await;
    ent.active_account("p.prof", "Local-Inutile-1", Profile::Personnel).await;
    let r = back_at_the_ent(&ent, "/upstream/academie/callback?state=inventé&ticket=ST-x").await;
    assert_eq!(r.status, 400);
    let callback = leave_for_the_upstream(&ent, &academie).await;
    let r = back_at_the_ent(&ent, &format!("{}&ticket=ST-faux", local(&callback))).await;
    assert_eq!(r.status, 401, "the académie refused the ticket: {}", r.body);
    assert!(unescape(&r.body).contains("n'a pas abouti"));
    let r = back_at_the_ent(&ent, "/upstream/inconnu/callback?state=x&ticket=y").await;
    assert_eq!(r.status, 404);

    // The académie does not answer (nothing listens there).
    let (ent, academie) = setup("login", Some("http://127.0.0.1:9/cas")).await;
    let r = ent.get_login(&[("profile", "personnel")]).await;
    let r = result(ent.client.get(ent.url(&r.location.unwrap())).send().await.unwrap()).await;
    let callback = param(&r.location.unwrap(), "service").unwrap();
    let r = back_at_the_ent(&ent, &format!("{}&ticket=ST-x", local(&callback))).await;
    assert_eq!(r.status, 502);
    let text = unescape(&r.body);
    assert!(text.contains("ne répond pas") && text.contains("/cas/login"), "{text}");
    drop(academie);
}

#[tokio::test]
async fn a_remembered_upstream_profile_shows_its_button_and_the_profile_change() {
    let (ent, academie) = setup("login", None).await;
    leave_for_the_upstream(&ent, &academie).await;
    // Next visit: the remembered profile shows the way with « Changer de profil ».
    let page = ent.get_login(&[("service", SERVICE)]).await;
    assert_eq!(page.status, 200);
    let text = unescape(&page.body);
    assert!(text.contains("Académie d'Orléans-Tours") && text.contains("Changer de profil"), "{text}");
    assert!(text.contains("/upstream/academie/start?service="), "{text}");
    assert!(!text.contains("name=\"password\""), "no local password form for this profile");
}

/// django-cas-server (PyPI) as the académie: its own login form, its own
/// tickets and its `/p3/serviceValidate`, linked on the CAS user.
#[tokio::test(flavor = "multi_thread")]
async fn django_cas_server_as_the_academie() {
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut server = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/interop/cas_upstream/academie.py"))
        .args(["--login", "p.prof", "--password", "Craie-Verte-42", "--service-pattern", &format!("^{CALLBACK}")])
        .env("CAS_UPSTREAM_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // It prints its port once it listens.
    let mut port = String::new();
    let stdout = server.stdout.take().unwrap();
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut port).await.unwrap();
    assert!(port.trim().parse::<u16>().is_ok(), "django-cas-server did not start: {port:?}");
    let academie = format!("http://127.0.0.1:{}", port.trim());

    let ent = ent_routing_to("login", format!("{academie}/cas")).await;
    ent.active_account("p.prof", "Local-Inutile-1", Profile::Personnel).await;
    let login_url = upstream_login_url(&ent, &academie).await;
    let callback = param(&login_url, "service").unwrap();

    // The teacher's browser at the académie: its form, posted back with its
    // hidden fields (login ticket, CSRF token, service).
    let at_academie = browser();
    let page = at_academie.get(&login_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let mut form = hidden_inputs(&page);
    assert!(form.iter().any(|(k, _)| k == "lt") && form.iter().any(|(k, _)| k == "csrfmiddlewaretoken"), "{page}");
    assert!(form.iter().any(|(k, v)| k == "service" && *v == callback), "{page}");
    form.push(("username".into(), "p.prof".into()));
    form.push(("password".into(), "Craie-Verte-42".into()));
    let r = result(at_academie.post(&login_url).form(&form).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "django-cas-server sends the browser back: {}", r.body);
    let back = r.location.unwrap();
    assert!(back.starts_with(&callback) && param(&back, "ticket").is_some(), "{back}");

    let r = back_at_the_ent(&ent, &back).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.location.as_deref().unwrap().starts_with(SERVICE));
    let (_, _, xml) = ent.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &r.ticket())]).await;
    assert_valid_cas_xml(&xml);
    assert!(xml.contains("<cas:user>p.prof</cas:user>"), "the linked local account: {xml}");

    // The callback cannot be played again, and django-cas-server's ticket,
    // once spent, is refused under a fresh state.
    let again = back_at_the_ent(&ent.another_browser(), &back).await;
    assert_eq!(again.status, 400);
    assert!(unescape(&again.body).contains("Cette connexion a expiré ou a déjà été utilisée"), "{}", again.body);
    let other = ent.another_browser();
    let fresh = param(&upstream_login_url(&other, &academie).await, "service").unwrap();
    let spent = param(&back, "ticket").unwrap();
    let r = back_at_the_ent(&other, &format!("{}&ticket={spent}", local(&fresh))).await;
    assert_eq!(r.status, 401, "django-cas-server refused the spent ticket: {}", r.body);
    assert!(unescape(&r.body).contains("n'a pas abouti"));
    server.kill().await.unwrap();
}
