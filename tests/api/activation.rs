//! The activation wizard over HTTP, page by page as in the real ENT: by e-mail
//! (the link read from the outbox), by secret questions, reactivation after
//! a reset, expired and reused links, refusals with their reasons, and the
//! rule that a provisional password never gets a ticket.

use chrono::TimeDelta;

use idp_core::account::{AccountState, Login};
use idp_core::clock::Clock;
use idp_core::secret::Secret;

use crate::account_helpers::{activate_with_questions, get, get_with, last_link, outbox, post, post_with, start, text};
use crate::helpers::{TestApp, browser, spawn_app};

const SERVICE: &str = "https://vie-scolaire.example.test/accueil";
const PATTERN: &str = r"https://vie-scolaire\.example\.test/.*";

async fn app() -> TestApp {
    let app = spawn_app().await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    app.service("vs", PATTERN, &["uid"], None).await;
    app
}

#[tokio::test]
async fn activation_by_email_from_start_to_a_service_ticket() {
    let app = app().await;
    // Before activation, the provisional password never gets a ticket.
    let r = app.login(Some(SERVICE), "l.petit", "Prov1soire").await;
    assert_eq!(r.status, 200);
    assert!(r.location.is_none());
    assert!(text(&r).contains("Activer mon compte"), "{}", r.body);

    // The login page's link keeps the service.
    let login_page = app.get_login(&[("profile", "eleve-parent"), ("service", SERVICE)]).await;
    assert!(text(&login_page).contains("/compte/activation?service=https%3A%2F%2Fvie-scolaire"), "{}", login_page.body);
    let query = format!("?service={}", url::form_urlencoded::byte_serialize(SERVICE.as_bytes()).collect::<String>());
    let page = get(&app, &format!("/compte/activation{query}")).await;
    let body = text(&page);
    for t in ["Identification", "Identifiant", "Mot de passe provisoire", "Ce que nous vous avons fourni.", "Continuer"]
    {
        assert!(body.contains(t), "missing {t}");
    }
    let r = start(&app, "l.petit", "Prov1soire", &query).await;
    assert_eq!(r.status, 303, "{}", r.body);

    // CGU: the charter, the box must be ticked.
    let cgu = get(&app, "/compte/activation").await;
    let body = text(&cgu);
    assert!(body.contains("Conditions Générales d'Utilisation"));
    assert!(body.contains("Charte d'utilisation de l'Espace Numérique de Travail Touraine e-school"));
    assert!(body.contains("J'ai lu et j'accepte les Conditions Générales d'Utilisation décrites ci-dessus."));
    let r = post(&app, "/compte/activation", "/compte/activation/cgu", &[]).await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Pour continuer, cochez la case"), "{}", r.body);
    let r = post(&app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    assert_eq!(r.status, 303);

    // E-mail: the real ENT's text; the two addresses must match.
    let page = get(&app, "/compte/activation").await;
    let body = text(&page);
    assert!(body.contains("Adresses de messagerie"));
    assert!(body.contains("le GIP RECIA, responsable du traitement informatique"));
    assert!(body.contains(r#"<label for="courriel">Votre adresse électronique</label>"#));
    assert!(body.contains(r#"type="email""#));
    assert!(body.contains("Questions secrètes"));
    let r = post(
        &app,
        "/compte/activation",
        "/compte/activation/courriel",
        &[("courriel", "parent.petit@example.fr"), ("courriel_confirmation", "parent.petti@example.fr")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Les deux adresses électroniques saisies sont différentes."));
    assert!(outbox(&app).is_empty());
    let r = post(
        &app,
        "/compte/activation",
        "/compte/activation/courriel",
        &[("courriel", "parent.petit@example.fr"), ("courriel_confirmation", "parent.petit@example.fr")],
    )
    .await;
    assert_eq!(r.status, 303);
    let waiting = text(&get(&app, "/compte/activation").await);
    assert!(waiting.contains("parent.petit@example.fr"), "{waiting}");

    // The e-mail: headers and words of the real ENT, a file of mode 0600.
    let mails = outbox(&app);
    assert_eq!(mails.len(), 1);
    let mail = crate::account_helpers::decode_qp(&mails[0]);
    let from = mail.lines().find(|l| l.starts_with("From: ")).unwrap();
    assert!(from.contains("ENT Touraine-eschool") && from.contains("<confirmation-ent@touraine-eschool.fr>"), "{from}");
    assert!(mail.contains("To: parent.petit@example.fr"), "{mail}");
    assert!(mail.contains("Subject: "), "{mail}");
    assert!(mail.contains("si vous n'êtes pas Léa Petit"), "{mail}");
    assert!(mail.contains("au plus tard 48 heures après le début de l'activation de votre compte"));
    assert!(!mail.contains("UTC"), "Paris time: {mail}");
    assert!(mail.contains("text/plain") && mail.contains("text/html"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = app.data_dir.path().join("outbox");
        let file = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let link = last_link(&app, "/compte/activation/courriel");
    let code = link.split("code=").nth(1).unwrap();
    assert!(code.len() >= 22, "≥ 128 bits");

    // Opened in another browser (the phone's mail app): a GET shows the
    // page and spends nothing, so a mail scanner cannot burn the code.
    // It asks for a confirmation and says nothing is validated yet.
    let phone = browser();
    for _ in 0..2 {
        let page = get_with(&phone, &app, &link).await;
        assert_eq!(page.status, 200);
        let body = text(&page);
        assert!(body.contains("Validation de votre adresse personnelle") && body.contains("Continuer"), "{body}");
        assert!(!body.contains("Adresse personnelle confirmée") && !body.contains("est validée"), "{body}");
    }
    let r = post_with(&phone, &app, &link, "/compte/activation/courriel/confirmer", &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/compte/activation/courriel/validee"));
    // Only now: the real ENT's words, and « Continuer » to the password.
    let done = text(&get_with(&phone, &app, "/compte/activation/courriel/validee").await);
    assert!(
        done.contains("Adresse personnelle confirmée !") && done.contains("Votre adresse personnelle est validée."),
        "{done}"
    );
    assert!(done.contains(r#"<a class="button" href="/compte/activation">Continuer</a>"#), "{done}");
    assert!(done.contains("Et passez au cadre « Mot de passe », page suivante"));
    // Another browser, with no attempt, is sent to the wizard.
    assert_eq!(get_with(&browser(), &app, "/compte/activation/courriel/validee").await.status, 303);
    // Used once: the link is now spent.
    let again = get_with(&browser(), &app, &link).await;
    assert_eq!(again.status, 410);
    assert!(text(&again).contains("recommencer la procédure d'activation"));

    // Password, in the phone's browser: refusals name the rule that failed.
    let page = text(&get_with(&phone, &app, "/compte/activation").await);
    assert!(page.contains("Mot de passe") && page.contains("Confirmation mot de passe"), "{page}");
    assert!(page.contains("Ce mot de passe doit contenir 8 caractères minimum."));
    let pw = |p: &'static str, c: &'static str| {
        let phone = phone.clone();
        let app = &app;
        async move {
            post_with(
                &phone,
                app,
                "/compte/activation",
                "/compte/activation/mot-de-passe",
                &[("mot_de_passe", p), ("confirmation", c)],
            )
            .await
        }
    };
    let r = pw("court", "court").await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("trop court : il doit contenir 8 caractères minimum"), "{}", r.body);
    let r = pw("azertyuiop", "azertyuiop").await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Ce mot de passe est un mot de passe courant"), "{}", r.body);
    let r = pw("Tr4m!way", "Tr4m!way").await;
    assert!(text(&r).contains("trop facile à deviner : il doit être jugé au moins « Sûr »"), "{}", r.body);
    let r = pw("Vélo-Rouge-27", "Vélo-Rouge-28").await;
    assert!(text(&r).contains("Le mot de passe et sa confirmation sont différents."));
    let r = pw("Vélo-Rouge-27", "Vélo-Rouge-27").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = text(&r);
    assert!(
        body.contains("Compte activé !") && body.contains("Félicitations ! Votre compte ENT est maintenant actif.")
    );
    assert!(body.contains("Très sûr"));
    // Already logged in: where to change the address, with the link.
    assert!(
        body.contains(
            "Votre adresse électronique personnelle (ou de secours) : <strong>parent.petit@example.fr</strong>"
        )
    );
    assert!(body.contains(r#"<a href="/compte/">Mon compte ENT</a>"#), "{body}");
    assert!(!body.contains("Une fois connecté"), "{body}");
    // "Accès ENT" returns to the service, which gets a ticket at once.
    let access = regex::Regex::new(r#"href="(/cas/login\?service=[^"]+)">Accès ENT"#).unwrap();
    let access = access.captures(&body).unwrap_or_else(|| panic!("{body}"))[1].to_owned();
    let r = get_with(&phone, &app, &access).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let ticket = r.ticket();
    let (_, _, xml) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(xml.contains("<cas:user>l.petit</cas:user>"), "{xml}");

    let account = app.stores.accounts.find_by_login(&Login::parse("l.petit").unwrap()).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Active);
    assert_eq!(account.email.as_deref(), Some("parent.petit@example.fr"));
    assert_eq!(account.cgu_version.as_deref(), Some("1"));
    assert!(account.provisional_hash.is_none());
    // The provisional password is gone, the new one works.
    let r = browser_login(&app, "l.petit", "Prov1soire").await;
    assert_eq!(r.status, 401);
    let r = browser_login(&app, "l.petit", "Vélo-Rouge-27").await;
    assert_eq!(r.status, 303);
}

/// A fresh browser logging in to the service.
async fn browser_login(app: &TestApp, login: &str, password: &str) -> crate::helpers::LoginResult {
    let other = app.another_browser();
    other.login(Some(SERVICE), login, password).await
}

#[tokio::test]
async fn activation_by_secret_questions() {
    let app = app().await;
    let r = start(&app, "l.petit", "Prov1soire", "").await;
    assert_eq!(r.status, 303);
    post(&app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    let page = text(&get(&app, "/compte/activation/questions").await);
    for t in [
        "Sinon ...",
        "Questions secrètes",
        r#"<label for="question1">Première question secrète</label>"#,
        r#"<label for="question2">Seconde question secrète</label>"#,
        "Votre réponse à la première question secrète",
        "Votre réponse à la seconde question secrète",
        "Retour",
    ] {
        assert!(page.contains(t), "missing {t}: {page}");
    }
    let q = idp_core::questions::default_questions();
    // The same question twice is refused.
    let r = post(
        &app,
        "/compte/activation/questions",
        "/compte/activation/questions",
        &[("question1", &q[0]), ("reponse1", "a"), ("question2", &q[0]), ("reponse2", "b")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("deux questions secrètes différentes"));
    assert!(text(&r).contains(&format!(r#"<option value="{}" selected>"#, q[0])), "the choice is kept");
    let r = post(
        &app,
        "/compte/activation/questions",
        "/compte/activation/questions",
        &[("question1", &q[0]), ("reponse1", "Médor"), ("question2", &q[1]), ("reponse2", "Saint-Étienne")],
    )
    .await;
    assert_eq!(r.status, 303);
    let r = post(
        &app,
        "/compte/activation",
        "/compte/activation/mot-de-passe",
        &[("mot_de_passe", "Tr4m!way-Bleu"), ("confirmation", "Tr4m!way-Bleu")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(text(&r).contains("Compte activé !"));
    assert!(outbox(&app).is_empty(), "no e-mail on this path");
    // Answers are stored hashed, never in clear.
    let account = app.stores.accounts.find_by_login(&Login::parse("l.petit").unwrap()).await.unwrap().unwrap();
    let extras = app.stores.security.get(account.id).await.unwrap();
    let qs = extras.questions.unwrap();
    assert!(qs.answer1_hash.starts_with("$argon2id$") && !qs.answer1_hash.contains("dor"));
    assert_eq!(qs.question1, q[0]);
    assert!(account.email.is_none());
}

#[tokio::test]
async fn reload_and_retour_keep_the_server_side_state() {
    let app = app().await;
    start(&app, "l.petit", "Prov1soire", "").await;
    post(&app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    // Reload: still the e-mail step.
    for _ in 0..2 {
        assert!(text(&get(&app, "/compte/activation").await).contains("Adresses de messagerie"));
    }
    // Retour: the CGU again.
    let r = post(&app, "/compte/activation", "/compte/activation/retour", &[]).await;
    assert_eq!(r.status, 303);
    assert!(text(&get(&app, "/compte/activation").await).contains("J'ai lu et j'accepte"));
    // A step out of order is not applied: the current step is shown.
    let r = post(
        &app,
        "/compte/activation",
        "/compte/activation/mot-de-passe",
        &[("mot_de_passe", "Vélo-Rouge-27"), ("confirmation", "Vélo-Rouge-27")],
    )
    .await;
    assert_eq!(r.status, 303);
    let account = app.stores.accounts.find_by_login(&Login::parse("l.petit").unwrap()).await.unwrap().unwrap();
    assert_eq!(account.state, AccountState::Provisioned);
    // A new attempt (another browser) replaces the old one.
    let other = app.another_browser();
    start(&other, "l.petit", "Prov1soire", "").await;
    let r = get(&app, "/compte/activation").await;
    assert!(text(&r).contains("Identification"), "the old attempt is over");
}

#[tokio::test]
async fn the_validation_link_expires_48_hours_after_the_start() {
    let app = app().await;
    start(&app, "l.petit", "Prov1soire", "").await;
    post(&app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    app.clock.advance(TimeDelta::hours(47));
    post(
        &app,
        "/compte/activation",
        "/compte/activation/courriel",
        &[("courriel", "p@example.fr"), ("courriel_confirmation", "p@example.fr")],
    )
    .await;
    let link = last_link(&app, "/compte/activation/courriel");
    assert_eq!(get(&app, &link).await.status, 200);
    app.clock.advance(TimeDelta::hours(1) + TimeDelta::seconds(1));
    let r = get(&app, &link).await;
    assert_eq!(r.status, 410);
    let body = text(&r);
    assert!(body.contains("recommencer la procédure d'activation de votre compte"), "{body}");
    assert!(body.contains(r#"saisir à nouveau votre adresse de courriel dans la rubrique "Mon compte ENT""#));
    let code = link.split("code=").nth(1).unwrap();
    let r = post(&app, "/compte/activation", "/compte/activation/courriel/confirmer", &[("code", code)]).await;
    assert_eq!(r.status, 410);
    // The attempt itself is over: the wizard starts again.
    assert!(text(&get(&app, "/compte/activation").await).contains("Identification"));
}

#[tokio::test]
async fn unknown_logins_and_wrong_passwords_answer_the_same_and_are_throttled() {
    let app = app().await;
    app.active_account("c.martin", "Bonjour-2026!", idp_core::account::Profile::Parent).await;
    let unknown = start(&app, "personne", "Prov1soire", "").await;
    let wrong = start(&app, "l.petit", "Mauvais00", "").await;
    // An active account's real password opens no wizard either.
    let active = start(&app, "c.martin", "Bonjour-2026!", "").await;
    assert_eq!(unknown.status, 401);
    for r in [&wrong, &active] {
        assert_eq!(r.status, unknown.status);
        assert_eq!(r.body.replace("l.petit", "X").replace("c.martin", "X"), unknown.body.replace("personne", "X"));
    }
    assert!(text(&unknown).contains("Identifiant ou mot de passe provisoire incorrect."));
    for _ in 0..4 {
        start(&app, "l.petit", "Mauvais00", "").await;
    }
    let r = start(&app, "l.petit", "Prov1soire", "").await;
    assert_eq!(r.status, 429, "guesses are throttled like logins");
}

#[tokio::test]
async fn reactivation_after_a_reset_and_expired_provisional_passwords() {
    let app = app().await;
    activate_with_questions(&app, "l.petit", "Prov1soire", "Vélo-Rouge-27").await;
    // The help desk resets the account (as `idp account reset` does).
    let mut account = app.stores.accounts.find_by_login(&Login::parse("l.petit").unwrap()).await.unwrap().unwrap();
    account.state = AccountState::Reset;
    account.provisional_hash = Some(app.stores.hashing.hash(Secret::new("N0uveau-P")).await.unwrap());
    account.provisional_set_at = Some(app.clock.now());
    account.password_hash = None;
    account.sessions_valid_after = app.clock.now();
    app.stores.accounts.update(&account).await.unwrap();
    let page = text(&get(&app, "/compte/activation?reinitialise=1").await);
    assert!(page.contains("Votre compte a été réinitialisé"), "{page}");
    let r = app.login(Some(SERVICE), "l.petit", "N0uveau-P").await;
    assert!(r.location.is_none() && text(&r).contains("réinitialisé"));
    // What an intruder may have set before the reset.
    let mut extras = app.stores.security.get(account.id).await.unwrap();
    extras.email_verified = Some("intrus@example.fr".into());
    app.stores.security.save(account.id, &extras).await.unwrap();
    activate_with_questions(&app, "l.petit", "N0uveau-P", "Autre-Velo-31").await;
    let extras = app.stores.security.get(account.id).await.unwrap();
    assert!(extras.email_verified.is_none(), "only what the new wizard chose remains");
    assert!(extras.questions.is_some());
    let r = browser_login(&app, "l.petit", "Autre-Velo-31").await;
    assert_eq!(r.status, 303);

    // A provisional password older than 90 days no longer opens the wizard.
    app.provisioned_account("vieux", "Prov1soire").await;
    app.clock.advance(TimeDelta::days(91));
    let r = start(&app, "vieux", "Prov1soire", "").await;
    assert_eq!(r.status, 401);
    assert!(text(&r).contains("Votre mot de passe provisoire a expiré"), "{}", r.body);
}

#[tokio::test]
async fn the_default_theme_has_the_same_wizard() {
    let app = crate::helpers::spawn_app_with(|s| s.theme = "default".into()).await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    let r = activate_with_questions(&app, "l.petit", "Prov1soire", "Vélo-Rouge-27").await;
    assert!(text(&r).contains("/static/default/"), "rendered with the default theme");
    for path in ["/compte/", "/compte/mot-de-passe-oublie"] {
        assert_eq!(get(&app, path).await.status, 200, "{path}");
    }
}

/// The validation mail states the configured delay and its deadline in
/// Paris time, here across the end of summer time (25 October 2026, 03:00
/// CEST becomes 02:00 CET), in the text and the HTML part.
#[tokio::test]
async fn the_validation_mail_gives_the_configured_delay_and_the_paris_deadline() {
    let app = crate::helpers::spawn_app_with(|s| s.accounts.email_link_hours = 30).await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    // Saturday 24 October 2026, 12:00 in Paris (summer time).
    let start_at = chrono::DateTime::parse_from_rfc3339("2026-10-24T10:00:00Z").unwrap().to_utc();
    app.clock.advance(start_at - app.clock.now());
    assert_eq!(start(&app, "l.petit", "Prov1soire", "").await.status, 303);
    post(&app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    let r = post(
        &app,
        "/compte/activation",
        "/compte/activation/courriel",
        &[("courriel", "p@example.fr"), ("courriel_confirmation", "p@example.fr")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let mail = crate::account_helpers::decode_qp(&outbox(&app)[0]);
    // 30 hours later: Sunday 25 October 2026, 16:00 UTC, 17:00 in Paris
    // (winter time), not 18:00 as the summer offset would say.
    let deadline = "au plus tard 30 heures après le début de l'activation de votre compte \
                    (soit avant le dimanche 25 octobre 2026 à 17 h 00)";
    assert_eq!(mail.matches(deadline).count(), 2, "the text and the HTML part:\n{mail}");
    assert!(!mail.contains("48 heures"), "{mail}");
}
