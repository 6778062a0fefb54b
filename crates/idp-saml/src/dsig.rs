//! XML signatures (XML-DSig) as SAML uses them: one enveloped signature
//! on the element it signs, one reference to that element's `ID`,
//! exclusive canonicalisation, RSA with SHA-256 or stronger.
//!
//! Verification trusts only the keys it is given (the IdP metadata's
//! certificates): a `KeyInfo` in the message is never read. It answers
//! which element the signature covers, and the caller acts on that element
//! only (the defence against signature wrapping, see `response.rs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;

use crate::c14n::canonicalize;
use crate::ns;
use crate::xml::{Document, ElementId};
use crate::{Error, Result};

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// A signature or digest algorithm, by its URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(crate) fn md(self) -> MessageDigest {
        match self {
            Hash::Sha256 => MessageDigest::sha256(),
            Hash::Sha384 => MessageDigest::sha384(),
            Hash::Sha512 => MessageDigest::sha512(),
        }
    }

    /// The `SignatureMethod` (and redirect-binding `SigAlg`) URI.
    pub fn signature_uri(self) -> &'static str {
        match self {
            Hash::Sha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            Hash::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            Hash::Sha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        }
    }

    fn digest_uri(self) -> &'static str {
        match self {
            Hash::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
            Hash::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#sha384",
            Hash::Sha512 => "http://www.w3.org/2001/04/xmlenc#sha512",
        }
    }

    /// An RSA signature algorithm we accept; SHA-1 and anything else refused.
    pub fn from_signature_uri(uri: &str) -> Result<Hash> {
        [Hash::Sha256, Hash::Sha384, Hash::Sha512]
            .into_iter()
            .find(|h| h.signature_uri() == uri)
            .ok_or_else(|| Error::WeakAlgorithm(uri.to_owned()))
    }

    fn from_digest_uri(uri: &str) -> Result<Hash> {
        [Hash::Sha256, Hash::Sha384, Hash::Sha512]
            .into_iter()
            .find(|h| h.digest_uri() == uri)
            .ok_or_else(|| Error::WeakAlgorithm(uri.to_owned()))
    }
}

/// The enveloped `ds:Signature` child of `e`, if it has one. Two are refused.
pub fn signature_of(doc: &Document, e: ElementId) -> Result<Option<ElementId>> {
    let mut sigs = doc.children_named(e, ns::DS, "Signature");
    match (sigs.next(), sigs.next()) {
        (None, _) => Ok(None),
        (Some(s), None) => Ok(Some(s)),
        (Some(_), Some(_)) => Err(Error::Signature("two signatures on one element")),
    }
}

/// Checks the enveloped signature `sig` of element `e` against `certs`
/// (any one may have signed, for key rollover). On success `e`, and only
/// `e`, is what the signer signed.
pub fn verify(doc: &Document, e: ElementId, sig: ElementId, certs: &[X509]) -> Result<()> {
    let signed_info = doc.only_child(sig, ns::DS, "SignedInfo").ok_or(Error::Signature("no SignedInfo"))?;
    let c14n = doc.only_child(signed_info, ns::DS, "CanonicalizationMethod").ok_or(Error::Signature("no c14n"))?;
    if doc.attr(c14n, "Algorithm") != Some(EXC_C14N) {
        return Err(Error::UnsupportedAlgorithm(doc.attr(c14n, "Algorithm").unwrap_or_default().to_owned()));
    }
    let method = doc.only_child(signed_info, ns::DS, "SignatureMethod").ok_or(Error::Signature("no method"))?;
    let hash = Hash::from_signature_uri(doc.attr(method, "Algorithm").unwrap_or_default())?;
    let reference = doc.only_child(signed_info, ns::DS, "Reference").ok_or(Error::Signature("not one Reference"))?;
    check_reference(doc, e, sig, reference)?;

    let value = doc.only_child(sig, ns::DS, "SignatureValue").ok_or(Error::Signature("no SignatureValue"))?;
    let value = decode_b64(&doc.text(value)?)?;
    let signed = canonicalize(doc, signed_info, None, &inclusive_prefixes(doc, c14n));
    for cert in certs {
        let key = cert.public_key().map_err(|_| Error::Signature("unusable certificate"))?;
        let ok = Verifier::new(hash.md(), &key)
            .and_then(|mut v| v.verify_oneshot(&value, signed.as_bytes()))
            .unwrap_or(false);
        if ok {
            return Ok(());
        }
    }
    Err(Error::Signature("no trusted key made this signature"))
}

/// The reference must name `e` by its `ID`, that `ID` must be on one
/// element only, the transforms must be the enveloped-signature one and
/// exclusive canonicalisation, and the digest must match.
fn check_reference(doc: &Document, e: ElementId, sig: ElementId, reference: ElementId) -> Result<()> {
    let id = doc.attr(e, "ID").ok_or(Error::Signature("signed element has no ID"))?;
    if doc.attr(reference, "URI") != Some(&format!("#{id}")) {
        return Err(Error::Signature("reference is not to the enveloping element"));
    }
    if doc.elements_with_id(id).len() != 1 {
        return Err(Error::DuplicateId);
    }
    let mut inclusive = Vec::new();
    if let Some(transforms) = doc.only_child(reference, ns::DS, "Transforms") {
        for t in doc.children(transforms) {
            match doc.attr(t, "Algorithm") {
                Some(ENVELOPED) => {}
                Some(EXC_C14N) => inclusive = inclusive_prefixes(doc, t),
                other => return Err(Error::UnsupportedAlgorithm(other.unwrap_or_default().to_owned())),
            }
        }
    }
    let method = doc.only_child(reference, ns::DS, "DigestMethod").ok_or(Error::Signature("no DigestMethod"))?;
    let hash = Hash::from_digest_uri(doc.attr(method, "Algorithm").unwrap_or_default())?;
    let expected = doc.only_child(reference, ns::DS, "DigestValue").ok_or(Error::Signature("no DigestValue"))?;
    let expected = decode_b64(&doc.text(expected)?)?;
    let actual = openssl::hash::hash(hash.md(), canonicalize(doc, e, Some(sig), &inclusive).as_bytes())
        .map_err(|_| Error::Signature("digest"))?;
    match actual.len() == expected.len() && openssl::memcmp::eq(&actual, &expected) {
        true => Ok(()),
        false => Err(Error::Signature("digest does not match")),
    }
}

/// The `PrefixList` of an `ec:InclusiveNamespaces` under a c14n method.
fn inclusive_prefixes(doc: &Document, method: ElementId) -> Vec<String> {
    doc.children_named(method, EXC_C14N, "InclusiveNamespaces")
        .filter_map(|i| doc.attr(i, "PrefixList"))
        .flat_map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Base64 with the line breaks XML signatures usually carry.
pub(crate) fn decode_b64(text: &str) -> Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).map_err(|_| Error::Encoding)
}

/// Signs element `e` (which must carry an `ID`) with an enveloped
/// signature placed after its `Issuer` child (first child otherwise), as
/// SAML's schema wants, and returns the document's new text. The
/// certificate goes in `KeyInfo` for the peer's convenience; peers must
/// not trust it more than their metadata, as we don't.
pub fn sign(doc: &Document, e: ElementId, key: &PKey<Private>, cert: &X509) -> Result<String> {
    let id = doc.attr(e, "ID").ok_or(Error::Signature("element to sign has no ID"))?;
    let hash = Hash::Sha256;
    let digest = openssl::hash::hash(hash.md(), canonicalize(doc, e, None, &[]).as_bytes())
        .map_err(|_| Error::Signature("digest"))?;
    let signed_info = format!(
        concat!(
            r#"<ds:SignedInfo xmlns:ds="{ds}"><ds:CanonicalizationMethod Algorithm="{c14n}"></ds:CanonicalizationMethod>"#,
            r##"<ds:SignatureMethod Algorithm="{sig}"></ds:SignatureMethod><ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="{env}"></ds:Transform><ds:Transform Algorithm="{c14n}"></ds:Transform>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="{dig}"></ds:DigestMethod><ds:DigestValue>{value}</ds:DigestValue>"#,
            r#"</ds:Reference></ds:SignedInfo>"#
        ),
        ds = ns::DS,
        c14n = EXC_C14N,
        sig = hash.signature_uri(),
        env = ENVELOPED,
        dig = hash.digest_uri(),
        id = crate::escape(id),
        value = STANDARD.encode(digest),
    );
    // SignedInfo is written in canonical form already (its only namespace
    // is declared on it): what is signed is exactly these bytes.
    let value = Signer::new(hash.md(), key)
        .and_then(|mut s| s.sign_oneshot_to_vec(signed_info.as_bytes()))
        .map_err(|_| Error::Signature("signing failed"))?;
    let der = cert.to_der().map_err(|_| Error::Signature("certificate"))?;
    let signature = format!(
        r#"<ds:Signature xmlns:ds="{}">{}<ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"#,
        ns::DS,
        signed_info.replacen(&format!(r#" xmlns:ds="{}""#, ns::DS), "", 1),
        STANDARD.encode(value),
        STANDARD.encode(der),
    );
    let after = doc.only_child(e, ns::SAML, "Issuer");
    Ok(crate::write::serialize_with_insert(doc, e, after, &signature))
}
