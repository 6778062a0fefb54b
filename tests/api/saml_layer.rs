//! The SAML layer (crate idp-saml) against a SAML identity provider written
//! elsewhere: pysaml2 (PyPI) with xmlsec1 (Debian), driven by
//! tests/interop/saml_idp/idp.py. pysaml2 reads our SP metadata and checks
//! our signed AuthnRequest; its signed (and encrypted) responses pass our
//! checks, and each refusal is shown on a response it made, altered here.

use std::path::Path;
use std::process::Command;

use chrono::{TimeDelta, Utc};
use idp_saml::Error;
use idp_saml::keys::KeyPair;
use idp_saml::metadata::IdpMetadata;
use idp_saml::response::{Assertion, Expected, decode_post, validate};
use idp_saml::sp::ServiceProvider;

use crate::helpers::{python, repo_root};

const SP: &str = "http://127.0.0.1/upstream/educonnect/metadata";
const ACS: &str = "http://127.0.0.1/upstream/educonnect/acs";
const IDP: &str = "http://127.0.0.1:9/idp/metadata";

/// pysaml2 as ÉduConnect, our SP registered with it, and one request sent.
struct Exchange {
    dir: tempfile::TempDir,
    sp: ServiceProvider,
    request_id: String,
    request_url: String,
}

impl Exchange {
    fn new() -> Exchange {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let idp_keys = KeyPair::generate("educonnect", now - TimeDelta::hours(1)).unwrap();
        write_pair(dir.path(), "idp", &idp_keys);
        let out = idp_py(dir.path(), &["metadata"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let idp = IdpMetadata::parse(&String::from_utf8(out.stdout).unwrap(), None, now).unwrap();
        assert!(idp.want_authn_requests_signed);
        let keys = vec![KeyPair::generate("ent", now - TimeDelta::hours(1)).unwrap()];
        let mut sp = ServiceProvider::new("http://127.0.0.1", "educonnect", keys, idp).unwrap();
        sp.service_name = "ENT".into();
        sp.requested_attributes = vec!["FrEduCtRefId".into(), "givenName".into()];
        assert_eq!((sp.entity_id.as_str(), sp.acs_url.as_str()), (SP, ACS));
        std::fs::write(dir.path().join("sp.xml"), sp.metadata_xml().unwrap()).unwrap();
        let request_id = idp_saml::new_id().unwrap();
        let request_url = sp.login_url(&request_id, "relay-1", now).unwrap();
        Exchange { dir, sp, request_id, request_url }
    }

    /// The response pysaml2 posts for user `eleve` (its XML), with `options`.
    fn respond(&self, options: &[&str]) -> String {
        let mut args = vec!["respond", "--request-url", &self.request_url, "--user", "eleve"];
        args.extend(["--attr", "FrEduCtRefId=4f2e9c1a", "--attr", "givenName=Zoé"]);
        args.extend(options);
        let out = idp_py(self.dir.path(), &args);
        assert!(out.status.success(), "pysaml2 refused: {}", String::from_utf8_lossy(&out.stderr));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["RelayState"], "relay-1");
        assert_eq!(answer["Destination"], ACS);
        decode_post(answer["SAMLResponse"].as_str().unwrap()).unwrap()
    }

    /// The `SAMLResponse` form field pysaml2 posts, as is.
    fn respond_field(&self, options: &[&str]) -> String {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, self.respond(options))
    }

    fn expected(&self) -> Expected<'_> {
        Expected {
            idp: &self.sp.idp,
            sp_entity_id: SP,
            acs_url: ACS,
            request_id: &self.request_id,
            decryption_keys: &self.sp.keys,
            now: Utc::now(),
        }
    }

    fn check(&self, xml: &str) -> Result<Assertion, Error> {
        validate(xml, &self.expected())
    }
}

fn write_pair(dir: &Path, name: &str, pair: &KeyPair) {
    let (key, cert) = pair.to_pem().unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), key).unwrap();
    std::fs::write(dir.join(format!("{name}-cert.pem")), cert).unwrap();
}

fn idp_py(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(python())
        .arg(repo_root().join("tests/interop/saml_idp/idp.py"))
        .args(["--dir", dir.to_str().unwrap(), "--entity-id", IDP])
        .args(args)
        .output()
        .unwrap()
}

fn assert_accepted(a: &Assertion) {
    assert_eq!(a.name_id.value, "eleve");
    assert_eq!(a.values("FrEduCtRefId"), ["4f2e9c1a"]);
    assert_eq!(a.values("givenName"), ["Zoé"]);
    assert_eq!(a.issuer, IDP);
}

#[test]
fn pysaml2_checks_our_signed_request_and_its_signed_assertion_passes() {
    let x = Exchange::new();
    let a = x.sp.accept(&x.respond_field(&[]), &x.request_id, Utc::now()).unwrap();
    assert_accepted(&a);
    assert!(a.session_index.is_some());
    assert!(a.expires > Utc::now());
}

#[test]
fn pysaml2_refuses_our_request_when_its_signature_is_altered() {
    let x = Exchange::new();
    let tampered = x.request_url.replace("RelayState=relay-1", "RelayState=relay-2");
    let out = idp_py(x.dir.path(), &["respond", "--request-url", &tampered, "--user", "eleve"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_pysaml2_response_signed_as_a_whole_passes() {
    let x = Exchange::new();
    assert_accepted(&x.check(&x.respond(&["--sign-response", "--no-sign-assertion"])).unwrap());
    assert_accepted(&x.check(&x.respond(&["--sign-response"])).unwrap());
}

#[test]
fn pysaml2_encrypted_assertions_are_decrypted_with_our_key() {
    let x = Exchange::new();
    for algorithm in ["aes128-cbc", "aes256-cbc", "aes128-gcm", "aes256-gcm"] {
        let a = x.check(&x.respond(&["--encrypt", algorithm])).unwrap();
        assert!(a.was_encrypted, "{algorithm}");
        assert_accepted(&a);
    }
}

#[test]
fn pysaml2_triple_des_encryption_is_refused() {
    let x = Exchange::new();
    let refused = x.check(&x.respond(&["--encrypt", "3des"]));
    assert!(matches!(refused, Err(Error::WeakAlgorithm(a)) if a.ends_with("tripledes-cbc")));
}

#[test]
fn a_pysaml2_sha1_signature_is_refused() {
    let x = Exchange::new();
    assert!(matches!(x.check(&x.respond(&["--sign-alg", "sha1"])), Err(Error::WeakAlgorithm(_))));
}

#[test]
fn an_unsigned_pysaml2_response_is_refused() {
    let x = Exchange::new();
    assert!(matches!(x.check(&x.respond(&["--no-sign-assertion"])), Err(Error::Unsigned)));
}

#[test]
fn a_pysaml2_response_signed_by_a_key_not_in_its_metadata_is_refused() {
    let x = Exchange::new();
    let other = KeyPair::generate("educonnect", Utc::now() - TimeDelta::hours(1)).unwrap();
    write_pair(x.dir.path(), "other", &other);
    let key = x.dir.path().join("other-key.pem");
    let cert = x.dir.path().join("other-cert.pem");
    let xml = x.respond(&["--signing-key", key.to_str().unwrap(), "--signing-cert", cert.to_str().unwrap()]);
    assert!(matches!(x.check(&xml), Err(Error::Signature(_))));
}

#[test]
fn a_pysaml2_response_outside_its_time_window_is_refused() {
    let x = Exchange::new();
    let xml = x.respond(&[]);
    let later = Expected { now: Utc::now() + TimeDelta::hours(1), ..x.expected() };
    assert!(matches!(validate(&xml, &later), Err(Error::Expired)));
    let earlier = Expected { now: Utc::now() - TimeDelta::hours(1), ..x.expected() };
    assert!(matches!(validate(&xml, &earlier), Err(Error::NotYetValid)));
}

#[test]
fn a_pysaml2_response_meant_for_another_sp_or_request_is_refused() {
    let x = Exchange::new();
    let xml = x.respond(&[]);
    let other_sp = Expected { sp_entity_id: "http://127.0.0.1/upstream/other/metadata", ..x.expected() };
    assert!(matches!(validate(&xml, &other_sp), Err(Error::Audience)));
    let other_acs = Expected { acs_url: "http://127.0.0.1/upstream/other/acs", ..x.expected() };
    assert!(matches!(validate(&xml, &other_acs), Err(Error::Destination)));
    let other_request = Expected { request_id: "_spent", ..x.expected() };
    assert!(matches!(validate(&xml, &other_request), Err(Error::InResponseTo)));
    // The recipient on its own: Destination fixed up, the signed
    // confirmation still names the ACS the request gave.
    let moved = xml.replace(&format!("Destination=\"{ACS}\""), "Destination=\"http://127.0.0.1/upstream/other/acs\"");
    assert!(matches!(validate(&moved, &other_acs), Err(Error::SubjectConfirmation("Recipient"))));
}

#[test]
fn a_pysaml2_assertion_wrapped_beside_a_forged_one_is_refused() {
    let x = Exchange::new();
    let xml = x.respond(&[]);
    let start = xml.find("<ns1:Assertion").or_else(|| xml.find("<saml:Assertion")).expect("assertion");
    let end = xml.rfind("</samlp:Response>").or_else(|| xml.rfind("</ns0:Response>")).expect("end");
    let original = &xml[start..end];
    let forged = original.replace(">eleve<", ">directeur<");
    let replaced = format!("{}{forged}{}", &xml[..start], &xml[end..]);
    assert!(matches!(x.check(&replaced), Err(Error::Signature(_))));
    let both = format!("{}{original}{forged}{}", &xml[..start], &xml[end..]);
    assert!(matches!(x.check(&both), Err(Error::AssertionCount)));
}

#[test]
fn a_comment_in_a_pysaml2_name_id_is_refused_though_the_signature_holds() {
    let x = Exchange::new();
    // pysaml2 signed `eleve`; the comment splits it and the signature,
    // made without comments, still holds: a reader stopping at the
    // comment would see `ele`.
    let xml = x.respond(&[]).replacen(">eleve<", ">ele<!---->ve<", 1);
    assert!(matches!(x.check(&xml), Err(Error::MixedValue)));
}

#[test]
fn a_doctype_before_a_pysaml2_response_is_refused() {
    let x = Exchange::new();
    let xml = x.respond(&[]);
    let body = xml.trim_start_matches(|c| c != '<');
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").unwrap().1,
        None => body,
    };
    let bomb = format!(r#"<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>{body}"#);
    assert!(matches!(x.check(&bomb), Err(Error::Dtd)));
}

/// The identity-provider side of the layer, checked by xmlsec1 (what
/// pysaml2 and most SAML service providers verify with): an assertion we
/// sign verifies with our certificate and no longer after a change, and one
/// we encrypt to a certificate decrypts with its key.
#[test]
fn xmlsec1_verifies_what_we_sign_and_decrypts_what_we_encrypt() {
    use idp_saml::enc::{Content, encrypt};
    use idp_saml::xml::Document;
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyPair::generate("ent", Utc::now() - TimeDelta::hours(1)).unwrap();
    write_pair(dir.path(), "ent", &keys);
    let assertion = format!(
        r#"<saml:Assertion xmlns:saml="{}" ID="_a1" Version="2.0" IssueInstant="2026-12-02T10:00:00Z"><saml:Issuer>{SP}</saml:Issuer><saml:Subject><saml:NameID>Zoé &amp; co</saml:NameID></saml:Subject></saml:Assertion>"#,
        idp_saml::ns::SAML
    );
    let doc = Document::parse(&assertion).unwrap();
    let signed = idp_saml::dsig::sign(&doc, doc.root(), &keys.key, &keys.cert).unwrap();
    let xmlsec = |args: &[&str], file: &str, content: &str| {
        let path = dir.path().join(file);
        std::fs::write(&path, content).unwrap();
        Command::new("xmlsec1").args(args).arg(&path).output().unwrap()
    };
    let cert = dir.path().join("ent-cert.pem");
    let verify = [
        "--verify",
        "--enabled-key-data",
        "rsa",
        "--pubkey-cert-pem",
        cert.to_str().unwrap(),
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    ];
    let out = xmlsec(&verify, "signed.xml", &signed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = xmlsec(&verify, "altered.xml", &signed.replace("Zoé", "Zoe"));
    assert!(!out.status.success());

    for content in [Content::Aes128Cbc, Content::Aes256Gcm] {
        let data = encrypt(&signed, &keys.cert, content).unwrap();
        let key = dir.path().join("ent-key.pem");
        let out = xmlsec(&["--decrypt", "--privkey-pem", key.to_str().unwrap()], "encrypted.xml", &data);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let plain = String::from_utf8(out.stdout).unwrap();
        assert!(plain.contains(" &amp; co</saml:NameID>") && plain.contains("_a1"), "{content:?}: {plain}");
    }
}
