//! The password step tells the truth: the rules are stated before typing,
//! the live indicator (`POST /compte/force-mot-de-passe`) answers with the
//! policy's own verdict for the person choosing the password, and a refused
//! form names the rule that failed, in the activation wizard, the forgotten
//! password and Mon compte.

use idp_core::account::Profile;

use crate::account_helpers::{get, post, start, text};
use crate::helpers::{LoginResult, TestApp, hidden_inputs, result, spawn_app};

const METER: &str = "/compte/force-mot-de-passe";
const PASSPHRASE: &str = "cheval lampe orage vélo";

/// Asks the indicator with the hidden fields (CSRF token, code) of `page`.
async fn meter(app: &TestApp, page: &str, password: &str) -> (u16, serde_json::Value) {
    let mut form: Vec<(String, String)> = Vec::new();
    for (k, v) in hidden_inputs(page) {
        if !form.iter().any(|(name, _)| *name == k) {
            form.push((k, v));
        }
    }
    form.push(("mot_de_passe".into(), password.into()));
    let r = app.client.post(app.url(METER)).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(r.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The indicator's answer for `password` must be a refusal carrying
/// `reason`, labelled below « Sûr ».
fn assert_refused(answer: &serde_json::Value, reason: &str) {
    assert_eq!(answer["accepte"], false, "{answer}");
    assert!(answer["raison"].as_str().unwrap_or_default().contains(reason), "{answer}");
    let label = answer["niveau"].as_str().unwrap_or_default();
    assert!(["Très faible", "Faible", "Moyen"].contains(&label), "{answer}");
}

/// The rules every password page states before typing.
fn assert_rules_stated(body: &str) {
    for rule in [
        "Ce mot de passe doit contenir 8 caractères minimum.",
        "Il ne doit contenir ni votre identifiant, ni votre prénom, ni votre nom, ni le code de votre établissement, \
         ni le nom de l'ENT.",
        "Il ne doit pas être un mot de passe courant",
        "Il doit être jugé au moins « Sûr » par l'indicateur de sécurité",
        "Il ne doit pas dépasser 128 caractères.",
    ] {
        assert!(body.contains(rule), "missing {rule}");
    }
    assert!(!body.contains("sortes de caractères"), "no composition rule unless configured");
    assert!(body.contains(r#"aria-live="polite""#));
}

#[tokio::test]
async fn mon_compte_indicator_and_form_agree_for_a_person_named_martin() {
    let app = spawn_app().await;
    app.active_account("cmartin", "Ancien-Mot-De-Passe-9", Profile::Eleve).await;
    let r = app.login(None, "cmartin", "Ancien-Mot-De-Passe-9").await;
    assert!(r.status == 302 || r.status == 303 || r.status == 200, "{}", r.body);
    let page = get(&app, "/compte/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_rules_stated(&text(&page));

    let cases = [
        ("bicyclette", "trop facile à deviner"),
        ("Touraine2024!", "contient votre identifiant, votre prénom, votre nom"),
        ("Martin.2024!x", "contient votre identifiant, votre prénom, votre nom"),
        ("Soleil2024!", "mot de passe courant"),
        ("Ab1!x", "trop court"),
    ];
    for (password, reason) in cases {
        let (status, answer) = meter(&app, &page.body, password).await;
        assert_eq!(status, 200);
        assert_refused(&answer, reason);
        let r = post(
            &app,
            "/compte/",
            "/compte/mot-de-passe",
            &[("mot_de_passe_actuel", "Ancien-Mot-De-Passe-9"), ("mot_de_passe", password), ("confirmation", password)],
        )
        .await;
        assert_eq!(r.status, 400, "{password} must be refused");
        assert!(text(&r).contains(reason), "{password}: {}", r.body);
    }
    let (_, answer) = meter(&app, &page.body, PASSPHRASE).await;
    assert_eq!(answer, serde_json::json!({ "niveau": "Très sûr", "accepte": true, "raison": null }));
    let r = post(
        &app,
        "/compte/",
        "/compte/mot-de-passe",
        &[("mot_de_passe_actuel", "Ancien-Mot-De-Passe-9"), ("mot_de_passe", PASSPHRASE), ("confirmation", PASSPHRASE)],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[tokio::test]
async fn the_activation_and_forgotten_password_steps_use_the_same_verdict() {
    let app = spawn_app().await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    let r = start(&app, "l.petit", "Prov1soire", "").await;
    assert_eq!(r.status, 303);
    // Before the password step, the indicator does not answer.
    let early = get(&app, "/compte/activation").await;
    assert_eq!(meter(&app, &early.body, PASSPHRASE).await.0, 403);
    post(&app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    let q = idp_core::questions::default_questions();
    let fields = [("question1", &*q[0]), ("reponse1", "Médor"), ("question2", &*q[1]), ("reponse2", "Saint-Étienne")];
    post(&app, "/compte/activation/questions", "/compte/activation/questions", &fields).await;
    let page = get(&app, "/compte/activation").await;
    assert_rules_stated(&text(&page));
    let (_, answer) = meter(&app, &page.body, "Lea.Petit42").await;
    assert_refused(&answer, "contient votre identifiant");
    let r = post(
        &app,
        "/compte/activation",
        "/compte/activation/mot-de-passe",
        &[("mot_de_passe", "Lea.Petit42"), ("confirmation", "Lea.Petit42")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("contient votre identifiant"), "{}", r.body);
    assert!(!text(&r).contains("Sécurité du mot de passe"), "no label computed apart from the verdict");
    let r = post(
        &app,
        "/compte/activation",
        "/compte/activation/mot-de-passe",
        &[("mot_de_passe", PASSPHRASE), ("confirmation", PASSPHRASE)],
    )
    .await;
    assert!(text(&r).contains("Compte activé !"), "{}", r.body);

    // Forgotten password, by the secret questions: the form carries the
    // code, which tells the indicator whose password it is.
    let other = app.another_browser();
    let home = result(other.client.get(other.url("/compte/mot-de-passe-oublie")).send().await.unwrap()).await;
    let mut form: Vec<(String, String)> = hidden_inputs(&home.body).into_iter().take(1).collect();
    form.extend([("identifiant".into(), "l.petit".into()), ("reponse1".into(), "Médor".into())]);
    form.push(("reponse2".into(), "Saint-Étienne".into()));
    let r = other.client.post(other.url("/compte/mot-de-passe-oublie/reponses")).form(&form).send().await.unwrap();
    let reset: LoginResult = result(r).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_rules_stated(&text(&reset));
    let (_, answer) = meter(&other, &reset.body, "Petit-Lea-2024").await;
    assert_refused(&answer, "contient votre identifiant");
    let (_, answer) = meter(&other, &reset.body, "orage velo cheval lampe").await;
    assert_eq!(answer["accepte"], true, "{answer}");
}

#[tokio::test]
async fn the_indicator_checks_csrf_needs_a_password_step_and_is_rate_limited() {
    let app = spawn_app().await;
    app.active_account("cmartin", "Ancien-Mot-De-Passe-9", Profile::Eleve).await;
    // Without a token: refused before anything is evaluated.
    let r = app.client.post(app.url(METER)).form(&[("mot_de_passe", "x")]).send().await.unwrap();
    assert_ne!(r.status().as_u16(), 200);
    // With a token but no password step (not signed in): nothing to say.
    let page = get(&app, "/compte/mot-de-passe-oublie").await;
    assert_eq!(meter(&app, &page.body, PASSPHRASE).await.0, 403);
    // Signed in: at most 120 questions a minute from one address.
    app.login(None, "cmartin", "Ancien-Mot-De-Passe-9").await;
    let page = get(&app, "/compte/").await;
    for _ in 0..120 {
        assert_eq!(meter(&app, &page.body, "a").await.0, 200);
    }
    assert_eq!(meter(&app, &page.body, "a").await.0, 429);
}

/// In headless Chromium, for a table of passwords: what the indicator shows
/// while typing and what the form then answers agree (refused ⇔ shown as
/// refused, with the same reason). Skipped without `/usr/bin/chromium`,
/// unless `IDP_TEST_REQUIRE_BROWSER=1`.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser_the_label_while_typing_and_the_verdict_agree() {
    use crate::a11y::CHROMIUM;
    use crate::helpers::npm_ready;
    if !std::path::Path::new(CHROMIUM).exists() {
        assert!(!std::env::var("IDP_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1"), "{CHROMIUM} is missing");
        println!("skipped: chromium not installed");
        return;
    }
    let dir = tokio::task::spawn_blocking(|| npm_ready("tests/a11y")).await.unwrap();
    let app = spawn_app().await;
    app.active_account("cmartin", "Ancien-Mot-De-Passe-9", Profile::Eleve).await;
    let table = [
        "court1!",
        "bicyclette",
        "Touraine2024!",
        "Martin.2024!x",
        "camille-cmartin-ent",
        "Soleil2024!",
        "kR7#pq2Z",
        PASSPHRASE,
        "Vélo-Rouge-Orage-27",
    ];
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&table).unwrap()).unwrap();
    let output = tokio::process::Command::new("node")
        .arg(dir.join("meter.mjs"))
        .arg(&app.address)
        .args(["cmartin", "Ancien-Mot-De-Passe-9"])
        .arg(file.path())
        .env("CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), table.len(), "{stdout}");
    for row in &rows {
        let shown = row["shown"].as_str().unwrap();
        assert!(shown.starts_with("Sécurité du mot de passe : "), "{row}");
        assert_eq!(row["shownAccepted"], row["submittedAccepted"], "{row}");
        if row["browserRefused"] == true {
            assert!(shown.contains("trop court"), "{row}");
            continue;
        }
        match row["error"].as_str() {
            // The reason shown while typing is the one the form gives.
            Some(error) => assert!(shown.ends_with(error), "{row}"),
            None => assert!(shown.ends_with("Sûr.") || shown.ends_with("Très sûr."), "{row}"),
        }
    }
    let accepted: Vec<_> = rows.iter().filter(|r| r["submittedAccepted"] == true).map(|r| &r["password"]).collect();
    assert_eq!(accepted, [PASSPHRASE, "Vélo-Rouge-Orage-27"], "{stdout}");
}
