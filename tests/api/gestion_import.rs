//! The console's CSV import over HTTP (`/gestion/import`): the file goes up
//! as `multipart/form-data` with its CSRF token, the preview writes
//! nothing, the confirmation applies it once and shows the new accounts'
//! passwords with one PDF of letters (read back with pdftotext). A row of
//! another school, a bad line, a reused or expired preview, accounts
//! changed since the preview, a file too big, a non-administrator and a
//! form without its token are each refused with a French page, and
//! nothing is written.

use chrono::TimeDelta;

use idp_core::account::{AccountState, Login};

use crate::account_helpers::{get, text};
use crate::gestion::{ADMIN_PASSWORD, OURS, THEIRS, account, pdf_text, setup, shown_passwords, state_of};
use crate::helpers::{LoginResult, TestApp, hidden_inputs, result};

const HEADER: &str = "login;profile;given_name;family_name;email;school;ENTEleveClasses\n";

/// The page's CSRF token.
async fn token(app: &TestApp) -> String {
    let page = get(app, "/gestion/import").await;
    assert_eq!(page.status, 200, "{}", page.body);
    hidden_inputs(&page.body).into_iter().find(|(k, _)| k == "csrf_token").expect("a CSRF token").1
}

/// `POST /gestion/import/apercu` as the browser sends the form: the token
/// (when given) and the file, in `multipart/form-data`.
async fn upload_with(app: &TestApp, token: Option<&str>, file: &[u8]) -> reqwest::Response {
    let boundary = "----idp-test-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    if let Some(token) = token {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n").bytes(),
        );
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"fichier\"; filename=\"eleves.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .bytes(),
    );
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{boundary}--\r\n").bytes());
    app.client
        .post(app.url("/gestion/import/apercu"))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn upload(app: &TestApp, file: &str) -> LoginResult {
    let token = token(app).await;
    result(upload_with(app, Some(&token), file.as_bytes()).await).await
}

/// The preview's confirmation form, as the browser submits it.
async fn confirm(app: &TestApp, preview: &LoginResult, password: Option<&str>) -> reqwest::Response {
    let mut form = hidden_inputs(&preview.body);
    assert!(form.iter().any(|(k, _)| k == "cle"), "a confirmation form: {}", preview.body);
    if let Some(password) = password {
        form.push(("mot_de_passe".into(), password.into()));
    }
    app.client.post(app.url("/gestion/import/confirmer")).form(&form).send().await.unwrap()
}

async fn exists(app: &TestApp, login: &str) -> bool {
    app.stores.accounts.find_by_login(&Login::parse(login).unwrap()).await.unwrap().is_some()
}

async fn family_name(app: &TestApp, login: &str) -> String {
    app.stores.accounts.find_by_login(&Login::parse(login).unwrap()).await.unwrap().unwrap().family_name
}

/// The text of a page without its tags, its spaces collapsed.
fn words(r: &LoginResult) -> String {
    let tags = regex::Regex::new(r"<[^>]*>").unwrap();
    tags.replace_all(&text(r), " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn a_previewed_import_creates_the_accounts_once_and_prints_their_letters() {
    let app = setup().await;
    let home = get(&app, "/gestion/").await;
    assert!(home.body.contains(r#"<a href="/gestion/import">Importer un fichier</a>"#), "{}", home.body);
    let form = get(&app, "/gestion/import").await;
    assert!(form.body.contains(r#"enctype="multipart/form-data""#), "{}", form.body);
    assert!(form.body.contains(r#"<input type="file" id="fichier" name="fichier""#), "{}", form.body);

    let file = format!(
        "{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;0370001A$6A\n\
         zoe.nouvelle;eleve;Zoé;Nouvelle;;0370001A;\n\
         {OURS};eleve;Léa;Dupré-Martin;;;0370001A$4B\n"
    );
    let preview = upload(&app, &file).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let shown = words(&preview);
    for expected in [
        "Comptes créés : 2",
        "Comptes modifiés : 1",
        "Comptes inchangés : 0",
        "noe.neuf Noé Neuf Élève 0370001A",
        "Nom Dupré Dupré-Martin",
        "ENTEleveClasses 0370001A$4B",
    ] {
        assert!(shown.contains(expected), "{expected:?} missing from the preview: {shown}");
    }
    // Nothing written yet.
    assert!(!exists(&app, "noe.neuf").await);
    assert_eq!(family_name(&app, OURS).await, "Dupré");

    let done = confirm(&app, &preview, None).await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.headers()["cache-control"], "no-store");
    let done = result(done).await;
    assert!(words(&done).contains("Comptes créés : 2 Comptes modifiés : 1"), "{}", done.body);
    let passwords = shown_passwords(&done);
    assert_eq!(passwords.len(), 2, "{}", done.body);
    assert_eq!(state_of(&app, "noe.neuf").await, AccountState::Provisioned);
    assert_eq!(family_name(&app, OURS).await, "Dupré-Martin");
    let re = regex::Regex::new(r#"<a class="button" href="(/gestion/lettres/[A-Za-z0-9]+)">Imprimer les lettres</a>"#)
        .unwrap();
    let link = re.captures(&done.body).unwrap_or_else(|| panic!("no letters link: {}", done.body))[1].to_owned();
    let letters = pdf_text(&app, &link).await;
    for expected in
        ["noe.neuf", "zoe.nouvelle", "Noé Neuf", "Zoé Nouvelle", passwords[0].as_str(), passwords[1].as_str()]
    {
        assert!(letters.contains(expected), "{expected:?} missing from the letters:\n{letters}");
    }
    let trail = app.stores.admins.audit_since(None).await.unwrap();
    let last = trail.last().unwrap();
    assert_eq!((last.action.as_str(), last.detail.as_str()), ("import", "created=2 updated=1 unchanged=0"));

    // The preview is spent: a second confirmation is refused, nothing again.
    let again = result(confirm(&app, &preview, None).await).await;
    assert_eq!(again.status, 410, "{}", again.body);
    assert!(text(&again).contains("Aperçu expiré"), "{}", again.body);
    assert_eq!(app.stores.admins.audit_since(None).await.unwrap().len(), trail.len());

    // The same file now: the accounts hold its values.
    let preview = upload(&app, &file).await;
    assert!(
        words(&preview).contains("Comptes créés : 0 Comptes modifiés : 0 Comptes inchangés : 3"),
        "{}",
        preview.body
    );
}

#[tokio::test]
async fn a_row_of_another_school_refuses_the_file_whether_its_account_exists_or_not() {
    let app = setup().await;
    let good = format!("{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;\n");
    let mut messages = Vec::new();
    for foreign in [
        "x.inconnu;eleve;Xavier;Inconnu;;0370002B;".to_owned(),
        format!("{THEIRS};eleve;Hugo;Bernard;;0370002B;"),
        format!("{THEIRS};eleve;Hugo;Bernard;;0370001A;"),
        "x.inconnu;eleve;Xavier;Inconnu;;;".to_owned(),
    ] {
        let r = upload(&app, &format!("{good}{foreign}\n")).await;
        assert_eq!(r.status, 422, "{}", r.body);
        let message = text(&r).lines().find(|l| l.contains("Ligne 3 :")).unwrap_or_default().trim().to_owned();
        assert!(message.contains("vos établissements"), "{}", r.body);
        messages.push(message);
    }
    assert!(messages.windows(2).all(|m| m[0] == m[1]), "one message: {messages:#?}");
    assert!(!exists(&app, "noe.neuf").await && !exists(&app, "x.inconnu").await);
    assert_eq!(family_name(&app, THEIRS).await, "Bernard");
}

#[tokio::test]
async fn a_bad_line_is_named_in_french_and_nothing_is_written() {
    let app = setup().await;
    let r =
        upload(&app, &format!("{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;\nm.faux;professeur;Marc;Faux;;0370001A;\n"))
            .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains(r#"role="alert""#), "{}", r.body);
    assert!(
        words(&r).contains("Ligne 3 : le profil doit être eleve, parent, personnel ou autre. Rien n'a été importé."),
        "{}",
        r.body
    );
    let r = upload(&app, "login;profile\n").await;
    assert!(words(&r).contains("Ligne 1 : l'en-tête doit comporter"), "{}", r.body);
    // Windows-1252, as spreadsheets export it, is read.
    let token = token(&app).await;
    let latin1 = b"login;profile;given_name;family_name;school\nc.hotel;parent;Ch\xe9rine;H\xf4tel;0370001A\n";
    let r = result(upload_with(&app, Some(&token), latin1).await).await;
    assert!(words(&r).contains("c.hotel Chérine Hôtel Parent"), "{}", r.body);
    // No file chosen.
    let r = result(upload_with(&app, Some(&token), b"").await).await;
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("Choisissez le fichier CSV"), "{}", r.body);
    assert!(!exists(&app, "noe.neuf").await && !exists(&app, "c.hotel").await);
}

#[tokio::test]
async fn accounts_changed_since_the_preview_refuse_the_confirmation() {
    let app = setup().await;
    let preview =
        upload(&app, &format!("{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;\n{OURS};eleve;Léa;Autre;;;\n")).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    // Meanwhile the account is changed elsewhere (the CLI, another console).
    let mut lea = app.stores.accounts.find_by_login(&Login::parse(OURS).unwrap()).await.unwrap().unwrap();
    lea.given_name = "Léane".into();
    app.stores.accounts.update(&lea).await.unwrap();

    let r = result(confirm(&app, &preview, None).await).await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(text(&r).contains("recommencez l'aperçu"), "{}", r.body);
    assert!(!exists(&app, "noe.neuf").await, "all or nothing");
    assert_eq!(family_name(&app, OURS).await, "Dupré");

    // A login created meanwhile, too.
    let preview = upload(&app, &format!("{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;\n")).await;
    account(&app, "noe.neuf", ("Noé", "Autre"), "0370001A", None).await;
    assert_eq!(result(confirm(&app, &preview, None).await).await.status, 409);
    assert_eq!(family_name(&app, "noe.neuf").await, "Autre");
}

#[tokio::test]
async fn an_old_login_gives_the_password_and_an_old_preview_expires() {
    let app = setup().await;
    let preview = upload(&app, &format!("{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;\n")).await;
    assert!(!preview.body.contains(r#"id="import_mot_de_passe""#));
    app.clock.advance(TimeDelta::minutes(16));
    let r = result(confirm(&app, &preview, Some("pas-le-bon")).await).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(text(&r).contains("Confirmation nécessaire"), "{}", r.body);
    let r = result(confirm(&app, &preview, Some(ADMIN_PASSWORD)).await).await;
    assert_eq!(r.status, 410, "{}", r.body);
    assert!(!exists(&app, "noe.neuf").await);

    app.clock.advance(TimeDelta::minutes(16));
    let preview = upload(&app, &format!("{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;\n")).await;
    assert!(preview.body.contains(r#"id="import_mot_de_passe""#), "{}", preview.body);
    let r = result(confirm(&app, &preview, Some(ADMIN_PASSWORD)).await).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(exists(&app, "noe.neuf").await);
}

#[tokio::test]
async fn files_over_the_limits_are_refused_in_french() {
    let app = setup().await;
    let token = token(&app).await;
    let mut big = HEADER.as_bytes().to_vec();
    big.resize(2 * 1024 * 1024 + 1, b'x');
    let r = result(upload_with(&app, Some(&token), &big).await).await;
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains(r#"<html lang="fr">"#) && text(&r).contains("Fichier trop volumineux"), "{}", r.body);

    let rows = |n: usize| {
        let mut file = HEADER.to_owned();
        for i in 0..n {
            file.push_str(&format!("eleve.{i};eleve;Prénom;Nom;;0370001A;\n"));
        }
        file
    };
    let r = upload(&app, &rows(2001)).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(text(&r).contains("plus de 2000 lignes"), "{}", r.body);
    let r = upload(&app, &rows(501)).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(text(&r).contains("plus de 500 comptes") && text(&r).contains("idp account import"), "{}", r.body);
    assert!(!exists(&app, "eleve.0").await);
}

#[tokio::test]
async fn only_an_administrator_with_the_forms_token_imports() {
    let app = setup().await;
    let file = format!("{HEADER}noe.neuf;eleve;Noé;Neuf;;0370001A;\n");
    // Without the token: refused before anything is read.
    let r = result(upload_with(&app, None, file.as_bytes()).await).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(text(&r).contains("Page expirée"), "{}", r.body);
    let r = result(upload_with(&app, Some("faux-jeton"), file.as_bytes()).await).await;
    assert_eq!(r.status, 403);
    let preview = upload(&app, &file).await;
    let key = hidden_inputs(&preview.body).into_iter().find(|(k, _)| k == "cle").unwrap().1;
    let r = result(app.client.post(app.url("/gestion/import/confirmer")).form(&[("cle", &key)]).send().await.unwrap())
        .await;
    assert_eq!(r.status, 403);
    assert!(!exists(&app, "noe.neuf").await);

    // Someone who holds no role; and nobody signed in.
    let other = app.another_browser();
    account(&other, "prof.martin", ("Jean", "Martin"), "0370001A", Some(ADMIN_PASSWORD)).await;
    assert_eq!(other.login(None, "prof.martin", ADMIN_PASSWORD).await.status, 200);
    let r = get(&other, "/gestion/import").await;
    assert_eq!(r.status, 403);
    assert!(text(&r).contains("réservée aux administrateurs ENT"), "{}", r.body);
    assert_eq!(upload_with(&other, Some(&token(&app).await), file.as_bytes()).await.status(), 403);
    // Another person cannot confirm the administrator's preview either.
    let r = other.client.post(other.url("/gestion/import/confirmer")).form(&[("cle", &key)]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let stranger = app.another_browser();
    assert_eq!(get(&stranger, "/gestion/import").await.status, 401);
    assert!(!exists(&app, "noe.neuf").await);
}

/// A rentrée of a few hundred new accounts goes through at once (their
/// passwords are hashed a few at a time, the pool's queue never fills).
#[tokio::test]
async fn a_few_hundred_accounts_are_created_in_one_import() {
    let app = setup().await;
    let mut file = HEADER.to_owned();
    for i in 0..200 {
        file.push_str(&format!("eleve.{i};eleve;Prénom;Nom;;0370001A;\n"));
    }
    let preview = upload(&app, &file).await;
    assert!(words(&preview).contains("Comptes créés : 200"), "{}", preview.body);
    let done = result(confirm(&app, &preview, None).await).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(shown_passwords(&done).len(), 200);
    assert!(exists(&app, "eleve.199").await);
}
