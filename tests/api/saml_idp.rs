//! Our SAML 2.0 identity provider in front of a real service provider:
//! pysaml2 (PyPI) with xmlsec1 as the GAR (tests/interop/saml_sp/sp.py
//! serve). The SP sends its AuthnRequest, the person logs in on our CAS
//! login page (or already has a session), and pysaml2 checks the signed
//! (and encrypted) response with our metadata and reads `IDO`, `UAI` and
//! `PRO`. Single logout goes both ways. Every refusal is a French page,
//! no assertion, no 5xx.

use std::collections::BTreeMap;

use idp_core::access::{AccessRule, ServicePolicy};
use idp_core::account::{Login, Profile};
use idp_core::clock::Clock;
use idp_core::saml_sp::{NameIdKind, SamlSp};
use idp_core::service::ServiceId;
use serde_json::Value;

use crate::cli::Idp;
use crate::helpers::{TestApp, path_and_query, python, repo_root, result, spawn_app, start_peer, unescape};

const PASSWORD: &str = "Cartable-Bleu-7";
const GAR_RULES: [&str; 3] = ["IDO=pseudonym", "UAI=school", "PRO=ENTPersonProfils"];

/// A pysaml2 SP named `name`, its key pair written first, our metadata
/// given to it; its base URL, its metadata and the process.
async fn start_sp(
    ent: &TestApp,
    dir: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> (String, String, tokio::process::Child) {
    let keys = idp_saml::keys::KeyPair::generate(name, chrono::Utc::now() - chrono::TimeDelta::hours(1)).unwrap();
    let (key, cert) = keys.to_pem().unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), key).unwrap();
    std::fs::write(dir.join(format!("{name}-cert.pem")), cert).unwrap();
    let r = ent.client.get(ent.url("/saml/idp/metadata")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/samlmetadata+xml");
    std::fs::write(dir.join("idp.xml"), r.text().await.unwrap()).unwrap();
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(repo_root().join("tests/interop/saml_sp/sp.py"))
        .args(["--dir", dir.to_str().unwrap(), "--name", name, "serve"])
        .args(extra);
    let (base, child) = start_peer(&mut cmd, "pysaml2 SP").await;
    let metadata = std::fs::read_to_string(dir.join(format!("{name}.xml"))).unwrap();
    (base, metadata, child)
}

fn registration(id: &str, metadata: &str, name_id: NameIdKind, encrypt: bool) -> SamlSp {
    let descriptor = idp_saml::metadata::SpDescriptor::parse(metadata, None, chrono::Utc::now()).unwrap();
    SamlSp {
        id: ServiceId::parse(id).unwrap(),
        name: format!("Ressources {id}"),
        entity_id: descriptor.entity_id,
        metadata: metadata.to_owned(),
        name_id,
        encrypt,
        require_signed_requests: false,
        idp_initiated: false,
        attributes: GAR_RULES.iter().map(|s| s.to_string()).collect(),
        policy: ServicePolicy::default(),
    }
}

async fn zoe(ent: &TestApp) {
    let attrs = BTreeMap::from([("ENTPersonProfils".to_owned(), vec!["National_ELV".to_owned()])]);
    ent.active_account_with("zoe.martin", PASSWORD, Profile::Eleve, attrs).await;
}

/// The SP's AuthnRequest by redirect (query options for /start): where our
/// SSO endpoint sends the browser.
async fn sp_redirect(ent: &TestApp, sp: &str, query: &str) -> crate::helpers::LoginResult {
    let r = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let to_idp = r.get(format!("{sp}/start?{query}")).send().await.unwrap();
    assert_eq!(to_idp.status(), 302);
    let location = to_idp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1/saml/idp/sso?SAMLRequest="), "{location}");
    result(ent.client.get(ent.url(&path_and_query(&location))).send().await.unwrap()).await
}

/// Follows our redirects (login with the password when the form shows)
/// until the page that posts to the SP; its hidden fields.
async fn through_login(ent: &TestApp, first: crate::helpers::LoginResult) -> Vec<(String, String)> {
    let mut r = first;
    for _ in 0..6 {
        if r.status == 200 && r.body.contains(r#"name="SAMLResponse""#) {
            return crate::helpers::hidden_inputs(&r.body);
        }
        let location = r.location.clone().unwrap_or_else(|| panic!("status {}: {}", r.status, r.body));
        let path = path_and_query(&location);
        if path.starts_with("/cas/login") && !path.contains("ticket=") {
            let page =
                result(ent.client.get(ent.url(&format!("{path}&profile=eleve-parent"))).send().await.unwrap()).await;
            if page.status == 200 {
                let mut form = crate::helpers::hidden_inputs(&page.body);
                form.push(("username".into(), "zoe.martin".into()));
                form.push(("password".into(), PASSWORD.into()));
                r = result(ent.client.post(ent.url("/cas/login")).form(&form).send().await.unwrap()).await;
                continue;
            }
            r = page;
            continue;
        }
        r = result(ent.client.get(ent.url(&path)).send().await.unwrap()).await;
    }
    panic!("no response page: {} {}", r.status, r.body);
}

/// Posts the response to the SP's ACS: pysaml2's verdict.
async fn post_to_sp(sp: &str, form: &[(String, String)]) -> (u16, Value) {
    let r = reqwest::Client::new().post(format!("{sp}/acs")).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn values<'a>(answer: &'a Value, name: &str) -> Vec<&'a str> {
    answer["attributes"][name].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gar_gets_a_signed_encrypted_assertion_with_ido_uai_pro_and_sso_reuses_the_session() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, metadata, _sp) = start_sp(&ent, dir.path(), "gar", &[]).await;
    ent.stores.saml_sps.add(registration("gar", &metadata, NameIdKind::Persistent, true)).await.unwrap();

    // No session: the login page first, then the response.
    let first = sp_redirect(&ent, &gar, "binding=redirect").await;
    assert_eq!(first.status, 303, "{}", first.body);
    assert!(first.location.as_deref().unwrap().starts_with("/cas/login?service="), "{:?}", first.location);
    let form = through_login(&ent, first).await;
    assert!(form.iter().any(|(k, v)| k == "RelayState" && v == "sp-relay"), "{form:?}");
    assert!(!form.iter().any(|(k, _)| k != "RelayState" && k != "SAMLResponse"), "{form:?}");
    let (status, answer) = post_to_sp(&gar, &form).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["encrypted"], true);
    assert_eq!(answer["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
    let ido = values(&answer, "IDO");
    assert_eq!(ido.len(), 1, "{answer}");
    assert_eq!(ido[0], answer["name_id"].as_str().unwrap(), "the persistent NameID is the GAR pseudonym");
    assert_ne!(ido[0], "zoe.martin");
    assert_eq!(values(&answer, "UAI"), ["0370001A", "0370002B"]);
    assert_eq!(values(&answer, "PRO"), ["National_ELV"]);
    assert!(answer["in_response_to"].as_str().unwrap().starts_with("id"), "{answer}");
    assert_eq!(
        answer["authn_context"],
        serde_json::json!(["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"]),
        "a password alone"
    );

    // With the session: straight to the response, the same persistent id.
    let again = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect&unsigned=1").await).await;
    let (status, second) = post_to_sp(&gar, &again).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["name_id"], answer["name_id"]);
    assert_ne!(second["session_index"], answer["session_index"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_binding_request_two_sps_get_different_persistent_ids_and_transient_ones_change() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, gar_md, _a) = start_sp(&ent, dir.path(), "gar", &[]).await;
    let (edit, edit_md, _b) = start_sp(&ent, dir.path(), "editeur", &[]).await;
    ent.stores.saml_sps.add(registration("gar", &gar_md, NameIdKind::Persistent, false)).await.unwrap();
    ent.stores.saml_sps.add(registration("editeur", &edit_md, NameIdKind::Persistent, false)).await.unwrap();

    let login = |sp: String| {
        let ent = &ent;
        async move {
            let start: Value = reqwest::get(format!("{sp}/start?binding=post")).await.unwrap().json().await.unwrap();
            assert_eq!(start["action"], "http://127.0.0.1/saml/idp/sso");
            let form = [("SAMLRequest", start["SAMLRequest"].as_str().unwrap()), ("RelayState", "sp-relay")];
            let r = result(ent.client.post(ent.url("/saml/idp/sso")).form(&form).send().await.unwrap()).await;
            let fields = through_login(ent, r).await;
            let (status, answer) = post_to_sp(&sp, &fields).await;
            assert_eq!(status, 200, "{answer}");
            assert_eq!(answer["encrypted"], false);
            answer
        }
    };
    let at_gar = login(gar.clone()).await;
    let at_editeur = login(edit.clone()).await;
    assert_ne!(at_gar["name_id"], at_editeur["name_id"], "one pseudonym per SP");
    assert_eq!(login(gar.clone()).await["name_id"], at_gar["name_id"], "stable for one SP");

    // A transient NameID changes at each assertion.
    ent.stores.saml_sps.remove(&ServiceId::parse("editeur").unwrap()).await.unwrap();
    ent.stores.saml_sps.add(registration("editeur", &edit_md, NameIdKind::Transient, false)).await.unwrap();
    let one = login(edit.clone()).await;
    let two = login(edit).await;
    assert_eq!(one["name_id_format"], "urn:oasis:names:tc:SAML:2.0:nameid-format:transient");
    assert_ne!(one["name_id"], two["name_id"]);
}

/// A French refusal page: status, words, and no SAMLResponse anywhere.
#[track_caller]
fn refused(r: &crate::helpers::LoginResult, status: u16, words: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(unescape(&r.body).contains(words), "{}", r.body);
    assert!(!r.body.contains("SAMLResponse"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_get_french_pages_and_no_assertion() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, metadata, _sp) = start_sp(&ent, dir.path(), "gar", &["--sign-requests"]).await;

    // Not registered yet.
    let r = sp_redirect(&ent, &gar, "binding=redirect").await;
    refused(&r, 403, "Ce service n'est pas autorisé");

    let mut sp = registration("gar", &metadata, NameIdKind::Persistent, false);
    sp.policy.access = AccessRule::parse(&["personnel".to_owned()], &[]).unwrap();
    ent.stores.saml_sps.add(sp).await.unwrap();
    // The metadata says AuthnRequestsSigned: unsigned requests are refused.
    let r = sp_redirect(&ent, &gar, "binding=redirect&unsigned=1").await;
    refused(&r, 403, "n'est pas signée");
    // Signed by another key: refused the same way.
    let start: Value = reqwest::get(format!("{gar}/start?binding=post")).await.unwrap().json().await.unwrap();
    let xml = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, start["SAMLRequest"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let tampered = xml.replace("sp-relay", "x").replace("Version=\"2.0\"", "Version=\"2.0\" ForceAuthn=\"true\"");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, tampered);
    let r =
        result(ent.client.post(ent.url("/saml/idp/sso")).form(&[("SAMLRequest", b64.as_str())]).send().await.unwrap())
            .await;
    refused(&r, 403, "n'est pas signée");

    // Garbage, nothing, an IdP-initiated login the SP did not allow, an
    // expired or unknown resume key.
    for (path, status, words) in [
        ("/saml/idp/sso?SAMLRequest=%%%", 400, "illisible"),
        ("/saml/idp/sso", 400, "illisible"),
        ("/saml/idp/sso?sp=gar", 403, "que depuis son propre site"),
        ("/saml/idp/sso?sp=inconnu", 403, "Ce service n'est pas autorisé"),
        ("/saml/idp/resume/gar?key=abc&ticket=ST-1", 400, "Connexion expirée"),
        ("/saml/idp/slo?SAMLRequest=abc", 400, "illisible"),
    ] {
        let r = result(ent.client.get(ent.url(path)).send().await.unwrap()).await;
        refused(&r, status, words);
    }
    let r = result(ent.client.post(ent.url("/saml/idp/sso")).body("not a form").send().await.unwrap()).await;
    refused(&r, 400, "illisible");

    // Signed, but for an assertion consumer the metadata does not list:
    // the SP's own signed request cannot name another URL, so the check is
    // made with an unsigned request to an SP that does not require them.
    let (other, other_md, _o) = start_sp(&ent, dir.path(), "autre", &[]).await;
    ent.stores.saml_sps.add(registration("autre", &other_md, NameIdKind::Transient, false)).await.unwrap();
    let start: Value =
        reqwest::get(format!("{other}/start?binding=post&unsigned=1")).await.unwrap().json().await.unwrap();
    let xml = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, start["SAMLRequest"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let acs = format!("{other}/sp/acs");
    let evil = xml.replace(&acs, "https://evil.example.test/acs");
    assert_ne!(evil, xml);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, evil);
    let r =
        result(ent.client.post(ent.url("/saml/idp/sso")).form(&[("SAMLRequest", b64.as_str())]).send().await.unwrap())
            .await;
    refused(&r, 403, "adresse qui n'a pas été déclarée");

    // Registered and signed, but the access rules leave élèves out: the
    // CAS refusal page, no response.
    let first = sp_redirect(&ent, &gar, "binding=redirect").await;
    assert_eq!(first.status, 303);
    let path = path_and_query(first.location.as_deref().unwrap());
    let page = result(ent.client.get(ent.url(&format!("{path}&profile=eleve-parent"))).send().await.unwrap()).await;
    let mut form = crate::helpers::hidden_inputs(&page.body);
    form.push(("username".into(), "zoe.martin".into()));
    form.push(("password".into(), PASSWORD.into()));
    let r = result(ent.client.post(ent.url("/cas/login")).form(&form).send().await.unwrap()).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.contains("SAMLResponse"));
}

#[tokio::test(flavor = "multi_thread")]
async fn single_logout_reaches_the_sp_by_soap_and_the_sp_ends_the_session() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, metadata, _sp) = start_sp(&ent, dir.path(), "gar", &[]).await;
    ent.stores.saml_sps.add(registration("gar", &metadata, NameIdKind::Persistent, false)).await.unwrap();

    // Logged in at the GAR, then logged out at the ENT: the GAR is told.
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    let (_, answer) = post_to_sp(&gar, &form).await;
    let r = ent.client.get(ent.url("/cas/logout")).send().await.unwrap();
    assert!(r.status().as_u16() < 500);
    let log = std::fs::read_to_string(dir.path().join("gar-logouts.log")).unwrap_or_default();
    let told: Value = serde_json::from_str(log.lines().next().unwrap_or("{}")).unwrap();
    assert_eq!(told["name_id"], answer["name_id"], "{log}");
    assert_eq!(told["session_index"][0], answer["session_index"], "{log}");

    // Logged in again, then the GAR asks for the logout: the session ends
    // (the login page shows again) and the GAR gets a signed Success.
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    let (_, answer) = post_to_sp(&gar, &form).await;
    let q = [
        ("name_id", answer["name_id"].as_str().unwrap()),
        ("format", answer["name_id_format"].as_str().unwrap()),
        ("session_index", answer["session_index"].as_str().unwrap()),
    ];
    let sp = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let to_idp = sp.get(format!("{gar}/start-logout")).query(&q).send().await.unwrap();
    let location = to_idp.headers()["location"].to_str().unwrap().to_owned();
    let r = result(ent.client.get(ent.url(&path_and_query(&location))).send().await.unwrap()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let back = r.location.unwrap();
    assert!(back.starts_with(&format!("{gar}/sp/slo?SAMLResponse=")), "{back}");
    let verdict: Value = reqwest::get(&back).await.unwrap().json().await.unwrap();
    assert_eq!(verdict["status"], "urn:oasis:names:tc:SAML:2.0:status:Success", "{verdict}");
    assert_eq!(verdict["relay_state"], "sp-relay");
    let lines = std::fs::read_to_string(dir.path().join("gar-logouts.log")).unwrap().lines().count();
    assert_eq!(lines, 1, "the SP that asked is not asked back");
    let account = ent.stores.accounts.find_by_login(&Login::parse("zoe.martin").unwrap()).await.unwrap().unwrap();
    assert!(ent.stores.sessions.sessions_of(account.id).await.unwrap().is_empty(), "the SSO session ended");

    // An unsigned logout request of an SP with a key: refused.
    let q = [("name_id", "x"), ("unsigned", "1")];
    let to_idp = sp.get(format!("{gar}/start-logout")).query(&q).send().await.unwrap();
    let location = to_idp.headers()["location"].to_str().unwrap().to_owned();
    let r = result(ent.client.get(ent.url(&path_and_query(&location))).send().await.unwrap()).await;
    refused(&r, 403, "n'est pas signée");
}

#[tokio::test(flavor = "multi_thread")]
async fn saml_sp_add_list_remove_reach_the_running_server() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, _, _sp) = start_sp(&ent, dir.path(), "gar", &[]).await;
    let idp = Idp::new(ent.data_dir.path());
    let md = dir.path().join("gar.xml");
    let md = md.to_str().unwrap();
    let args = ["saml-sp", "add", "gar", "--metadata", md, "--name", "GAR", "--name-id", "persistent", "--encrypt"];
    let mut args: Vec<&str> = args.to_vec();
    for rule in GAR_RULES {
        args.extend(["--attribute", rule]);
    }
    let out = idp.run(&args).await;
    out.ok();
    assert!(out.stdout.is_empty());
    let list = idp.run(&["saml-sp", "list"]).await;
    list.ok();
    assert!(list.stdout.starts_with("gar\tGAR\thttp://127.0.0.1:"), "{}", list.stdout);
    assert!(
        list.stdout
            .contains("name-id=persistent\tencrypt=true\tattributes=IDO=pseudonym,UAI=school,PRO=ENTPersonProfils")
    );
    idp.run(&args).await.fails_with("already");
    idp.run(&["saml-sp", "add", "x", "--metadata", "/nonexistent.xml"]).await.fails_with("cannot read");
    idp.run(&["saml-sp", "add", "x", "--metadata", md, "--attribute", "nope=unknown_thing"])
        .await
        .fails_with("unknown");
    idp.run(&["saml-sp", "add", "x", "--metadata", md, "--name-id", "email"]).await.fails_with("name id");
    // CAS service ids in `saml.` are the SPs' login services: refused, in
    // any case, and nothing is written.
    for id in ["saml.gar", "SAML.autre"] {
        idp.run(&["service", "add", id, "--name", "Piège", "--url-pattern", r"https://piege\.example\.test/.*"])
            .await
            .fails_with("reserved for the login services of SAML SPs");
    }
    let services = idp.run(&["service", "list"]).await;
    services.ok();
    assert!(!services.stdout.to_lowercase().contains("saml."), "{}", services.stdout);

    // The running server serves it at once.
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    let (status, answer) = post_to_sp(&gar, &form).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["encrypted"], true);

    idp.run(&["saml-sp", "remove", "gar"]).await.ok();
    idp.run(&["saml-sp", "remove", "gar"]).await.fails_with("no SAML SP");
    let r = sp_redirect(&ent, &gar, "binding=redirect").await;
    refused(&r, 403, "Ce service n'est pas autorisé");
}

#[tokio::test(flavor = "multi_thread")]
async fn is_passive_without_a_session_gets_no_passive_and_force_authn_asks_the_password_again() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, metadata, _sp) = start_sp(&ent, dir.path(), "gar", &[]).await;
    ent.stores.saml_sps.add(registration("gar", &metadata, NameIdKind::Transient, false)).await.unwrap();

    // IsPassive, no session: CAS gateway comes back without a ticket, and
    // the SP gets a NoPassive status without assertion.
    let first = sp_redirect(&ent, &gar, "binding=redirect&passive=1").await;
    let login = first.location.as_deref().unwrap();
    assert!(login.contains("gateway=true"), "{login}");
    let r = result(ent.client.get(ent.url(login)).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let back =
        result(ent.client.get(ent.url(&path_and_query(r.location.as_deref().unwrap()))).send().await.unwrap()).await;
    let form = crate::helpers::hidden_inputs(&back.body);
    let response = form.iter().find(|(k, _)| k == "SAMLResponse").map(|(_, v)| v.clone()).unwrap();
    let xml = String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, response).unwrap())
        .unwrap();
    assert!(xml.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"), "{xml}");
    assert!(!xml.contains("Assertion"), "{xml}");
    let (status, answer) = post_to_sp(&gar, &form).await;
    assert_eq!(status, 403, "pysaml2 reads a refusal: {answer}");

    // Logged in, then ForceAuthn: the password is asked again.
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    assert_eq!(post_to_sp(&gar, &form).await.0, 200);
    let forced = sp_redirect(&ent, &gar, "binding=redirect&force=1").await;
    let login = forced.location.as_deref().unwrap();
    assert!(login.contains("renew=true"), "{login}");
    let page = result(ent.client.get(ent.url(&format!("{login}&profile=eleve-parent"))).send().await.unwrap()).await;
    assert_eq!(page.status, 200, "the form again, not single sign-on: {:?}", page.location);
    let form = through_login(&ent, forced).await;
    assert_eq!(post_to_sp(&gar, &form).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_authn_request_is_refused_by_either_binding_and_gets_no_assertion() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, metadata, _sp) = start_sp(&ent, dir.path(), "gar", &["--sign-requests"]).await;
    ent.stores.saml_sps.add(registration("gar", &metadata, NameIdKind::Persistent, false)).await.unwrap();

    // HTTP-Redirect: the same signed request URL twice.
    let r = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let to_idp = r.get(format!("{gar}/start?binding=redirect")).send().await.unwrap();
    let location = path_and_query(to_idp.headers()["location"].to_str().unwrap());
    let first = result(ent.client.get(ent.url(&location)).send().await.unwrap()).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let form = through_login(&ent, first).await;
    assert_eq!(post_to_sp(&gar, &form).await.0, 200);
    // Even with a live session, the second sight gets the refusal page.
    let again = result(ent.client.get(ent.url(&location)).send().await.unwrap()).await;
    refused(&again, 400, "a déjà été reçue");
    assert!(again.body.contains("SAMLIDP0007"), "{}", again.body);

    // HTTP-POST: the same signed message twice.
    let start: Value = reqwest::get(format!("{gar}/start?binding=post")).await.unwrap().json().await.unwrap();
    let message = start["SAMLRequest"].as_str().unwrap();
    let post = || async {
        let form = [("SAMLRequest", message), ("RelayState", "sp-relay")];
        result(ent.client.post(ent.url("/saml/idp/sso")).form(&form).send().await.unwrap()).await
    };
    let first = post().await;
    assert!(first.status == 303 || first.body.contains("SAMLResponse"), "{} {}", first.status, first.body);
    refused(&post().await, 400, "a déjà été reçue");
    // A new request from the same SP still passes.
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    assert_eq!(post_to_sp(&gar, &form).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sp_ends_the_session_by_soap_and_gets_a_signed_soap_logout_response() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, metadata, _sp) = start_sp(&ent, dir.path(), "gar", &[]).await;
    ent.stores.saml_sps.add(registration("gar", &metadata, NameIdKind::Transient, false)).await.unwrap();
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    let (_, answer) = post_to_sp(&gar, &form).await;
    let to = ent.url("/saml/idp/slo");
    let soap = |extra: Vec<(&'static str, String)>| {
        let mut q = vec![
            ("name_id", answer["name_id"].as_str().unwrap().to_owned()),
            ("format", answer["name_id_format"].as_str().unwrap().to_owned()),
            ("to", to.clone()),
        ];
        q.extend(extra);
        let gar = gar.clone();
        async move {
            let r = reqwest::Client::new().get(format!("{gar}/start-soap-logout")).query(&q).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let index = answer["session_index"].as_str().unwrap().to_owned();

    // Unsigned, where the SP's metadata has a key: a SOAP fault, nothing ends.
    let verdict = soap(vec![("session_index", index.clone()), ("unsigned", "1".into())]).await;
    assert_eq!(verdict["http"], 403, "{verdict}");
    assert!(verdict["body"].as_str().unwrap().contains("<faultcode>soap:Client</faultcode>"), "{verdict}");
    let account = ent.stores.accounts.find_by_login(&Login::parse("zoe.martin").unwrap()).await.unwrap().unwrap();
    assert_eq!(ent.stores.sessions.sessions_of(account.id).await.unwrap().len(), 1);

    // Signed, naming the session: it ends, pysaml2 checks our signed
    // LogoutResponse; the SP that asked is not asked back.
    let verdict = soap(vec![("session_index", index.clone())]).await;
    assert_eq!(verdict["http"], 200, "{verdict}");
    assert_eq!(verdict["status"], "urn:oasis:names:tc:SAML:2.0:status:Success", "{verdict}");
    assert!(ent.stores.sessions.sessions_of(account.id).await.unwrap().is_empty(), "the SSO session ended");
    assert!(!dir.path().join("gar-logouts.log").exists(), "the SP that asked is not asked back");

    // Again, or without a SessionIndex (no browser by SOAP): no such session.
    for extra in [vec![("session_index", index.clone())], vec![]] {
        let verdict = soap(extra).await;
        assert_eq!(verdict["http"], 200, "{verdict}");
        assert_eq!(verdict["status"], "urn:oasis:names:tc:SAML:2.0:status:Requester", "{verdict}");
    }

    // Not an envelope, an unknown issuer: SOAP faults, no 5xx.
    let post = |body: &'static str| {
        let to = to.clone();
        async move {
            let r = reqwest::Client::new()
                .post(to)
                .header("content-type", "text/xml; charset=utf-8")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = post("<not-soap/>").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("soap:Fault"), "{body}");
    let (status, body) = post(concat!(
        r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#,
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="x" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">"#,
        r#"<saml:Issuer>https://inconnu.example.test</saml:Issuer><saml:NameID>x</saml:NameID></samlp:LogoutRequest>"#,
        r#"</soap:Body></soap:Envelope>"#
    ))
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("soap:Fault"), "{body}");
}

/// A login with the second factor: the code page comes after the password,
/// before any assertion, and the assertion says `TimeSyncToken`.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_second_factor_the_assertion_says_time_sync_token() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let login = Login::parse("zoe.martin").unwrap();
    let id = ent.stores.accounts.find_by_login(&login).await.unwrap().unwrap().id;
    let secret = idp_core::second_factor::TotpSecret::generate().unwrap();
    ent.stores.second_factors.set_totp(id, &secret, 0, &[], chrono::Utc::now()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (gar, metadata, _sp) = start_sp(&ent, dir.path(), "gar", &[]).await;
    ent.stores.saml_sps.add(registration("gar", &metadata, NameIdKind::Persistent, false)).await.unwrap();

    let first = sp_redirect(&ent, &gar, "binding=redirect").await;
    let to_login = path_and_query(first.location.as_deref().unwrap());
    let page = result(ent.client.get(ent.url(&format!("{to_login}&profile=eleve-parent"))).send().await.unwrap()).await;
    let mut form = crate::helpers::hidden_inputs(&page.body);
    form.push(("username".into(), "zoe.martin".into()));
    form.push(("password".into(), PASSWORD.into()));
    let code_page = result(ent.client.post(ent.url("/cas/login")).form(&form).send().await.unwrap()).await;
    assert_eq!(code_page.status, 200, "the code before any assertion: {}", code_page.body);
    assert!(!code_page.body.contains("SAMLResponse"));
    let totp = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, secret.expose().to_vec()).unwrap();
    let mut form = crate::helpers::hidden_inputs(&code_page.body);
    form.retain(|(k, _)| k == "csrf_token" || k == "jeton");
    form.push(("code".into(), totp.generate(ent.clock.now().timestamp() as u64)));
    let back = result(ent.client.post(ent.url("/cas/login/code")).form(&form).send().await.unwrap()).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let response = through_login(&ent, back).await;
    let (status, answer) = post_to_sp(&gar, &response).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["authn_context"],
        serde_json::json!(["urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"]),
        "{answer}"
    );
    assert!(values(&answer, "authenticationMethod").is_empty(), "not a released attribute: {answer}");
}

/// Follows the browser through the front-channel logout chain from `first`:
/// our redirects on the ENT's client, the SPs' on a plain one; the SP bases
/// visited, in order, and the last answer.
async fn through_chain(
    ent: &TestApp,
    first: crate::helpers::LoginResult,
) -> (Vec<String>, crate::helpers::LoginResult) {
    let sp = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (mut visited, mut r) = (Vec::new(), first);
    for _ in 0..10 {
        let Some(location) = r.location.clone() else { return (visited, r) };
        if location.starts_with("http://127.0.0.1/") || location.starts_with('/') {
            r = result(ent.client.get(ent.url(&path_and_query(&location))).send().await.unwrap()).await;
        } else {
            visited.push(location.split("/sp/").next().unwrap().to_owned());
            r = result(sp.get(&location).send().await.unwrap()).await;
        }
    }
    panic!("the chain does not end: {} {:?}", r.status, r.location);
}

/// The first front-channel LogoutRequest logged by the SP `name`.
fn front_logged(dir: &std::path::Path, name: &str) -> Value {
    let log = std::fs::read_to_string(dir.join(format!("{name}-logouts.log"))).unwrap_or_default();
    serde_json::from_str(log.lines().next().unwrap_or("{}")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cas_logout_sends_the_browser_through_the_front_channel_sps_then_to_the_logged_out_page() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, gar_metadata, _gar) = start_sp(&ent, dir.path(), "gar", &["--no-soap"]).await;
    let (cdi, cdi_metadata, _cdi) = start_sp(&ent, dir.path(), "cdi", &["--no-soap", "--refuse-logout"]).await;
    ent.stores.saml_sps.add(registration("gar", &gar_metadata, NameIdKind::Persistent, false)).await.unwrap();
    ent.stores.saml_sps.add(registration("cdi", &cdi_metadata, NameIdKind::Transient, false)).await.unwrap();
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    let (_, at_gar) = post_to_sp(&gar, &form).await;
    let form = through_login(&ent, sp_redirect(&ent, &cdi, "binding=redirect").await).await;
    let (_, at_cdi) = post_to_sp(&cdi, &form).await;

    let first = result(ent.client.get(ent.url("/cas/logout")).send().await.unwrap()).await;
    // The chain key alone, from another browser, continues nothing.
    let to_sp = reqwest::Url::parse(first.location.as_deref().unwrap()).unwrap();
    let key = to_sp.query_pairs().find(|(k, _)| k == "RelayState").map(|(_, v)| v.into_owned()).unwrap();
    let other = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = ent.url(&format!("/saml/idp/slo?SAMLResponse=abc&RelayState={key}"));
    let r = result(other.get(url).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Déconnexion réussie"), "{}", r.body);
    let account = ent.stores.accounts.find_by_login(&Login::parse("zoe.martin").unwrap()).await.unwrap().unwrap();
    assert!(ent.stores.sessions.sessions_of(account.id).await.unwrap().is_empty(), "ended before the chain");
    let (mut visited, last) = through_chain(&ent, first).await;
    visited.sort();
    let mut both = vec![gar.clone(), cdi.clone()];
    both.sort();
    assert_eq!(visited, both, "each SP visited once");
    assert_eq!(last.status, 200);
    assert!(last.body.contains("Déconnexion réussie"), "{}", last.body);
    for (name, answer) in [("gar", &at_gar), ("cdi", &at_cdi)] {
        let told = front_logged(dir.path(), name);
        assert_eq!(told["name_id"], answer["name_id"], "{name}: {told}");
        assert_eq!(told["session_index"][0], answer["session_index"], "{name}: {told}");
        assert_eq!(told["signed"], true, "{name}: {told}");
    }

    // A chain key the browser does not hold, or a forged one: the
    // logged-out page, no 5xx.
    let r =
        result(ent.client.get(ent.url("/saml/idp/slo?SAMLResponse=abc&RelayState=forged")).send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Déconnexion réussie"), "{}", r.body);
    let r = result(
        ent.client
            .post(ent.url("/saml/idp/slo"))
            .form(&[("SAMLResponse", "%%%"), ("RelayState", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Déconnexion réussie"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sp_initiated_logout_visits_the_front_channel_sp_then_answers_the_initiator() {
    let ent = spawn_app().await;
    zoe(&ent).await;
    let dir = tempfile::tempdir().unwrap();
    let (gar, gar_metadata, _gar) = start_sp(&ent, dir.path(), "gar", &[]).await;
    let (cdi, cdi_metadata, _cdi) = start_sp(&ent, dir.path(), "cdi", &["--no-soap"]).await;
    ent.stores.saml_sps.add(registration("gar", &gar_metadata, NameIdKind::Persistent, false)).await.unwrap();
    ent.stores.saml_sps.add(registration("cdi", &cdi_metadata, NameIdKind::Persistent, false)).await.unwrap();
    let form = through_login(&ent, sp_redirect(&ent, &gar, "binding=redirect").await).await;
    let (_, at_gar) = post_to_sp(&gar, &form).await;
    let form = through_login(&ent, sp_redirect(&ent, &cdi, "binding=redirect").await).await;
    let (_, at_cdi) = post_to_sp(&cdi, &form).await;

    let q = [
        ("name_id", at_gar["name_id"].as_str().unwrap()),
        ("format", at_gar["name_id_format"].as_str().unwrap()),
        ("session_index", at_gar["session_index"].as_str().unwrap()),
    ];
    let sp = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let to_idp = sp.get(format!("{gar}/start-logout")).query(&q).send().await.unwrap();
    let first = crate::helpers::LoginResult {
        status: 302,
        location: Some(to_idp.headers()["location"].to_str().unwrap().to_owned()),
        body: String::new(),
    };
    let (visited, last) = through_chain(&ent, first).await;
    assert_eq!(visited.first(), Some(&cdi), "the front-channel SP first");
    assert_eq!(visited.last(), Some(&gar), "then the answer to the SP that asked");
    assert_eq!(visited.len(), 2);
    assert_eq!(last.status, 200, "{}", last.body);
    let verdict: Value = serde_json::from_str(&last.body).unwrap();
    assert_eq!(verdict["status"], "urn:oasis:names:tc:SAML:2.0:status:Success", "{verdict}");
    assert_eq!(verdict["relay_state"], "sp-relay");
    let told = front_logged(dir.path(), "cdi");
    assert_eq!(told["name_id"], at_cdi["name_id"], "{told}");
    assert_eq!(told["session_index"][0], at_cdi["session_index"], "{told}");
    assert_eq!(told["signed"], true, "{told}");
    assert!(!dir.path().join("gar-logouts.log").exists(), "the SP that asked is not asked back");
}
