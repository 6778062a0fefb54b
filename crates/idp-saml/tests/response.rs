//! Responses built and signed here (a minimal identity provider), then
//! altered the way attackers alter them: each rule of `validate` refuses
//! its own case, and a faithful response passes.
//!
//! The same checks against responses made by pysaml2/xmlsec1 are in
//! tests/api/saml_layer.rs.

use chrono::{DateTime, TimeDelta, Utc};
use idp_saml::enc::Content;
use idp_saml::keys::KeyPair;
use idp_saml::metadata::IdpMetadata;
use idp_saml::response::{Expected, decode_post, validate};
use idp_saml::xml::{Document, MAX_DOCUMENT};
use idp_saml::{Error, dsig, enc, ns};

const IDP: &str = "https://educonnect.example.test/idp";
const SP: &str = "https://ent.example.test/upstream/educonnect/metadata";
const ACS: &str = "https://ent.example.test/upstream/educonnect/acs";
const REQ: &str = "_req0123456789abcdef";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").unwrap().to_utc()
}

struct World {
    idp: KeyPair,
    sp: KeyPair,
    meta: IdpMetadata,
}

fn world() -> &'static World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let idp = KeyPair::generate("educonnect", now() - TimeDelta::days(1)).unwrap();
        let sp = KeyPair::generate("ent", now() - TimeDelta::days(1)).unwrap();
        let meta = IdpMetadata::parse(&idp_metadata(&idp, None), None, now()).unwrap();
        World { idp, sp, meta }
    })
}

fn idp_metadata(idp: &KeyPair, valid_until: Option<&str>) -> String {
    let valid = valid_until.map_or(String::new(), |v| format!(r#" validUntil="{v}""#));
    format!(
        r#"<md:EntityDescriptor xmlns:md="{md}" xmlns:ds="{ds}" entityID="{IDP}"{valid}>
  <md:IDPSSODescriptor WantAuthnRequestsSigned="true" protocolSupportEnumeration="{samlp}">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
{cert}
    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://educonnect.example.test/slo"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://educonnect.example.test/sso-post"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://educonnect.example.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
        md = ns::MD,
        ds = ns::DS,
        samlp = ns::SAMLP,
        cert = idp.cert_base64().unwrap(),
    )
}

fn expected(w: &'static World) -> Expected<'static> {
    Expected {
        idp: &w.meta,
        sp_entity_id: SP,
        acs_url: ACS,
        request_id: REQ,
        decryption_keys: std::slice::from_ref(&w.sp),
        now: now(),
    }
}

/// The fields of a response the tests vary.
#[derive(Clone)]
struct R {
    destination: &'static str,
    in_response_to: &'static str,
    issuer: &'static str,
    audience: &'static str,
    recipient: &'static str,
    confirmation_in_response_to: &'static str,
    name_id: &'static str,
    status: &'static str,
    not_before: DateTime<Utc>,
    not_on_or_after: DateTime<Utc>,
}

impl Default for R {
    fn default() -> R {
        R {
            destination: ACS,
            in_response_to: REQ,
            issuer: IDP,
            audience: SP,
            recipient: ACS,
            confirmation_in_response_to: REQ,
            name_id: "AAdzZWNyZXQx",
            status: "urn:oasis:names:tc:SAML:2.0:status:Success",
            not_before: now() - TimeDelta::minutes(1),
            not_on_or_after: now() + TimeDelta::minutes(5),
        }
    }
}

fn t(x: DateTime<Utc>) -> String {
    idp_saml::format_time(x)
}

impl R {
    fn assertion(&self, id: &str) -> String {
        format!(
            r#"<saml:Assertion xmlns:saml="{saml}" ID="{id}" Version="2.0" IssueInstant="{now}"><saml:Issuer>{issuer}</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData Recipient="{recipient}" InResponseTo="{cirt}" NotOnOrAfter="{end}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{start}" NotOnOrAfter="{end}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{now}" SessionIndex="_session1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="FrEduCtRefId" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic"><saml:AttributeValue>4f2e9c1a</saml:AttributeValue></saml:Attribute><saml:Attribute Name="urn:oid:2.5.4.42" FriendlyName="givenName"><saml:AttributeValue>Zoé</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
            saml = ns::SAML,
            now = t(now()),
            issuer = self.issuer,
            name_id = self.name_id,
            recipient = self.recipient,
            cirt = self.confirmation_in_response_to,
            start = t(self.not_before),
            end = t(self.not_on_or_after),
            audience = self.audience,
        )
    }

    fn response(&self, inner: &str) -> String {
        format!(
            r#"<samlp:Response xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="_resp1" Version="2.0" IssueInstant="{now}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{inner}</samlp:Response>"#,
            samlp = ns::SAMLP,
            saml = ns::SAML,
            now = t(now()),
            dest = self.destination,
            irt = self.in_response_to,
            issuer = self.issuer,
            status = self.status,
        )
    }

    /// The assertion signed by `key`.
    fn signed_assertion(&self, key: &KeyPair) -> String {
        sign_root(&self.assertion("_assert1"), key)
    }

    /// A response whose assertion is signed with the IdP's key.
    fn build(&self) -> String {
        self.response(&self.signed_assertion(&world().idp))
    }
}

fn sign_root(xml: &str, key: &KeyPair) -> String {
    let doc = Document::parse(xml).unwrap();
    dsig::sign(&doc, doc.root(), &key.key, &key.cert).unwrap()
}

fn check(xml: &str) -> Result<idp_saml::response::Assertion, Error> {
    validate(xml, &expected(world()))
}

#[test]
fn a_response_with_a_signed_assertion_is_accepted() {
    let a = check(&R::default().build()).unwrap();
    assert_eq!(a.name_id.value, "AAdzZWNyZXQx");
    assert_eq!(a.id, "_assert1");
    assert_eq!(a.issuer, IDP);
    assert_eq!(a.values("FrEduCtRefId"), ["4f2e9c1a"]);
    assert_eq!(a.values("givenName"), ["Zoé"]);
    assert_eq!(a.values("urn:oid:2.5.4.42"), ["Zoé"]);
    assert_eq!(a.values("NameID"), ["AAdzZWNyZXQx"]);
    assert_eq!(a.session_index.as_deref(), Some("_session1"));
    assert_eq!(a.expires, R::default().not_on_or_after);
    assert!(!a.was_encrypted);
}

#[test]
fn the_post_field_is_base64_with_line_breaks() {
    let xml = R::default().build();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &xml);
    let wrapped: String =
        b64.as_bytes().chunks(76).map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap())).collect();
    assert_eq!(decode_post(&wrapped).unwrap(), xml);
    assert!(matches!(decode_post("***"), Err(Error::Encoding)));
}

#[test]
fn a_signed_response_covers_an_unsigned_assertion() {
    let r = R::default();
    let xml = sign_root(&r.response(&r.assertion("_assert1")), &world().idp);
    assert_eq!(check(&xml).unwrap().name_id.value, "AAdzZWNyZXQx");
}

#[test]
fn an_unsigned_assertion_in_an_unsigned_response_is_refused() {
    let r = R::default();
    assert!(matches!(check(&r.response(&r.assertion("_assert1"))), Err(Error::Unsigned)));
}

#[test]
fn a_signature_by_a_key_not_in_the_metadata_is_refused() {
    let r = R::default();
    let xml = r.response(&r.signed_assertion(&world().sp));
    assert!(matches!(check(&xml), Err(Error::Signature(_))));
}

#[test]
fn a_signed_value_changed_afterwards_is_refused() {
    let xml = R::default().build().replace("4f2e9c1a", "99999999");
    assert!(matches!(check(&xml), Err(Error::Signature("digest does not match"))));
}

#[test]
fn a_sha1_signature_is_refused() {
    let xml = R::default()
        .build()
        .replace("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#rsa-sha1");
    assert!(matches!(check(&xml), Err(Error::WeakAlgorithm(a)) if a.ends_with("rsa-sha1")));
    let xml = R::default()
        .build()
        .replace("http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2000/09/xmldsig#sha1");
    assert!(matches!(check(&xml), Err(Error::WeakAlgorithm(a)) if a.ends_with("sha1")));
}

/// XSW: the signed assertion hidden in the response's Extensions, a forged
/// one in its place.
#[test]
fn signature_wrapping_with_the_original_in_extensions_is_refused() {
    let r = R::default();
    let forged = R { name_id: "admin", ..R::default() }.assertion("_evil");
    let xml =
        r.response(&format!(r#"<samlp:Extensions>{}</samlp:Extensions>{forged}"#, r.signed_assertion(&world().idp)));
    assert!(matches!(check(&xml), Err(Error::AssertionCount)));
}

/// XSW: a forged assertion carrying the original's signature (which
/// references the original's ID), the original beside it.
#[test]
fn signature_wrapping_with_a_copied_signature_is_refused() {
    let r = R::default();
    let original = r.signed_assertion(&world().idp);
    let sig_start = original.find("<ds:Signature").unwrap();
    let sig_end = original.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &original[sig_start..sig_end];
    let forged = R { name_id: "admin", ..R::default() }.assertion("_evil");
    let forged = forged.replacen("<saml:Subject>", &format!("{signature}<saml:Subject>"), 1);
    // Alone: the signature names another element.
    assert!(matches!(check(&r.response(&forged)), Err(Error::Signature("reference is not to the enveloping element"))));
    // With the original nested in the forged assertion's signature.
    let nested = forged.replacen("</ds:Signature>", &format!("<ds:Object>{original}</ds:Object></ds:Signature>"), 1);
    assert!(matches!(check(&r.response(&nested)), Err(Error::AssertionCount)));
}

/// XSW: the forged assertion takes the original's ID, the original moves
/// into the forged one's signature object.
#[test]
fn signature_wrapping_with_a_duplicated_id_is_refused() {
    let r = R::default();
    let original = r.signed_assertion(&world().idp);
    let forged = R { name_id: "admin", ..R::default() }.assertion("_assert1");
    let xml = r.response(&forged.replacen(
        "<saml:Subject>",
        &format!(
            r#"<ds:Signature xmlns:ds="{}"><ds:Object>{original}</ds:Object></ds:Signature><saml:Subject>"#,
            ns::DS
        ),
        1,
    ));
    assert!(matches!(check(&xml), Err(Error::AssertionCount | Error::DuplicateId | Error::Signature(_))));
    // The duplicate-ID rule on its own: two elements with the signed ID.
    let xml = r.build().replacen("<samlp:Status>", r#"<samlp:Extensions ID="_assert1"/><samlp:Status>"#, 1);
    assert!(matches!(check(&xml), Err(Error::DuplicateId)));
}

/// XSW: a signed response wrapped in a new, unsigned response.
#[test]
fn signature_wrapping_of_the_whole_response_is_refused() {
    let r = R::default();
    let signed = sign_root(&r.response(&r.assertion("_assert1")), &world().idp);
    let forged = R { name_id: "admin", ..R::default() };
    let xml = forged.response(&format!("{}<samlp:Extensions>{signed}</samlp:Extensions>", forged.assertion("_evil")));
    assert!(matches!(check(&xml), Err(Error::AssertionCount)));
    let xml = forged.response(&forged.assertion("_evil")).replacen(
        "<samlp:Status>",
        &format!(
            "{}<samlp:Status>",
            &signed[signed.find("<ds:Signature").unwrap()..signed.find("</ds:Signature>").unwrap() + 15]
        ),
        1,
    );
    assert!(matches!(check(&xml), Err(Error::Signature(_))));
}

#[test]
fn two_assertions_are_refused() {
    let r = R::default();
    let xml = r.response(&format!("{}{}", r.signed_assertion(&world().idp), r.assertion("_evil")));
    assert!(matches!(check(&xml), Err(Error::AssertionCount)));
    assert!(matches!(check(&r.response("")), Err(Error::AssertionCount)));
}

#[test]
fn another_issuer_is_refused() {
    let xml = R { issuer: "https://evil.example.test/idp", ..R::default() }.build();
    assert!(matches!(check(&xml), Err(Error::Issuer)));
}

#[test]
fn another_audience_is_refused() {
    let xml = R { audience: "https://other-sp.example.test/", ..R::default() }.build();
    assert!(matches!(check(&xml), Err(Error::Audience)));
}

#[test]
fn another_destination_is_refused() {
    let xml = R { destination: "https://other-sp.example.test/acs", ..R::default() }.build();
    assert!(matches!(check(&xml), Err(Error::Destination)));
}

#[test]
fn another_recipient_is_refused() {
    let xml = R { recipient: "https://other-sp.example.test/acs", ..R::default() }.build();
    assert!(matches!(check(&xml), Err(Error::SubjectConfirmation("Recipient"))));
}

#[test]
fn a_response_to_another_request_is_refused() {
    let xml = R { in_response_to: "_other", ..R::default() }.build();
    assert!(matches!(check(&xml), Err(Error::InResponseTo)));
    let xml = R { confirmation_in_response_to: "_other", ..R::default() }.build();
    assert!(matches!(check(&xml), Err(Error::InResponseTo)));
}

#[test]
fn expired_and_early_assertions_are_refused_beyond_the_skew() {
    let r = R::default();
    let at = |now| validate(&r.build(), &Expected { now, ..expected(world()) });
    assert!(at(r.not_on_or_after + TimeDelta::seconds(60)).is_ok());
    assert!(matches!(at(r.not_on_or_after + TimeDelta::seconds(91)), Err(Error::Expired)));
    assert!(at(r.not_before - TimeDelta::seconds(60)).is_ok());
    assert!(matches!(at(r.not_before - TimeDelta::seconds(91)), Err(Error::NotYetValid)));
}

#[test]
fn a_failure_status_is_reported() {
    let r = R { status: "urn:oasis:names:tc:SAML:2.0:status:Responder", ..R::default() };
    assert!(matches!(check(&r.build()), Err(Error::Status(s)) if s.ends_with("Responder")));
}

/// The comment-truncation attack: the signature (without comments) still
/// verifies, the value is refused rather than read up to the comment.
#[test]
fn a_comment_inside_the_name_id_is_refused() {
    let xml = R { name_id: "eleve@ent.example.test.evil.example", ..R::default() }
        .build()
        .replace("eleve@ent.example.test.evil.example", "eleve@ent.example.test<!---->.evil.example");
    assert!(matches!(check(&xml), Err(Error::MixedValue)));
}

#[test]
fn a_doctype_is_refused() {
    let xml = format!(r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]>{}"#, R::default().build());
    assert!(matches!(check(&xml), Err(Error::Dtd)));
}

#[test]
fn an_oversized_response_is_refused() {
    let r = R::default();
    let padding = format!("<samlp:Extensions>{}</samlp:Extensions>", " ".repeat(MAX_DOCUMENT));
    let xml = r.build().replacen("<samlp:Status>", &format!("{padding}<samlp:Status>"), 1);
    assert!(matches!(check(&xml), Err(Error::TooLarge)));
    assert!(matches!(decode_post(&"A".repeat(MAX_DOCUMENT * 2)), Err(Error::TooLarge)));
}

fn encrypted(content: Content, to: &KeyPair) -> String {
    let r = R::default();
    let data = enc::encrypt(&r.signed_assertion(&world().idp), &to.cert, content).unwrap();
    r.response(&format!("<saml:EncryptedAssertion>{data}</saml:EncryptedAssertion>"))
}

#[test]
fn encrypted_assertions_are_decrypted_with_our_key() {
    for content in [Content::Aes128Cbc, Content::Aes256Cbc, Content::Aes128Gcm, Content::Aes256Gcm] {
        let a = check(&encrypted(content, &world().sp)).unwrap();
        assert!(a.was_encrypted);
        assert_eq!(a.values("FrEduCtRefId"), ["4f2e9c1a"]);
    }
}

#[test]
fn an_assertion_encrypted_to_another_key_is_refused() {
    assert!(matches!(check(&encrypted(Content::Aes256Gcm, &world().idp)), Err(Error::Decryption(_))));
}

#[test]
fn triple_des_and_rsa_v15_are_refused() {
    let xml = encrypted(Content::Aes128Cbc, &world().sp)
        .replace(Content::Aes128Cbc.uri(), "http://www.w3.org/2001/04/xmlenc#tripledes-cbc");
    assert!(matches!(check(&xml), Err(Error::WeakAlgorithm(a)) if a.ends_with("tripledes-cbc")));
    let xml = encrypted(Content::Aes128Cbc, &world().sp)
        .replace("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2001/04/xmlenc#rsa-1_5");
    assert!(matches!(check(&xml), Err(Error::Decryption(_))));
}

#[test]
fn an_encrypted_assertion_must_still_be_signed() {
    let r = R::default();
    let data = enc::encrypt(&r.assertion("_assert1"), &world().sp.cert, Content::Aes128Gcm).unwrap();
    let xml = r.response(&format!("<saml:EncryptedAssertion>{data}</saml:EncryptedAssertion>"));
    assert!(matches!(check(&xml), Err(Error::Unsigned)));
}

#[test]
fn metadata_is_read_and_its_validity_honoured() {
    let w = world();
    assert_eq!(w.meta.entity_id, IDP);
    assert!(w.meta.want_authn_requests_signed);
    assert_eq!(w.meta.sso_redirect(), Some("https://educonnect.example.test/sso"));
    assert_eq!(w.meta.slo_redirect(), Some("https://educonnect.example.test/slo"));
    assert_eq!(w.meta.signing_certs.len(), 1);
    let expired = idp_metadata(&w.idp, Some("2026-12-01T00:00:00Z"));
    assert!(matches!(IdpMetadata::parse(&expired, None, now()), Err(Error::MetadataExpired)));
    let valid = idp_metadata(&w.idp, Some("2026-12-31T00:00:00Z"));
    assert_eq!(
        IdpMetadata::parse(&valid, None, now()).unwrap().valid_until.unwrap().to_rfc3339(),
        "2026-12-31T00:00:00+00:00"
    );
    let aggregate = format!(
        r#"<md:EntitiesDescriptor xmlns:md="{}">{}{}</md:EntitiesDescriptor>"#,
        ns::MD,
        idp_metadata(&w.idp, None),
        idp_metadata(&w.idp, None).replace(IDP, "https://other.example.test/idp")
    );
    assert!(matches!(IdpMetadata::parse(&aggregate, None, now()), Err(Error::Metadata(_))));
    assert_eq!(IdpMetadata::parse(&aggregate, Some(IDP), now()).unwrap().entity_id, IDP);
}
