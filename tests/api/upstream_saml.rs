//! Profile routing to a SAML 2.0 identity provider: pysaml2 (PyPI) with
//! xmlsec1 as ÉduConnect (tests/interop/saml_idp/idp.py serve). The élève
//! chooses « Élève ou parent », logs in at pysaml2, comes back to
//! `/upstream/educonnect/acs` with a signed and encrypted assertion, is
//! linked by `FrEduCtRefId` to the account whose `ENTPersonJointure` holds
//! that id, and the ENT service gets a CAS ticket.

use std::collections::BTreeMap;

use idp_core::account::Profile;
use idp_core::upstream::UpstreamConfig;
use idp_web::config::{AuthMethod, LoginProfile};

use crate::helpers::{
    TestApp, assert_valid_cas_xml, browser, hidden_inputs, python, repo_root, result, spawn_app_with, unescape,
};

const SERVICE: &str = "https://vie-scolaire.example.test/";
const PATTERN: &str = r"https://vie-scolaire\.example\.test/.*";

/// pysaml2 serving its login, and the ENT routing « Élève ou parent » there.
async fn setup(dir: &std::path::Path) -> (TestApp, String, tokio::process::Child) {
    setup_with(dir, |m| m).await
}

/// [`setup`], the IdP metadata changed by `edit` before the ENT reads it.
async fn setup_with(
    dir: &std::path::Path,
    edit: impl FnOnce(String) -> String,
) -> (TestApp, String, tokio::process::Child) {
    let idp_keys =
        idp_saml::keys::KeyPair::generate("educonnect", chrono::Utc::now() - chrono::TimeDelta::hours(1)).unwrap();
    let (key, cert) = idp_keys.to_pem().unwrap();
    std::fs::write(dir.join("idp-key.pem"), key).unwrap();
    std::fs::write(dir.join("idp-cert.pem"), cert).unwrap();
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let mut server = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/interop/saml_idp/idp.py"))
        .args(["--dir", dir.to_str().unwrap(), "serve", "--user", "zoe.eleve", "--password", "Cartable-Bleu-7"])
        .args([
            "--attr",
            "FrEduCtRefId=4f2e9c1a",
            "--attr",
            "FrEduCtRefId=other-directory-77",
            "--attr",
            "givenName=Zoé",
        ])
        .args(["--encrypt", "aes256-cbc"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut port = String::new();
    let stdout = server.stdout.take().unwrap();
    tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(stdout), &mut port).await.unwrap();
    assert!(port.trim().parse::<u16>().is_ok(), "pysaml2 did not start: {port:?}");
    let idp = format!("http://127.0.0.1:{}", port.trim());
    let metadata = dir.join("idp.xml").to_str().unwrap().to_owned();
    std::fs::write(&metadata, edit(std::fs::read_to_string(&metadata).unwrap())).unwrap();
    let ent = spawn_app_with(move |s| {
        s.upstreams =
            vec![UpstreamConfig::saml("educonnect", "ÉduConnect", &metadata, ("FrEduCtRefId", "ENTPersonJointure"))];
        s.login.profiles[0] = LoginProfile {
            id: "eleve".into(),
            label: "Élève ou parent".into(),
            method: AuthMethod::Upstream,
            upstreams: vec!["educonnect".into()],
            account_profile: None,
        };
    })
    .await;
    ent.service("vs", PATTERN, &["uid"], None).await;
    // pysaml2 learns our SP metadata from the ENT itself.
    let r = ent.client.get(ent.url("/upstream/educonnect/metadata")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/samlmetadata+xml");
    std::fs::write(dir.join("sp.xml"), r.text().await.unwrap()).unwrap();
    (ent, idp, server)
}

/// From the profile choice to pysaml2's login form, then its answer: the
/// hidden `SAMLResponse` and `RelayState` to post to our ACS.
async fn log_in_at_the_idp(ent: &TestApp, idp: &str, password: &str) -> (u16, Vec<(String, String)>) {
    let r = ent.get_login(&[("profile", "eleve"), ("service", SERVICE)]).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let start = r.location.unwrap();
    let r = result(ent.client.get(ent.url(&start)).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let sso = r.location.unwrap();
    assert!(sso.starts_with(&format!("{idp}/idp/sso?SAMLRequest=")), "{sso}");
    let at_idp = browser();
    let page = at_idp.get(&sso).send().await.unwrap().text().await.unwrap();
    let mut form = hidden_inputs(&page);
    form.push(("username".into(), "zoe.eleve".into()));
    form.push(("password".into(), password.into()));
    let r = at_idp.post(format!("{idp}/idp/login")).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, hidden_inputs(&r.text().await.unwrap()))
}

async fn post_to_acs(ent: &TestApp, form: &[(String, String)]) -> crate::helpers::LoginResult {
    result(ent.client.post(ent.url("/upstream/educonnect/acs")).form(form).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eleve_logs_in_at_educonnect_and_the_ent_service_gets_its_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let (ent, idp, mut server) = setup(dir.path()).await;
    let jointure = BTreeMap::from([("ENTPersonJointure".to_owned(), vec!["AC-ORLEANS-TOURS$4f2e9c1a".to_owned()])]);
    ent.active_account_with("zoe.martin", "Local-Inutile-1", Profile::Eleve, jointure).await;

    let (status, form) = log_in_at_the_idp(&ent, &idp, "Cartable-Bleu-7").await;
    assert_eq!(status, 200);
    assert!(form.iter().any(|(k, _)| k == "SAMLResponse"), "{form:?}");
    let r = post_to_acs(&ent, &form).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.location.as_deref().unwrap().starts_with(SERVICE));
    let (_, _, xml) = ent.validate("/cas/p3/serviceValidate", &[("service", SERVICE), ("ticket", &r.ticket())]).await;
    assert_valid_cas_xml(&xml);
    assert!(xml.contains("<cas:user>zoe.martin</cas:user>"), "the linked local account: {xml}");

    // The same response posted again, by the same browser or another: the
    // RelayState is spent.
    for browser in [&ent, &ent.another_browser()] {
        let again = post_to_acs(browser, &form).await;
        assert_eq!(again.status, 400, "{}", again.body);
        assert!(unescape(&again.body).contains("Cette connexion a expiré ou a déjà été utilisée"), "{}", again.body);
    }
    server.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_unmatched_and_empty_posts_get_french_pages_and_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let (ent, idp, mut server) = setup(dir.path()).await;
    // No account carries the asserted id.
    let (_, form) = log_in_at_the_idp(&ent, &idp, "Cartable-Bleu-7").await;
    let r = post_to_acs(&ent, &form).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(unescape(&r.body).contains("Aucun compte de l'ENT ne correspond à cette identité"), "{}", r.body);
    assert_eq!(ent.get_login(&[("service", SERVICE)]).await.status, 200, "no session");

    // A response altered in transit (its RelayState still pending).
    let (_, mut form) = log_in_at_the_idp(&ent, &idp, "Cartable-Bleu-7").await;
    for (k, v) in form.iter_mut() {
        if k == "SAMLResponse" {
            let mut xml = idp_saml::response::decode_post(v).unwrap();
            xml = xml.replacen("Destination=\"", "Destination=\"x", 1);
            *v = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, xml);
        }
    }
    let r = post_to_acs(&ent, &form).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(unescape(&r.body).contains("n'a pas abouti"), "{}", r.body);

    // Nothing, garbage, an unknown RelayState.
    for body in ["", "SAMLResponse=%%%", "RelayState=abc&SAMLResponse=PHg%2BPC94Pg%3D%3D"] {
        let r = result(
            ent.client
                .post(ent.url("/upstream/educonnect/acs"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(unescape(&r.body).contains("Cette connexion a expiré"), "{}", r.body);
    }
    assert_eq!(ent.client.get(ent.url("/upstream/nope/metadata")).send().await.unwrap().status(), 404);
    server.kill().await.unwrap();
}

/// Logs zoe.martin in through pysaml2: the ENT browser now holds a session
/// that came through ÉduConnect.
async fn logged_in(ent: &TestApp, idp: &str) {
    let jointure = BTreeMap::from([("ENTPersonJointure".to_owned(), vec!["AC-ORLEANS-TOURS$4f2e9c1a".to_owned()])]);
    ent.active_account_with("zoe.martin", "Local-Inutile-1", Profile::Eleve, jointure).await;
    let (_, form) = log_in_at_the_idp(ent, idp, "Cartable-Bleu-7").await;
    let r = post_to_acs(ent, &form).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(ent.get_login(&[("service", SERVICE)]).await.status, 302, "a session");
}

/// The ENT URL pysaml2 redirects to (the ENT's public URL, from its
/// metadata) on the test server's address.
fn at_ent(ent: &TestApp, url: &str) -> String {
    let path = url.find("/upstream/").map(|i| &url[i..]).unwrap_or_else(|| panic!("not to the ENT: {url}"));
    assert!(path.starts_with("/upstream/educonnect/slo?"), "{url}");
    ent.url(path)
}

/// GET `url` with `client`, without following the redirect.
async fn get(client: &reqwest::Client, url: &str) -> crate::helpers::LoginResult {
    result(client.get(url).send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn logging_out_ends_the_educonnect_session_too_then_comes_back_to_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let (ent, idp, mut server) = setup(dir.path()).await;
    logged_in(&ent, &idp).await;

    let r = result(ent.client.get(ent.url("/cas/logout")).query(&[("service", SERVICE)]).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let to_idp = r.location.unwrap();
    assert!(to_idp.starts_with(&format!("{idp}/idp/slo?SAMLRequest=")), "{to_idp}");
    // pysaml2 checks our signed LogoutRequest and answers with its signed LogoutResponse.
    let r = get(&browser(), &to_idp).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let back = at_ent(&ent, &r.location.unwrap());
    assert!(back.contains("/slo?SAMLResponse="), "{back}");
    let seen = std::fs::read_to_string(dir.path().join("logouts.log")).unwrap();
    let seen: serde_json::Value = serde_json::from_str(seen.lines().next().unwrap()).unwrap();
    assert_eq!(seen["name_id"], "zoe.eleve", "the assertion's NameID: {seen}");
    assert_eq!(seen["session_index"].as_array().map(Vec::len), Some(1), "and its SessionIndex: {seen}");

    let r = get(&ent.client, &back).await;
    assert_eq!((r.status, r.location.as_deref()), (302, Some(SERVICE)), "{}", r.body);
    assert_eq!(ent.get_login(&[("service", SERVICE)]).await.status, 200, "no session");

    // The answer again (its RelayState spent), altered, or garbage.
    let altered = back.replacen("SAMLResponse=", "SAMLResponse=A", 1);
    let unsigned = back.split("&SigAlg=").next().unwrap().to_owned();
    for url in [back.clone(), altered, unsigned] {
        let r = get(&ent.client, &url).await;
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert!(unescape(&r.body).contains("Ce message de déconnexion n'est pas valide"), "{}", r.body);
    }
    server.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn educonnect_ending_its_session_ends_ours_but_only_when_it_signed_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let (ent, idp, mut server) = setup(dir.path()).await;
    logged_in(&ent, &idp).await;
    // The IdP's requests reach us through a browser other than the one
    // holding the session: only the server-side session can end.
    let elsewhere = browser();

    let r = get(&elsewhere, &format!("{idp}/idp/initiate-logout?name_id=zoe.eleve&unsigned=1")).await;
    let unsigned = at_ent(&ent, &r.location.unwrap());
    assert!(unsigned.contains("/slo?SAMLRequest="), "{unsigned}");
    let r = get(&elsewhere, &format!("{idp}/idp/initiate-logout?name_id=zoe.eleve")).await;
    let signed = at_ent(&ent, &r.location.unwrap());
    let altered = signed.replacen("RelayState=idp-relay", "RelayState=other", 1);
    assert_ne!(altered, signed);
    for url in
        [unsigned, altered, ent.url("/upstream/educonnect/slo"), ent.url("/upstream/educonnect/slo?SAMLRequest=%%%")]
    {
        let r = get(&elsewhere, &url).await;
        assert_eq!(r.status, 400, "{url}: {}", r.body);
        assert!(unescape(&r.body).contains("Ce message de déconnexion n'est pas valide"), "{}", r.body);
        assert_eq!(ent.get_login(&[("service", SERVICE)]).await.status, 302, "the session lives on");
    }

    let r = get(&elsewhere, &signed).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let answer = r.location.unwrap();
    assert!(answer.starts_with(&format!("{idp}/idp/slo?SAMLResponse=")), "{answer}");
    assert!(answer.contains("RelayState=idp-relay"), "{answer}");
    let r = get(&elsewhere, &answer).await;
    assert_eq!(r.status, 200, "pysaml2 reads our LogoutResponse: {}", r.body);
    assert_eq!(ent.get_login(&[("service", SERVICE)]).await.status, 200, "our session ended");

    // The same person again, no session left: still an answer (UnknownPrincipal).
    let r = get(&elsewhere, &format!("{idp}/idp/initiate-logout?name_id=zoe.eleve")).await;
    let r = get(&elsewhere, &at_ent(&ent, &r.location.unwrap())).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.location.unwrap().starts_with(&format!("{idp}/idp/slo?SAMLResponse=")));
    assert_eq!(ent.client.get(ent.url("/upstream/nope/slo")).send().await.unwrap().status(), 404);
    server.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn once_the_idp_metadata_expires_logins_through_it_stop_with_a_french_page() {
    let dir = tempfile::tempdir().unwrap();
    let until = idp_saml::format_time(chrono::Utc::now() + chrono::TimeDelta::days(1));
    let (ent, _idp, mut server) = setup_with(dir.path(), |m| {
        m.replacen("EntityDescriptor ", &format!(r#"EntityDescriptor validUntil="{until}" "#), 1)
    })
    .await;
    let start = |ent: &TestApp| {
        let ent = ent.another_browser();
        async move {
            let r = ent.get_login(&[("profile", "eleve"), ("service", SERVICE)]).await;
            result(ent.client.get(ent.url(&r.location.unwrap())).send().await.unwrap()).await
        }
    };
    assert_eq!(start(&ent).await.status, 302, "valid metadata: to the IdP");
    ent.clock.advance(chrono::TimeDelta::days(2));
    let r = start(&ent).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(unescape(&r.body).contains("« ÉduConnect » ne répond pas"), "{}", r.body);
    server.kill().await.unwrap();
}
