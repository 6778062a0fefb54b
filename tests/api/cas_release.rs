//! What ENT services receive: SDET attributes, per-service release mapping
//! (XML and JSON), pseudonymous identifiers, access rules and
//! `ssoEnabled=false`; and the CLI that sets them up.

use serde_json::Value;
use std::collections::BTreeMap;

use idp_core::access::{AccessRule, ServicePolicy, UserId};
use idp_core::account::{Login, Profile};

use crate::cli::Idp;
use crate::helpers::{TestApp, assert_valid_cas_xml, spawn_app};

const PASSWORD: &str = "Bonjour-2026!";
const PRONOTE: &str = "https://pronote.example.test/eleve.html";
const PRONOTE_PATTERN: &str = r"https://pronote\.example\.test/.*";
const EDITEUR: &str = "https://manuels.editeur.test/ent";
const EDITEUR_PATTERN: &str = r"https://manuels\.editeur\.test/.*";
const QUIZ: &str = "https://quiz.editeur2.test/";
const QUIZ_PATTERN: &str = r"https://quiz\.editeur2\.test/.*";

/// An active account (Camille Martin, two schools) with SDET attributes.
async fn ent_account(app: &TestApp, login: &str, profile: Profile, attributes: &[(&str, &[&str])]) {
    let attributes: BTreeMap<String, Vec<String>> =
        attributes.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect();
    app.active_account_with(login, PASSWORD, profile, attributes).await;
}

async fn eleve(app: &TestApp) {
    ent_account(
        app,
        "l.petit",
        Profile::Eleve,
        &[
            ("ENTPersonDateNaissance", &["04/03/2012"]),
            ("ENTEleveClasses", &["0370001A$4B", "0370001A$LATIN"]),
            ("ENTEleveMEF", &["10110001110"]),
            ("ENTPersonJointure", &["AC-ORLEANS-TOURS$1234567"]),
        ],
    )
    .await;
}

fn policy(f: impl FnOnce(&mut ServicePolicy)) -> ServicePolicy {
    let mut p = ServicePolicy::default();
    f(&mut p);
    p
}

async fn validate(app: &TestApp, service: &str, ticket: &str, format: Option<&str>) -> String {
    let mut query = vec![("service", service), ("ticket", ticket)];
    if let Some(f) = format {
        query.push(("format", f));
    }
    let (status, _, body) = app.validate("/cas/p3/serviceValidate", &query).await;
    assert_eq!(status, 200);
    if format.is_none() {
        assert_valid_cas_xml(&body);
    }
    body
}

#[tokio::test]
async fn a_pronote_style_service_gets_its_attributes_under_its_own_names() {
    let app = spawn_app().await;
    eleve(&app).await;
    let rules = [
        "nom=family_name",
        "prenom=given_name",
        "dateNaissance=ENTPersonDateNaissance",
        "categories=ENTPersonProfils:numeric",
        "classes=ENTEleveClasses",
        "uai=school:first",
        "ENTPersonJointure",
    ];
    app.service("pronote", PRONOTE_PATTERN, &rules, None).await;
    let ticket = app.login(Some(PRONOTE), "l.petit", PASSWORD).await.ticket();
    let body = validate(&app, PRONOTE, &ticket, None).await;
    assert!(body.contains("<cas:user>l.petit</cas:user>"), "{body}");
    for expected in [
        "<cas:nom>Martin</cas:nom>",
        "<cas:prenom>Camille</cas:prenom>",
        "<cas:dateNaissance>04/03/2012</cas:dateNaissance>",
        "<cas:categories>National_1</cas:categories>",
        "<cas:classes>0370001A$4B</cas:classes>",
        "<cas:classes>0370001A$LATIN</cas:classes>",
        "<cas:uai>0370001A</cas:uai>",
        "<cas:ENTPersonJointure>AC-ORLEANS-TOURS$1234567</cas:ENTPersonJointure>",
    ] {
        assert!(body.contains(expected), "{expected} missing: {body}");
    }
    assert!(!body.contains("0370002B"), ":first keeps one school: {body}");
    assert!(!body.contains("family_name") && !body.contains("ENTEleveMEF"), "only the mapped names: {body}");

    // JSON: single values as strings, multiple values as arrays.
    let ticket = app.get_login(&[("service", PRONOTE)]).await.ticket();
    let json: Value = serde_json::from_str(&validate(&app, PRONOTE, &ticket, Some("JSON")).await).unwrap();
    let attrs = &json["serviceResponse"]["authenticationSuccess"]["attributes"];
    assert_eq!(attrs["nom"], "Martin");
    assert_eq!(attrs["categories"], "National_1");
    assert_eq!(attrs["classes"], serde_json::json!(["0370001A$4B", "0370001A$LATIN"]));
    assert_eq!(attrs["uai"], "0370001A");
}

#[tokio::test]
async fn pseudonyms_are_stable_across_logins_and_distinct_across_services() {
    let app = spawn_app().await;
    eleve(&app).await;
    let pseudonymous = || policy(|p| p.user_id = UserId::Pseudonym);
    app.service_with_policy("editeur", EDITEUR_PATTERN, &["ENTEleveMEF"], None, pseudonymous()).await;
    app.service_with_policy("quiz", QUIZ_PATTERN, &["id=pseudonym"], None, pseudonymous()).await;

    let user_of = |body: &str| {
        let start = body.find("<cas:user>").unwrap() + "<cas:user>".len();
        body[start..body.find("</cas:user>").unwrap()].to_owned()
    };
    let ticket = app.login(Some(EDITEUR), "l.petit", PASSWORD).await.ticket();
    let first = user_of(&validate(&app, EDITEUR, &ticket, None).await);
    assert_ne!(first, "l.petit");
    assert!(first.len() >= 32 && first.chars().all(|c| c.is_ascii_alphanumeric()), "{first}");

    // Log out, log in again: the same pseudonym.
    browser_logout(&app).await;
    let ticket = app.login(Some(EDITEUR), "l.petit", PASSWORD).await.ticket();
    let body = validate(&app, EDITEUR, &ticket, None).await;
    assert_eq!(user_of(&body), first);
    assert!(!body.contains("l.petit") && !body.contains("Martin"), "nothing identifying: {body}");

    // Another service: another pseudonym, also released as an attribute.
    let ticket = app.get_login(&[("service", QUIZ)]).await.ticket();
    let body = validate(&app, QUIZ, &ticket, None).await;
    let other = user_of(&body);
    assert_ne!(other, first);
    assert!(body.contains(&format!("<cas:id>{other}</cas:id>")), "{body}");
    let ticket = app.get_login(&[("service", QUIZ)]).await.ticket();
    assert_eq!(user_of(&validate(&app, QUIZ, &ticket, None).await), other);
}

async fn browser_logout(app: &TestApp) {
    let r = app.client.get(app.url("/cas/logout")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_parent_is_refused_by_a_staff_only_service_with_a_french_page() {
    let app = spawn_app().await;
    ent_account(&app, "p.parent", Profile::Parent, &[]).await;
    ent_account(&app, "d.doc", Profile::Autre, &[("ENTPersonProfils", &["National_DOC"])]).await;
    let staff_only = policy(|p| {
        p.access = AccessRule::parse(&["personnel".into(), "National_DOC".into()], &[]).unwrap();
    });
    app.service_with_policy("cdi", PRONOTE_PATTERN, &["uid"], None, staff_only).await;
    app.service("moodle", EDITEUR_PATTERN, &["uid"], None).await;

    let r = app.login(Some(PRONOTE), "p.parent", PASSWORD).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.location.is_none(), "no redirect, no ticket: {:?}", r.location);
    assert!(r.body.contains("Accès refusé") && r.body.contains("Service cdi"), "{}", r.body);
    assert!(
        r.body.contains("Ce service n&#x27;est pas ouvert à votre profil")
            || r.body.contains("pas ouvert à votre profil")
    );
    assert!(!r.body.contains("ST-"), "{}", r.body);
    // The SSO session stays good for the services open to parents...
    let ok = app.get_login(&[("service", EDITEUR)]).await;
    assert_eq!(ok.status, 302);
    // ...and the staff-only one still refuses it through single sign-on.
    let again = app.get_login(&[("service", PRONOTE)]).await;
    assert_eq!(again.status, 403, "{}", again.body);

    // A documentalist (a national code) is let in.
    let doc = app.another_browser();
    let ticket = doc.login(Some(PRONOTE), "d.doc", PASSWORD).await.ticket();
    assert!(validate(&doc, PRONOTE, &ticket, None).await.contains("<cas:user>d.doc</cas:user>"));
}

#[tokio::test]
async fn a_school_rule_refuses_people_of_other_schools() {
    let app = spawn_app().await;
    eleve(&app).await;
    let other_school = policy(|p| p.access = AccessRule::parse(&[], &["0370999Z".into()]).unwrap());
    app.service_with_policy("college", PRONOTE_PATTERN, &["uid"], None, other_school).await;
    let r = app.login(Some(PRONOTE), "l.petit", PASSWORD).await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("pas ouvert aux usagers de votre établissement"), "{}", r.body);
    assert!(r.body.contains(r#"lang="fr""#));
}

#[tokio::test]
async fn sso_disabled_forces_credentials_for_that_service_only() {
    let app = spawn_app().await;
    eleve(&app).await;
    app.service("moodle", EDITEUR_PATTERN, &["uid"], None).await;
    app.service_with_policy("examens", PRONOTE_PATTERN, &["uid"], None, policy(|p| p.sso_enabled = false)).await;
    app.login(Some(EDITEUR), "l.petit", PASSWORD).await.ticket();
    assert_eq!(app.get_login(&[("service", EDITEUR)]).await.status, 302, "SSO for the others");

    let page = app.get_login(&[("service", PRONOTE)]).await;
    assert_eq!(page.status, 200, "the credentials form, not a ticket");
    assert!(page.location.is_none() && page.body.contains("Mot de passe"), "{}", page.body);
    // gateway cannot get a ticket without credentials either: back without one.
    let gw = app.get_login(&[("service", PRONOTE), ("gateway", "true")]).await;
    assert_eq!(gw.location.as_deref(), Some(PRONOTE));

    let ticket = app.login(Some(PRONOTE), "l.petit", PASSWORD).await.ticket();
    let body = validate(&app, PRONOTE, &ticket, None).await;
    assert!(body.contains("<cas:isFromNewLogin>true</cas:isFromNewLogin>"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_imports_sdet_attributes_and_registers_mapping_rules_and_policies() {
    let app = spawn_app().await;
    ent_account(&app, "m.durand", Profile::Personnel, &[]).await;
    let idp = Idp::new(app.data_dir.path());
    let csv = app.data_dir.path().join("annuaire.csv");
    std::fs::write(
        &csv,
        "login;profile;given_name;family_name;school;ENTPersonJointure;entpersonprofils;ENTAuxEnsClasses;ENTPersonDateNaissance\n\
         m.durand;personnel;Marc;Durand;0370001A;AC-ORLEANS-TOURS$77;National_ENS|National_DIR;0370001A$4B|0370001A$3A;1980-05-06\n\
         e.neuf;eleve;Emma;Neuf;0370001A;AC-ORLEANS-TOURS$88;National_ELV;;12/09/2013\n",
    )
    .unwrap();
    let out = idp.run(&["account", "import", csv.to_str().unwrap()]).await;
    out.ok();
    assert_eq!(idp.field("m.durand", "ENTAuxEnsClasses").await, "0370001A$4B | 0370001A$3A");
    assert_eq!(idp.field("m.durand", "ENTPersonDateNaissance").await, "06/05/1980");
    assert_eq!(idp.field("m.durand", "profile").await, "personnel (National_ENS National_DIR)");
    assert_eq!(idp.field("e.neuf", "ENTPersonJointure").await, "AC-ORLEANS-TOURS$88");
    assert_eq!(idp.field("m.durand", "state").await, "active", "an update keeps the state");

    let bad = app.data_dir.path().join("bad.csv");
    std::fs::write(&bad, "login,profile,given_name,family_name,ENTPersonDateNaissance\nx.y,eleve,X,Y,31/02/2012\n")
        .unwrap();
    idp.run(&["account", "import", bad.to_str().unwrap()]).await.fails_with("line 2");

    idp.run(&[
        "service",
        "add",
        "pronote",
        "--name",
        "Pronote",
        "--url-pattern",
        PRONOTE_PATTERN,
        "--attribute",
        "nom=family_name",
        "--attribute",
        "categories=ENTPersonProfils:numeric",
        "--attribute",
        "uid",
        "--allow-profile",
        "personnel",
        "--allow-school",
        "0370001A",
    ])
    .await
    .ok();
    idp.run(&["service", "add", "x", "--name", "X", "--url-pattern", "https://x/.*", "--attribute", "a=b:last"])
        .await
        .fails_with("attribute");
    idp.run(&["service", "add", "y", "--name", "Y", "--url-pattern", "https://y/.*", "--allow-profile", "prof"])
        .await
        .fails_with("profile");
    let list = idp.run(&["service", "list"]).await;
    let line = list.stdout.lines().find(|l| l.starts_with("pronote")).unwrap().to_owned();
    assert!(line.contains("attributes=nom=family_name,categories=ENTPersonProfils:numeric,uid"), "{line}");
    assert!(
        line.contains("profiles=personnel") && line.contains("schools=0370001A") && line.contains("sso=true"),
        "{line}"
    );

    let ticket = app.login(Some(PRONOTE), "m.durand", PASSWORD).await.ticket();
    let body = validate(&app, PRONOTE, &ticket, None).await;
    assert!(body.contains("<cas:nom>Durand</cas:nom>"), "{body}");
    assert!(body.contains("<cas:categories>National_3</cas:categories>"), "{body}");
    assert!(body.contains("<cas:categories>National_4</cas:categories>"), "{body}");

    // update: a pseudonym instead of the login, SSO off, every profile.
    idp.run(&["service", "update", "pronote", "--user-id", "pseudonym", "--sso-enabled", "false", "--any-profile"])
        .await
        .ok();
    let list = idp.run(&["service", "list"]).await;
    let line = list.stdout.lines().find(|l| l.starts_with("pronote")).unwrap().to_owned();
    assert!(line.contains("profiles=*") && line.contains("sso=false") && line.contains("user=pseudonym"), "{line}");
    assert_eq!(app.get_login(&[("service", PRONOTE)]).await.status, 200, "credentials again");
    idp.run(&["service", "update", "pronote", "--proxy-target", "https://t/.*"]).await.fails_with("proxy-callback");
}

/// The pseudonym store and the service policy column, on the test's
/// SQLite and, when `IDP_TEST_DATABASE_URL` is set, on PostgreSQL: two
/// racing first logins keep one pseudonym, and pseudonyms go with their
/// account.
async fn pseudonyms_and_policies_are_stored(app: &TestApp) {
    use idp_core::service::ServiceId;
    use sea_orm::ConnectionTrait;

    eleve(app).await;
    let staff = policy(|p| {
        p.access = AccessRule::parse(&["National_ENS".into()], &["0370001A".into()]).unwrap();
        p.sso_enabled = false;
        p.user_id = UserId::Pseudonym;
    });
    app.service_with_policy("editeur", EDITEUR_PATTERN, &["id=pseudonym"], None, staff.clone()).await;
    let stored = app.stores.services.get(&ServiceId::parse("editeur").unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.policy.access, staff.access);
    assert!(!stored.policy.sso_enabled && stored.policy.user_id == UserId::Pseudonym && stored.policy.proxy.is_none());

    let account = app.stores.accounts.find_by_login(&Login::parse("l.petit").unwrap()).await.unwrap().unwrap();
    let (editeur, quiz) = (ServiceId::parse("editeur").unwrap(), ServiceId::parse("quiz").unwrap());
    let store = app.stores.pseudonyms.clone();
    let (a, b) = tokio::join!(
        store.get_or_create(&editeur, account.id, "candidat-a".into()),
        store.get_or_create(&editeur, account.id, "candidat-b".into())
    );
    assert_eq!(a.unwrap(), b.unwrap(), "one pseudonym per (service, account)");
    let other = store.get_or_create(&quiz, account.id, "candidat-c".into()).await.unwrap();
    assert_eq!(other, "candidat-c");

    let count = |db: sea_orm::DatabaseConnection| async move {
        let row = db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM pseudonyms",
        ));
        row.await.unwrap().unwrap().try_get::<i64>("", "n").unwrap()
    };
    assert_eq!(count(app.stores.db.clone()).await, 2);
    app.stores.accounts.delete(&Login::parse("l.petit").unwrap()).await.unwrap();
    assert_eq!(count(app.stores.db.clone()).await, 0, "deleted with the account");
}

#[tokio::test(flavor = "multi_thread")]
async fn pseudonyms_and_policies_are_stored_in_sqlite() {
    pseudonyms_and_policies_are_stored(&spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pseudonyms_and_policies_are_stored_in_postgresql() {
    let Some(admin_url) = crate::cluster::postgres_url() else { return };
    let db = crate::cluster::TestDatabase::create(&admin_url).await;
    let url = db.url.clone();
    let app = crate::helpers::spawn_app_with(|s| s.database_url = Some(url)).await;
    pseudonyms_and_policies_are_stored(&app).await;
}

#[tokio::test]
async fn access_rules_tightened_after_a_ticket_was_issued_refuse_its_validation() {
    let app = spawn_app().await;
    ent_account(&app, "p.parent", Profile::Parent, &[]).await;
    app.service("cdi", PRONOTE_PATTERN, &["uid"], None).await;
    let ticket = app.login(Some(PRONOTE), "p.parent", PASSWORD).await.ticket();
    // The operator makes the service staff-only before the service validates.
    let id = idp_core::service::ServiceId::parse("cdi").unwrap();
    let mut service = app.stores.services.get(&id).await.unwrap().unwrap();
    service.policy.access = AccessRule::parse(&["personnel".into()], &[]).unwrap();
    app.stores.services.update(service).await.unwrap();
    let body = validate(&app, PRONOTE, &ticket, None).await;
    assert_valid_cas_xml(&body);
    assert!(body.contains(r#"code="INVALID_SERVICE""#), "{body}");
    assert!(!body.contains("p.parent</cas:user>"), "{body}");
}
