//! idp-saml: SAML 2.0 messages and the XML-security subset they need, for
//! both ends the identity provider plays: a service provider towards
//! ÉduConnect and académie federations, and an identity provider for the
//! GAR and SAML-only services.
//!
//! Pure functions of their inputs: no I/O, no clock (`now` is an
//! argument), no store. Keys are OpenSSL keys (the OpenSSL the workspace
//! already builds for josekit).
//!
//! Why not `samael` with libxmlsec1: xmlsec1's OpenSSL engine links the
//! system's libcrypto, while this workspace links a vendored OpenSSL into
//! the same binary (two libcryptos in one process), and its bindings need
//! libclang at build time. SAML needs a small, fixed subset of XML
//! security (one enveloped signature per element, exclusive
//! canonicalisation, RSA-OAEP + AES), which is written here on quick-xml and
//! OpenSSL and tested against pysaml2/xmlsec1 (tests/api/saml_layer.rs).
//!
//! Layout:
//! - [`xml`]: the tree (prefixes, declarations, comments, IDs kept), DTD
//!   and size refused;
//! - [`c14n`]: exclusive canonicalisation of a subtree;
//! - [`dsig`]: enveloped signatures, verified with given keys only;
//! - [`enc`]: XML encryption (RSA-OAEP + AES-CBC/GCM);
//! - [`metadata`]: IdP metadata in, SP metadata out;
//! - [`request`]: AuthnRequest and LogoutRequest over HTTP-Redirect;
//! - [`response`]: a Response checked rule by rule into an [`response::Assertion`];
//! - [`keys`]: a key pair with its certificate, generated or read;
//! - [`sp`]: one service provider towards one IdP, what the wiring calls;
//! - [`idp`]: our identity provider: metadata, signed responses, the SP's
//!   requests read from either binding, logout messages.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod c14n;
pub mod dsig;
pub mod enc;
pub mod idp;
pub mod keys;
pub mod metadata;
pub mod request;
pub mod response;
pub mod sp;
mod write;
pub mod xml;

/// Namespaces.
pub mod ns {
    pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
    pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
    pub const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
    pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
    pub const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
    pub const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
}

/// Bindings.
pub mod binding {
    pub const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
    pub const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
}

/// Why a message was refused. Each rule has its own variant (and code), so
/// logs and tests tell them apart; none is shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("SAML0001 message too large")]
    TooLarge,
    #[error("SAML0002 XML nested too deeply")]
    TooDeep,
    #[error("SAML0003 document type declarations are refused")]
    Dtd,
    #[error("SAML0004 ill-formed XML: {0}")]
    Malformed(String),
    #[error("SAML0005 bad base64 or deflate encoding")]
    Encoding,
    #[error("SAML0006 a value holds a comment or an element")]
    MixedValue,
    #[error("SAML0007 not the expected message: {0}")]
    Unexpected(&'static str),
    #[error("SAML0008 refused algorithm {0}")]
    WeakAlgorithm(String),
    #[error("SAML0009 unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("SAML0010 signature: {0}")]
    Signature(&'static str),
    #[error("SAML0011 an ID is carried by more than one element")]
    DuplicateId,
    #[error("SAML0012 neither the response nor the assertion is signed")]
    Unsigned,
    #[error("SAML0013 not exactly one assertion")]
    AssertionCount,
    #[error("SAML0014 decryption: {0}")]
    Decryption(&'static str),
    #[error("SAML0015 issuer is not the identity provider")]
    Issuer,
    #[error("SAML0016 Destination is not our assertion consumer")]
    Destination,
    #[error("SAML0017 InResponseTo is not the pending request")]
    InResponseTo,
    #[error("SAML0018 status {0}")]
    Status(String),
    #[error("SAML0019 audience does not include us")]
    Audience,
    #[error("SAML0020 not yet valid")]
    NotYetValid,
    #[error("SAML0021 expired")]
    Expired,
    #[error("SAML0022 no bearer subject confirmation for us: {0}")]
    SubjectConfirmation(&'static str),
    #[error("SAML0023 no NameID")]
    NoNameId,
    #[error("SAML0024 metadata: {0}")]
    Metadata(String),
    #[error("SAML0025 metadata expired (validUntil)")]
    MetadataExpired,
    #[error("SAML0026 bad time value")]
    Time,
    #[error("SAML0027 key or certificate: {0}")]
    Key(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Escapes text for an attribute value or element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// A fresh message identifier: `_` and 128 random bits in hex (an
/// `xs:ID` may not start with a digit).
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| Error::Key(e.to_string()))?;
    Ok(format!("_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
}

/// An `xs:dateTime` in UTC, as SAML writes them.
pub fn format_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).map(|t| t.to_utc()).map_err(|_| Error::Time)
}
