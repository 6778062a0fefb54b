//! Helpers of the account-flow tests: forms with their CSRF token, the
//! outbox, and the links in the e-mails.

#![allow(dead_code)]

use crate::helpers::{LoginResult, TestApp, hidden_inputs, result, unescape};

/// `GET path` with the app's browser.
pub async fn get(app: &TestApp, path: &str) -> LoginResult {
    result(app.client.get(app.url(path)).send().await.unwrap()).await
}

/// `GET path` with another browser.
pub async fn get_with(client: &reqwest::Client, app: &TestApp, path: &str) -> LoginResult {
    result(client.get(app.url(path)).send().await.unwrap()).await
}

/// `POST path` with `fields` and the CSRF token (and other hidden inputs)
/// of the page at `from`, as a browser submitting that page's form does.
pub async fn post(app: &TestApp, from: &str, path: &str, fields: &[(&str, &str)]) -> LoginResult {
    post_with(&app.client, app, from, path, fields).await
}

pub async fn post_with(
    client: &reqwest::Client,
    app: &TestApp,
    from: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> LoginResult {
    let page = get_with(client, app, from).await;
    let mut form: Vec<(String, String)> = Vec::new();
    for (k, v) in hidden_inputs(&page.body) {
        if !form.iter().any(|(name, _)| *name == k) && !fields.iter().any(|(name, _)| *name == k) {
            form.push((k, v));
        }
    }
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    result(client.post(app.url(path)).form(&form).send().await.unwrap()).await
}

/// The messages written to the outbox, oldest first, as raw text.
pub fn outbox(app: &TestApp) -> Vec<String> {
    let dir = app.data_dir.path().join("outbox");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

/// Waits (up to 5 s) until the outbox holds `n` messages, and returns them.
pub async fn wait_for_outbox(app: &TestApp, n: usize) -> Vec<String> {
    for _ in 0..50 {
        let mails = outbox(app);
        if mails.len() >= n {
            return mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    outbox(app)
}

/// Decodes quoted-printable text (soft line breaks and `=XX`).
pub fn decode_qp(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path and query of the first link to `path` in the last e-mail.
pub fn last_link(app: &TestApp, path: &str) -> String {
    let mails = outbox(app);
    let mail = decode_qp(mails.last().expect("an e-mail in the outbox"));
    let re = regex::Regex::new(&format!(r"https?://[^/\s]+({}\?code=[A-Za-z0-9]+)", regex::escape(path))).unwrap();
    re.captures(&mail).unwrap_or_else(|| panic!("no link to {path} in:\n{mail}"))[1].to_owned()
}

/// The body as a person reads it (entities decoded).
pub fn text(r: &LoginResult) -> String {
    unescape(&r.body)
}

/// Runs the first step; asserts it leads to the wizard.
pub async fn start(app: &TestApp, login: &str, provisional: &str, query: &str) -> LoginResult {
    let from = format!("/compte/activation{query}");
    post(app, &from, "/compte/activation", &[("identifiant", login), ("mot_de_passe_provisoire", provisional)]).await
}

/// The whole wizard with secret questions; returns the "Compte activé !" page.
pub async fn activate_with_questions(app: &TestApp, login: &str, provisional: &str, password: &str) -> LoginResult {
    let r = start(app, login, provisional, "").await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = post(app, "/compte/activation", "/compte/activation/cgu", &[("accepte", "oui")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let q = idp_core::questions::default_questions();
    let r = post(
        app,
        "/compte/activation/questions",
        "/compte/activation/questions",
        &[("question1", &q[0]), ("reponse1", "Médor"), ("question2", &q[1]), ("reponse2", "Saint-Étienne")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = post(
        app,
        "/compte/activation",
        "/compte/activation/mot-de-passe",
        &[("mot_de_passe", password), ("confirmation", password)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(text(&r).contains("Compte activé !"), "{}", r.body);
    r
}
