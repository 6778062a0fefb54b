//! The service-provider façade: metadata out, login URL, logout both ways.

use chrono::{DateTime, Utc};
use idp_saml::keys::KeyPair;
use idp_saml::metadata::IdpMetadata;
use idp_saml::request::{Kind, LogoutRequest, read_redirect, redirect_url};
use idp_saml::response::NameId;
use idp_saml::sp::ServiceProvider;
use idp_saml::xml::Document;
use idp_saml::{Error, ns};

const IDP: &str = "https://idp.example.test/idp";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").unwrap().to_utc()
}

fn pairs() -> &'static [KeyPair; 3] {
    static PAIRS: std::sync::OnceLock<[KeyPair; 3]> = std::sync::OnceLock::new();
    PAIRS.get_or_init(|| ["idp", "ent", "ent-next"].map(|n| KeyPair::generate(n, now()).unwrap()))
}

fn idp_metadata(want_signed: bool, slo: bool) -> IdpMetadata {
    let slo = match slo {
        true => {
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/slo"/>"#
        }
        false => "",
    };
    let xml = format!(
        r#"<md:EntityDescriptor xmlns:md="{}" xmlns:ds="{}" entityID="{IDP}"><md:IDPSSODescriptor WantAuthnRequestsSigned="{want_signed}" protocolSupportEnumeration="{}"><md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>{slo}<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        ns::MD,
        ns::DS,
        ns::SAMLP,
        pairs()[0].cert_base64().unwrap(),
    );
    IdpMetadata::parse(&xml, None, now()).unwrap()
}

fn sp(want_signed: bool, slo: bool) -> ServiceProvider {
    let mut sp = ServiceProvider::new(
        "https://ent.example.test/",
        "educonnect",
        vec![pairs()[1].clone()],
        idp_metadata(want_signed, slo),
    )
    .unwrap();
    sp.service_name = "ENT".into();
    sp.requested_attributes = vec!["FrEduCtRefId".into()];
    sp
}

fn query(url: &str) -> &str {
    url.split_once('?').unwrap().1
}

#[test]
fn our_metadata_names_our_endpoints_keys_and_attributes() {
    let xml = sp(true, true).metadata_xml().unwrap();
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(doc.attr(doc.root(), "entityID"), Some("https://ent.example.test/upstream/educonnect/metadata"));
    let acs = doc.descendants_named(doc.root(), ns::MD, "AssertionConsumerService");
    assert_eq!(doc.attr(acs[0], "Location"), Some("https://ent.example.test/upstream/educonnect/acs"));
    assert_eq!(doc.descendants_named(doc.root(), ns::MD, "KeyDescriptor").len(), 2);
    let requested = doc.descendants_named(doc.root(), ns::MD, "RequestedAttribute");
    assert_eq!(doc.attr(requested[0], "Name"), Some("FrEduCtRefId"));
    assert_eq!(doc.descendants_named(doc.root(), ns::MD, "SingleLogoutService").len(), 1);
    let without_slo = Document::parse(&sp(true, false).metadata_xml().unwrap()).unwrap();
    assert!(without_slo.descendants_named(without_slo.root(), ns::MD, "SingleLogoutService").is_empty());
}

#[test]
fn the_login_url_is_signed_when_the_idp_wants_it() {
    let ours = std::slice::from_ref(&pairs()[1].cert);
    let signed = sp(true, true).login_url("_r1", "relay", now()).unwrap();
    assert!(signed.starts_with("https://idp.example.test/sso?SAMLRequest="));
    let got = read_redirect(query(&signed), Kind::Request, ours).unwrap();
    assert!(got.signed);
    assert!(got.xml.contains(r#"AssertionConsumerServiceURL="https://ent.example.test/upstream/educonnect/acs""#));
    let unsigned = sp(false, true).login_url("_r1", "relay", now()).unwrap();
    assert!(!read_redirect(query(&unsigned), Kind::Request, ours).unwrap().signed);
}

fn idp_logout(key: Option<&KeyPair>) -> String {
    let name_id = NameId { value: "eleve".into(), format: None, name_qualifier: None, sp_name_qualifier: None };
    let xml = LogoutRequest {
        id: "_lo",
        issuer: IDP,
        destination: "https://ent.example.test/upstream/educonnect/slo",
        now: now(),
        name_id: &name_id,
        session_index: Some("_s"),
    }
    .to_xml();
    redirect_url("https://ent.example.test/upstream/educonnect/slo", Kind::Request, &xml, Some("rs"), key).unwrap()
}

#[test]
fn an_idp_logout_request_must_be_signed_by_the_idp() {
    let sp = sp(true, true);
    let (logout, relay) = sp.read_logout_request(query(&idp_logout(Some(&pairs()[0]))), now()).unwrap();
    assert_eq!((logout.name_id.as_str(), relay.as_deref()), ("eleve", Some("rs")));
    assert!(matches!(sp.read_logout_request(query(&idp_logout(None)), now()), Err(Error::Unsigned)));
    assert!(matches!(sp.read_logout_request(query(&idp_logout(Some(&pairs()[1]))), now()), Err(Error::Signature(_))));
    let answer = sp.logout_response_url("_lo", Some("rs"), true, now()).unwrap().unwrap();
    let got = read_redirect(query(&answer), Kind::Response, std::slice::from_ref(&pairs()[1].cert)).unwrap();
    assert!(got.signed && got.xml.contains(r#"InResponseTo="_lo""#));
}

#[test]
fn our_logout_goes_to_the_idp_only_when_it_offers_single_logout() {
    let name_id = NameId { value: "eleve".into(), format: None, name_qualifier: None, sp_name_qualifier: None };
    let (id, url) = sp(true, true).logout_url(&name_id, Some("_s"), None, now()).unwrap().unwrap();
    let got = read_redirect(query(&url), Kind::Request, std::slice::from_ref(&pairs()[1].cert)).unwrap();
    assert!(got.signed && got.xml.contains("<samlp:SessionIndex>_s</samlp:SessionIndex>"));
    assert!(got.xml.contains(&format!(r#"ID="{id}""#)));
    assert!(sp(true, false).logout_url(&name_id, None, None, now()).unwrap().is_none());
}

#[test]
fn during_a_rollover_the_previous_key_still_decrypts() {
    let mut sp = sp(true, true);
    sp.keys = vec![pairs()[2].clone(), pairs()[1].clone()];
    let data = idp_saml::enc::encrypt("<x/>", &pairs()[1].cert, idp_saml::enc::Content::Aes256Gcm).unwrap();
    let doc = Document::parse(&format!(r#"<w xmlns:saml="{}">{data}</w>"#, ns::SAML)).unwrap();
    let keys: Vec<_> = sp.keys.iter().map(|k| &k.key).collect();
    assert_eq!(idp_saml::enc::decrypt(&doc, doc.root(), &keys).unwrap(), "<x/>");
    assert!(matches!(idp_saml::enc::decrypt(&doc, doc.root(), &keys[..1]), Err(Error::Decryption(_))));
    assert!(ServiceProvider::new("https://x", "y", Vec::new(), sp.idp.clone()).is_err());
}

/// The identity-provider side reads what the service-provider side writes.
#[test]
fn our_sp_metadata_and_authn_request_read_back_as_an_idp_reads_them() {
    use idp_saml::metadata::SpDescriptor;
    use idp_saml::request::parse_authn_request;
    let sp = sp(true, true);
    let d = SpDescriptor::parse(&sp.metadata_xml().unwrap(), None, now()).unwrap();
    assert_eq!(d.entity_id, sp.entity_id);
    assert!(d.authn_requests_signed && d.want_assertions_signed);
    assert_eq!(d.signing_certs.len(), 1);
    assert_eq!(d.encryption_certs.len(), 1);
    assert_eq!(d.acs_for(None, None), Some(sp.acs_url.as_str()));
    assert_eq!(d.acs_for(Some(&sp.acs_url), None), Some(sp.acs_url.as_str()));
    assert_eq!(d.acs_for(Some("https://evil.example.test/acs"), None), None);
    assert_eq!(d.acs_for(None, Some(7)), None);
    let url = sp.login_url("_r1", "relay", now()).unwrap();
    let got = read_redirect(query(&url), Kind::Request, &d.signing_certs).unwrap();
    let req = parse_authn_request(&got.xml, now()).unwrap();
    assert_eq!((req.id.as_str(), req.issuer.as_str()), ("_r1", sp.entity_id.as_str()));
    assert_eq!(req.acs_url.as_deref(), Some(sp.acs_url.as_str()));
    assert!(matches!(parse_authn_request(&got.xml, now() + chrono::TimeDelta::minutes(10)), Err(Error::Expired)));
    assert!(matches!(parse_authn_request(&got.xml, now() - chrono::TimeDelta::minutes(10)), Err(Error::NotYetValid)));
    assert!(matches!(SpDescriptor::parse(&sp.metadata_xml().unwrap(), Some("other"), now()), Err(Error::Metadata(_))));
}
