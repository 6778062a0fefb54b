//! A `Response` to our `AuthnRequest`, received by HTTP-POST, checked rule
//! by rule into the [`Assertion`] it carries.
//!
//! Signature wrapping (XSW) is defeated by construction: the response and
//! the assertion read are the elements the verified signatures enveloped,
//! found by position (the document element; its only assertion child), each
//! signature references its own parent by an `ID` no other element carries,
//! and a document holding a second assertion anywhere is refused.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};

use crate::dsig::{signature_of, verify};
use crate::keys::KeyPair;
use crate::metadata::IdpMetadata;
use crate::xml::{Document, ElementId, MAX_DOCUMENT};
use crate::{Error, Result, ns, parse_time};

/// Clock difference tolerated with the identity provider.
pub const SKEW: TimeDelta = TimeDelta::seconds(90);

const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// What the response must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub idp: &'a IdpMetadata,
    /// Our entity id (the audience).
    pub sp_entity_id: &'a str,
    /// Our assertion consumer URL (`Destination`, `Recipient`).
    pub acs_url: &'a str,
    /// The `ID` of the request this login sent (bound to its RelayState).
    pub request_id: &'a str,
    /// Our keys for encrypted assertions, the current one first.
    pub decryption_keys: &'a [KeyPair],
    pub now: DateTime<Utc>,
}

/// The NameID of an assertion, kept whole for the logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameId {
    pub value: String,
    pub format: Option<String>,
    pub name_qualifier: Option<String>,
    pub sp_name_qualifier: Option<String>,
}

/// What a checked assertion says.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// Its `ID`, for the replay cache (keep it until `expires`).
    pub id: String,
    pub issuer: String,
    pub name_id: NameId,
    pub session_index: Option<String>,
    /// Attributes by `Name` (and by `FriendlyName` when it differs), in order.
    pub attributes: Vec<(String, Vec<String>)>,
    /// When the assertion stops being usable: the earliest of the
    /// conditions' and the subject confirmation's `NotOnOrAfter`.
    pub expires: DateTime<Utc>,
    /// Whether it came encrypted.
    pub was_encrypted: bool,
}

impl Assertion {
    /// The values of an attribute (`NameID` gives the subject's value).
    pub fn values(&self, name: &str) -> Vec<&str> {
        if name == "NameID" {
            return vec![self.name_id.value.as_str()];
        }
        self.attributes.iter().filter(|(n, _)| n == name).flat_map(|(_, v)| v.iter().map(String::as_str)).collect()
    }
}

/// Decodes the `SAMLResponse` form field (base64, line breaks allowed).
pub fn decode_post(field: &str) -> Result<String> {
    if field.len() > MAX_DOCUMENT * 4 / 3 + 1024 {
        return Err(Error::TooLarge);
    }
    let compact: String = field.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD.decode(compact).map_err(|_| Error::Encoding)?;
    String::from_utf8(bytes).map_err(|_| Error::Encoding)
}

/// Checks a response (its XML) and returns its assertion.
pub fn validate(xml: &str, expected: &Expected<'_>) -> Result<Assertion> {
    let doc = Document::parse(xml)?;
    let root = doc.root();
    if !doc.is(root, ns::SAMLP, "Response") {
        return Err(Error::Unexpected("not a Response"));
    }
    let response_signed = check_envelope(&doc, root, expected)?;
    let wrappers: Vec<ElementId> = doc
        .children(root)
        .filter(|&c| doc.is(c, ns::SAML, "Assertion") || doc.is(c, ns::SAML, "EncryptedAssertion"))
        .collect();
    let [wrapper] = wrappers.as_slice() else {
        return Err(Error::AssertionCount);
    };
    if doc.descendants_named(root, ns::SAML, "Assertion").len() > usize::from(doc.is(*wrapper, ns::SAML, "Assertion")) {
        return Err(Error::AssertionCount);
    }
    match doc.is(*wrapper, ns::SAML, "Assertion") {
        true => read_assertion(&doc, *wrapper, response_signed, false, expected),
        false => {
            let keys: Vec<_> = expected.decryption_keys.iter().map(|k| &k.key).collect();
            let plain = crate::enc::decrypt(&doc, *wrapper, &keys)?;
            let inner = with_context(&doc, *wrapper, &plain);
            let inner = Document::parse(&inner)?;
            let assertion = inner.only_child(inner.root(), ns::SAML, "Assertion").ok_or(Error::AssertionCount)?;
            if inner.children(inner.root()).count() != 1 {
                return Err(Error::AssertionCount);
            }
            read_assertion(&inner, assertion, response_signed, true, expected)
        }
    }
}

/// The decrypted element inside a wrapper declaring the namespaces in
/// scope where it was, so prefixes it inherits stay bound.
fn with_context(doc: &Document, at: ElementId, plain: &str) -> String {
    let decls: String = doc
        .in_scope(at)
        .iter()
        .map(|(p, uri)| match p {
            Some(p) => format!(" xmlns:{p}=\"{}\"", crate::escape(uri)),
            None => format!(" xmlns=\"{}\"", crate::escape(uri)),
        })
        .collect();
    let plain = plain.trim_start();
    let plain = match plain.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or("", |(_, r)| r),
        None => plain,
    };
    format!("<decrypted{decls}>{plain}</decrypted>")
}

/// The response's own rules: version, destination, request, status,
/// issuer and signature. Returns whether it was signed.
fn check_envelope(doc: &Document, root: ElementId, expected: &Expected<'_>) -> Result<bool> {
    if doc.attr(root, "Version") != Some("2.0") {
        return Err(Error::Unexpected("not SAML 2.0"));
    }
    if doc.attr(root, "Destination") != Some(expected.acs_url) {
        return Err(Error::Destination);
    }
    if doc.attr(root, "InResponseTo") != Some(expected.request_id) {
        return Err(Error::InResponseTo);
    }
    if let Some(issuer) = doc.only_child(root, ns::SAML, "Issuer")
        && doc.text(issuer)?.trim() != expected.idp.entity_id
    {
        return Err(Error::Issuer);
    }
    let signed = match signature_of(doc, root)? {
        Some(sig) => {
            verify(doc, root, sig, &expected.idp.signing_certs)?;
            true
        }
        None => false,
    };
    let status = doc.only_child(root, ns::SAMLP, "Status").ok_or(Error::Unexpected("no Status"))?;
    let code = doc.only_child(status, ns::SAMLP, "StatusCode").ok_or(Error::Unexpected("no StatusCode"))?;
    let value = doc.attr(code, "Value").unwrap_or_default();
    if value != SUCCESS {
        let sub = doc.only_child(code, ns::SAMLP, "StatusCode").and_then(|s| doc.attr(s, "Value"));
        return Err(Error::Status(sub.unwrap_or(value).to_owned()));
    }
    Ok(signed)
}

fn read_assertion(
    doc: &Document,
    a: ElementId,
    response_signed: bool,
    was_encrypted: bool,
    expected: &Expected<'_>,
) -> Result<Assertion> {
    match signature_of(doc, a)? {
        Some(sig) => verify(doc, a, sig, &expected.idp.signing_certs)?,
        None if response_signed => {}
        None => return Err(Error::Unsigned),
    }
    if doc.attr(a, "Version") != Some("2.0") {
        return Err(Error::Unexpected("assertion not SAML 2.0"));
    }
    let issuer = doc.only_child(a, ns::SAML, "Issuer").ok_or(Error::Issuer)?;
    if doc.text(issuer)?.trim() != expected.idp.entity_id {
        return Err(Error::Issuer);
    }
    let conditions_end = check_conditions(doc, a, expected)?;
    let subject = doc.only_child(a, ns::SAML, "Subject").ok_or(Error::NoNameId)?;
    let confirmation_end = check_confirmation(doc, subject, expected)?;
    let authn = doc.children_named(a, ns::SAML, "AuthnStatement").next();
    Ok(Assertion {
        id: doc.attr(a, "ID").ok_or(Error::Unexpected("assertion without ID"))?.to_owned(),
        issuer: expected.idp.entity_id.clone(),
        name_id: name_id(doc, subject)?,
        session_index: authn.and_then(|s| doc.attr(s, "SessionIndex")).map(str::to_owned),
        attributes: attributes(doc, a)?,
        expires: conditions_end.map_or(confirmation_end, |c| c.min(confirmation_end)),
        was_encrypted,
    })
}

/// `NotBefore`/`NotOnOrAfter` with [`SKEW`], and an audience restriction
/// naming us (every restriction present must).
fn check_conditions(doc: &Document, a: ElementId, expected: &Expected<'_>) -> Result<Option<DateTime<Utc>>> {
    let conditions = doc.only_child(a, ns::SAML, "Conditions").ok_or(Error::Audience)?;
    if let Some(t) = doc.attr(conditions, "NotBefore")
        && parse_time(t)? > expected.now + SKEW
    {
        return Err(Error::NotYetValid);
    }
    let end = doc.attr(conditions, "NotOnOrAfter").map(parse_time).transpose()?;
    if end.is_some_and(|t| t <= expected.now - SKEW) {
        return Err(Error::Expired);
    }
    let restrictions: Vec<_> = doc.children_named(conditions, ns::SAML, "AudienceRestriction").collect();
    if restrictions.is_empty() {
        return Err(Error::Audience);
    }
    for r in restrictions {
        let mut ok = false;
        for aud in doc.children_named(r, ns::SAML, "Audience") {
            ok |= doc.text(aud)?.trim() == expected.sp_entity_id;
        }
        if !ok {
            return Err(Error::Audience);
        }
    }
    Ok(end)
}

/// A bearer confirmation for our ACS, this request, still valid. Returns
/// its `NotOnOrAfter`.
fn check_confirmation(doc: &Document, subject: ElementId, expected: &Expected<'_>) -> Result<DateTime<Utc>> {
    let mut refusal = Error::SubjectConfirmation("no bearer confirmation");
    for c in doc.children_named(subject, ns::SAML, "SubjectConfirmation") {
        if doc.attr(c, "Method") != Some(BEARER) {
            continue;
        }
        let Some(data) = doc.only_child(c, ns::SAML, "SubjectConfirmationData") else {
            refusal = Error::SubjectConfirmation("no SubjectConfirmationData");
            continue;
        };
        let end = doc.attr(data, "NotOnOrAfter").map(parse_time).transpose()?;
        refusal = match () {
            _ if doc.attr(data, "Recipient") != Some(expected.acs_url) => Error::SubjectConfirmation("Recipient"),
            _ if doc.attr(data, "InResponseTo") != Some(expected.request_id) => Error::InResponseTo,
            _ if doc.attr(data, "NotBefore").is_some() => Error::SubjectConfirmation("NotBefore on a bearer"),
            _ => match end {
                None => Error::SubjectConfirmation("no NotOnOrAfter"),
                Some(t) if t <= expected.now - SKEW => Error::Expired,
                Some(t) => return Ok(t),
            },
        };
    }
    Err(refusal)
}

fn name_id(doc: &Document, subject: ElementId) -> Result<NameId> {
    if doc.only_child(subject, ns::SAML, "EncryptedID").is_some() {
        return Err(Error::UnsupportedAlgorithm("EncryptedID".into()));
    }
    let n = doc.only_child(subject, ns::SAML, "NameID").ok_or(Error::NoNameId)?;
    let value = doc.text(n)?.trim().to_owned();
    if value.is_empty() {
        return Err(Error::NoNameId);
    }
    let attr = |name| doc.attr(n, name).map(str::to_owned);
    Ok(NameId {
        value,
        format: attr("Format"),
        name_qualifier: attr("NameQualifier"),
        sp_name_qualifier: attr("SPNameQualifier"),
    })
}

fn attributes(doc: &Document, a: ElementId) -> Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for statement in doc.children_named(a, ns::SAML, "AttributeStatement") {
        for attr in doc.children_named(statement, ns::SAML, "Attribute") {
            let values = doc
                .children_named(attr, ns::SAML, "AttributeValue")
                .map(|v| doc.text(v).map(|t| t.trim().to_owned()))
                .collect::<Result<Vec<_>>>()?;
            let name = doc.attr(attr, "Name").unwrap_or_default().to_owned();
            if let Some(friendly) = doc.attr(attr, "FriendlyName").filter(|f| *f != name) {
                out.push((friendly.to_owned(), values.clone()));
            }
            out.push((name, values));
        }
    }
    Ok(out)
}
