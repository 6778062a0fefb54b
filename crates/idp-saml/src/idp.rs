//! The identity provider side: our metadata, the signed (and optionally
//! encrypted) `Response` a service provider receives at its assertion
//! consumer, reading its `AuthnRequest` from either binding, and the
//! single logout messages we send and answer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use openssl::x509::X509;

use crate::keys::KeyPair;
use crate::metadata::SpDescriptor;
use crate::request::{IncomingAuthn, Kind, read_redirect};
use crate::xml::Document;
use crate::{Error, Result, binding, escape, format_time, ns};

/// How long an assertion may be presented after it was issued.
pub const ASSERTION_LIFETIME: TimeDelta = TimeDelta::minutes(5);

/// The NameID formats we issue.
pub mod name_id {
    pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
    pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
}

const BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
/// The `AuthnContextClassRef` of a login with a password over TLS.
pub const PASSWORD_PROTECTED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
/// The `AuthnContextClassRef` of a login with a password and a one-time
/// code of an authenticator application (time-based).
pub const TIME_SYNC_TOKEN: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken";
/// The `AuthnContextClassRef` of a login with a password and a passkey
/// (WebAuthn): the REFEDS multi-factor profile. No class of SAML 2.0
/// Authentication Context describes WebAuthn: `X509` and `SmartcardPKI`
/// name an X.509 certificate and a smartcard, which a passkey is not (a
/// key pair per site, often synchronised between a person's devices).
pub const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
/// The second-level status of a refused login (`IsPassive` without session,
/// access rules).
pub const NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
pub const REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The SOAP binding, offered by SPs that take back-channel logout requests.
pub const SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";

/// Our identity provider: its entity id (the metadata URL), endpoints and
/// keys (the signing one first; a next one is published ahead of a
/// rollover).
#[derive(Debug, Clone)]
pub struct IdentityProvider {
    pub entity_id: String,
    pub sso_url: String,
    pub slo_url: String,
    pub key: KeyPair,
    pub next_key: Option<KeyPair>,
}

/// Whom an assertion is about, and what it says.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub name_id: &'a str,
    pub name_id_format: &'a str,
    pub session_index: &'a str,
    pub authn_instant: DateTime<Utc>,
    /// How the person logged in ([`PASSWORD_PROTECTED`], [`TIME_SYNC_TOKEN`],
    /// [`REFEDS_MFA`]).
    pub authn_context_class: &'a str,
    pub attributes: &'a [(String, Vec<String>)],
}

/// Where and to whom the response goes.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    /// The request's `ID`; none for an IdP-initiated login.
    pub in_response_to: Option<&'a str>,
    /// Encrypt the assertion to this certificate.
    pub encrypt_to: Option<&'a X509>,
}

impl IdentityProvider {
    /// Our identity provider under `public_base` (`https://ent.example.fr`):
    /// `/saml/idp/metadata` (the entity id), `/sso`, `/slo`.
    pub fn new(public_base: &str, key: KeyPair, next_key: Option<KeyPair>) -> IdentityProvider {
        let base = format!("{}/saml/idp", public_base.trim_end_matches('/'));
        IdentityProvider {
            entity_id: format!("{base}/metadata"),
            sso_url: format!("{base}/sso"),
            slo_url: format!("{base}/slo"),
            key,
            next_key,
        }
    }

    /// Our metadata document: both keys when a next one is set.
    pub fn metadata_xml(&self) -> Result<String> {
        let mut keys = String::new();
        for pair in std::iter::once(&self.key).chain(self.next_key.as_ref()) {
            let cert = pair.cert_base64()?;
            keys.push_str(&format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            ));
        }
        let endpoints = |kind: &str, url: &str, bindings: &[&str]| {
            bindings
                .iter()
                .map(|b| format!(r#"<md:{kind} Binding="{b}" Location="{}"/>"#, escape(url)))
                .collect::<String>()
        };
        Ok(format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<md:EntityDescriptor xmlns:md="{md}" xmlns:ds="{ds}" entityID="{entity}">"#,
                r#"<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="{samlp}">"#,
                "{keys}{slo}",
                r#"<md:NameIDFormat>{persistent}</md:NameIDFormat><md:NameIDFormat>{transient}</md:NameIDFormat>"#,
                r#"<md:NameIDFormat>{unspecified}</md:NameIDFormat>"#,
                "{sso}</md:IDPSSODescriptor></md:EntityDescriptor>"
            ),
            md = ns::MD,
            ds = ns::DS,
            samlp = ns::SAMLP,
            entity = escape(&self.entity_id),
            keys = keys,
            slo = endpoints("SingleLogoutService", &self.slo_url, &[binding::REDIRECT, binding::POST, SOAP]),
            persistent = name_id::PERSISTENT,
            transient = name_id::TRANSIENT,
            unspecified = name_id::UNSPECIFIED,
            sso = endpoints("SingleSignOnService", &self.sso_url, &[binding::REDIRECT, binding::POST]),
        ))
    }

    /// The `Response` carrying a signed assertion about `subject` (encrypted
    /// when `to.encrypt_to` is set), itself signed; as XML.
    pub fn response_xml(&self, subject: &Subject<'_>, to: &Recipient<'_>, now: DateTime<Utc>) -> Result<String> {
        let assertion_id = crate::new_id()?;
        let attributes: String = subject
            .attributes
            .iter()
            .map(|(name, values)| {
                let values: String = values
                    .iter()
                    .map(|v| {
                        format!(r#"<saml:AttributeValue xsi:type="xs:string">{}</saml:AttributeValue>"#, escape(v))
                    })
                    .collect();
                format!(r#"<saml:Attribute Name="{}" NameFormat="{BASIC}">{values}</saml:Attribute>"#, escape(name))
            })
            .collect();
        let statement = match attributes.is_empty() {
            true => String::new(),
            false => format!("<saml:AttributeStatement>{attributes}</saml:AttributeStatement>"),
        };
        let irt = to.in_response_to.map(|i| format!(r#" InResponseTo="{}""#, escape(i))).unwrap_or_default();
        let until = format_time(now + ASSERTION_LIFETIME);
        let assertion = format!(
            concat!(
                r#"<saml:Assertion xmlns:saml="{saml}" xmlns:xs="http://www.w3.org/2001/XMLSchema" "#,
                r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="{aid}" Version="2.0" IssueInstant="{now}">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer><saml:Subject><saml:NameID Format="{fmt}">{name_id}</saml:NameID>"#,
                r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
                r#"<saml:SubjectConfirmationData NotOnOrAfter="{until}" Recipient="{acs}"{irt}/></saml:SubjectConfirmation>"#,
                r#"</saml:Subject><saml:Conditions NotBefore="{before}" NotOnOrAfter="{until}"><saml:AudienceRestriction>"#,
                r#"<saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
                r#"<saml:AuthnStatement AuthnInstant="{authn}" SessionIndex="{sindex}"><saml:AuthnContext>"#,
                r#"<saml:AuthnContextClassRef>{class}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"#,
                "{statement}</saml:Assertion>"
            ),
            saml = ns::SAML,
            aid = assertion_id,
            now = format_time(now),
            issuer = escape(&self.entity_id),
            fmt = escape(subject.name_id_format),
            name_id = escape(subject.name_id),
            until = until,
            acs = escape(to.acs_url),
            irt = irt,
            before = format_time(now - TimeDelta::minutes(1)),
            audience = escape(to.sp_entity_id),
            authn = format_time(subject.authn_instant),
            sindex = escape(subject.session_index),
            class = escape(subject.authn_context_class),
            statement = statement,
        );
        let doc = Document::parse(&assertion)?;
        let signed = crate::dsig::sign(&doc, doc.root(), &self.key.key, &self.key.cert)?;
        let inner = match to.encrypt_to {
            Some(cert) => format!(
                r#"<saml:EncryptedAssertion>{}</saml:EncryptedAssertion>"#,
                crate::enc::encrypt(&signed, cert, crate::enc::Content::Aes256Gcm)?
            ),
            None => signed,
        };
        self.signed_response(&inner, to, SUCCESS, None, now)
    }

    /// A `Response` without assertion: the login was refused (`second` is
    /// the second-level status, as [`NO_PASSIVE`]).
    pub fn refusal_xml(&self, to: &Recipient<'_>, second: &str, now: DateTime<Utc>) -> Result<String> {
        self.signed_response("", to, RESPONDER, Some(second), now)
    }

    fn signed_response(
        &self,
        inner: &str,
        to: &Recipient<'_>,
        status: &str,
        second: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let irt = to.in_response_to.map(|i| format!(r#" InResponseTo="{}""#, escape(i))).unwrap_or_default();
        let code = match second {
            Some(s) => format!(
                r#"<samlp:StatusCode Value="{status}"><samlp:StatusCode Value="{}"/></samlp:StatusCode>"#,
                escape(s)
            ),
            None => format!(r#"<samlp:StatusCode Value="{status}"/>"#),
        };
        let response = format!(
            concat!(
                r#"<samlp:Response xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="{id}" Version="2.0" "#,
                r#"IssueInstant="{now}" Destination="{acs}"{irt}><saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:Status>{code}</samlp:Status>{inner}</samlp:Response>"#
            ),
            samlp = ns::SAMLP,
            saml = ns::SAML,
            id = crate::new_id()?,
            now = format_time(now),
            acs = escape(to.acs_url),
            irt = irt,
            issuer = escape(&self.entity_id),
            code = code,
            inner = inner,
        );
        let doc = Document::parse(&response)?;
        crate::dsig::sign(&doc, doc.root(), &self.key.key, &self.key.cert)
    }

    /// Our `LogoutRequest` to a service provider, signed (for the SOAP
    /// binding; the redirect binding signs the query instead).
    pub fn logout_request_xml(
        &self,
        destination: &str,
        name_id: &str,
        name_id_format: &str,
        session_index: &str,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let xml = format!(
            concat!(
                r#"<samlp:LogoutRequest xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="{id}" Version="2.0" "#,
                r#"IssueInstant="{now}" Destination="{dest}" NotOnOrAfter="{until}"><saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<saml:NameID Format="{fmt}">{name_id}</saml:NameID><samlp:SessionIndex>{sindex}</samlp:SessionIndex>"#,
                r#"</samlp:LogoutRequest>"#
            ),
            samlp = ns::SAMLP,
            saml = ns::SAML,
            id = crate::new_id()?,
            now = format_time(now),
            dest = escape(destination),
            until = format_time(now + ASSERTION_LIFETIME),
            issuer = escape(&self.entity_id),
            fmt = escape(name_id_format),
            name_id = escape(name_id),
            sindex = escape(session_index),
        );
        let doc = Document::parse(&xml)?;
        crate::dsig::sign(&doc, doc.root(), &self.key.key, &self.key.cert)
    }
}

/// `xml` in a SOAP 1.1 envelope (the SOAP binding of single logout).
pub fn soap_envelope(xml: &str) -> String {
    let body = xml.strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#).unwrap_or(xml);
    format!(r#"<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body}</soap:Body></soap:Envelope>"#)
}

/// Reads a message an SP sent by SOAP (the back channel): the one element
/// in the envelope's body, its enveloped signature (when present) checked
/// with the SP's `certs`; the XML given back is that element alone.
pub fn read_soap_from_sp(envelope: &str, certs: &[X509]) -> Result<FromSp> {
    let doc = Document::parse(envelope)?;
    let root = doc.root();
    if !doc.is(root, SOAP_ENV, "Envelope") {
        return Err(Error::Unexpected("not a SOAP 1.1 envelope"));
    }
    let body = doc.only_child(root, SOAP_ENV, "Body").ok_or(Error::Unexpected("no SOAP body"))?;
    let mut inside = doc.children(body);
    let (Some(message), None) = (inside.next(), inside.next()) else {
        return Err(Error::Unexpected("one message expected in the SOAP body"));
    };
    let signed = match crate::dsig::signature_of(&doc, message)? {
        Some(sig) => {
            crate::dsig::verify(&doc, message, sig, certs)?;
            true
        }
        None => false,
    };
    let xml = crate::c14n::canonicalize(&doc, message, None, &[]);
    Ok(FromSp { xml, relay_state: None, signed })
}

/// A SOAP 1.1 fault (`soap:Client`) saying why a back-channel message was
/// refused.
pub fn soap_fault(reason: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>{}</faultstring></soap:Fault></soap:Body></soap:Envelope>"#,
        escape(reason)
    )
}

/// The SP's single logout endpoint of `binding`, if its metadata lists one.
pub fn slo_endpoint<'a>(sp: &'a SpDescriptor, binding: &str) -> Option<&'a str> {
    sp.slo.iter().find(|e| e.binding == binding).map(|e| e.location.as_str())
}

/// A message an SP sent us, out of its binding: the XML, its `RelayState`,
/// and whether a signature by the SP's keys covered it.
#[derive(Debug, Clone)]
pub struct FromSp {
    pub xml: String,
    pub relay_state: Option<String>,
    pub signed: bool,
}

/// The `Issuer` of a message sent by HTTP-Redirect, read without checking
/// anything else: what tells whose keys check its signature.
pub fn redirect_issuer(raw_query: &str, kind: Kind) -> Result<String> {
    let unsigned: Vec<&str> =
        raw_query.split('&').filter(|p| !p.starts_with("Signature=") && !p.starts_with("SigAlg=")).collect();
    let received = read_redirect(&unsigned.join("&"), kind, &[])?;
    issuer_of(&received.xml)
}

/// The `Issuer` of a message.
pub fn issuer_of(xml: &str) -> Result<String> {
    let doc = Document::parse(xml)?;
    let issuer = doc.only_child(doc.root(), ns::SAML, "Issuer").ok_or(Error::Issuer)?;
    Ok(doc.text(issuer)?.trim().to_owned())
}

/// Reads a message sent by HTTP-Redirect, its signature checked with the
/// SP's `certs`.
pub fn read_redirect_from_sp(raw_query: &str, kind: Kind, certs: &[X509]) -> Result<FromSp> {
    let r = read_redirect(raw_query, kind, certs)?;
    Ok(FromSp { xml: r.xml, relay_state: r.relay_state, signed: r.signed })
}

/// Reads a message sent by HTTP-POST (base64, enveloped signature); a
/// signature present must be the SP's.
pub fn read_post_from_sp(field: &str, relay_state: Option<String>, certs: &[X509]) -> Result<FromSp> {
    let xml = crate::response::decode_post(field)?;
    let doc = Document::parse(&xml)?;
    let signed = match crate::dsig::signature_of(&doc, doc.root())? {
        Some(sig) => {
            crate::dsig::verify(&doc, doc.root(), sig, certs)?;
            true
        }
        None => false,
    };
    Ok(FromSp { xml, relay_state, signed })
}

/// The `IsPassive`/`ForceAuthn` flags and the rest of an `AuthnRequest`
/// from `sp`, checked: its issuer is the SP and its assertion consumer is
/// one of the SP's metadata.
pub fn check_authn_request(xml: &str, sp: &SpDescriptor, now: DateTime<Utc>) -> Result<(IncomingAuthn, String)> {
    let request = crate::request::parse_authn_request(xml, now)?;
    if request.issuer != sp.entity_id {
        return Err(Error::Issuer);
    }
    let acs = sp.acs_for(request.acs_url.as_deref(), request.acs_index).ok_or(Error::Destination)?.to_owned();
    Ok((request, acs))
}

/// A service provider's `LogoutRequest`: whom it names.
#[derive(Debug, Clone)]
pub struct SpLogout {
    pub id: String,
    pub issuer: String,
    pub name_id: String,
    pub session_indexes: Vec<String>,
}

/// Reads an SP's `LogoutRequest` addressed to `our_slo_url`.
pub fn parse_sp_logout(xml: &str, our_slo_url: &str, now: DateTime<Utc>) -> Result<SpLogout> {
    let issuer = issuer_of(xml)?;
    let l = crate::request::parse_logout_request(xml, &issuer, our_slo_url, now)?;
    Ok(SpLogout { id: l.id, issuer, name_id: l.name_id, session_indexes: l.session_indexes })
}

/// The base64 of `xml`, as the HTTP-POST binding carries it.
pub fn post_encode(xml: &str) -> String {
    STANDARD.encode(xml.as_bytes())
}
