//! The school help desk at `/gestion/` over HTTP: a school administrator
//! finds, resets and prints letters for the accounts of their schools
//! only; every other account is a page that does not exist (search, URL
//! guessing, batch letters). Non-administrators get a French 403, forms
//! need their CSRF token, an old login must give the password again, and
//! the letters' PDF reads back (pdftotext) with its accents.

use chrono::TimeDelta;

use idp_core::account::{AccountState, Login, NewAccount, Profile};
use idp_core::admin::Scope;
use idp_core::secret::Secret;

use crate::account_helpers::{activate_with_questions, get, post, text};
use crate::helpers::{LoginResult, TestApp, result, spawn_app, spawn_app_with};

pub(crate) const ADMIN: &str = "sec.college";
pub(crate) const ADMIN_PASSWORD: &str = "Secretariat-2026!";
pub(crate) const OURS: &str = "eleve.lea";
pub(crate) const THEIRS: &str = "eleve.hugo";

/// Creates an account of `school`; active with `password` or provisioned.
pub(crate) async fn account(app: &TestApp, login: &str, names: (&str, &str), school: &str, password: Option<&str>) {
    let hash = app.stores.hashing.hash(Secret::new(password.unwrap_or("Provisoire-2026"))).await.unwrap();
    let active = password.is_some();
    app.stores
        .accounts
        .create(NewAccount {
            login: Login::parse(login).unwrap(),
            profile: if active { Profile::Personnel } else { Profile::Eleve },
            given_name: names.0.into(),
            family_name: names.1.into(),
            email: None,
            schools: vec![school.into()],
            state: if active { AccountState::Active } else { AccountState::Provisioned },
            password_hash: active.then(|| hash.clone()),
            provisional_hash: (!active).then_some(hash),
            cgu_version: active.then(|| "1".into()),
            attributes: Default::default(),
        })
        .await
        .unwrap();
}

/// A server with the administrator of 0370001A (signed in), an élève of
/// each school.
pub(crate) async fn setup() -> TestApp {
    setup_on(spawn_app().await).await
}

async fn setup_on(app: TestApp) -> TestApp {
    account(&app, ADMIN, ("Agnès", "Secrétaire"), "0370001A", Some(ADMIN_PASSWORD)).await;
    account(&app, OURS, ("Léa", "Dupré"), "0370001A", None).await;
    account(&app, THEIRS, ("Hugo", "Bernard"), "0370002B", None).await;
    grant(&app, ADMIN, Scope::Schools(vec!["0370001A".into()])).await;
    let r = app.login(None, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "signed in: {}", r.body);
    app
}

pub(crate) async fn grant(app: &TestApp, login: &str, scope: Scope) {
    let console = app.stores.console(app.clock.clone());
    console.grant(&Login::parse(login).unwrap(), scope).await.unwrap();
}

pub(crate) async fn state_of(app: &TestApp, login: &str) -> AccountState {
    app.stores.accounts.find_by_login(&Login::parse(login).unwrap()).await.unwrap().unwrap().state
}

/// The provisional passwords shown on a reset page.
pub(crate) fn shown_passwords(r: &LoginResult) -> Vec<String> {
    let re = regex::Regex::new(r#"<code class="secret">([^<]+)</code>"#).unwrap();
    re.captures_iter(&r.body).map(|c| c[1].to_owned()).collect()
}

/// The path of the « Imprimer la lettre » link.
fn letter_link(r: &LoginResult) -> String {
    let re = regex::Regex::new(r#"<a class="button" href="(/gestion/lettres/[A-Za-z0-9]+)">Imprimer la lettre</a>"#)
        .unwrap();
    re.captures(&r.body).unwrap_or_else(|| panic!("no letter link: {}", r.body))[1].to_owned()
}

/// `GET path` as a PDF, read back as text by pdftotext.
pub(crate) async fn pdf_text(app: &TestApp, path: &str) -> String {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let bytes = r.bytes().await.unwrap();
    let file = app.data_dir.path().join("lettres.pdf");
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (Debian poppler-utils) is installed");
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_school_administrator_resets_an_eleve_whose_new_password_activates() {
    let app = setup().await;
    let page = get(&app, "/gestion/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"<input type="search" id="q" name="q""#), "{}", page.body);

    // Part of a family name, and part of a login in another case.
    let link = format!(r#"<a href="/gestion/compte/{OURS}">{OURS}</a>"#);
    for q in ["dupr", "ELEVE.L", "Léa"] {
        let found = get(&app, &format!("/gestion/?q={}", urlencode(q))).await;
        assert!(found.body.contains(&link), "search {q}: {}", found.body);
    }
    // LIKE's wildcards are searched as themselves.
    for q in ["%%", "e_e", "__"] {
        let found = get(&app, &format!("/gestion/?q={}", urlencode(q))).await;
        assert!(!found.body.contains(&link), "search {q}: {}", found.body);
    }
    let one = get(&app, "/gestion/?q=d").await;
    assert!(text(&one).contains("Saisissez au moins deux caractères."), "{}", one.body);
    assert!(!one.body.contains(&link));

    let page = get(&app, &format!("/gestion/compte/{OURS}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(">Réinitialiser</button>"), "{}", page.body);
    assert!(text(&page).contains("Compte à activer"), "{}", page.body);

    let from = format!("/gestion/compte/{OURS}");
    let r = post(&app, &from, &format!("/gestion/compte/{OURS}/reinitialiser"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let passwords = shown_passwords(&r);
    assert_eq!(passwords.len(), 1, "{}", r.body);
    let password = passwords[0].clone();
    assert_eq!(state_of(&app, OURS).await, AccountState::Reset);

    let letter = pdf_text(&app, &letter_link(&r)).await;
    for expected in [OURS, password.as_str(), "Léa Dupré", "établissement", "http://127.0.0.1/compte/activation"] {
        assert!(letter.contains(expected), "{expected:?} missing from the letter:\n{letter}");
    }

    let family = app.another_browser();
    activate_with_questions(&family, OURS, &password, "Une-phrase-de-passe-2026").await;
    assert_eq!(state_of(&app, OURS).await, AccountState::Active);

    let trail = app.stores.admins.audit_since(None).await.unwrap();
    let reset = trail.iter().find(|e| e.action == "reset").expect("the reset is in the audit trail");
    assert_eq!((reset.actor.as_str(), reset.target.as_str(), reset.source.as_str()), (ADMIN, OURS, "127.0.0.1"));
}

/// Logins found by the search `query`, in page order.
async fn found(app: &TestApp, query: &str) -> Vec<String> {
    let r = get(app, &format!("/gestion/?{query}")).await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    let re = regex::Regex::new(r#"<td><a href="/gestion/compte/[^"]+">([^<]+)</a></td>"#).unwrap();
    re.captures_iter(&r.body).map(|c| c[1].to_owned()).collect()
}

#[tokio::test]
async fn filters_by_profile_class_and_state_alone_or_with_the_text() {
    filters_work(&setup().await).await;
}

/// Three élèves with classes, two of them in the administrator's school;
/// each filter alone and combined.
async fn filters_work(app: &TestApp) {
    let classes = [
        ("eleve.ines", "4ème B", "0370001A"),
        ("eleve.noe", "0370001A$3A", "0370001A"),
        ("eleve.tom", "4ème B", "0370002B"),
    ];
    for (login, class, school) in classes {
        account(app, login, ("Prénom", "Nom"), school, None).await;
        let mut a = app.stores.accounts.find_by_login(&Login::parse(login).unwrap()).await.unwrap().unwrap();
        a.attributes.insert("ENTEleveClasses".into(), vec![class.into()]);
        app.stores.accounts.update(&a).await.unwrap();
    }
    let page = get(app, "/gestion/").await;
    for label in [
        "<label for=\"profil\">Profil</label>",
        "<label for=\"etat\">État</label>",
        "<label for=\"classe\">Classe</label>",
    ] {
        assert!(page.body.contains(label), "{label} missing: {}", page.body);
    }

    // A class alone: that class of the administrator's schools only.
    assert_eq!(found(app, "classe=4%C3%A8me+B").await, ["eleve.ines"]);
    assert_eq!(found(app, "classe=4%C3%A8me").await, Vec::<String>::new(), "a whole class");
    // A profile or a state alone, never an account of another school.
    assert_eq!(found(app, "profil=eleve").await, ["eleve.ines", "eleve.lea", "eleve.noe"]);
    assert_eq!(found(app, "profil=personnel").await, [ADMIN]);
    assert_eq!(found(app, "etat=active").await, [ADMIN]);
    assert_eq!(found(app, "q=&profil=&etat=provisioned&classe=").await, ["eleve.ines", "eleve.lea", "eleve.noe"]);
    // Combined with each other and with the text.
    assert_eq!(found(app, "q=eleve&profil=eleve&etat=provisioned&classe=3A").await, ["eleve.noe"]);
    assert_eq!(found(app, "classe=0370001A%243A").await, ["eleve.noe"], "the SDET form, with the UAI");
    assert_eq!(found(app, "classe=A").await, Vec::<String>::new());
    assert_eq!(found(app, "q=lea&profil=eleve").await, [OURS]);
    assert_eq!(found(app, "q=lea&etat=active").await, Vec::<String>::new());
    // An unknown code is no filter; nothing at all asks for nothing.
    assert_eq!(found(app, "q=lea&profil=pirate").await, [OURS]);
    let empty = get(app, "/gestion/?q=&profil=&etat=&classe=").await;
    assert!(!empty.body.contains("Résultats"), "{}", empty.body);
    let short = get(app, "/gestion/?q=l&profil=eleve").await;
    assert!(text(&short).contains("au moins deux caractères"), "{}", short.body);
}

/// The creation form's fields, with `changes`.
fn new_account<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("identifiant", "eleve.zoe"),
        ("profil", "eleve"),
        ("prenom", "Zoé"),
        ("nom", "Lefèvre"),
        ("courriel", ""),
        ("etablissement", "0370001A"),
    ];
    for (name, value) in changes {
        fields.retain(|(n, _)| n != name);
        fields.push((name, value));
    }
    fields
}

#[tokio::test]
async fn an_administrator_creates_an_account_of_their_school_whose_letter_prints() {
    let app = setup().await;
    let form = "/gestion/nouveau-compte";
    let page = get(&app, form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"<option value="0370001A""#) && !page.body.contains("0370002B"), "{}", page.body);

    let r = post(&app, form, form, &new_account(&[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(text(&r).contains("Compte créé"), "{}", r.body);
    let passwords = shown_passwords(&r);
    assert_eq!(passwords.len(), 1, "{}", r.body);
    let letter = pdf_text(&app, &letter_link(&r)).await;
    for expected in ["eleve.zoe", passwords[0].as_str(), "Zoé Lefèvre"] {
        assert!(letter.contains(expected), "{expected:?} missing from the letter:\n{letter}");
    }
    let created = app.stores.accounts.find_by_login(&Login::parse("eleve.zoe").unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (created.state, created.profile, created.schools.clone()),
        (AccountState::Provisioned, Profile::Eleve, vec!["0370001A".to_owned()])
    );
    let family = app.another_browser();
    activate_with_questions(&family, "eleve.zoe", &passwords[0], "Une-phrase-de-passe-2026").await;
    assert_eq!(state_of(&app, "eleve.zoe").await, AccountState::Active);

    let trail = app.stores.admins.audit_since(None).await.unwrap();
    let entry = trail.iter().find(|e| e.action == "create").expect("the creation is in the audit trail");
    assert_eq!((entry.actor.as_str(), entry.target.as_str(), entry.detail.as_str()), (ADMIN, "eleve.zoe", "0370001A"));
}

#[tokio::test]
async fn a_refused_creation_says_why_in_french_and_creates_nothing() {
    let app = setup().await;
    let form = "/gestion/nouveau-compte";
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
    let cases: [Case; 8] = [
        (&[("identifiant", OURS)], 409, "Cet identifiant est déjà utilisé"),
        (&[("identifiant", THEIRS)], 409, "Cet identifiant est déjà utilisé"),
        (&[("identifiant", "élève zoé")], 422, "L'identifiant doit compter"),
        (&[("profil", "pirate")], 422, "Choisissez un profil"),
        (&[("prenom", "  ")], 422, "Le prénom est obligatoire"),
        (&[("courriel", "zoe@")], 422, "L'adresse électronique n'est pas valide"),
        (&[("etablissement", "0370002B")], 422, "Choisissez l'un de vos établissements"),
        (&[("etablissement", "pas un code")], 422, "Choisissez l'un de vos établissements"),
    ];
    for (changes, status, message) in cases {
        let r = post(&app, form, form, &new_account(changes)).await;
        assert_eq!(r.status, status, "{changes:?}: {}", r.body);
        assert!(text(&r).contains(message), "{changes:?}: {}", r.body);
        assert!(r.body.contains(r#"value="Lefèvre""#) || changes.iter().any(|(n, _)| *n == "nom"), "fields kept");
    }
    assert!(app.stores.accounts.find_by_login(&Login::parse("eleve.zoe").unwrap()).await.unwrap().is_none());
    let trail = app.stores.admins.audit_since(None).await.unwrap();
    assert!(trail.iter().all(|e| e.action != "create"), "{trail:?}");

    let no_token = result(app.client.post(app.url(form)).form(&new_account(&[])).send().await.unwrap()).await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    assert!(text(&no_token).contains("Page expirée"), "{}", no_token.body);
    assert!(app.stores.accounts.find_by_login(&Login::parse("eleve.zoe").unwrap()).await.unwrap().is_none());
}

#[tokio::test]
async fn an_account_of_another_school_is_never_shown() {
    let app = setup().await;
    let found = get(&app, "/gestion/?q=hugo").await;
    assert_eq!(found.status, 200);
    assert!(!found.body.contains(THEIRS), "{}", found.body);
    assert!(text(&found).contains("Aucun compte ne correspond"), "{}", found.body);

    // The same answer as for an account that does not exist at all.
    let guessed = get(&app, &format!("/gestion/compte/{THEIRS}")).await;
    let missing = get(&app, "/gestion/compte/personne.inconnue").await;
    assert_eq!((guessed.status, missing.status), (404, 404));
    assert_eq!(guessed.body, missing.body);

    let from = format!("/gestion/compte/{OURS}");
    let reset = post(&app, &from, &format!("/gestion/compte/{THEIRS}/reinitialiser"), &[]).await;
    assert_eq!(reset.status, 404, "{}", reset.body);
    let disable = post(&app, &from, &format!("/gestion/compte/{THEIRS}/etat"), &[("action", "desactiver")]).await;
    assert_eq!(disable.status, 404, "{}", disable.body);

    let alone = post(&app, "/gestion/", "/gestion/lettres", &[("identifiants", THEIRS)]).await;
    assert_eq!(alone.status, 404, "{}", alone.body);
    let both = post(&app, "/gestion/", "/gestion/lettres", &[("identifiants", &format!("{THEIRS}\n{OURS}"))]).await;
    assert_eq!(both.status, 200, "{}", both.body);
    assert!(!both.body.contains(THEIRS) && both.body.contains(OURS), "{}", both.body);
    assert_eq!(shown_passwords(&both).len(), 1);
    let letters = pdf_text(&app, &letter_link(&both)).await;
    assert!(letters.contains(OURS) && !letters.contains(THEIRS) && !letters.contains("Hugo"), "{letters}");
    assert_eq!(state_of(&app, THEIRS).await, AccountState::Provisioned, "untouched");
}

#[tokio::test]
async fn a_batch_gives_one_pdf_with_a_page_per_person_and_only_its_maker_gets_it() {
    let app = setup().await;
    account(&app, "eleve.zoe", ("Zoé", "Lefèvre"), "0370001A", None).await;
    let r = post(&app, "/gestion/", "/gestion/lettres", &[("identifiants", "eleve.lea, eleve.zoe")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let passwords = shown_passwords(&r);
    assert_eq!(passwords.len(), 2);
    let path = letter_link(&r);
    let letters = pdf_text(&app, &path).await;
    assert_eq!(letters.matches("Mot de passe provisoire :").count(), 2, "{letters}");
    for expected in ["eleve.lea", "eleve.zoe", "Zoé Lefèvre", "Léa Dupré", &passwords[0], &passwords[1]] {
        assert!(letters.contains(expected), "{expected:?} missing:\n{letters}");
    }
    assert_eq!(letters.matches('\u{c}').count(), 2, "one page each");

    // Another school's administrator cannot fetch them.
    let other = app.another_browser();
    account(&app, "sec.lycee", ("Paul", "Roux"), "0370002B", Some(ADMIN_PASSWORD)).await;
    grant(&app, "sec.lycee", Scope::Schools(vec!["0370002B".into()])).await;
    assert_eq!(other.login(None, "sec.lycee", ADMIN_PASSWORD).await.status, 200);
    assert_eq!(get(&other, &path).await.status, 404);
    // And it is gone after its time.
    app.clock.advance(TimeDelta::minutes(16));
    assert_eq!(get(&app, &path).await.status, 404);
}

#[tokio::test]
async fn a_non_administrator_gets_a_french_403_and_a_stranger_the_login_page() {
    let app = spawn_app().await;
    let stranger = get(&app, "/gestion/").await;
    assert_eq!(stranger.status, 401);
    assert!(text(&stranger).contains("Connexion nécessaire"), "{}", stranger.body);

    account(&app, "prof.martin", ("Jean", "Martin"), "0370001A", Some(ADMIN_PASSWORD)).await;
    assert_eq!(app.login(None, "prof.martin", ADMIN_PASSWORD).await.status, 200);
    let r = get(&app, "/gestion/").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains(r#"<html lang="fr">"#));
    assert!(text(&r).contains("réservée aux administrateurs ENT"), "{}", r.body);
    assert_eq!(get(&app, "/gestion/compte/prof.martin").await.status, 403);

    // A revoked role is gone at once.
    grant(&app, "prof.martin", Scope::Global).await;
    assert_eq!(get(&app, "/gestion/").await.status, 200);
    app.stores.console(app.clock.clone()).revoke(&Login::parse("prof.martin").unwrap()).await.unwrap();
    assert_eq!(get(&app, "/gestion/").await.status, 403);
}

#[tokio::test]
async fn forms_without_their_csrf_token_are_refused() {
    let app = setup().await;
    let r = result(
        app.client
            .post(app.url(&format!("/gestion/compte/{OURS}/reinitialiser")))
            .form(&[("x", "y")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(text(&r).contains("Page expirée"), "{}", r.body);
    let r = result(app.client.post(app.url("/gestion/lettres")).form(&[("identifiants", OURS)]).send().await.unwrap())
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(state_of(&app, OURS).await, AccountState::Provisioned);
}

#[tokio::test]
async fn an_old_login_gives_the_password_again_before_a_reset_or_a_disable() {
    let app = setup().await;
    app.clock.advance(TimeDelta::minutes(16));
    let from = format!("/gestion/compte/{OURS}");
    let page = get(&app, &from).await;
    assert!(page.body.contains(r#"id="reinitialiser_mot_de_passe""#), "{}", page.body);
    let to = format!("/gestion/compte/{OURS}/reinitialiser");
    for typed in ["", "pas-le-bon"] {
        let r = post(&app, &from, &to, &[("mot_de_passe", typed)]).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(text(&r).contains("Confirmation nécessaire"), "{}", r.body);
    }
    let disable = post(&app, &from, &format!("/gestion/compte/{OURS}/etat"), &[("action", "desactiver")]).await;
    assert_eq!(disable.status, 403);
    assert_eq!(state_of(&app, OURS).await, AccountState::Provisioned);

    let r = post(&app, &from, &to, &[("mot_de_passe", ADMIN_PASSWORD)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The password renewed the login: the next action needs none.
    let disable = post(&app, &from, &format!("/gestion/compte/{OURS}/etat"), &[("action", "desactiver")]).await;
    assert_eq!(disable.status, 303, "{}", disable.body);
    assert_eq!(state_of(&app, OURS).await, AccountState::Disabled);
    let enable = post(&app, &from, &format!("/gestion/compte/{OURS}/etat"), &[("action", "activer")]).await;
    assert_eq!(enable.status, 303);
    assert!(state_of(&app, OURS).await.must_activate(), "back to its activation");
}

#[tokio::test]
async fn searches_are_rate_limited() {
    let app = setup().await;
    for _ in 0..idp_core::admin::SEARCHES_PER_MINUTE {
        assert_eq!(get(&app, "/gestion/?q=ele").await.status, 200);
    }
    let r = get(&app, "/gestion/?q=ele").await;
    assert_eq!(r.status, 429);
    assert!(text(&r).contains("Trop de recherches"), "{}", r.body);
    // Creations count with them (a taken login is said for any school).
    let form = "/gestion/nouveau-compte";
    let r = post(&app, form, form, &new_account(&[("identifiant", THEIRS)])).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(text(&r).contains("Trop de tentatives"), "{}", r.body);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_reset_ends_the_sessions_of_the_person_at_once() {
    let app = setup().await;
    account(&app, "eleve.tom", ("Tom", "Petit"), "0370001A", Some("Eleve-Tom-2026!")).await;
    let tom = app.another_browser();
    assert_eq!(tom.login(None, "eleve.tom", "Eleve-Tom-2026!").await.status, 200);
    assert_eq!(get(&tom, "/compte/").await.status, 200);
    let id = app.stores.accounts.find_by_login(&Login::parse("eleve.tom").unwrap()).await.unwrap().unwrap().id;
    assert_eq!(app.stores.sessions.sessions_of(id).await.unwrap().len(), 1);

    let r = post(&app, "/gestion/compte/eleve.tom", "/gestion/compte/eleve.tom/reinitialiser", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(app.stores.sessions.sessions_of(id).await.unwrap().is_empty(), "ended, not only refused");
    assert_eq!(get(&tom, "/compte/").await.status, 401);
    // The administrator's own session goes on.
    assert_eq!(get(&app, "/gestion/").await.status, 200);
}

/// The console's tables and search on PostgreSQL (`IDP_TEST_DATABASE_URL`),
/// on a fresh database: search by name and login, scoping, reset, trail.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_works_on_postgresql() {
    use sea_orm::ConnectionTrait;
    let Some(server) = std::env::var("IDP_TEST_DATABASE_URL").ok().filter(|v| !v.trim().is_empty()) else {
        assert_ne!(std::env::var("IDP_TEST_REQUIRE_SERVICES").as_deref(), Ok("1"), "IDP_TEST_DATABASE_URL not set");
        eprintln!("skipped: IDP_TEST_DATABASE_URL not set (PostgreSQL tests need it)");
        return;
    };
    let name = format!("idp_t_{}", idp_core::secret::random_token(12).unwrap().to_lowercase());
    let db = sea_orm::Database::connect(&server).await.unwrap();
    db.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path(&format!("/{name}"));
    let db_url = url.to_string();
    let app = setup_on(spawn_app_with(move |s| s.database_url = Some(db_url)).await).await;
    filters_work(&app).await;

    let link = format!(r#"<a href="/gestion/compte/{OURS}">{OURS}</a>"#);
    for q in ["DUPRÉ", "eleve.L", "léa"] {
        let found = get(&app, &format!("/gestion/?q={}", urlencode(q))).await;
        assert!(found.body.contains(&link), "search {q}: {}", found.body);
        assert!(!found.body.contains(THEIRS));
    }
    for q in ["%%", "e_e"] {
        assert!(!get(&app, &format!("/gestion/?q={}", urlencode(q))).await.body.contains(&link), "{q}");
    }
    assert_eq!(get(&app, &format!("/gestion/compte/{THEIRS}")).await.status, 404);
    let r = post(&app, &format!("/gestion/compte/{OURS}"), &format!("/gestion/compte/{OURS}/reinitialiser"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(state_of(&app, OURS).await, AccountState::Reset);
    let trail = app.stores.admins.audit_since(None).await.unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["grant", "reset"]);
    let grants = app.stores.admins.list().await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].scope, Scope::Schools(vec!["0370001A".into()]));
}

#[tokio::test]
async fn the_dashboard_counts_the_administrators_schools_only() {
    let app = setup().await;
    let r = post(&app, &format!("/gestion/compte/{OURS}"), &format!("/gestion/compte/{OURS}/reinitialiser"), &[]).await;
    assert_eq!(r.status, 200);
    let page = get(&app, "/gestion/").await;
    assert!(page.body.contains(r#"<a href="/gestion/tableau-de-bord">Tableau de bord</a>"#));
    let r = get(&app, "/gestion/tableau-de-bord").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = text(&r).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(body.contains("Établissement 0370001A") && !body.contains("0370002B"), "{body}");
    // The administrator (active, signed in) and the élève just reset.
    for expected in [
        "<dt>Comptes</dt><dd>2</dd>",
        "<dt>Taux d'activation</dt><dd>50 %</dd>",
        "<dt>Comptes jamais utilisés</dt><dd>1</dd>",
        "derniers jours)</dt><dd>1</dd>",
        "<td>Élève</td><td>1</td>",
        "<td>Personnel</td><td>1</td>",
        "<td>Réinitialisé</td><td>1</td>",
        "<td>Actif</td><td>1</td>",
    ] {
        assert!(body.contains(expected), "{expected:?} missing: {body}");
    }
}
