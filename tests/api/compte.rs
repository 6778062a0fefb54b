//! The other account flows over HTTP: a new CGU version accepted at login
//! before any ticket, "Mot de passe oublié ?" by e-mail and by secret
//! questions (same answers for unknown logins, throttled answers), and
//! "Mon compte".

use chrono::TimeDelta;

use idp_core::account::{Login, Profile};
use idp_core::clock::Clock;
use idp_core::lifecycle::AccountExtras;

use crate::account_helpers::{
    activate_with_questions, decode_qp, get, get_with, last_link, outbox, post, post_with, text, wait_for_outbox,
};
use crate::helpers::{TestApp, browser, hidden_inputs, result, spawn_app, spawn_app_with};

const SERVICE: &str = "https://cahier-de-textes.example.test/";
const PATTERN: &str = r"https://cahier-de-textes\.example\.test/.*";

async fn account(app: &TestApp, login: &str) -> idp_core::account::Account {
    app.stores.accounts.find_by_login(&Login::parse(login).unwrap()).await.unwrap().unwrap()
}

/// An active account whose e-mail address was validated.
async fn with_validated_email(app: &TestApp, login: &str, password: &str) {
    app.active_account(login, password, Profile::Parent).await;
    let a = account(app, login).await;
    let extras =
        AccountExtras { email_verified: a.email.clone(), email_verified_at: Some(app.clock.now()), questions: None };
    app.stores.security.save(a.id, &extras).await.unwrap();
}

#[tokio::test]
async fn a_new_cgu_version_must_be_accepted_at_login_before_any_ticket() {
    let app = spawn_app_with(|s| s.cgu_version = "2".into()).await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    let r = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await;
    assert_eq!(r.status, 200, "the charter, not a redirect");
    assert!(r.location.is_none());
    let body = text(&r);
    assert!(body.contains("Les Conditions Générales d'Utilisation de l'ENT ont changé"), "{body}");
    assert!(body.contains("J'ai lu et j'accepte les Conditions Générales d'Utilisation décrites ci-dessus."));
    // No session yet: the login page still asks for credentials.
    let again = app.get_login(&[("service", SERVICE)]).await;
    assert!(again.location.is_none());
    // Not ticked: refused, the same token can be used again.
    let form = hidden_inputs(&r.body);
    let send = |extra: Option<(&str, &str)>| {
        let mut f = form.clone();
        if let Some((k, v)) = extra {
            f.push((k.into(), v.into()));
        }
        let client = app.client.clone();
        let url = app.url("/cas/login/cgu");
        async move { result(client.post(url).form(&f).send().await.unwrap()).await }
    };
    let r = send(None).await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Pour continuer, cochez la case"));
    let r = send(Some(("accepte", "oui"))).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ticket = r.ticket();
    let (_, _, xml) = app.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &ticket)]).await;
    assert!(xml.contains("<cas:user>c.martin</cas:user>"), "{xml}");
    let a = account(&app, "c.martin").await;
    assert_eq!(a.cgu_version.as_deref(), Some("2"));
    assert!(a.cgu_accepted_at.is_some());
    // The token is spent.
    assert_eq!(send(Some(("accepte", "oui"))).await.status, 410);
    // Next login: straight to the service.
    let other = app.another_browser();
    assert_eq!(other.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.status, 303);
}

#[tokio::test]
async fn forgotten_password_by_email_answers_the_same_and_ends_every_session() {
    let app = spawn_app().await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    with_validated_email(&app, "c.martin", "Bonjour-2026!").await;
    app.active_account("sans.adresse", "Bonjour-2026!", Profile::Parent).await;
    // A session in another browser, which the reset must end.
    let laptop = app.another_browser();
    assert_eq!(laptop.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.status, 303);
    app.clock.advance(TimeDelta::seconds(5));

    let page = text(&get(&app, "/compte/mot-de-passe-oublie").await);
    assert!(page.contains("Mot de passe oublié ?") && page.contains("Par vos questions secrètes"), "{page}");
    let ask = |login: &'static str, email: &'static str| {
        let app = &app;
        async move {
            post(
                app,
                "/compte/mot-de-passe-oublie",
                "/compte/mot-de-passe-oublie/courriel",
                &[("identifiant", login), ("courriel", email)],
            )
            .await
        }
    };
    let real = ask("c.martin", "c.martin@example.fr").await;
    let unknown = ask("personne", "c.martin@example.fr").await;
    let wrong_address = ask("c.martin", "autre@example.fr").await;
    let unvalidated = ask("sans.adresse", "sans.adresse@example.fr").await;
    for r in [&unknown, &wrong_address, &unvalidated] {
        assert_eq!(r.status, real.status);
        assert_eq!(r.body, real.body, "the page does not tell whether the login or the address exists");
    }
    assert!(text(&real).contains("Si cet identifiant et cette adresse électronique validée correspondent"));
    assert_eq!(wait_for_outbox(&app, 1).await.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&app).len(), 1, "one e-mail, for the real one only");

    let link = last_link(&app, "/compte/mot-de-passe-oublie/nouveau");
    let phone = browser();
    let form = get_with(&phone, &app, &link).await;
    assert_eq!(form.status, 200);
    assert!(text(&form).contains("Confirmation mot de passe"));
    let set = |p: &'static str| {
        let phone = phone.clone();
        let app = &app;
        let link = link.clone();
        async move {
            post_with(
                &phone,
                app,
                &link,
                "/compte/mot-de-passe-oublie/nouveau",
                &[("mot_de_passe", p), ("confirmation", p)],
            )
            .await
        }
    };
    let weak = set("motdepasse1").await;
    assert_eq!(weak.status, 400);
    assert!(text(&weak).contains("trop facile à deviner") || text(&weak).contains("pas assez varié"), "{}", weak.body);
    let ok = set("Nouveau-Velo-42").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(text(&ok).contains("Mot de passe modifié"));
    // Single use.
    assert_eq!(get_with(&phone, &app, &link).await.status, 410);
    // The laptop's session is over; the old password too.
    let r = laptop.get_login(&[("service", SERVICE)]).await;
    assert!(r.location.is_none(), "no ticket from the old session");
    let fresh = app.another_browser();
    assert_eq!(fresh.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.status, 401);
    let fresh = app.another_browser();
    assert_eq!(fresh.login(Some(SERVICE), "c.martin", "Nouveau-Velo-42").await.status, 303);
}

#[tokio::test]
async fn forgotten_password_links_expire() {
    let app = spawn_app().await;
    with_validated_email(&app, "c.martin", "Bonjour-2026!").await;
    post(
        &app,
        "/compte/mot-de-passe-oublie",
        "/compte/mot-de-passe-oublie/courriel",
        &[("identifiant", "C.Martin"), ("courriel", "C.MARTIN@example.fr")],
    )
    .await;
    wait_for_outbox(&app, 1).await;
    let link = last_link(&app, "/compte/mot-de-passe-oublie/nouveau");
    app.clock.advance(TimeDelta::minutes(61));
    let r = get(&app, &link).await;
    assert_eq!(r.status, 410);
    assert!(text(&r).contains("Ce lien de changement de mot de passe a expiré"));
}

#[tokio::test]
async fn forgotten_password_by_secret_questions() {
    let app = spawn_app().await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    activate_with_questions(&app, "l.petit", "Prov1soire", "Vélo-Rouge-27").await;
    let q = idp_core::questions::default_questions();
    let other = app.another_browser();
    let questions = |login: &'static str| {
        let other = &other;
        async move {
            post(
                other,
                "/compte/mot-de-passe-oublie",
                "/compte/mot-de-passe-oublie/questions",
                &[("identifiant", login)],
            )
            .await
        }
    };
    let page = questions("l.petit").await;
    let body = text(&page);
    assert!(body.contains(&q[0]) && body.contains(&q[1]), "{body}");
    // An unknown login gets two questions too, always the same ones.
    let a = text(&questions("personne").await);
    let b = text(&questions("personne").await);
    assert_eq!(a, b);
    assert_eq!(q.iter().filter(|question| a.contains(question.as_str())).count(), 2);
    let answer = |r1: &'static str, r2: &'static str| {
        let other = &other;
        async move {
            post(
                other,
                "/compte/mot-de-passe-oublie",
                "/compte/mot-de-passe-oublie/reponses",
                &[("identifiant", "l.petit"), ("reponse1", r1), ("reponse2", r2)],
            )
            .await
        }
    };
    let wrong = answer("Rex", "Paris").await;
    assert_eq!(wrong.status, 401);
    assert!(text(&wrong).contains("Les réponses ne correspondent pas."));
    // Case, accents and extra spaces do not matter.
    let right = answer("  MEDOR ", "saint-etienne").await;
    assert_eq!(right.status, 200, "{}", right.body);
    let code = hidden_inputs(&right.body).into_iter().find(|(k, _)| k == "code").unwrap().1;
    let r = post_with(
        &other.client,
        &other,
        &format!("/compte/mot-de-passe-oublie/nouveau?code={code}"),
        "/compte/mot-de-passe-oublie/nouveau",
        &[("mot_de_passe", "Train-Vert-88"), ("confirmation", "Train-Vert-88")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(text(&r).contains("Mot de passe modifié"));
    // Wrong answers are throttled.
    for _ in 0..5 {
        answer("Rex", "Paris").await;
    }
    assert_eq!(answer("medor", "saint-etienne").await.status, 429);
}

#[tokio::test]
async fn mon_compte_changes_email_password_questions_and_gives_the_data() {
    let app = spawn_app().await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    // Not logged in: asked to log in first.
    let r = get(&app, "/compte/").await;
    assert_eq!(r.status, 401);
    assert!(text(&r).contains("connectez-vous d'abord"));
    activate_with_questions(&app, "l.petit", "Prov1soire", "Vélo-Rouge-27").await;
    let page = get(&app, "/compte/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = text(&page);
    assert!(body.contains("Mon compte") && body.contains("Léa Petit") && body.contains("Vos dernières connexions"));

    // E-mail: the current password first, then re-validated by link.
    let sent = outbox(&app).len();
    let r = post(
        &app,
        "/compte/",
        "/compte/courriel",
        &[("courriel", "lea@example.fr"), ("courriel_confirmation", "lea@example.fr")],
    )
    .await;
    assert_eq!(r.status, 400, "no current password, no change");
    assert!(text(&r).contains("Le mot de passe actuel est incorrect."));
    assert_eq!(outbox(&app).len(), sent, "nothing sent");
    let r = post(
        &app,
        "/compte/",
        "/compte/courriel",
        &[
            ("courriel", "lea@example.fr"),
            ("courriel_confirmation", "lea@example.fr"),
            ("mot_de_passe_actuel", "Vélo-Rouge-27"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(account(&app, "l.petit").await.email.is_none(), "not before the link is followed");
    let link = last_link(&app, "/compte/courriel");
    let phone = browser();
    let asked = text(&get_with(&phone, &app, &link).await);
    assert!(asked.contains("Validation de votre adresse personnelle"), "{asked}");
    assert!(!asked.contains("Adresse personnelle confirmée"), "nothing validated yet: {asked}");
    let r = post_with(&phone, &app, &link, "/compte/courriel/confirmer", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done = text(&r);
    assert!(
        done.contains("Adresse personnelle confirmée !") && done.contains("Votre adresse personnelle est validée.")
    );
    assert!(done.contains(">Mon compte ENT</a>"), "{done}");
    let a = account(&app, "l.petit").await;
    assert_eq!(a.email.as_deref(), Some("lea@example.fr"));
    assert!(app.stores.security.get(a.id).await.unwrap().email_is_verified(&a));

    // Password: the current one is required.
    let r = post(
        &app,
        "/compte/",
        "/compte/mot-de-passe",
        &[("mot_de_passe_actuel", "faux"), ("mot_de_passe", "Train-Vert-88"), ("confirmation", "Train-Vert-88")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Le mot de passe actuel est incorrect."));
    let r = post(
        &app,
        "/compte/",
        "/compte/mot-de-passe",
        &[
            ("mot_de_passe_actuel", "Vélo-Rouge-27"),
            ("mot_de_passe", "Train-Vert-88"),
            ("confirmation", "Train-Vert-88"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // This browser stays logged in.
    let page = get(&app, "/compte/?fait=mot-de-passe").await;
    assert_eq!(page.status, 200);
    assert!(text(&page).contains("Votre mot de passe a été modifié."));

    // Secret questions: the current password first.
    let q = idp_core::questions::default_questions();
    let answers = [("question1", &*q[2]), ("reponse1", "Zoé"), ("question2", &q[3]), ("reponse2", "Jules Ferry")];
    let r = post(&app, "/compte/", "/compte/questions", &answers).await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Le mot de passe actuel est incorrect."));
    let id = account(&app, "l.petit").await.id;
    let kept = app.stores.security.get(id).await.unwrap().questions.unwrap();
    assert_ne!(kept.question1, q[2], "unchanged");
    let mut form = answers.to_vec();
    form.push(("mot_de_passe_actuel", "Train-Vert-88"));
    let r = post(&app, "/compte/", "/compte/questions", &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(text(&get(&app, "/compte/").await).contains(&q[2]));

    // The data, as JSON, without any hash.
    let r = app.client.get(app.url("/compte/donnees.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["login"], "l.petit");
    assert_eq!(json["email"], "lea@example.fr");
    assert_eq!(json["email_verified"], true);
    assert!(!json.to_string().contains("argon2"));
    assert!(json["recent_logins"].is_array());
}

#[tokio::test]
async fn a_charter_published_during_a_session_is_accepted_before_the_next_ticket() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("cdt", PATTERN, &["uid"], None).await;
    assert_eq!(app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.status, 303);
    // The operator published version 1 after this person accepted version 0.
    let mut a = account(&app, "c.martin").await;
    a.cgu_version = Some("0".into());
    app.stores.accounts.update(&a).await.unwrap();
    let r = app.get_login(&[("service", SERVICE)]).await;
    assert_eq!(r.status, 200);
    assert!(r.location.is_none(), "no ticket from the SSO session");
    assert!(text(&r).contains("Les Conditions Générales d'Utilisation de l'ENT ont changé"));
    // gateway: back to the service without a ticket, no page.
    let r = app.get_login(&[("service", SERVICE), ("gateway", "true")]).await;
    assert_eq!(r.location.as_deref(), Some(SERVICE));
    let page = app.get_login(&[("service", SERVICE)]).await;
    let mut form = hidden_inputs(&page.body);
    form.push(("accepte".into(), "oui".into()));
    let r = result(app.client.post(app.url("/cas/login/cgu")).form(&form).send().await.unwrap()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location.unwrap().contains("ticket=ST-"));
    assert_eq!(account(&app, "c.martin").await.cgu_version.as_deref(), Some("1"));
}

#[tokio::test]
async fn a_password_reset_sends_single_logout_for_every_session_of_the_account() {
    let app = spawn_app().await;
    let (logout_url, mut received) = crate::slo::logout_listener().await;
    app.service("cdt", PATTERN, &["uid"], Some(&logout_url)).await;
    with_validated_email(&app, "c.martin", "Bonjour-2026!").await;
    // Two browsers, each with a session and a ticket for the service.
    let laptop = app.another_browser();
    let on_laptop = laptop.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    let tablet = app.another_browser();
    let on_tablet = tablet.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    app.clock.advance(TimeDelta::seconds(5));

    post(
        &app,
        "/compte/mot-de-passe-oublie",
        "/compte/mot-de-passe-oublie/courriel",
        &[("identifiant", "c.martin"), ("courriel", "c.martin@example.fr")],
    )
    .await;
    wait_for_outbox(&app, 1).await;
    let link = last_link(&app, "/compte/mot-de-passe-oublie/nouveau");
    let phone = browser();
    get_with(&phone, &app, &link).await;
    let done = post_with(
        &phone,
        &app,
        &link,
        "/compte/mot-de-passe-oublie/nouveau",
        &[("mot_de_passe", "Nouveau-Velo-42"), ("confirmation", "Nouveau-Velo-42")],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);

    let mut indexes = Vec::new();
    for _ in 0..2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), received.recv())
            .await
            .expect("a logout request for each session")
            .unwrap();
        indexes.push(message.split("<samlp:SessionIndex>").nth(1).unwrap().split('<').next().unwrap().to_owned());
    }
    indexes.sort();
    let mut expected = vec![on_laptop, on_tablet];
    expected.sort();
    assert_eq!(indexes, expected);
}

#[tokio::test]
async fn a_new_recovery_address_is_told_to_the_previous_one_and_a_reset_voids_a_pending_change() {
    let app = spawn_app().await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    activate_with_questions(&app, "l.petit", "Prov1soire", "Vélo-Rouge-27").await;
    let change = |address: &'static str| {
        let app = &app;
        async move {
            let form =
                [("courriel", address), ("courriel_confirmation", address), ("mot_de_passe_actuel", "Vélo-Rouge-27")];
            let r = post(app, "/compte/", "/compte/courriel", &form).await;
            assert_eq!(r.status, 303, "{}", r.body);
            last_link(app, "/compte/courriel")
        }
    };
    let confirm = |link: String| {
        let app = &app;
        async move { post_with(&browser(), app, &link, "/compte/courriel/confirmer", &[]).await }
    };
    assert_eq!(confirm(change("lea@example.fr").await).await.status, 200);
    let before = outbox(&app).len();
    assert_eq!(confirm(change("autre@example.org").await).await.status, 200);
    let mails = outbox(&app);
    let notice = decode_qp(mails.last().unwrap());
    assert_eq!(mails.len(), before + 2, "the link, then the notice");
    assert!(notice.contains("To: lea@example.fr"), "{notice}");
    assert!(notice.contains("a…@example.org") && notice.contains("vient d'être remplacée"), "{notice}");
    assert!(!notice.contains("autre@example.org"), "the new address is masked");

    // A change asked before a reset of the account is void.
    let link = change("troisieme@example.fr").await;
    let mut a = account(&app, "l.petit").await;
    app.clock.advance(TimeDelta::seconds(1));
    a.sessions_valid_after = app.clock.now();
    app.stores.accounts.update(&a).await.unwrap();
    assert_eq!(confirm(link).await.status, 410);
    assert_eq!(account(&app, "l.petit").await.email.as_deref(), Some("autre@example.org"));
}
