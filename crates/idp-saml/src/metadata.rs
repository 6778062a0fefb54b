//! SAML metadata: an identity provider's read in (its entity id, keys,
//! endpoints and wishes), ours written out.
//!
//! The metadata document is trusted as a whole (an operator's file or an
//! https URL); a signature over an aggregate is not checked here.

use chrono::{DateTime, Utc};
use openssl::x509::X509;

use crate::dsig::decode_b64;
use crate::keys::KeyPair;
use crate::xml::{Document, ElementId};
use crate::{Error, Result, binding, escape, ns};

/// An endpoint of the identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: String,
    pub location: String,
}

/// What we use of an identity provider's metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    /// Keys that may sign its responses (more than one during a rollover).
    pub signing_certs: Vec<X509>,
    /// Keys to encrypt to (unused by a service provider; kept for symmetry).
    pub encryption_certs: Vec<X509>,
    pub sso: Vec<Endpoint>,
    pub slo: Vec<Endpoint>,
    pub want_authn_requests_signed: bool,
    /// The earliest `validUntil` of the entity and the documents around it.
    pub valid_until: Option<DateTime<Utc>>,
}

impl IdpMetadata {
    /// Reads the IdP `entity_id` (or the only one when `None`) from a
    /// metadata document: an `EntityDescriptor`, or an `EntitiesDescriptor`
    /// as federations publish. Expired metadata is refused.
    pub fn parse(xml: &str, entity_id: Option<&str>, now: DateTime<Utc>) -> Result<IdpMetadata> {
        let doc = Document::parse(xml)?;
        let (entity, idp, valid_until) = select(&doc, "IDPSSODescriptor", entity_id, now)?;
        if !doc.attr(idp, "protocolSupportEnumeration").unwrap_or_default().contains(ns::SAMLP) {
            return Err(Error::Metadata("not a SAML 2.0 identity provider".into()));
        }
        let meta = IdpMetadata {
            entity_id: doc.attr(entity, "entityID").unwrap_or_default().to_owned(),
            signing_certs: certs(&doc, idp, "signing")?,
            encryption_certs: certs(&doc, idp, "encryption")?,
            sso: endpoints(&doc, idp, "SingleSignOnService"),
            slo: endpoints(&doc, idp, "SingleLogoutService"),
            want_authn_requests_signed: matches!(doc.attr(idp, "WantAuthnRequestsSigned"), Some("true" | "1")),
            valid_until,
        };
        if meta.entity_id.is_empty() || meta.signing_certs.is_empty() {
            return Err(Error::Metadata("no entity id or no signing certificate".into()));
        }
        Ok(meta)
    }

    /// The single sign-on URL for the HTTP-Redirect binding.
    pub fn sso_redirect(&self) -> Option<&str> {
        self.sso.iter().find(|e| e.binding == binding::REDIRECT).map(|e| e.location.as_str())
    }

    /// The single logout URL for the HTTP-Redirect binding.
    pub fn slo_redirect(&self) -> Option<&str> {
        self.slo.iter().find(|e| e.binding == binding::REDIRECT).map(|e| e.location.as_str())
    }
}

/// The entity `entity_id` (or the only one) having a `role` descriptor,
/// that descriptor, and the earliest `validUntil` around it (refused when
/// past).
fn select(
    doc: &Document,
    role: &str,
    entity_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(ElementId, ElementId, Option<DateTime<Utc>>)> {
    let found: Vec<(ElementId, ElementId)> = doc
        .descendants_named(doc.root(), ns::MD, "EntityDescriptor")
        .into_iter()
        .filter(|&e| entity_id.is_none_or(|id| doc.attr(e, "entityID") == Some(id)))
        .filter_map(|e| doc.only_child(e, ns::MD, role).map(|r| (e, r)))
        .collect();
    let [(entity, descriptor)] = found.as_slice() else {
        return Err(Error::Metadata(format!("not exactly one matching entity with {role}")));
    };
    let valid_until = earliest_valid_until(doc, *entity)?;
    if valid_until.is_some_and(|t| t <= now) {
        return Err(Error::MetadataExpired);
    }
    Ok((*entity, *descriptor, valid_until))
}

fn earliest_valid_until(doc: &Document, entity: ElementId) -> Result<Option<DateTime<Utc>>> {
    let mut earliest: Option<DateTime<Utc>> = None;
    let mut cur = Some(entity);
    while let Some(e) = cur {
        if let Some(v) = doc.attr(e, "validUntil") {
            let t = crate::parse_time(v)?;
            earliest = Some(earliest.map_or(t, |x| x.min(t)));
        }
        cur = doc.element(e).parent;
    }
    Ok(earliest)
}

/// Certificates of key descriptors for `usage` (a descriptor without `use`
/// serves both).
fn certs(doc: &Document, role: ElementId, usage: &str) -> Result<Vec<X509>> {
    let mut out = Vec::new();
    for kd in doc.children_named(role, ns::MD, "KeyDescriptor") {
        if doc.attr(kd, "use").is_some_and(|u| u != usage) {
            continue;
        }
        for c in doc.descendants_named(kd, ns::DS, "X509Certificate") {
            let der = decode_b64(&doc.text(c)?)?;
            out.push(X509::from_der(&der).map_err(|e| Error::Metadata(e.to_string()))?);
        }
    }
    Ok(out)
}

fn endpoints(doc: &Document, role: ElementId, name: &str) -> Vec<Endpoint> {
    doc.children_named(role, ns::MD, name)
        .filter_map(|e| {
            Some(Endpoint {
                binding: doc.attr(e, "Binding")?.to_owned(),
                location: doc.attr(e, "Location")?.to_owned(),
            })
        })
        .collect()
}

/// What our service provider metadata says.
#[derive(Debug, Clone)]
pub struct SpMetadata<'a> {
    /// Our entity id: the metadata's own URL.
    pub entity_id: &'a str,
    pub acs_url: &'a str,
    /// Where the IdP sends logout requests and answers (HTTP-Redirect).
    pub slo_url: Option<&'a str>,
    /// The key that signs our requests and the one assertions are encrypted
    /// to (the same pair unless configured otherwise).
    pub signing: &'a KeyPair,
    pub encryption: &'a KeyPair,
    /// The service's name, for the IdP's consent and listing pages.
    pub service_name: &'a str,
    /// Attribute names we ask for (`urn:oid:…` or plain names).
    pub requested_attributes: &'a [String],
}

impl SpMetadata<'_> {
    /// The `EntityDescriptor` document.
    pub fn to_xml(&self) -> Result<String> {
        let signing = self.signing.cert_base64()?;
        let encryption = self.encryption.cert_base64()?;
        let key = |usage: &str, cert: &str, methods: &str| {
            format!(
                r#"<md:KeyDescriptor use="{usage}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>{methods}</md:KeyDescriptor>"#
            )
        };
        let methods: String = [
            crate::enc::Content::Aes256Gcm,
            crate::enc::Content::Aes128Gcm,
            crate::enc::Content::Aes256Cbc,
            crate::enc::Content::Aes128Cbc,
        ]
        .iter()
        .map(|c| format!(r#"<md:EncryptionMethod Algorithm="{}"/>"#, c.uri()))
        .collect();
        let slo = self.slo_url.map_or(String::new(), |u| {
            format!(r#"<md:SingleLogoutService Binding="{}" Location="{}"/>"#, binding::REDIRECT, escape(u))
        });
        let requested: String = self
            .requested_attributes
            .iter()
            .map(|name| {
                let format = match name.starts_with("urn:") {
                    true => "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
                    false => "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
                };
                format!(r#"<md:RequestedAttribute Name="{}" NameFormat="{format}" isRequired="true"/>"#, escape(name))
            })
            .collect();
        let consuming = match requested.is_empty() {
            true => String::new(),
            false => format!(
                r#"<md:AttributeConsumingService index="0" isDefault="true"><md:ServiceName xml:lang="fr">{}</md:ServiceName>{requested}</md:AttributeConsumingService>"#,
                escape(self.service_name)
            ),
        };
        Ok(format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<md:EntityDescriptor xmlns:md="{md}" xmlns:ds="{ds}" entityID="{entity}">"#,
                r#"<md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="{samlp}">"#,
                "{signing}{encryption}{slo}",
                r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"#,
                r#"<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>"#,
                r#"<md:AssertionConsumerService Binding="{post}" Location="{acs}" index="0" isDefault="true"/>"#,
                "{consuming}</md:SPSSODescriptor></md:EntityDescriptor>"
            ),
            md = ns::MD,
            ds = ns::DS,
            samlp = ns::SAMLP,
            entity = escape(self.entity_id),
            signing = key("signing", &signing, ""),
            encryption = key("encryption", &encryption, &methods),
            slo = slo,
            post = binding::POST,
            acs = escape(self.acs_url),
            consuming = consuming,
        ))
    }
}

/// An assertion consumer endpoint of a service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs {
    pub binding: String,
    pub location: String,
    pub index: Option<u16>,
    pub is_default: bool,
}

/// What an identity provider uses of a service provider's metadata.
#[derive(Debug, Clone)]
pub struct SpDescriptor {
    pub entity_id: String,
    pub acs: Vec<Acs>,
    pub slo: Vec<Endpoint>,
    pub signing_certs: Vec<X509>,
    pub encryption_certs: Vec<X509>,
    pub authn_requests_signed: bool,
    pub want_assertions_signed: bool,
    pub valid_until: Option<DateTime<Utc>>,
}

impl SpDescriptor {
    /// Reads the SP `entity_id` (or the only one) from a metadata document.
    pub fn parse(xml: &str, entity_id: Option<&str>, now: DateTime<Utc>) -> Result<SpDescriptor> {
        let doc = Document::parse(xml)?;
        let (entity, sp, valid_until) = select(&doc, "SPSSODescriptor", entity_id, now)?;
        let acs = doc
            .children_named(sp, ns::MD, "AssertionConsumerService")
            .filter_map(|e| {
                Some(Acs {
                    binding: doc.attr(e, "Binding")?.to_owned(),
                    location: doc.attr(e, "Location")?.to_owned(),
                    index: doc.attr(e, "index").and_then(|i| i.parse().ok()),
                    is_default: matches!(doc.attr(e, "isDefault"), Some("true" | "1")),
                })
            })
            .collect::<Vec<_>>();
        let entity_id = doc.attr(entity, "entityID").unwrap_or_default().to_owned();
        if entity_id.is_empty() || acs.is_empty() {
            return Err(Error::Metadata("no entity id or no assertion consumer".into()));
        }
        Ok(SpDescriptor {
            entity_id,
            acs,
            slo: endpoints(&doc, sp, "SingleLogoutService"),
            signing_certs: certs(&doc, sp, "signing")?,
            encryption_certs: certs(&doc, sp, "encryption")?,
            authn_requests_signed: matches!(doc.attr(sp, "AuthnRequestsSigned"), Some("true" | "1")),
            want_assertions_signed: matches!(doc.attr(sp, "WantAssertionsSigned"), Some("true" | "1")),
            valid_until,
        })
    }

    /// The HTTP-POST assertion consumer to answer at: the one a request
    /// names, if the metadata lists it (never a URL taken from a request
    /// alone), else the default one (or the first).
    pub fn acs_for(&self, requested_url: Option<&str>, requested_index: Option<u16>) -> Option<&str> {
        let post = || self.acs.iter().filter(|a| a.binding == binding::POST);
        match (requested_url, requested_index) {
            (Some(url), _) => post().find(|a| a.location == url),
            (None, Some(i)) => post().find(|a| a.index == Some(i)),
            (None, None) => post().find(|a| a.is_default).or_else(|| post().next()),
        }
        .map(|a| a.location.as_str())
    }
}
