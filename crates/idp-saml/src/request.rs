//! Requests of a service provider, sent by HTTP-Redirect: the
//! `AuthnRequest`, the `LogoutRequest` (and our `LogoutResponse`), and
//! reading a `LogoutRequest` an identity provider sends us the same way.
//!
//! The HTTP-Redirect binding (SAML bindings §3.4): the XML is
//! raw-DEFLATEd, base64-encoded and URL-encoded into `SAMLRequest`; when
//! signed, `SigAlg` follows and `Signature` signs the query string
//! `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as sent.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use url::form_urlencoded::byte_serialize;

use crate::dsig::Hash;
use crate::keys::KeyPair;
use crate::xml::Document;
use crate::{Error, Result, escape, format_time, ns};

/// An `AuthnRequest` we send.
#[derive(Debug, Clone)]
pub struct AuthnRequest<'a> {
    /// Its `ID`; the response's `InResponseTo` must be this.
    pub id: &'a str,
    /// Our entity id.
    pub issuer: &'a str,
    /// The IdP's single sign-on URL.
    pub destination: &'a str,
    pub acs_url: &'a str,
    pub now: DateTime<Utc>,
    pub force_authn: bool,
}

impl AuthnRequest<'_> {
    pub fn to_xml(&self) -> String {
        format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="{id}" Version="2.0" "#,
                r#"IssueInstant="{now}" Destination="{dest}" AssertionConsumerServiceURL="{acs}" "#,
                r#"ProtocolBinding="{post}"{force}><saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:NameIDPolicy AllowCreate="true"/></samlp:AuthnRequest>"#
            ),
            samlp = ns::SAMLP,
            saml = ns::SAML,
            id = escape(self.id),
            now = format_time(self.now),
            dest = escape(self.destination),
            acs = escape(self.acs_url),
            post = crate::binding::POST,
            force = if self.force_authn { r#" ForceAuthn="true""# } else { "" },
            issuer = escape(self.issuer),
        )
    }
}

/// A `LogoutRequest` we send when our session ends.
#[derive(Debug, Clone)]
pub struct LogoutRequest<'a> {
    pub id: &'a str,
    pub issuer: &'a str,
    pub destination: &'a str,
    pub now: DateTime<Utc>,
    /// The `NameID` of the assertion, with its format and qualifiers.
    pub name_id: &'a crate::response::NameId,
    pub session_index: Option<&'a str>,
}

impl LogoutRequest<'_> {
    pub fn to_xml(&self) -> String {
        let n = self.name_id;
        let attr = |name: &str, v: &Option<String>| {
            v.as_ref().map_or(String::new(), |v| format!(r#" {name}="{}""#, escape(v)))
        };
        format!(
            concat!(
                r#"<samlp:LogoutRequest xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="{id}" Version="2.0" "#,
                r#"IssueInstant="{now}" Destination="{dest}"><saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<saml:NameID{format}{nq}{spnq}>{value}</saml:NameID>{index}</samlp:LogoutRequest>"#
            ),
            samlp = ns::SAMLP,
            saml = ns::SAML,
            id = escape(self.id),
            now = format_time(self.now),
            dest = escape(self.destination),
            issuer = escape(self.issuer),
            format = attr("Format", &n.format),
            nq = attr("NameQualifier", &n.name_qualifier),
            spnq = attr("SPNameQualifier", &n.sp_name_qualifier),
            value = escape(&n.value),
            index = self
                .session_index
                .map_or(String::new(), |s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(s))),
        )
    }
}

/// The status of a logout: done, or the IdP asked for a session we do
/// not know (`Requester` / `UnknownPrincipal`).
pub const LOGOUT_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const UNKNOWN_PRINCIPAL: &str = concat!(
    r#"<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Requester">"#,
    r#"<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"/></samlp:StatusCode>"#
);

/// Our `LogoutResponse` to an IdP's `LogoutRequest`: Success when a
/// session `ended`, else Requester / UnknownPrincipal.
pub fn logout_response_xml(
    id: &str,
    in_response_to: &str,
    issuer: &str,
    destination: &str,
    ended: bool,
    now: DateTime<Utc>,
) -> String {
    let status =
        if ended { format!(r#"<samlp:StatusCode Value="{LOGOUT_SUCCESS}"/>"#) } else { UNKNOWN_PRINCIPAL.to_owned() };
    format!(
        concat!(
            r#"<samlp:LogoutResponse xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{now}" Destination="{dest}" InResponseTo="{irt}"><saml:Issuer>{issuer}</saml:Issuer>"#,
            r#"<samlp:Status>{status}</samlp:Status></samlp:LogoutResponse>"#
        ),
        status = status,
        samlp = ns::SAMLP,
        saml = ns::SAML,
        id = escape(id),
        now = format_time(now),
        dest = escape(destination),
        irt = escape(in_response_to),
        issuer = escape(issuer),
    )
}

/// Which query parameter carries the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

impl Kind {
    fn param(self) -> &'static str {
        match self {
            Kind::Request => "SAMLRequest",
            Kind::Response => "SAMLResponse",
        }
    }
}

/// The URL sending `xml` to `endpoint` by HTTP-Redirect, signed with
/// RSA-SHA256 when `key` is given.
pub fn redirect_url(
    endpoint: &str,
    kind: Kind,
    xml: &str,
    relay_state: Option<&str>,
    key: Option<&KeyPair>,
) -> Result<String> {
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
    deflater.write_all(xml.as_bytes()).map_err(|_| Error::Encoding)?;
    let deflated = deflater.finish().map_err(|_| Error::Encoding)?;
    let mut query = format!("{}={}", kind.param(), enc(&STANDARD.encode(deflated)));
    if let Some(rs) = relay_state {
        query.push_str(&format!("&RelayState={}", enc(rs)));
    }
    if let Some(key) = key {
        let hash = Hash::Sha256;
        query.push_str(&format!("&SigAlg={}", enc(hash.signature_uri())));
        let sig = Signer::new(hash.md(), &key.key)
            .and_then(|mut s| s.sign_oneshot_to_vec(query.as_bytes()))
            .map_err(|e| Error::Key(e.to_string()))?;
        query.push_str(&format!("&Signature={}", enc(&STANDARD.encode(sig))));
    }
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    Ok(format!("{endpoint}{sep}{query}"))
}

fn enc(s: &str) -> String {
    byte_serialize(s.as_bytes()).collect()
}

/// A message received by HTTP-Redirect, its signature checked.
#[derive(Debug, Clone)]
pub struct Received {
    pub xml: String,
    pub relay_state: Option<String>,
    /// Whether a signature by one of the given keys covered it.
    pub signed: bool,
}

/// Reads a message from a raw query string (as received: the signature
/// covers the parameters as the sender encoded them). A signature present
/// but not made by one of `certs`, or with a refused algorithm, is an error.
pub fn read_redirect(raw_query: &str, kind: Kind, certs: &[X509]) -> Result<Received> {
    if raw_query.len() > crate::xml::MAX_DOCUMENT {
        return Err(Error::TooLarge);
    }
    let mut message = None;
    let mut relay = None;
    let mut sig_alg = None;
    let mut signature = None;
    for part in raw_query.split('&') {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let slot = match name {
            n if n == kind.param() => &mut message,
            "RelayState" => &mut relay,
            "SigAlg" => &mut sig_alg,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace((part, value)).is_some() {
            return Err(Error::Unexpected("a repeated parameter"));
        }
    }
    let (msg_part, msg_value) = message.ok_or(Error::Unexpected("no message parameter"))?;
    let xml = inflate(&STANDARD.decode(dec(msg_value)?).map_err(|_| Error::Encoding)?)?;
    let relay_state = relay.map(|(_, v)| dec(v)).transpose()?;
    let signed = match (sig_alg, signature) {
        (None, None) => false,
        (Some((alg_part, alg)), Some((_, sig))) => {
            let hash = Hash::from_signature_uri(&dec(alg)?)?;
            let mut signed = msg_part.to_owned();
            if let Some((rs_part, _)) = relay {
                signed.push('&');
                signed.push_str(rs_part);
            }
            signed.push('&');
            signed.push_str(alg_part);
            let sig = STANDARD.decode(dec(sig)?).map_err(|_| Error::Encoding)?;
            let ok = certs.iter().any(|c| {
                c.public_key()
                    .and_then(|k| Verifier::new(hash.md(), &k)?.verify_oneshot(&sig, signed.as_bytes()))
                    .unwrap_or(false)
            });
            if !ok {
                return Err(Error::Signature("redirect signature not made by a trusted key"));
            }
            true
        }
        _ => return Err(Error::Signature("SigAlg without Signature or the reverse")),
    };
    Ok(Received { xml, relay_state, signed })
}

fn dec(v: &str) -> Result<String> {
    url::form_urlencoded::parse(format!("x={v}").as_bytes()).next().map(|(_, v)| v.into_owned()).ok_or(Error::Encoding)
}

/// Inflates at most [`crate::xml::MAX_DOCUMENT`] bytes (a deflate bomb stops there).
fn inflate(data: &[u8]) -> Result<String> {
    let mut out = String::new();
    let limit = crate::xml::MAX_DOCUMENT as u64 + 1;
    DeflateDecoder::new(data).take(limit).read_to_string(&mut out).map_err(|_| Error::Encoding)?;
    if out.len() > crate::xml::MAX_DOCUMENT {
        return Err(Error::TooLarge);
    }
    Ok(out)
}

/// An identity provider's `LogoutRequest`: whom to log out.
#[derive(Debug, Clone)]
pub struct IncomingLogout {
    pub id: String,
    pub name_id: String,
    pub session_indexes: Vec<String>,
}

/// Reads an IdP's `LogoutRequest` (already taken out of its binding),
/// checking it comes from `idp_entity_id`, is addressed to `our_slo_url`
/// and has not expired.
pub fn parse_logout_request(
    xml: &str,
    idp_entity_id: &str,
    our_slo_url: &str,
    now: DateTime<Utc>,
) -> Result<IncomingLogout> {
    let doc = Document::parse(xml)?;
    let root = doc.root();
    if !doc.is(root, ns::SAMLP, "LogoutRequest") {
        return Err(Error::Unexpected("not a LogoutRequest"));
    }
    let issuer = doc.only_child(root, ns::SAML, "Issuer").ok_or(Error::Issuer)?;
    if doc.text(issuer)?.trim() != idp_entity_id {
        return Err(Error::Issuer);
    }
    if doc.attr(root, "Destination").is_some_and(|d| d != our_slo_url) {
        return Err(Error::Destination);
    }
    if let Some(t) = doc.attr(root, "NotOnOrAfter")
        && crate::parse_time(t)? <= now - crate::response::SKEW
    {
        return Err(Error::Expired);
    }
    let name_id = doc.only_child(root, ns::SAML, "NameID").ok_or(Error::NoNameId)?;
    Ok(IncomingLogout {
        id: doc.attr(root, "ID").ok_or(Error::Unexpected("no ID"))?.to_owned(),
        name_id: doc.text(name_id)?.trim().to_owned(),
        session_indexes: doc
            .children_named(root, ns::SAMLP, "SessionIndex")
            .map(|s| doc.text(s).map(|t| t.trim().to_owned()))
            .collect::<Result<_>>()?,
    })
}

/// An identity provider's `LogoutResponse` to our `LogoutRequest`.
#[derive(Debug, Clone)]
pub struct IncomingLogoutResponse {
    pub in_response_to: String,
    /// The top-level status code is Success.
    pub success: bool,
}

/// Reads an IdP's `LogoutResponse` (already taken out of its binding),
/// checking it comes from `idp_entity_id`, is addressed to `our_slo_url`
/// and answers a request (`InResponseTo`).
pub fn parse_logout_response(xml: &str, idp_entity_id: &str, our_slo_url: &str) -> Result<IncomingLogoutResponse> {
    let doc = Document::parse(xml)?;
    let root = doc.root();
    if !doc.is(root, ns::SAMLP, "LogoutResponse") {
        return Err(Error::Unexpected("not a LogoutResponse"));
    }
    let issuer = doc.only_child(root, ns::SAML, "Issuer").ok_or(Error::Issuer)?;
    if doc.text(issuer)?.trim() != idp_entity_id {
        return Err(Error::Issuer);
    }
    if doc.attr(root, "Destination").is_some_and(|d| d != our_slo_url) {
        return Err(Error::Destination);
    }
    let in_response_to = doc.attr(root, "InResponseTo").ok_or(Error::InResponseTo)?.to_owned();
    let code = doc
        .only_child(root, ns::SAMLP, "Status")
        .and_then(|s| doc.only_child(s, ns::SAMLP, "StatusCode"))
        .and_then(|c| doc.attr(c, "Value"));
    Ok(IncomingLogoutResponse { in_response_to, success: code == Some(LOGOUT_SUCCESS) })
}

/// A service provider's `AuthnRequest`, as an identity provider reads it
/// (already taken out of its binding; its signature checked by the
/// binding).
#[derive(Debug, Clone)]
pub struct IncomingAuthn {
    pub id: String,
    pub issuer: String,
    pub acs_url: Option<String>,
    pub acs_index: Option<u16>,
    pub name_id_format: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    /// Until when the request is accepted (its issue instant plus
    /// [`AUTHN_REQUEST_WINDOW`]): how long its `ID` must be remembered.
    pub valid_until: DateTime<Utc>,
}

/// How long after its issue instant an `AuthnRequest` is accepted.
pub const AUTHN_REQUEST_WINDOW: chrono::TimeDelta =
    chrono::TimeDelta::seconds(crate::response::SKEW.num_seconds() + 300);

/// Reads an `AuthnRequest`; its issue instant must be within a few minutes
/// of `now` (with [`crate::response::SKEW`]).
pub fn parse_authn_request(xml: &str, now: DateTime<Utc>) -> Result<IncomingAuthn> {
    let doc = Document::parse(xml)?;
    let root = doc.root();
    if !doc.is(root, ns::SAMLP, "AuthnRequest") || doc.attr(root, "Version") != Some("2.0") {
        return Err(Error::Unexpected("not a SAML 2.0 AuthnRequest"));
    }
    let instant = crate::parse_time(doc.attr(root, "IssueInstant").ok_or(Error::Time)?)?;
    if instant > now + crate::response::SKEW {
        return Err(Error::NotYetValid);
    }
    if instant <= now - AUTHN_REQUEST_WINDOW {
        return Err(Error::Expired);
    }
    let issuer = doc.only_child(root, ns::SAML, "Issuer").ok_or(Error::Issuer)?;
    let flag = |name| matches!(doc.attr(root, name), Some("true" | "1"));
    Ok(IncomingAuthn {
        id: doc.attr(root, "ID").ok_or(Error::Unexpected("no ID"))?.to_owned(),
        issuer: doc.text(issuer)?.trim().to_owned(),
        acs_url: doc.attr(root, "AssertionConsumerServiceURL").map(str::to_owned),
        acs_index: doc.attr(root, "AssertionConsumerServiceIndex").and_then(|i| i.parse().ok()),
        name_id_format: doc
            .only_child(root, ns::SAMLP, "NameIDPolicy")
            .and_then(|p| doc.attr(p, "Format"))
            .map(str::to_owned),
        force_authn: flag("ForceAuthn"),
        is_passive: flag("IsPassive"),
        valid_until: instant + AUTHN_REQUEST_WINDOW,
    })
}
