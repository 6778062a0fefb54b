//! `/cas/samlValidate`: a SAML 1.1 request in SOAP, built by hand as CAS
//! clients (Java cas-client `Saml11TicketValidator`, python-cas) send it,
//! and the answer read as they read it.

use idp_core::account::Profile;

use crate::helpers::{TestApp, spawn_app};

const SERVICE: &str = "https://moodle.example.test/login/index.php";
const PATTERN: &str = r"https://moodle\.example\.test/.*";

fn soap_request(ticket: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/>"#,
            r#"<SOAP-ENV:Body><samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" "#,
            r#"MajorVersion="1" MinorVersion="1" RequestID="_192.168.16.51.1024506224022" "#,
            r#"IssueInstant="2026-11-28T08:00:00.000Z"><samlp:AssertionArtifact>{}</samlp:AssertionArtifact>"#,
            r#"</samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
        ),
        ticket
    )
}

async fn saml_validate(app: &TestApp, target: &str, body: String) -> (u16, String, String) {
    let r = reqwest::Client::new()
        .post(app.url("/cas/samlValidate"))
        .query(&[("TARGET", target)])
        .header("content-type", "text/xml")
        .header("SOAPAction", "http://www.oasis-open.org/committees/security")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    (status, ct, r.text().await.unwrap())
}

/// The values of the SAML attribute `name`, read with a regular expression.
fn saml_values(xml: &str, name: &str) -> Vec<String> {
    let re = regex::Regex::new(&format!(r#"(?s)<saml:Attribute AttributeName="{name}"[^>]*>(.*?)</saml:Attribute>"#))
        .unwrap();
    let value = regex::Regex::new(r"<saml:AttributeValue[^>]*>([^<]*)</saml:AttributeValue>").unwrap();
    re.captures(xml).map(|c| value.captures_iter(&c[1]).map(|v| v[1].to_owned()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn saml_validate_answers_a_soap_request_with_the_released_attributes() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service(
        "moodle",
        PATTERN,
        &["uid", "nom=family_name", "uai=school", "categories=ENTPersonProfils:numeric"],
        None,
    )
    .await;
    let ticket = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    let (status, ct, xml) = saml_validate(&app, SERVICE, soap_request(&ticket)).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/xml"), "{ct}");
    for expected in [
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">"#,
        r#"xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol""#,
        r#"xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion""#,
        r#"MajorVersion="1" MinorVersion="1""#,
        r#"InResponseTo="_192.168.16.51.1024506224022""#,
        &format!(r#"Recipient="{SERVICE}""#),
        r#"<samlp:StatusCode Value="samlp:Success"/>"#,
        &format!("<saml:Audience>{SERVICE}</saml:Audience>"),
        r#"AuthenticationMethod="urn:oasis:names:tc:SAML:1.0:am:password""#,
        "<saml:NameIdentifier>c.martin</saml:NameIdentifier>",
        "<saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:artifact</saml:ConfirmationMethod>",
        r#"AttributeNamespace="http://www.ja-sig.org/products/cas/""#,
    ] {
        assert!(xml.contains(expected), "{expected} missing: {xml}");
    }
    let auth = xml.find("<saml:AuthenticationStatement").unwrap();
    let attrs = xml.find("<saml:AttributeStatement>").unwrap();
    assert!(auth < attrs, "{xml}");
    assert_eq!(saml_values(&xml, "uid"), ["c.martin"]);
    assert_eq!(saml_values(&xml, "nom"), ["Martin"]);
    assert_eq!(saml_values(&xml, "uai"), ["0370001A", "0370002B"], "multi-valued");
    assert_eq!(saml_values(&xml, "categories"), ["National_1"]);

    // The ticket is spent: a second request is denied, without an assertion.
    let (status, _, xml) = saml_validate(&app, SERVICE, soap_request(&ticket)).await;
    assert_eq!(status, 200);
    assert!(
        xml.contains(r#"<samlp:StatusCode Value="samlp:Requester"><samlp:StatusCode Value="samlp:RequestDenied"/>"#),
        "{xml}"
    );
    assert!(xml.contains("INVALID_TICKET") && !xml.contains("<saml:Assertion"), "{xml}");
}

#[tokio::test]
async fn saml_validate_refuses_bad_requests_without_a_500() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("moodle", PATTERN, &["uid"], None).await;
    let ticket = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    // Another service's TARGET: refused, and the ticket is spent.
    let (_, _, xml) = saml_validate(&app, "https://moodle.example.test/autre", soap_request(&ticket)).await;
    assert!(xml.contains("INVALID_SERVICE") && !xml.contains("samlp:Success"), "{xml}");
    for body in ["", "pas du XML <<", &soap_request("")] {
        let (status, _, xml) = saml_validate(&app, SERVICE, body.to_owned()).await;
        assert_eq!(status, 200);
        assert!(xml.contains("INVALID_REQUEST") && xml.contains("samlp:Requester"), "{xml}");
    }
    let r = reqwest::Client::new()
        .post(app.url("/cas/samlValidate"))
        .query(&[("TARGET", SERVICE)])
        .body(vec![0xff, 0xfe, 0x3c])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("INVALID_REQUEST"));
    let (status, _, xml) = saml_validate(&app, "", soap_request("ST-x")).await;
    assert_eq!(status, 200);
    assert!(xml.contains("INVALID_REQUEST"), "{xml}");
    // Without TARGET, a real ticket is spent all the same.
    let other = app.another_browser();
    let ticket = other.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    let (_, _, xml) = saml_validate(&app, "", soap_request(&ticket)).await;
    assert!(xml.contains("INVALID_REQUEST"), "{xml}");
    let (_, _, xml) = saml_validate(&app, SERVICE, soap_request(&ticket)).await;
    assert!(xml.contains("INVALID_TICKET") && !xml.contains("samlp:Success"), "spent: {xml}");
}

/// python-cas's SAML 1.1 client (`CAS_2_SAML_1_0`), a real third-party
/// client, reads the user and the attributes of the answer.
#[tokio::test(flavor = "multi_thread")]
async fn python_cas_saml_client_reads_the_answer() {
    let app = spawn_app().await;
    app.active_account("c.martin", "Bonjour-2026!", Profile::Eleve).await;
    app.service("moodle", PATTERN, &["uid", "nom=family_name", "uai=school"], None).await;
    let ticket = app.login(Some(SERVICE), "c.martin", "Bonjour-2026!").await.ticket();
    let script = concat!(
        "import json, sys\n",
        "from cas import CASClient\n",
        "c = CASClient(version='CAS_2_SAML_1_0', server_url=sys.argv[1], service_url=sys.argv[2])\n",
        "user, attributes, _ = c.verify_ticket(sys.argv[3])\n",
        "print(json.dumps({'user': user, 'attributes': attributes}))\n",
    );
    let python = tokio::task::spawn_blocking(crate::helpers::python).await.unwrap();
    let output = tokio::process::Command::new(python)
        .args(["-c", script, &app.url("/cas/"), SERVICE, &ticket])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["user"], "c.martin", "{seen}");
    assert_eq!(seen["attributes"]["nom"], "Martin", "{seen}");
    assert_eq!(seen["attributes"]["uai"], serde_json::json!(["0370001A", "0370002B"]), "{seen}");
}
