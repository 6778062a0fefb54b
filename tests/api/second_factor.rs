//! The second factor over HTTP: TOTP enrolment in Mon compte (QR code and
//! secret as text, recovery codes shown once), then logins that ask for
//! « Code de vérification » before any CAS ticket or OIDC code, with codes
//! computed by an independent implementation (the `totp-rs` crate, as an
//! authenticator app would); wrong, replayed and spent codes refused,
//! throttling; the policy that sends administrators to enrolment before
//! anything else and keeps `/gestion/` closed without a second factor; the
//! removal by the help desk (console and `idp account mfa-reset`), audited
//! and told by e-mail.

use chrono::TimeDelta;
use totp_rs::{Algorithm, Secret, TOTP};

use idp_core::account::{Login, Profile};
use idp_core::admin::Scope;
use idp_core::clock::Clock;

use crate::account_helpers::{get, outbox, post, text};
use crate::cli::Idp;
use crate::helpers::{LoginResult, TestApp, hidden_inputs, result, spawn_app, spawn_app_with};
use crate::oidc::{PASSWORD, REDIRECT, auth_params, jwt_claims, oidc_app, param};

pub(crate) const SERVICE: &str = "https://cdt.example.test/login";

/// The codes an authenticator app shows for the secret of an enrolment page.
pub(crate) struct App(TOTP);

impl App {
    pub(crate) fn scan(page: &str) -> App {
        let re = regex::Regex::new(r#"<code class="secret" id="cle-secrete">([A-Z2-7 ]+)</code>"#).unwrap();
        let grouped = &re.captures(page).unwrap_or_else(|| panic!("no secret shown: {page}"))[1];
        let secret = Secret::Encoded(grouped.replace(' ', "")).to_bytes().unwrap();
        App(TOTP::new(Algorithm::SHA1, 6, 0, 30, secret).unwrap())
    }

    pub(crate) fn code(&self, app: &TestApp) -> String {
        self.0.generate(app.clock.now().timestamp() as u64)
    }
}

/// Signs `login` in without a service (password only) and enrols TOTP in
/// Mon compte; returns the authenticator and the recovery codes.
pub(crate) async fn enrol_in_mon_compte(app: &TestApp, login: &str, password: &str) -> (App, Vec<String>) {
    let r = app.login(None, login, password).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = get(app, "/compte/deux-etapes").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = text(&page);
    assert!(body.contains("Validation en deux étapes"), "{body}");
    assert!(body.contains("<label for=\"code\">Code de vérification</label>"), "{body}");
    assert!(body.contains("data:image/svg+xml;base64,"), "a QR code: {body}");
    assert!(body.contains("otpauth://totp/"), "the URI as text: {body}");
    let authenticator = App::scan(&page.body);
    let done = activate(app, &page, &authenticator.code(app)).await;
    assert_eq!(done.status, 200, "enrolment refused: {}", done.body);
    (authenticator, recovery_codes(&done))
}

/// Posts `code` on the enrolment form of the Mon compte page `page` (each
/// visit of the page draws a new secret: the form of that page).
async fn activate(app: &TestApp, page: &LoginResult, code: &str) -> LoginResult {
    let mut form = hidden_inputs(&page.body);
    form.push(("code".into(), code.into()));
    result(app.client.post(app.url("/compte/deux-etapes/activer")).form(&form).send().await.unwrap()).await
}

/// A code that is not `right`.
fn wrong_code(right: &str) -> &'static str {
    if right == "123456" { "654321" } else { "123456" }
}

/// The recovery codes shown on a page (10, shown once).
fn recovery_codes(page: &LoginResult) -> Vec<String> {
    let re = regex::Regex::new(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>").unwrap();
    let codes: Vec<String> = re.captures_iter(&page.body).map(|c| c[1].to_owned()).collect();
    assert_eq!(codes.len(), 10, "ten recovery codes: {}", page.body);
    codes
}

/// Posts `code` on the code page `page`.
async fn send_code(app: &TestApp, page: &LoginResult, code: &str) -> LoginResult {
    let mut form = hidden_inputs(&page.body);
    form.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    form.push(("code".into(), code.into()));
    result(app.client.post(app.url("/cas/login/code")).form(&form).send().await.unwrap()).await
}

/// Logs out this browser.
pub(crate) async fn logout(app: &TestApp) {
    get(app, "/cas/logout").await;
}

/// The password step of a login to the CDT: the code page.
pub(crate) async fn code_page(app: &TestApp, login: &str, password: &str) -> LoginResult {
    let r = app.login(Some(SERVICE), login, password).await;
    assert_eq!(r.status, 200, "the code page, not a ticket: {:?} {}", r.location, r.body);
    assert!(r.location.is_none());
    assert!(text(&r).contains("<label for=\"code\">Code de vérification</label>"), "{}", r.body);
    assert!(text(&r).contains("Utiliser un code de secours"), "{}", r.body);
    r
}

#[tokio::test]
async fn totp_enrolled_in_mon_compte_then_asked_at_login_before_the_ticket() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Personnel).await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    let (authenticator, _) = enrol_in_mon_compte(&app, "c.martin", "Bonjour-2026!").await;
    logout(&app).await;

    // Password right: no ticket yet, the code page.
    let page = code_page(&app, "c.martin", "Bonjour-2026!").await;
    // A wrong code: refused, the page again.
    let wrong = send_code(&app, &page, wrong_code(&authenticator.code(&app))).await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(text(&wrong).contains("Ce code de vérification est incorrect"), "{}", wrong.body);
    // The code of the enrolment's time step was used already: refused.
    let replayed = send_code(&app, &wrong, &authenticator.code(&app)).await;
    assert_eq!(replayed.status, 401, "a code already used is refused: {}", replayed.body);
    // Next time step: accepted, a ticket for the service.
    app.clock.advance(TimeDelta::seconds(30));
    let code = authenticator.code(&app);
    let ok = send_code(&app, &replayed, &code).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let ticket = ok.ticket();
    let (status, _, xml) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert_eq!(status, 200);
    assert!(xml.contains("<cas:authenticationMethod>pwd</cas:authenticationMethod>"), "{xml}");
    assert!(xml.contains("<cas:authenticationMethod>otp</cas:authenticationMethod>"), "{xml}");
    crate::helpers::assert_valid_cas_xml(&xml);

    // The same code again, from another login in the same time step.
    logout(&app).await;
    let page = code_page(&app, "c.martin", "Bonjour-2026!").await;
    let again = send_code(&app, &page, &code).await;
    assert_eq!(again.status, 401, "the same code twice: {}", again.body);
}

#[tokio::test]
async fn recovery_codes_work_once_and_are_shown_once_without_cache() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Personnel).await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    let r = app.login(None, "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 200);
    let page = app.client.get(app.url("/compte/deux-etapes")).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    let page = result(page).await;
    let authenticator = App::scan(&page.body);
    let mut form = hidden_inputs(&page.body);
    form.push(("code".into(), authenticator.code(&app)));
    let shown = app.client.post(app.url("/compte/deux-etapes/activer")).form(&form).send().await.unwrap();
    assert_eq!(shown.status().as_u16(), 200);
    assert_eq!(shown.headers()["cache-control"], "no-store", "the recovery codes are never cached");
    let codes = recovery_codes(&result(shown).await);
    // Shown once: the section no longer lists them.
    let section = get(&app, "/compte/deux-etapes").await;
    assert!(!section.body.contains(&codes[0]));
    assert!(text(&section).contains("Codes de secours restants : 10 sur 10"), "{}", section.body);
    logout(&app).await;

    let page = code_page(&app, "c.martin", "Bonjour-2026!").await;
    let ok = send_code(&app, &page, &codes[3].to_uppercase()).await;
    assert_eq!(ok.status, 303, "a recovery code (any case): {}", ok.body);
    logout(&app).await;
    let page = code_page(&app, "c.martin", "Bonjour-2026!").await;
    let twice = send_code(&app, &page, &codes[3]).await;
    assert_eq!(twice.status, 401, "a recovery code used twice: {}", twice.body);
    let unknown = send_code(&app, &twice, "aaaaa-bbbbb").await;
    assert_eq!(unknown.status, 401);
}

#[tokio::test]
async fn wrong_codes_are_throttled_before_being_checked() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Personnel).await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    let (authenticator, _) = enrol_in_mon_compte(&app, "c.martin", "Bonjour-2026!").await;
    logout(&app).await;
    app.clock.advance(TimeDelta::seconds(30));
    let mut page = code_page(&app, "c.martin", "Bonjour-2026!").await;
    let right = authenticator.code(&app);
    let wrong = wrong_code(&right);
    for _ in 0..5 {
        page = send_code(&app, &page, wrong).await;
        assert_eq!(page.status, 401, "{}", page.body);
    }
    let throttled = send_code(&app, &page, &right).await;
    assert_eq!(throttled.status, 429, "even the right code waits: {}", throttled.body);
    assert!(text(&throttled).contains("Trop de codes incorrects"), "{}", throttled.body);
}

#[tokio::test]
async fn a_stale_or_forged_pending_login_is_a_french_page() {
    let app = spawn_app().await;
    let page = app.get_login(&[("profile", "eleve-parent")]).await;
    let mut form = hidden_inputs(&page.body);
    form.retain(|(k, _)| k == "csrf_token");
    form.push(("jeton".into(), "inconnu".into()));
    form.push(("code".into(), "123456".into()));
    for path in ["/cas/login/code", "/cas/login/enrolement", "/cas/login/codes-de-secours"] {
        let r = result(app.client.post(app.url(path)).form(&form).send().await.unwrap()).await;
        assert_eq!(r.status, 410, "{path}: {}", r.body);
        assert!(text(&r).contains("Connexion expirée"), "{}", r.body);
    }
    // Without the CSRF token: refused before anything.
    let r = app.client.post(app.url("/cas/login/code")).form(&[("jeton", "x"), ("code", "1")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn oidc_id_token_carries_amr_and_acr_after_the_code() {
    let app = oidc_app().await;
    let (authenticator, _) = enrol_in_mon_compte(&app, "c.martin", PASSWORD).await;
    let fresh = app.another_browser();
    app.clock.advance(TimeDelta::seconds(30));
    let first = fresh.authorize(&auth_params("s1")).await;
    let to_login = first.location.unwrap();
    let service = param(&to_login, "service").unwrap();
    let page = fresh.login(Some(&service), "c.martin", PASSWORD).await;
    assert_eq!(page.status, 200, "the code before any code of OIDC: {}", page.body);
    let back = send_code(&fresh, &page, &authenticator.code(&app)).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let done = fresh.follow(&back.location.unwrap()).await;
    let location = done.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let (status, tokens) = fresh.exchange(&param(&location, "code").unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]), "{claims}");
    assert_eq!(claims["acr"], "urn:idp:acr:mfa");

    let discovery: serde_json::Value =
        reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    let acr = discovery["acr_values_supported"].as_array().unwrap();
    assert!(acr.contains(&serde_json::json!("urn:idp:acr:mfa")), "{discovery}");
    assert!(discovery["claims_supported"].as_array().unwrap().contains(&serde_json::json!("amr")));
}

#[tokio::test]
async fn a_password_alone_gives_amr_pwd() {
    let app = oidc_app().await;
    let tokens = app.tokens().await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]), "{claims}");
    assert_eq!(claims["acr"], "urn:idp:acr:pwd");
}

pub(crate) const ADMIN: &str = "sec.college";
pub(crate) const ADMIN_PASSWORD: &str = "Secretariat-2026!";

/// A server with the default policy (administrators must use a second
/// factor), an administrator of 0370001A and a person of that school.
pub(crate) async fn with_admin() -> TestApp {
    let app = spawn_app_with(|s| s.mfa = Default::default()).await;
    app.active_account(ADMIN, ADMIN_PASSWORD, Profile::Personnel).await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    let console = app.stores.console(app.clock.clone());
    console.grant(&Login::parse(ADMIN).unwrap(), Scope::Schools(vec!["0370001A".into()])).await.unwrap();
    app
}

#[tokio::test]
async fn an_administrator_enrols_right_after_the_password_before_anything_else() {
    let app = with_admin().await;
    let r = app.login(None, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = text(&r);
    assert!(body.contains("la validation en deux étapes est obligatoire"), "{body}");
    assert!(body.contains("<label for=\"code\">Code de vérification</label>"), "{body}");
    // No session yet: the console asks to log in.
    assert_eq!(get(&app, "/gestion/").await.status, 401);
    assert_eq!(get(&app, "/compte/").await.status, 401);

    let authenticator = App::scan(&r.body);
    let mut form = hidden_inputs(&r.body);
    form.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    let mut wrong = form.clone();
    wrong.push(("code".into(), "12".into()));
    let refused = result(app.client.post(app.url("/cas/login/enrolement")).form(&wrong).send().await.unwrap()).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(text(&refused).contains("cle-secrete"), "the same enrolment again: {}", refused.body);
    form.push(("code".into(), authenticator.code(&app)));
    let codes = result(app.client.post(app.url("/cas/login/enrolement")).form(&form).send().await.unwrap()).await;
    assert_eq!(codes.status, 200, "{}", codes.body);
    recovery_codes(&codes);
    assert_eq!(get(&app, "/gestion/").await.status, 401, "still no session before « Continuer »");
    let mut go_on = hidden_inputs(&codes.body);
    go_on.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    let welcome =
        result(app.client.post(app.url("/cas/login/codes-de-secours")).form(&go_on).send().await.unwrap()).await;
    assert_eq!(welcome.status, 200, "{}", welcome.body);
    assert_eq!(get(&app, "/gestion/").await.status, 200, "enrolled and logged in with it");
    // The continue form is spent.
    let again =
        result(app.client.post(app.url("/cas/login/codes-de-secours")).form(&go_on).send().await.unwrap()).await;
    assert_eq!(again.status, 410);
}

#[tokio::test]
async fn gestion_stays_closed_to_a_session_without_second_factor() {
    let app = with_admin().await;
    // Logged in before holding a role (no second factor asked then).
    let console = app.stores.console(app.clock.clone());
    console.revoke(&Login::parse(ADMIN).unwrap()).await.unwrap();
    let r = app.login(None, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    console.grant(&Login::parse(ADMIN).unwrap(), Scope::Schools(vec!["0370001A".into()])).await.unwrap();
    let closed = get(&app, "/gestion/").await;
    assert_eq!(closed.status, 303, "{}", closed.body);
    assert_eq!(closed.location.as_deref(), Some("/compte/deux-etapes"));
    assert_eq!(get(&app, "/gestion/compte/c.martin").await.status, 303);
    // Enrolled in Mon compte: the code proves the factor for this session.
    let page = get(&app, "/compte/deux-etapes").await;
    let authenticator = App::scan(&page.body);
    let done = activate(&app, &page, &authenticator.code(&app)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(get(&app, "/gestion/").await.status, 200);
}

#[tokio::test]
async fn the_help_desk_removes_a_second_factor_audited_and_told_by_email() {
    let app = with_admin().await;
    // The person enrols and has a validated address.
    let person = app.another_browser();
    let (_, _) = enrol_in_mon_compte(&person, "c.martin", "Bonjour-2026!").await;
    let id = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap().id;
    let mut extras = app.stores.security.get(id).await.unwrap();
    extras.email_verified = Some("c.martin@example.fr".into());
    app.stores.security.save(id, &extras).await.unwrap();
    logout(&person).await;

    // The administrator, enrolled at login.
    let r = app.login(None, ADMIN, ADMIN_PASSWORD).await;
    let authenticator = App::scan(&r.body);
    let mut form = hidden_inputs(&r.body);
    form.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    form.push(("code".into(), authenticator.code(&app)));
    let codes = result(app.client.post(app.url("/cas/login/enrolement")).form(&form).send().await.unwrap()).await;
    let mut go_on = hidden_inputs(&codes.body);
    go_on.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    app.client.post(app.url("/cas/login/codes-de-secours")).form(&go_on).send().await.unwrap();

    let page = get(&app, "/gestion/compte/c.martin").await;
    assert!(text(&page).contains("Supprimer la validation en deux étapes"), "{}", page.body);
    let before = outbox(&app).len();
    let done = post(&app, "/gestion/compte/c.martin", "/gestion/compte/c.martin/deux-etapes", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let shown = get(&app, done.location.as_deref().unwrap()).await;
    assert!(text(&shown).contains("La validation en deux étapes du compte a été supprimée"), "{}", shown.body);
    assert!(!text(&shown).contains("Supprimer la validation en deux étapes"));
    let trail = app.stores.admins.audit_since(None).await.unwrap();
    assert!(trail.iter().any(|e| e.action == "deux-etapes" && e.target == "c.martin" && e.actor == ADMIN), "{trail:?}");
    let mails = outbox(&app);
    assert_eq!(mails.len(), before + 1);
    let mail = crate::account_helpers::decode_qp(mails.last().unwrap());
    assert!(mail.contains("c.martin@example.fr"));
    assert!(mail.contains("a été supprimée"), "{mail}");

    // The person logs in with the password alone again.
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    let r = person.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn idp_account_mfa_reset_removes_it_from_the_command_line() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Personnel).await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    enrol_in_mon_compte(&app, "c.martin", "Bonjour-2026!").await;
    logout(&app).await;
    code_page(&app, "c.martin", "Bonjour-2026!").await;

    let idp = Idp::new(app.data_dir.path());
    let out = idp.run(&["account", "mfa-reset", "c.martin"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "no secret printed");
    assert!(out.stderr.contains("removed"), "{}", out.stderr);
    let r = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 303, "password alone again: {}", r.body);
    let again = idp.run(&["account", "mfa-reset", "c.martin"]).await;
    assert!(again.success());
    assert!(again.stderr.contains("no second factor"), "{}", again.stderr);
    let unknown = idp.run(&["account", "mfa-reset", "personne"]).await;
    assert!(!unknown.success());
}

/// On PostgreSQL (`IDP_TEST_DATABASE_URL`): the tables, the sealed secret
/// read back, and of two nodes accepting the same code at once, only one
/// does (one conditional update).
#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_a_code_is_accepted_once_even_by_two_nodes_at_once() {
    let Some(admin_url) = crate::cluster::postgres_url() else { return };
    let db = crate::cluster::TestDatabase::create(&admin_url).await;
    let url = db.url.clone();
    let app = spawn_app_with(|s| s.database_url = Some(url)).await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Personnel).await;
    app.service("cdt", "^https://cdt\\.example\\.test/.*", &["uid"], None).await;
    let (authenticator, codes) = enrol_in_mon_compte(&app, "c.martin", "Bonjour-2026!").await;
    logout(&app).await;
    app.clock.advance(TimeDelta::seconds(30));
    let page = code_page(&app, "c.martin", "Bonjour-2026!").await;
    let ok = send_code(&app, &page, &authenticator.code(&app)).await;
    assert_eq!(ok.status, 303, "{}", ok.body);

    let id = app.stores.accounts.find_by_login(&Login::parse("c.martin").unwrap()).await.unwrap().unwrap().id;
    let repo = app.stores.second_factors.clone();
    let record = repo.totp(id).await.unwrap().unwrap();
    let next = record.last_step + 1;
    let (a, b) = (repo.clone(), repo.clone());
    let (one, two) = tokio::join!(
        tokio::spawn(async move { a.use_step(id, next).await.unwrap() }),
        tokio::spawn(async move { b.use_step(id, next).await.unwrap() })
    );
    assert!(one.unwrap() ^ two.unwrap(), "exactly one of two nodes accepts a time step");
    let hash = idp_core::second_factor::recovery_hash(&codes[0]);
    let (a, b) = (repo.clone(), repo.clone());
    let (h1, h2) = (hash.clone(), hash);
    let (one, two) = tokio::join!(
        tokio::spawn(async move { a.use_recovery_code(id, &h1).await.unwrap() }),
        tokio::spawn(async move { b.use_recovery_code(id, &h2).await.unwrap() })
    );
    assert!(one.unwrap() ^ two.unwrap(), "exactly one of two nodes spends a recovery code");
    assert_eq!(repo.recovery_codes_left(id).await.unwrap(), 9);
}
