//! The HTTP-Redirect binding: our requests, signed over the query string,
//! read back as an identity provider reads them; logout messages.

use chrono::{DateTime, Utc};
use idp_saml::keys::KeyPair;
use idp_saml::request::{AuthnRequest, Kind, LogoutRequest, parse_logout_request, read_redirect, redirect_url};
use idp_saml::response::NameId;
use idp_saml::xml::Document;
use idp_saml::{Error, ns};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").unwrap().to_utc()
}

fn keys() -> &'static (KeyPair, KeyPair) {
    static KEYS: std::sync::OnceLock<(KeyPair, KeyPair)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| (KeyPair::generate("ent", now()).unwrap(), KeyPair::generate("other", now()).unwrap()))
}

fn authn_request() -> String {
    AuthnRequest {
        id: "_abc",
        issuer: "https://ent.example.test/upstream/educonnect/metadata",
        destination: "https://idp.example.test/sso",
        acs_url: "https://ent.example.test/upstream/educonnect/acs",
        now: now(),
        force_authn: false,
    }
    .to_xml()
}

#[test]
fn a_signed_authn_request_reads_back_with_our_certificate_only() {
    let (ours, other) = keys();
    let url =
        redirect_url("https://idp.example.test/sso?x=1", Kind::Request, &authn_request(), Some("r s&t"), Some(ours))
            .unwrap();
    assert!(url.starts_with("https://idp.example.test/sso?x=1&SAMLRequest="));
    let query = url.split_once('?').unwrap().1;
    let got = read_redirect(query, Kind::Request, std::slice::from_ref(&ours.cert)).unwrap();
    assert!(got.signed);
    assert_eq!(got.relay_state.as_deref(), Some("r s&t"));
    let doc = Document::parse(&got.xml).unwrap();
    assert!(doc.is(doc.root(), ns::SAMLP, "AuthnRequest"));
    assert_eq!(
        doc.attr(doc.root(), "AssertionConsumerServiceURL"),
        Some("https://ent.example.test/upstream/educonnect/acs")
    );
    assert!(matches!(read_redirect(query, Kind::Request, std::slice::from_ref(&other.cert)), Err(Error::Signature(_))));
    let tampered = query.replace("RelayState=r", "RelayState=q");
    assert!(matches!(
        read_redirect(&tampered, Kind::Request, std::slice::from_ref(&ours.cert)),
        Err(Error::Signature(_))
    ));
}

#[test]
fn an_unsigned_request_is_read_as_unsigned_and_a_half_signature_refused() {
    let (ours, _) = keys();
    let url = redirect_url("https://idp.example.test/sso", Kind::Request, &authn_request(), None, None).unwrap();
    assert!(!url.contains("Signature="));
    let query = url.split_once('?').unwrap().1;
    assert!(!read_redirect(query, Kind::Request, std::slice::from_ref(&ours.cert)).unwrap().signed);
    let half = format!("{query}&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256");
    assert!(matches!(read_redirect(&half, Kind::Request, std::slice::from_ref(&ours.cert)), Err(Error::Signature(_))));
    let sha1 = format!("{query}&SigAlg=http%3A%2F%2Fwww.w3.org%2F2000%2F09%2Fxmldsig%23rsa-sha1&Signature=AAAA");
    assert!(matches!(read_redirect(&sha1, Kind::Request, &[]), Err(Error::WeakAlgorithm(_))));
    assert!(matches!(read_redirect(&format!("{query}&{query}"), Kind::Request, &[]), Err(Error::Unexpected(_))));
}

#[test]
fn a_deflate_bomb_stops_at_the_size_cap() {
    let huge = format!("<a>{}</a>", " ".repeat(4 * idp_saml::xml::MAX_DOCUMENT));
    let url = redirect_url("https://idp.example.test/sso", Kind::Request, &huge, None, None).unwrap();
    let query = url.split_once('?').unwrap().1;
    assert!(query.len() < idp_saml::xml::MAX_DOCUMENT);
    assert!(matches!(read_redirect(query, Kind::Request, &[]), Err(Error::TooLarge)));
}

#[test]
fn logout_requests_go_out_and_come_in() {
    let name_id = NameId {
        value: "AAdzZWNyZXQx".into(),
        format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:persistent".into()),
        name_qualifier: Some("https://idp.example.test/idp".into()),
        sp_name_qualifier: None,
    };
    let xml = LogoutRequest {
        id: "_lo1",
        issuer: "https://idp.example.test/idp",
        destination: "https://ent.example.test/upstream/educonnect/slo",
        now: now(),
        name_id: &name_id,
        session_index: Some("_s1"),
    }
    .to_xml();
    let slo = "https://ent.example.test/upstream/educonnect/slo";
    let got = parse_logout_request(&xml, "https://idp.example.test/idp", slo, now()).unwrap();
    assert_eq!((got.id.as_str(), got.name_id.as_str()), ("_lo1", "AAdzZWNyZXQx"));
    assert_eq!(got.session_indexes, ["_s1"]);
    assert!(matches!(parse_logout_request(&xml, "https://evil.example.test/", slo, now()), Err(Error::Issuer)));
    assert!(matches!(
        parse_logout_request(&xml, "https://idp.example.test/idp", "https://x/", now()),
        Err(Error::Destination)
    ));
    let answer =
        idp_saml::request::logout_response_xml("_r", "_lo1", "sp", "https://idp.example.test/slo", true, now());
    let doc = Document::parse(&answer).unwrap();
    assert_eq!(doc.attr(doc.root(), "InResponseTo"), Some("_lo1"));
}
