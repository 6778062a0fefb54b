//! The identity-provider side read back by our own service-provider side:
//! metadata with the next key, a signed and encrypted response, a refusal,
//! an AuthnRequest whose assertion consumer is not in the SP's metadata.

use chrono::{DateTime, Utc};
use idp_saml::Error;
use idp_saml::idp::{IdentityProvider, NO_PASSIVE, Recipient, Subject, check_authn_request, name_id};
use idp_saml::keys::KeyPair;
use idp_saml::metadata::{IdpMetadata, SpDescriptor, SpMetadata};
use idp_saml::request::AuthnRequest;
use idp_saml::response::{Expected, validate};

const ENT: &str = "https://ent.example.fr";
const SP: &str = "https://gar.example.test/sp";
const ACS: &str = "https://gar.example.test/acs";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z").unwrap().to_utc()
}

fn pairs() -> &'static [KeyPair; 3] {
    static PAIRS: std::sync::OnceLock<[KeyPair; 3]> = std::sync::OnceLock::new();
    PAIRS.get_or_init(|| ["ent", "ent-next", "gar"].map(|n| KeyPair::generate(n, now()).unwrap()))
}

fn idp() -> IdentityProvider {
    IdentityProvider::new(ENT, pairs()[0].clone(), Some(pairs()[1].clone()))
}

fn sp() -> SpDescriptor {
    let gar = &pairs()[2];
    let xml = SpMetadata {
        entity_id: SP,
        acs_url: ACS,
        slo_url: None,
        signing: gar,
        encryption: gar,
        service_name: "GAR",
        requested_attributes: &[],
    }
    .to_xml()
    .unwrap();
    SpDescriptor::parse(&xml, None, now()).unwrap()
}

#[test]
fn the_metadata_publishes_both_keys_and_our_endpoints() {
    let idp = idp();
    assert_eq!(idp.entity_id, "https://ent.example.fr/saml/idp/metadata");
    let read = IdpMetadata::parse(&idp.metadata_xml().unwrap(), None, now()).unwrap();
    assert_eq!(read.entity_id, idp.entity_id);
    assert_eq!(read.signing_certs.len(), 2);
    assert_eq!(read.sso_redirect(), Some("https://ent.example.fr/saml/idp/sso"));
    assert_eq!(read.slo_redirect(), Some("https://ent.example.fr/saml/idp/slo"));
}

#[test]
fn a_signed_encrypted_response_reads_back_with_the_sp_key() {
    let idp = idp();
    let metadata = IdpMetadata::parse(&idp.metadata_xml().unwrap(), None, now()).unwrap();
    let attributes = vec![("UAI".to_owned(), vec!["0370001A".to_owned(), "0370002B".to_owned()])];
    let subject = Subject {
        name_id: "pseudo-1",
        name_id_format: name_id::PERSISTENT,
        session_index: "_s1",
        authn_instant: now(),
        authn_context_class: idp_saml::idp::PASSWORD_PROTECTED,
        attributes: &attributes,
    };
    let sp = sp();
    let to = Recipient {
        sp_entity_id: SP,
        acs_url: ACS,
        in_response_to: Some("_r1"),
        encrypt_to: sp.encryption_certs.first(),
    };
    let xml = idp.response_xml(&subject, &to, now()).unwrap();
    assert!(!xml.contains("pseudo-1"), "encrypted");
    let expected = Expected {
        idp: &metadata,
        sp_entity_id: SP,
        acs_url: ACS,
        request_id: "_r1",
        decryption_keys: std::slice::from_ref(&pairs()[2]),
        now: now(),
    };
    let assertion = validate(&xml, &expected).unwrap();
    assert!(assertion.was_encrypted);
    assert_eq!(assertion.name_id.value, "pseudo-1");
    assert_eq!(assertion.session_index.as_deref(), Some("_s1"));
    assert_eq!(assertion.values("UAI"), ["0370001A", "0370002B"]);
    // For another request, or once expired: refused.
    assert!(validate(&xml, &Expected { request_id: "_r2", ..expected }).is_err());
    let later = now() + chrono::TimeDelta::minutes(10);
    assert!(validate(&xml, &Expected { now: later, ..expected }).is_err());
    // A refusal carries no assertion.
    let refusal = idp.refusal_xml(&to, NO_PASSIVE, now()).unwrap();
    assert!(!refusal.contains("Assertion"));
    assert!(matches!(validate(&refusal, &expected), Err(Error::Status(_))));
}

#[test]
fn an_assertion_consumer_not_in_the_metadata_is_refused() {
    let request = |acs: &str| {
        AuthnRequest {
            id: "_q",
            issuer: SP,
            destination: "https://ent.example.fr/saml/idp/sso",
            acs_url: acs,
            now: now(),
            force_authn: true,
        }
        .to_xml()
    };
    let (read, acs) = check_authn_request(&request(ACS), &sp(), now()).unwrap();
    assert_eq!(acs, ACS);
    assert!(read.force_authn);
    assert!(matches!(check_authn_request(&request("https://evil.test/acs"), &sp(), now()), Err(Error::Destination)));
    let other = request(ACS).replace(SP, "https://other.test/sp");
    assert!(matches!(check_authn_request(&other, &sp(), now()), Err(Error::Issuer)));
}
