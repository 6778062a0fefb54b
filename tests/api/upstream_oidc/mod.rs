//! Profile routing to an upstream OpenID provider (ÉduConnect's place for
//! élèves and parents). The happy path runs against a real provider not
//! written here: panva's `oidc-provider` (npm), started from
//! tests/interop/oidc_upstream/op.mjs, its login and consent pages driven
//! over HTTP. The ID tokens no real provider would sign (wrong nonce,
//! audience or key) come from a small provider written in the test
//! (`forged`).
//!
//! Needs Node and npm (the modules install on first use, `npm ci`): without
//! them the real-provider tests say they skipped, unless
//! `IDP_TEST_REQUIRE_SERVICES=1` makes them fail.

mod forged;

use std::path::PathBuf;

use idp_core::account::Profile;
use idp_core::upstream::UpstreamConfig;
use idp_web::config::{AuthMethod, LoginProfile};

use crate::helpers::{
    LoginResult, TestApp, browser, hidden_inputs, npm_ready, path_and_query, python, result, spawn_app_with,
    start_peer, unescape,
};
use crate::oidc::{REDIRECT, add_client, auth_params};

const SERVICE: &str = "https://cahier-de-textes.example.test/";
const PATTERN: &str = r"https://cahier-de-textes\.example\.test/.*";
const CLIENT_ID: &str = "ent-touraine";
const CLIENT_SECRET: &str = "Secret-Du-Client-ENT-2026";

/// The ENT, listening on `port` with that public URL, routing its
/// "eleve-parent" profile to the OpenID provider `issuer`; `tweak` changes
/// the upstream's entry.
async fn ent(port: u16, issuer: &str, tweak: impl FnOnce(&mut UpstreamConfig)) -> TestApp {
    let mut upstream = UpstreamConfig::oidc(
        "educonnect",
        "ÉduConnect",
        issuer,
        (CLIENT_ID, CLIENT_SECRET),
        ("fr_edu_id", "ENTPersonJointure"),
    );
    upstream.scopes = ["openid", "profile", "email", "ent"].map(String::from).to_vec();
    tweak(&mut upstream);
    let ent = spawn_app_with(move |s| {
        s.bind = format!("127.0.0.1:{port}");
        s.public_url = Some(format!("http://127.0.0.1:{port}"));
        s.upstreams = vec![upstream];
        s.login.profiles[0] = LoginProfile {
            id: "eleve-parent".into(),
            label: "Élève ou parent".into(),
            method: AuthMethod::Upstream,
            upstreams: vec!["educonnect".into()],
            account_profile: Some(Profile::Eleve),
        };
    })
    .await;
    ent.service("cdt", PATTERN, &["uid", "given_name", "family_name"], None).await;
    ent
}

/// A free port for the ENT: the provider must know its redirect URI first.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// tests/interop/oidc_upstream with its modules, or None (the test skips)
/// without Node locally; with `IDP_TEST_REQUIRE_SERVICES=1` it must be there.
async fn provider_dir() -> Option<PathBuf> {
    let found = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var("IDP_TEST_REQUIRE_SERVICES").as_deref() == Ok("1");
        assert!(!required, "IDP_TEST_REQUIRE_SERVICES=1 but node is missing (Node 20 and npm are needed)");
        println!("skipped: node is not installed (Node 20 and npm run the upstream OpenID provider)");
        return None;
    }
    Some(tokio::task::spawn_blocking(|| npm_ready("tests/interop/oidc_upstream")).await.unwrap())
}

/// oidc-provider, started for the ENT on `ent_port`: its issuer URL and the
/// process (killed when dropped).
async fn start_provider(dir: &std::path::Path, ent_port: u16) -> (String, tokio::process::Child) {
    let base = format!("http://127.0.0.1:{ent_port}/upstream/educonnect");
    let mut node = tokio::process::Command::new("node");
    node.arg(dir.join("op.mjs")).args([format!("{base}/callback"), format!("{base}/deconnexion")]);
    start_peer(&mut node, "oidc-provider").await
}

/// The path and query of a URL of the ENT.
fn local(location: &str) -> String {
    path_and_query(location)
}

fn param(url: &str, name: &str) -> Option<String> {
    crate::oidc::param(url, name)
}

async fn get(client: &reqwest::Client, url: &str) -> LoginResult {
    result(client.get(url).send().await.unwrap()).await
}

/// From the profile choice to the provider's authorization URL.
async fn to_the_provider(ent: &TestApp, issuer: &str) -> String {
    let r = ent.get_login(&[("profile", "eleve-parent"), ("service", SERVICE)]).await;
    assert_eq!(r.status, 302, "one upstream: straight there: {}", r.body);
    let start = r.location.unwrap();
    assert!(start.starts_with("/upstream/educonnect/start?"), "{start}");
    let r = get(&ent.client, &ent.url(&start)).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let authorize = r.location.unwrap();
    assert!(authorize.starts_with(issuer), "{authorize}");
    authorize
}

/// At the provider: its login page (any password), its consent page, until
/// it sends the browser back to the ENT; returns that callback URL. With
/// `cancel`, the person cancels at the login page instead.
async fn at_the_provider(op: &reqwest::Client, issuer: &str, authorize: &str, login: &str, cancel: bool) -> String {
    let mut next = authorize.to_owned();
    for _ in 0..10 {
        let r = get(op, &next).await;
        if let Some(location) = r.location {
            let location = if location.starts_with('/') { format!("{issuer}{location}") } else { location };
            if !location.starts_with(&format!("{issuer}/")) {
                return location;
            }
            next = location;
            continue;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        let prompt = hidden_inputs(&r.body).into_iter().find(|(k, _)| k == "prompt").map(|(_, v)| v);
        if cancel {
            next = format!("{next}/abort");
            continue;
        }
        let form: Vec<(&str, &str)> = match prompt.as_deref() {
            Some("login") => vec![("prompt", "login"), ("login", login), ("password", "peu-importe")],
            Some("consent") => vec![("prompt", "consent")],
            other => panic!("unexpected page at the provider ({other:?}): {}", r.body),
        };
        let r = result(op.post(&next).form(&form).send().await.unwrap()).await;
        let location = r.location.unwrap_or_else(|| panic!("{}: {}", r.status, r.body));
        next = if location.starts_with('/') { format!("{issuer}{location}") } else { location };
    }
    panic!("the provider never sent the browser back")
}

/// python-cas (PyPI) validates `ticket` for SERVICE at the ENT (CAS 3).
async fn python_cas_validates(ent: &TestApp, ticket: &str) -> String {
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let script = "import sys\nfrom cas import CASClient\n\
                  c = CASClient(version=3, service_url=sys.argv[2], server_url=sys.argv[1])\n\
                  user, attributes, _ = c.verify_ticket(sys.argv[3])\nprint(user)\nprint(attributes)";
    let output = tokio::process::Command::new(python)
        .args(["-c", script, &ent.url("/cas/"), SERVICE, ticket])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pupil_logs_in_at_oidc_provider_and_gets_a_cas_ticket_an_oidc_code_and_the_upstream_logout() {
    let Some(dir) = provider_dir().await else { return };
    let port = free_port();
    let (issuer, mut node) = start_provider(&dir, port).await;
    let ent = ent(port, &issuer, |_| {}).await;
    add_client(&ent, "vie-scolaire", Some(crate::oidc::SECRET), &[REDIRECT], |_| {}).await;
    let jointure = [("ENTPersonJointure".to_owned(), vec!["AC-ORLEANS-TOURS$4242".to_owned()])].into();
    ent.active_account_with("z.martin", "Local-Inutile-1", Profile::Eleve, jointure).await;

    let authorize = to_the_provider(&ent, &issuer).await;
    // Authorization code with PKCE S256, a state and a nonce, always.
    assert_eq!(param(&authorize, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    assert!(param(&authorize, "state").is_some() && param(&authorize, "nonce").is_some(), "{authorize}");
    let op = browser();
    let back = at_the_provider(&op, &issuer, &authorize, "zoe.martin", false).await;
    assert!(back.starts_with(&ent.url("/upstream/educonnect/callback?")), "{back}");
    assert!(param(&back, "code").is_some(), "{back}");

    // Linked by ENTPersonJointure to fr_edu_id (a userinfo claim).
    let r = get(&ent.client, &ent.url(&local(&back))).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.location.as_deref().unwrap().starts_with(SERVICE));
    let validated = python_cas_validates(&ent, &r.ticket()).await;
    assert!(validated.starts_with("z.martin\n"), "python-cas: {validated}");

    // The same session answers our own OpenID provider: a code at once.
    let r = ent.authorize(&auth_params("apres-educonnect")).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let to_client = r.location.unwrap();
    assert!(to_client.starts_with(REDIRECT) && param(&to_client, "code").is_some(), "{to_client}");

    // The callback cannot be played again.
    let again = get(&browser(), &ent.url(&local(&back))).await;
    assert_eq!(again.status, 400);
    assert!(unescape(&again.body).contains("Cette connexion a expiré ou a déjà été utilisée"), "{}", again.body);

    // Logout: ours, then the provider's end_session_endpoint with the ID
    // token as hint, which comes back to /upstream/educonnect/deconnexion.
    let r = get(&ent.client, &ent.url("/cas/logout")).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let end_session = r.location.unwrap();
    assert!(end_session.starts_with(&format!("{issuer}/session/end?")), "{end_session}");
    assert!(param(&end_session, "id_token_hint").is_some(), "{end_session}");
    let back_uri = ent.url("/upstream/educonnect/deconnexion");
    assert_eq!(param(&end_session, "post_logout_redirect_uri").as_deref(), Some(back_uri.as_str()));
    assert_eq!(ent.get_login(&[("service", SERVICE)]).await.status, 200, "no more SSO at the ENT");
    let page = get(&op, &end_session).await;
    assert_eq!(page.status, 200, "the provider accepts the hint and asks to confirm: {}", page.body);
    let mut form = hidden_inputs(&page.body);
    form.push(("logout".into(), "yes".into()));
    let r = result(op.post(format!("{issuer}/session/end/confirm")).form(&form).send().await.unwrap()).await;
    let to_ent = r.location.unwrap_or_else(|| panic!("{}: {}", r.status, r.body));
    assert!(to_ent.starts_with(&back_uri), "{to_ent}");
    let r = get(&ent.client, &ent.url(&local(&to_ent))).await;
    assert_eq!(r.status, 200);
    assert!(unescape(&r.body).contains("déconnecté"), "{}", r.body);
    node.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn at_oidc_provider_an_unknown_person_and_a_cancelled_login_get_french_pages_and_no_session() {
    let Some(dir) = provider_dir().await else { return };
    let port = free_port();
    let (issuer, mut node) = start_provider(&dir, port).await;
    let ent = ent(port, &issuer, |_| {}).await;

    let authorize = to_the_provider(&ent, &issuer).await;
    let back = at_the_provider(&browser(), &issuer, &authorize, "leo.petit", false).await;
    let r = ent.client.get(ent.url(&local(&back))).send().await.unwrap();
    assert!(r.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("TGC=")));
    let r = result(r).await;
    assert_eq!(r.status, 403);
    let text = unescape(&r.body);
    assert!(text.contains("Aucun compte de l'ENT ne correspond à cette identité"), "{text}");
    assert!(text.contains("établissement") && text.contains("/cas/login?profile=choose"), "{text}");

    let other = ent.another_browser();
    let authorize = to_the_provider(&other, &issuer).await;
    let back = at_the_provider(&browser(), &issuer, &authorize, "zoe.martin", true).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"), "{back}");
    let r = get(&other.client, &other.url(&local(&back))).await;
    assert_eq!(r.status, 401);
    assert!(unescape(&r.body).contains("a été annulée"), "{}", r.body);
    assert_eq!(other.get_login(&[("service", SERVICE)]).await.status, 200, "no session");
    node.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn create_missing_gives_an_unknown_pupil_an_account_that_the_next_login_links_to() {
    let Some(dir) = provider_dir().await else { return };
    let port = free_port();
    let (issuer, mut node) = start_provider(&dir, port).await;
    let ent = ent(port, &issuer, |u| u.create_missing = true).await;

    for round in 0..2 {
        let browser_at_ent = ent.another_browser();
        let authorize = to_the_provider(&browser_at_ent, &issuer).await;
        let back = at_the_provider(&browser(), &issuer, &authorize, "leo.petit", false).await;
        let r = get(&browser_at_ent.client, &browser_at_ent.url(&local(&back))).await;
        // A new account accepts the charter first.
        assert_eq!(r.status, 200, "round {round}: {}", r.body);
        assert!(unescape(&r.body).contains("Conditions Générales d'Utilisation"), "{}", r.body);
    }
    // The charter accepted, the session opens; its logout carries the ID
    // token kept meanwhile as the provider's hint.
    let browser_at_ent = ent.another_browser();
    let authorize = to_the_provider(&browser_at_ent, &issuer).await;
    let back = at_the_provider(&browser(), &issuer, &authorize, "leo.petit", false).await;
    let page = get(&browser_at_ent.client, &browser_at_ent.url(&local(&back))).await;
    let mut form = hidden_inputs(&page.body);
    form.push(("accepte".into(), "oui".into()));
    let r = browser_at_ent.client.post(browser_at_ent.url("/cas/login/cgu")).form(&form).send().await.unwrap();
    let r = result(r).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().starts_with(SERVICE));
    let r = get(&browser_at_ent.client, &browser_at_ent.url("/cas/logout")).await;
    let end_session = r.location.unwrap();
    assert!(end_session.starts_with(&format!("{issuer}/session/end?")), "{end_session}");
    assert!(param(&end_session, "id_token_hint").is_some(), "{end_session}");

    let login = idp_core::account::Login::parse("leo.petit").unwrap();
    let account = ent.stores.accounts.find_by_login(&login).await.unwrap().expect("created as prenom.nom");
    assert_eq!(account.state, idp_core::account::AccountState::Active);
    assert_eq!(account.profile, Profile::Eleve, "the profile of the chosen profile");
    assert_eq!((account.given_name.as_str(), account.family_name.as_str()), ("Léo", "Petit"));
    assert_eq!(account.email.as_deref(), Some("leo.petit@example.test"));
    assert_eq!(account.attributes["ENTPersonJointure"], ["9999"]);
    let second = idp_core::account::Login::parse("leo.petit2").unwrap();
    assert!(ent.stores.accounts.find_by_login(&second).await.unwrap().is_none(), "the second login linked");
    node.kill().await.unwrap();
}
