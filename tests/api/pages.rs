//! The words of the real ENT on the rendered pages, in both themes: the
//! login page's title and help block, « Mon compte ENT » wherever that page
//! is named, the « @ .com » hint of the personal address fields, and
//! « Compte activé ! » saying where the address is changed.

use crate::account_helpers::{activate_with_questions, get, start, text};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// The embedded themes: `touraine-eschool` (the default) and `default`.
async fn both_themes() -> Vec<TestApp> {
    vec![spawn_app().await, spawn_app_with(|s| s.theme = "default".into()).await]
}

fn position(body: &str, needle: &str) -> usize {
    body.find(needle).unwrap_or_else(|| panic!("missing « {needle} » in:\n{body}"))
}

#[tokio::test]
async fn the_login_page_has_the_title_and_the_help_block_before_the_profile_choice() {
    for app in both_themes().await {
        let body = text(&app.get_login(&[]).await);
        assert!(body.contains("<title>Connexion à l'ENT – "), "{body}");
        let help = [
            "Si vous avez un problème technique avec l'ENT, avant de demander une aide technique, vérifiez, d'abord, chez vous ces différents points :",
            "Vous devez utiliser un navigateur à jour",
            "Version nécessaire :",
            "<li>Firefox 115 ou plus récent</li>",
            "Si vous n'avez pas le bon navigateur, il est nécessaire d'installer ce programme indispensable au bon fonctionnement de l'ENT.",
            "<strong>n'est pas sécurisé</strong> et des données personnelles peuvent être détournées",
            "Il est donc incompatible avec l'ENT et surtout la partie vie scolaire de votre enfant (ce sont des données personnelles).",
            "Bienvenue dans votre ENT !",
            "Élève ou parent",
        ];
        let places: Vec<usize> = help.iter().map(|t| position(&body, t)).collect();
        assert!(places.windows(2).all(|w| w[0] < w[1]), "in the real ENT's order: {places:?}");
        // The form page keeps the block and names the profile in its title.
        let form = text(&app.get_login(&[("profile", "eleve-parent")]).await);
        assert!(form.contains("<title>Connexion à l'ENT – Élève ou parent – "), "{form}");
        assert!(
            position(&form, "Version nécessaire :") < position(&form, "<label for=\"username\">Identifiant</label>")
        );
    }
}

#[tokio::test]
async fn the_browser_versions_come_from_the_configuration() {
    let app =
        spawn_app_with(|s| s.login.browser_versions = vec!["Firefox 128 ESR".into(), "Chromium 126".into()]).await;
    let body = text(&app.get_login(&[]).await);
    assert!(body.contains("<li>Firefox 128 ESR</li>") && body.contains("<li>Chromium 126</li>"), "{body}");
    assert!(!body.contains("Firefox 115"), "{body}");
}

#[tokio::test]
async fn mon_compte_ent_is_named_so_and_address_fields_show_the_hint() {
    for app in both_themes().await {
        app.provisioned_account("l.petit", "Prov1soire").await;
        app.provisioned_account("m.durand", "Prov2soire").await;
        // « Compte activé ! » (questions path: no address yet).
        let done = text(&activate_with_questions(&app, "l.petit", "Prov1soire", "Vélo-Rouge-27").await);
        assert!(done.contains(r#"<a href="/compte/">Mon compte ENT</a>"#), "{done}");
        assert!(!done.contains("Une fois connecté"), "already logged in: {done}");
        // The « connecté » page links to it, and the page itself.
        let logged_in = text(&get(&app, "/cas/login").await);
        assert!(logged_in.contains(r#"href="/compte/">Mon compte ENT</a>"#), "{logged_in}");
        let compte = text(&get(&app, "/compte/").await);
        assert!(compte.contains("<title>Mon compte ENT – ") && compte.contains(">Mon compte ENT</h1>"), "{compte}");
        assert_eq!(compte.matches(r#"placeholder="@ .com""#).count(), 2, "{compte}");
        // The activation's address step.
        assert_eq!(start(&app, "m.durand", "Prov2soire", "").await.status, 303);
        crate::account_helpers::post(&app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
        let step = text(&get(&app, "/compte/activation").await);
        assert_eq!(step.matches(r#"placeholder="@ .com""#).count(), 2, "{step}");
    }
}

/// The charter box of a page: everything between its opening tag and the
/// end of the box.
fn charter_box(body: &str) -> String {
    let start = position(body, r#"<div class="charter""#);
    let end = body[start..].find("</div>").map_or(body.len(), |e| start + e);
    body[start..end].to_owned()
}

#[tokio::test]
async fn the_activation_shows_the_whole_example_charter_in_both_themes() {
    let tags = regex::Regex::new(r"<[^>]+>").unwrap();
    for (app, parties) in both_themes().await.into_iter().zip([
        "Charte d'utilisation de l'Espace Numérique de Travail Touraine e-school du département de l'Indre et Loire",
        "Charte d'utilisation de l'Espace Numérique de Travail ENT Touraine e-school",
    ]) {
        app.provisioned_account("l.petit", "Prov1soire").await;
        assert_eq!(start(&app, "l.petit", "Prov1soire", "").await.status, 303);
        let page = text(&get(&app, "/compte/activation").await);
        let charter = charter_box(&page);
        assert!(charter.contains(parties), "{charter}");
        for article in [
            "Article 1 – Objet de la charte",
            "Article 2 – Accès à l'ENT",
            "Article 3 – Services proposés",
            "Article 4 – Données personnelles et droits des personnes",
            "Commission nationale de l'informatique et des libertés (CNIL",
            "Article 5 – Règles d'utilisation",
            "Article 6 – Contrôles et sanctions",
        ] {
            assert!(charter.contains(article), "missing {article}");
        }
        // In full, not collapsed behind a « lire la suite ».
        assert!(!charter.contains("<details"), "{charter}");
        let words = tags.replace_all(&charter, " ").split_whitespace().count();
        assert!(words > 500, "{words} words");
    }
}

#[tokio::test]
async fn the_operators_charter_file_is_shown_at_activation_and_at_login() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("charte.html");
    std::fs::write(&file, "<h2>Charte du collège Rabelais</h2>\n<p>Article unique : respecter les autres.</p>\n")
        .unwrap();
    let path = file.clone();
    let app = spawn_app_with(move |s| {
        s.cgu_file = Some(path);
        s.cgu_version = "2026-09".into();
    })
    .await;
    app.provisioned_account("l.petit", "Prov1soire").await;
    assert_eq!(start(&app, "l.petit", "Prov1soire", "").await.status, 303);
    let charter = charter_box(&text(&get(&app, "/compte/activation").await));
    assert!(charter.contains("<h2>Charte du collège Rabelais</h2>"), "as written, not escaped: {charter}");
    assert!(!charter.contains("Article 1 – Objet"), "instead of the theme's: {charter}");
    // An account that accepted another version sees it at login.
    app.active_account("c.martin", "Bonjour-2026!", idp_core::account::Profile::Eleve).await;
    let r = app.another_browser().login(None, "c.martin", "Bonjour-2026!").await;
    let body = text(&r);
    assert!(body.contains("Les Conditions Générales d'Utilisation de l'ENT ont changé"), "{body}");
    assert!(charter_box(&body).contains("Article unique : respecter les autres."), "{body}");
}

#[tokio::test]
async fn a_missing_charter_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.cgu_file = Some(dir.path().join("absente.html"));
    let clock = std::sync::Arc::new(idp_core::clock::FixedClock::new(chrono::Utc::now()));
    let Err(e) = idp::app::Application::build(&settings, clock).await else { panic!("started without its charter") };
    assert!(format!("{e:#}").contains("cannot read cgu_file"), "{e:#}");
}
