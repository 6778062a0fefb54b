//! Passkeys (WebAuthn) over HTTP: registered in « Mon compte » and used at
//! the second step of a login, by Chromium's DevTools virtual
//! authenticator (tests/a11y/passkey.mjs, with axe-core on the pages it
//! reaches) and, for the refusals, by the software authenticator of the
//! `webauthn-authenticator-rs` crate (the webauthn-rs project's own
//! `SoftPasskey`): forged, replayed and expired challenges, another
//! account's key, a cloned key's counter, missing CSRF tokens, throttling,
//! removal, the IP-address public URL where passkeys are not offered, and
//! a passkey as the enrolment the policy requires.
//!
//! The server's public URL is `http://localhost:PORT`: browsers refuse an
//! IP address as relying party id, and localhost is a secure context.

use std::path::Path;

use chrono::TimeDelta;
use serde_json::Value;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use idp_core::account::Profile;

use crate::a11y::CHROMIUM;
use crate::account_helpers::{get, text};
use crate::helpers::{LoginResult, TestApp, hidden_inputs, npm_ready, result, spawn_app, spawn_app_with};

const SERVICE: &str = "https://cdt.example.test/login";
const PASSWORD: &str = "Bonjour-2026!";

/// A server whose public URL is `http://localhost:PORT`, with the CDT
/// registered and `login` (personnel) created.
async fn localhost_app(login: &str, tweak: impl FnOnce(&mut idp::settings::Settings)) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(|s| {
        s.bind = format!("127.0.0.1:{port}");
        s.public_url = Some(format!("http://localhost:{port}"));
        tweak(s);
    })
    .await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    app.active_account(login, PASSWORD, Profile::Personnel).await;
    app
}

/// A software authenticator (one key per registration, user verified).
struct Key(WebauthnAuthenticator<SoftPasskey>);

impl Key {
    fn new() -> Key {
        Key(WebauthnAuthenticator::new(SoftPasskey::new(true)))
    }

    fn origin(app: &TestApp) -> Url {
        Url::parse(&format!("http://localhost:{}", app.port)).unwrap()
    }

    /// The browser's answer to registration options, as passkey.js posts it.
    fn create(&mut self, app: &TestApp, options: &Value) -> String {
        let options: CreationChallengeResponse = serde_json::from_value(options["options"].clone()).unwrap();
        serde_json::to_string(&self.0.do_registration(Key::origin(app), options).unwrap()).unwrap()
    }

    /// The browser's answer to authentication options.
    fn get(&mut self, app: &TestApp, options: &Value) -> String {
        let options: RequestChallengeResponse = serde_json::from_value(options["options"].clone()).unwrap();
        serde_json::to_string(&self.0.do_authentication(Key::origin(app), options).unwrap()).unwrap()
    }
}

/// The first value of each of `names` among the hidden inputs of `page`.
fn fields(page: &str, names: &[&str]) -> Vec<(String, String)> {
    let inputs = hidden_inputs(page);
    names.iter().filter_map(|n| inputs.iter().find(|(k, _)| k == n).cloned()).collect()
}

/// `POST path` with `form`; the JSON answer and its status.
async fn json(app: &TestApp, path: &str, form: &[(String, String)]) -> (u16, Value) {
    let r = app.client.post(app.url(path)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post_form(app: &TestApp, path: &str, form: &[(String, String)]) -> LoginResult {
    result(app.client.post(app.url(path)).form(form).send().await.unwrap()).await
}

fn with(mut form: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    form
}

/// Adds a passkey named `name` in Mon compte (signed in); the answer page.
async fn add_key(app: &TestApp, key: &mut Key, name: &str) -> LoginResult {
    let page = get(app, "/compte/deux-etapes").await;
    assert!(page.body.contains("Ajouter une clé d'accès"), "{}", page.body);
    let csrf = fields(&page.body, &["csrf_token"]);
    let (status, options) = json(app, "/compte/deux-etapes/cle/options", &csrf).await;
    assert_eq!(status, 200, "{options}");
    let answer = key.create(app, &options);
    let form = with(csrf, &[("defi", options["defi"].as_str().unwrap()), ("nom", name), ("reponse", &answer)]);
    post_form(app, "/compte/deux-etapes/cle", &form).await
}

/// Signs `login` in (password alone) and adds one passkey: its key and the
/// recovery codes shown; then logs out.
async fn enrolled(app: &TestApp, login: &str) -> (Key, Vec<String>) {
    let r = app.login(None, login, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut key = Key::new();
    let shown = add_key(app, &mut key, "Clé USB").await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let re = regex::Regex::new(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>").unwrap();
    let codes: Vec<String> = re.captures_iter(&shown.body).map(|c| c[1].to_owned()).collect();
    get(app, "/cas/logout").await;
    (key, codes)
}

/// The code page of a password login to the CDT, offering the passkey.
async fn code_page(app: &TestApp, login: &str) -> LoginResult {
    let r = app.login(Some(SERVICE), login, PASSWORD).await;
    assert_eq!(r.status, 200, "{:?} {}", r.location, r.body);
    assert!(r.body.contains("Utiliser ma clé d'accès"), "{}", r.body);
    r
}

/// The authentication options of the code page `page`.
async fn login_options(app: &TestApp, page: &LoginResult) -> Value {
    let (status, options) = json(app, "/cas/login/cle/options", &fields(&page.body, &["csrf_token", "jeton"])).await;
    assert_eq!(status, 200, "{options}");
    options
}

/// Posts `answer` to the challenge `defi` for the code page `page`.
async fn use_key(app: &TestApp, page: &LoginResult, defi: &str, answer: &str) -> LoginResult {
    let form = with(fields(&page.body, &["csrf_token", "jeton"]), &[("defi", defi), ("reponse", answer)]);
    post_form(app, "/cas/login/cle", &form).await
}

/// A whole passkey login to the CDT: the answer (a redirect with a ticket).
async fn passkey_login(app: &TestApp, login: &str, key: &mut Key) -> LoginResult {
    let page = code_page(app, login).await;
    let options = login_options(app, &page).await;
    let answer = key.get(app, &options);
    use_key(app, &page, options["defi"].as_str().unwrap(), &answer).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_added_in_mon_compte_is_used_at_login_by_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("IDP_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("IDP_TEST_REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install -y chromium)");
        }
        println!("skipped: chromium not installed (apt-get install chromium)");
        return;
    }
    let dir = tokio::task::spawn_blocking(|| npm_ready("tests/a11y")).await.unwrap();
    let app = localhost_app("c.martin", |_| {}).await;
    let base = format!("http://localhost:{}", app.port);
    let output = tokio::process::Command::new("node")
        .arg(dir.join("passkey.mjs"))
        .args([base.as_str(), "c.martin", PASSWORD, SERVICE])
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("{stdout}\n{stderr}"));
    println!("{report:#}");
    assert!(output.status.success(), "{report:#}\n{stderr}");
    assert_eq!(report["violations"], serde_json::json!([]), "axe-core: {report:#}");
    assert_eq!(report["codes"].as_array().unwrap().len(), 10, "ten recovery codes: {report:#}");
    assert_eq!(report["keys"], serde_json::json!(["Clé virtuelle"]), "{report:#}");

    // The ticket of the passkey login says how the person logged in.
    let ticket = report["ticket"].as_str().unwrap_or_else(|| panic!("no ticket: {report:#}"));
    let (status, _, xml) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", ticket)]).await;
    assert_eq!(status, 200);
    assert!(xml.contains("<cas:authenticationMethod>pwd</cas:authenticationMethod>"), "{xml}");
    assert!(xml.contains("<cas:authenticationMethod>hwk</cas:authenticationMethod>"), "{xml}");
    crate::helpers::assert_valid_cas_xml(&xml);

    // The clone (counter back to 0) is refused on the code page.
    assert_eq!(report["refusedAt"], "/cas/login/cle", "{report:#}");
    assert!(report["refused"].as_str().unwrap().contains("n'a pas été reconnue"), "{report:#}");
}

#[tokio::test]
async fn a_first_passkey_brings_recovery_codes_and_is_listed_with_its_last_use() {
    let app = localhost_app("c.martin", |_| {}).await;
    let r = app.login(None, "c.martin", PASSWORD).await;
    assert_eq!(r.status, 200);
    // Hidden until passkey.js finds WebAuthn in the browser; one external
    // script, no inline code.
    let page = get(&app, "/compte/deux-etapes").await;
    assert!(page.body.contains(r#"data-cle-acces="creer""#), "{}", page.body);
    assert!(regex::Regex::new(r#"<form [^>]*data-cle-acces="creer"[^>]* hidden>"#).unwrap().is_match(&page.body));
    assert!(page.body.contains("/passkey.js\" defer></script>"), "{}", page.body);
    assert!(!page.body.contains("<script>"), "no inline script");
    assert!(text(&page).contains("Vous n'avez pas encore de clé d'accès."), "{}", page.body);

    let mut key = Key::new();
    let first = add_key(&app, &mut key, "  Clé USB  ").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("Vos codes de secours"), "{}", first.body);
    let codes = regex::Regex::new(r"<li><code>[a-z0-9]{5}-[a-z0-9]{5}</code></li>").unwrap();
    assert_eq!(codes.find_iter(&first.body).count(), 10);
    // A second key: no new codes, back to the section.
    let mut phone = Key::new();
    let second = add_key(&app, &mut phone, "Téléphone").await;
    assert_eq!(second.status, 303, "{}", second.body);
    assert_eq!(second.location.as_deref(), Some("/compte/deux-etapes?fait=cle-ajoutee"));
    let section = get(&app, "/compte/deux-etapes?fait=cle-ajoutee").await;
    let body = text(&section);
    assert!(body.contains("La clé d'accès est ajoutée."), "{body}");
    assert!(body.contains("<strong>Clé USB</strong>") && body.contains("<strong>Téléphone</strong>"), "{body}");
    assert!(body.contains("Jamais utilisée"), "{body}");
    assert!(body.contains("Codes de secours restants : 10 sur 10"), "{body}");
    // The same answer twice: its challenge was spent.
    let page = get(&app, "/compte/deux-etapes").await;
    let csrf = fields(&page.body, &["csrf_token"]);
    let (_, options) = json(&app, "/compte/deux-etapes/cle/options", &csrf).await;
    let answer = Key::new().create(&app, &options);
    let form = with(csrf, &[("defi", options["defi"].as_str().unwrap()), ("nom", "Tablette"), ("reponse", &answer)]);
    assert_eq!(post_form(&app, "/compte/deux-etapes/cle", &form).await.status, 303);
    let again = post_form(&app, "/compte/deux-etapes/cle", &form).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(text(&again).contains("Cette demande a expiré ou a déjà servi"), "{}", again.body);
    // A name left empty: refused, in French.
    let unnamed = add_key(&app, &mut Key::new(), "   ").await;
    assert_eq!(unnamed.status, 400);
    assert!(text(&unnamed).contains("Donnez un nom à votre clé d'accès"), "{}", unnamed.body);
    get(&app, "/cas/logout").await;

    // Used at login: its last use is shown.
    app.clock.advance(TimeDelta::minutes(1));
    let done = passkey_login(&app, "c.martin", &mut key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let section = get(&app, "/compte/deux-etapes").await;
    assert!(text(&section).contains("Dernière utilisation le"), "{}", section.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passkey_login_gives_hwk_to_cas_and_oidc() {
    let app = crate::oidc::oidc_app_with(|s| {
        let port = s.bind.rsplit(':').next().unwrap_or_default().to_owned();
        s.public_url = Some(format!("http://localhost:{port}"));
    })
    .await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    let (mut key, _) = enrolled(&app, "c.martin").await;

    let done = passkey_login(&app, "c.martin", &mut key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let ticket = done.ticket();
    let (_, _, xml) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(xml.contains("<cas:authenticationMethod>hwk</cas:authenticationMethod>"), "{xml}");
    assert!(!xml.contains("<cas:authenticationMethod>otp</cas:authenticationMethod>"), "{xml}");

    let fresh = app.another_browser();
    let first = fresh.authorize(&crate::oidc::auth_params("s1")).await;
    let service = crate::oidc::param(&first.location.unwrap(), "service").unwrap();
    let page = fresh.login(Some(&service), "c.martin", PASSWORD).await;
    assert!(page.body.contains("Utiliser ma clé d'accès"), "{}", page.body);
    let options = login_options(&fresh, &page).await;
    let answer = key.get(&fresh, &options);
    let back = use_key(&fresh, &page, options["defi"].as_str().unwrap(), &answer).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let location = fresh.follow(&back.location.unwrap()).await.location.unwrap();
    let (status, tokens) = fresh.exchange(&crate::oidc::param(&location, "code").unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = crate::oidc::jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "hwk"]), "{claims}");
    assert_eq!(claims["acr"], "urn:idp:acr:mfa");
}

#[tokio::test]
async fn forged_replayed_and_expired_challenges_are_refused() {
    let app = localhost_app("c.martin", |_| {}).await;
    let (mut key, _) = enrolled(&app, "c.martin").await;

    // A challenge token the server never made.
    let page = code_page(&app, "c.martin").await;
    let options = login_options(&app, &page).await;
    let answer = key.get(&app, &options);
    let forged = use_key(&app, &page, "defi-invente", &answer).await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(text(&forged).contains("Cette demande a expiré ou a déjà servi"), "{}", forged.body);
    assert!(!text(&forged).contains("aria-invalid"), "the code field is not in error");

    // An answer that is not a WebAuthn credential.
    let options = login_options(&app, &page).await;
    let garbage = use_key(&app, &page, options["defi"].as_str().unwrap(), "{\"id\": 1}").await;
    assert_eq!(garbage.status, 401, "{}", garbage.body);

    // The right answer: a ticket; the same answer again, at another login:
    // its challenge was spent.
    let options = login_options(&app, &page).await;
    let defi = options["defi"].as_str().unwrap().to_owned();
    let answer = key.get(&app, &options);
    let ok = use_key(&app, &page, &defi, &answer).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    get(&app, "/cas/logout").await;
    let page = code_page(&app, "c.martin").await;
    let replayed = use_key(&app, &page, &defi, &answer).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);

    // A challenge older than five minutes.
    let options = login_options(&app, &page).await;
    let answer = key.get(&app, &options);
    app.clock.advance(TimeDelta::minutes(6));
    let expired = use_key(&app, &page, options["defi"].as_str().unwrap(), &answer).await;
    assert_eq!(expired.status, 400, "{}", expired.body);
    assert!(text(&expired).contains("Cette demande a expiré"), "{}", expired.body);

    // A pending login that does not exist.
    let mut form = fields(&page.body, &["csrf_token"]);
    form.push(("jeton".into(), "inconnu".into()));
    let (status, body) = json(&app, "/cas/login/cle/options", &form).await;
    assert_eq!(status, 410, "{body}");
    assert!(body["erreur"].as_str().unwrap().contains("Veuillez vous connecter à nouveau"), "{body}");
    let stale = post_form(&app, "/cas/login/cle", &with(form, &[("defi", "x"), ("reponse", "{}")])).await;
    assert_eq!(stale.status, 410);
    assert!(text(&stale).contains("Connexion expirée"), "{}", stale.body);
}

#[tokio::test]
async fn another_accounts_key_or_challenge_is_refused() {
    let app = localhost_app("c.martin", |_| {}).await;
    app.active_account("l.durand", PASSWORD, Profile::Personnel).await;
    let (mut martin, _) = enrolled(&app, "c.martin").await;
    let (_durand, _) = enrolled(&app, "l.durand").await;

    // Durand's challenge, answered by Martin's key (the browser told to
    // use it): a key not registered to this account.
    let page = code_page(&app, "l.durand").await;
    let mut options = login_options(&app, &page).await;
    let martins = app.stores.second_factors.passkeys(account_id(&app, "c.martin").await).await.unwrap();
    options["options"]["publicKey"]["allowCredentials"][0]["id"] = Value::String(martins[0].credential_id.clone());
    let answer = martin.get(&app, &options);
    let refused = use_key(&app, &page, options["defi"].as_str().unwrap(), &answer).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(text(&refused).contains("n'est pas enregistrée pour votre compte"), "{}", refused.body);

    // Martin's own challenge and answer, posted at Durand's login: the
    // challenge is another account's.
    let other = app.another_browser();
    let martin_page = code_page(&other, "c.martin").await;
    let options = login_options(&other, &martin_page).await;
    let answer = martin.get(&app, &options);
    let crossed = use_key(&app, &page, options["defi"].as_str().unwrap(), &answer).await;
    assert_eq!(crossed.status, 400, "{}", crossed.body);
    assert!(text(&crossed).contains("Cette demande a expiré ou a déjà servi"), "{}", crossed.body);
}

async fn account_id(app: &TestApp, login: &str) -> i64 {
    let login = idp_core::account::Login::parse(login).unwrap();
    app.stores.accounts.find_by_login(&login).await.unwrap().unwrap().id
}

#[tokio::test]
async fn a_cloned_key_whose_counter_went_back_is_refused() {
    let app = localhost_app("c.martin", |_| {}).await;
    let (mut key, _) = enrolled(&app, "c.martin").await;
    // Two logins waiting; the key signs the first challenge, then the
    // second (its counter moves on); the second answer is used first.
    let first = code_page(&app, "c.martin").await;
    let other = app.another_browser();
    let second = code_page(&other, "c.martin").await;
    let first_options = login_options(&app, &first).await;
    let older = key.get(&app, &first_options);
    let second_options = login_options(&other, &second).await;
    let newer = key.get(&app, &second_options);
    let ok = use_key(&other, &second, second_options["defi"].as_str().unwrap(), &newer).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    // The older counter now: as from a copy of the key.
    let cloned = use_key(&app, &first, first_options["defi"].as_str().unwrap(), &older).await;
    assert_eq!(cloned.status, 401, "{}", cloned.body);
    assert!(text(&cloned).contains("n'a pas été reconnue"), "{}", cloned.body);
}

#[tokio::test]
async fn passkey_forms_and_options_need_the_csrf_token() {
    let app = localhost_app("c.martin", |_| {}).await;
    let (_key, _) = enrolled(&app, "c.martin").await;
    let page = code_page(&app, "c.martin").await;
    let jeton = fields(&page.body, &["jeton"]);
    for path in ["/cas/login/cle/options", "/cas/login/cle", "/cas/login/enrolement/cle/options"] {
        let r = post_form(&app, path, &jeton).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    // Signed in (a person without second factor), in Mon compte.
    app.active_account("l.durand", PASSWORD, Profile::Personnel).await;
    let r = app.login(None, "l.durand", PASSWORD).await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&app, "/compte/deux-etapes").await.status, 200);
    for path in ["/compte/deux-etapes/cle/options", "/compte/deux-etapes/cle", "/compte/deux-etapes/cle/supprimer"] {
        let r = post_form(&app, path, &[("nom".into(), "x".into())]).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn failed_assertions_are_throttled_like_codes() {
    let app = localhost_app("c.martin", |_| {}).await;
    let (mut key, _) = enrolled(&app, "c.martin").await;
    let mut page = code_page(&app, "c.martin").await;
    for _ in 0..5 {
        let options = login_options(&app, &page).await;
        page = use_key(&app, &page, options["defi"].as_str().unwrap(), "{}").await;
        assert_eq!(page.status, 401, "{}", page.body);
    }
    let options = login_options(&app, &page).await;
    let answer = key.get(&app, &options);
    let throttled = use_key(&app, &page, options["defi"].as_str().unwrap(), &answer).await;
    assert_eq!(throttled.status, 429, "even the right key waits: {}", throttled.body);
    assert!(text(&throttled).contains("Trop de codes incorrects"), "{}", throttled.body);
}

#[tokio::test]
async fn removing_a_passkey_asks_the_password_and_the_last_one_ends_the_second_factor() {
    let app = localhost_app("c.martin", |_| {}).await;
    let (mut key, codes) = enrolled(&app, "c.martin").await;
    assert_eq!(codes.len(), 10);
    let done = passkey_login(&app, "c.martin", &mut key).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let id = app.stores.second_factors.passkeys(account_id(&app, "c.martin").await).await.unwrap()[0].id.to_string();
    let page = get(&app, "/compte/deux-etapes").await;
    let csrf = fields(&page.body, &["csrf_token"]);

    let wrong = post_form(
        &app,
        "/compte/deux-etapes/cle/supprimer",
        &with(csrf.clone(), &[("cle", &id), ("mot_de_passe_actuel", "pas-le-bon")]),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(text(&wrong).contains("id=\"erreur-cle-supprimer\""), "{}", wrong.body);
    let unknown = post_form(
        &app,
        "/compte/deux-etapes/cle/supprimer",
        &with(csrf.clone(), &[("cle", "999999"), ("mot_de_passe_actuel", PASSWORD)]),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert!(text(&unknown).contains("Cette clé d'accès n'existe pas"), "{}", unknown.body);
    let removed = post_form(
        &app,
        "/compte/deux-etapes/cle/supprimer",
        &with(csrf, &[("cle", &id), ("mot_de_passe_actuel", PASSWORD)]),
    )
    .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert_eq!(removed.location.as_deref(), Some("/compte/deux-etapes?fait=cle-supprimee"));
    let id = account_id(&app, "c.martin").await;
    assert_eq!(app.stores.second_factors.recovery_codes_left(id).await.unwrap(), 0, "the last factor takes the codes");
    get(&app, "/cas/logout").await;
    // No second factor left: the password alone gives the ticket.
    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn passkeys_are_not_offered_on_an_ip_address_public_url() {
    // The start report says so.
    let data = tempfile::tempdir().unwrap();
    let settings = crate::helpers::test_settings(data.path());
    let clock = std::sync::Arc::new(idp_core::clock::FixedClock::new(chrono::Utc::now()));
    let built = idp::app::Application::build(&settings, clock).await.unwrap();
    let report = built.report().join("\n");
    assert!(report.contains("passkeys: not offered: the public URL's host (127.0.0.1) is an IP address"), "{report}");
    drop(built);
    let localhost = localhost_app("l.durand", |_| {}).await;
    assert!(localhost.settings.public_url.as_deref().unwrap().starts_with("http://localhost:"));

    // Nothing to add in Mon compte, options refused, no button at login
    // even for a person who has a passkey.
    let app = spawn_app().await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    app.active_account("c.martin", PASSWORD, Profile::Personnel).await;
    let r = app.login(None, "c.martin", PASSWORD).await;
    assert_eq!(r.status, 200);
    let page = get(&app, "/compte/deux-etapes").await;
    assert!(!page.body.contains("Ajouter une clé d'accès"), "{}", page.body);
    let (status, body) = json(&app, "/compte/deux-etapes/cle/options", &fields(&page.body, &["csrf_token"])).await;
    assert_eq!(status, 410, "{body}");
    assert!(body["erreur"].as_str().unwrap().contains("ne sont pas proposées"), "{body}");
    get(&app, "/cas/logout").await;
    let id = account_id(&app, "c.martin").await;
    let stored = idp_core::second_factor::StoredPasskey {
        id: 0,
        credential_id: "AAAA".into(),
        name: "Clé".into(),
        data: "{}".into(),
        counter: 0,
        created_at: chrono::Utc::now(),
        last_used_at: None,
    };
    assert!(app.stores.second_factors.add_passkey(id, &stored).await.unwrap());
    assert!(!app.stores.second_factors.add_passkey(id, &stored).await.unwrap(), "a credential id is registered once");
    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 200, "the second factor is still asked: {}", r.body);
    assert!(r.body.contains("Code de vérification"), "{}", r.body);
    assert!(!r.body.contains("Utiliser ma clé d'accès"), "{}", r.body);
}

#[tokio::test]
async fn the_policy_may_be_met_with_a_passkey_at_login() {
    let app = localhost_app("c.martin", |s| s.mfa.required_for = vec!["personnel".into()]).await;
    let r = app.login(Some(SERVICE), "c.martin", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(text(&r).contains("Ou utilisez une clé d'accès"), "{}", r.body);
    let base = fields(&r.body, &["csrf_token", "jeton"]);
    let (status, options) = json(&app, "/cas/login/enrolement/cle/options", &base).await;
    assert_eq!(status, 200, "{options}");
    let mut key = Key::new();
    let answer = key.create(&app, &options);
    let form = with(base, &[("defi", options["defi"].as_str().unwrap()), ("nom", "Clé USB"), ("reponse", &answer)]);
    let shown = post_form(&app, "/cas/login/enrolement/cle", &form).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("Vos codes de secours"), "{}", shown.body);
    let go_on = fields(&shown.body, &["csrf_token", "jeton"]);
    let done = post_form(&app, "/cas/login/codes-de-secours", &go_on).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let ticket = done.ticket();
    let (_, _, xml) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(xml.contains("<cas:authenticationMethod>hwk</cas:authenticationMethod>"), "{xml}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_made_by_one_node_is_answered_on_the_other_through_redis() {
    let Some(redis) = crate::cluster::redis_url() else { return };
    // Two nodes behind one public URL: one SQLite file, one Redis prefix.
    let prefix = format!("idp-test-{}:", crate::cluster::random_suffix());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let public = format!("http://localhost:{port}");
    let (url, p, public_a) = (redis.clone(), prefix.clone(), public.clone());
    let a = spawn_app_with(move |s| {
        s.bind = format!("127.0.0.1:{port}");
        s.public_url = Some(public_a);
        s.redis_url = Some(url);
        s.redis_prefix = p;
    })
    .await;
    let sqlite = format!("sqlite://{}?mode=rwc", a.data_dir.path().join("idp.db").display());
    let b = spawn_app_with(move |s| {
        s.database_url = Some(sqlite);
        s.public_url = Some(public);
        s.redis_url = Some(redis);
        s.redis_prefix = prefix;
    })
    .await;
    a.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    a.active_account("c.martin", PASSWORD, Profile::Personnel).await;
    let (mut key, _) = enrolled(&a, "c.martin").await;

    // The challenge from node A; the answer to node B (the same browser).
    let page = code_page(&a, "c.martin").await;
    let options = login_options(&a, &page).await;
    let answer = key.get(&a, &options);
    let on_b = TestApp {
        address: b.address.clone(),
        port: a.port,
        client: a.client.clone(),
        clock: b.clock.clone(),
        stores: b.stores.clone(),
        settings: b.settings.clone(),
        data_dir: tempfile::tempdir().unwrap(),
    };
    let defi = options["defi"].as_str().unwrap();
    let done = use_key(&on_b, &page, defi, &answer).await;
    assert_eq!(done.status, 303, "node B finishes node A's ceremony: {}", done.body);
    let ticket = done.ticket();
    let (_, _, xml) = a.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(xml.contains("<cas:authenticationMethod>hwk</cas:authenticationMethod>"), "{xml}");
    // Spent for every node.
    get(&a, "/cas/logout").await;
    let page = code_page(&a, "c.martin").await;
    let again = use_key(&a, &page, defi, &answer).await;
    assert_eq!(again.status, 400, "{}", again.body);
}
