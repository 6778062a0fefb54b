//! Our SAML 2.0 identity provider (Web Browser SSO and single logout), on
//! the CAS SSO session.
//!
//! A login for an SP goes: `/saml/idp/sso` reads the `AuthnRequest`
//! (HTTP-Redirect or HTTP-POST, its signature checked with the SP's
//! metadata keys and required where the SP or its registration asks),
//! checks its assertion consumer against the SP's metadata, keeps the
//! request a few minutes under a random key and sends the browser to
//! `/cas/login` for the SP's login service (`services.rs`). CAS comes back
//! to `/saml/idp/resume/<id>?key=…&ticket=ST-…` (at once with a live
//! session; after the login page, the charter and the access rules
//! otherwise); [`SamlIdp::resume`] spends the ticket through the CAS
//! validation (which releases the attributes by the SP's rules), records
//! the SP among the session's participants with the NameID and
//! `SessionIndex` it got, and answers the signed response to post.

pub mod front;
pub mod logout;
pub mod services;

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

use idp_core::clock::Clock;
use idp_core::ports::EphemeralStore;
use idp_core::query::with_query;
use idp_core::saml_sp::{NameIdKind, RESUME_PATH, SamlSp, SamlSpRegistry};
use idp_core::secret::random_token;
use idp_core::service::ServiceId;
use idp_core::session::SessionService;
use idp_saml::idp::{
    IdentityProvider, Recipient, Subject, check_authn_request, name_id, read_post_from_sp, read_redirect_from_sp,
    redirect_issuer,
};
use idp_saml::metadata::SpDescriptor;
use idp_saml::request::Kind;

use crate::cas::Cas;
use crate::cas::validate::ValidateParams;

/// How long an SP's request waits for the login.
pub const PENDING_SECONDS: u64 = 900;

/// An SP's message as received at `/saml/idp/sso` or `/saml/idp/slo`.
#[derive(Clone, Debug)]
pub enum Incoming<'a> {
    /// HTTP-Redirect: the raw query string (the signature covers it as sent).
    Redirect(&'a str),
    /// HTTP-POST: the base64 message and the `RelayState`.
    Post { message: &'a str, relay_state: Option<&'a str> },
    /// IdP-initiated login for the SP registered as `sp` (`?sp=ID`).
    Unsolicited { sp: &'a str, relay_state: Option<&'a str> },
}

/// Why no response goes to the SP: a French page, no assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No registered SP has this entity id (or id).
    UnknownSp,
    /// The request is unsigned (or signed by another key) where signatures
    /// are required.
    Unsigned,
    /// The request names an assertion consumer the SP's metadata does not list.
    UnknownAcs,
    /// The message does not parse, is not an AuthnRequest, or expired.
    BadRequest,
    /// The SP's registration does not allow IdP-initiated login.
    UnsolicitedNotAllowed,
    /// The pending request is unknown, spent or expired, or the login did
    /// not end in a session.
    Expired,
    /// The SP's request (by its `ID`) was already received.
    Replayed,
}

/// What the browser gets next.
#[derive(Debug)]
pub enum SsoNext {
    /// To the CAS login for the SP's login service.
    Login { url: String },
    /// A response to post to the SP's assertion consumer.
    Post { action: String, saml_response: String, relay_state: Option<String> },
    /// A French error page.
    Refuse(Refusal),
}

/// What is kept of an SP's request while the person logs in.
#[derive(Serialize, Deserialize)]
struct Pending {
    sp_id: String,
    request_id: Option<String>,
    acs: String,
    relay_state: Option<String>,
    force_authn: bool,
    is_passive: bool,
}

fn pending_key(key: &str) -> String {
    format!("saml-idp:{key}")
}

/// The identity provider.
pub struct SamlIdp {
    pub(crate) idp: IdentityProvider,
    pub(crate) sps: Arc<dyn SamlSpRegistry>,
    pub(crate) cas: Arc<Cas>,
    pub(crate) pending: Arc<dyn EphemeralStore>,
    pub(crate) clock: Arc<dyn Clock>,
    public_base: String,
}

impl SamlIdp {
    /// The identity provider `idp` (built for `public_base`), over the SSO
    /// session of `cas`.
    pub fn new(
        idp: IdentityProvider,
        public_base: &str,
        sps: Arc<dyn SamlSpRegistry>,
        cas: Arc<Cas>,
        pending: Arc<dyn EphemeralStore>,
    ) -> SamlIdp {
        let clock = cas.clock.clone();
        SamlIdp { idp, sps, cas, pending, clock, public_base: public_base.trim_end_matches('/').to_owned() }
    }

    /// Our metadata document.
    pub fn metadata_xml(&self) -> crate::Result<String> {
        self.idp.metadata_xml().map_err(|e| idp_core::Error::invalid("saml idp", e.to_string()).into())
    }

    /// The SP registered under `entity_id` and its metadata, still valid.
    async fn sp_by_entity(&self, entity_id: &str) -> crate::Result<Option<(SamlSp, SpDescriptor)>> {
        let Some(sp) = self.sps.by_entity_id(entity_id).await? else { return Ok(None) };
        Ok(self.descriptor(sp))
    }

    fn descriptor(&self, sp: SamlSp) -> Option<(SamlSp, SpDescriptor)> {
        descriptor(sp, self.clock.now())
    }

    /// `/saml/idp/sso`: an SP's AuthnRequest (or an IdP-initiated login).
    pub async fn sso(&self, incoming: Incoming<'_>) -> crate::Result<SsoNext> {
        let (pending, sp) = match self.read_authn(incoming).await? {
            Ok(found) => found,
            Err(refusal) => return Ok(SsoNext::Refuse(refusal)),
        };
        let key = random_token(32)?;
        let value = serde_json::to_string(&pending).map_err(idp_core::Error::from)?;
        self.pending.put(&pending_key(&key), value, Duration::from_secs(PENDING_SECONDS)).await?;
        let mut q = vec![("service", self.resume_url(&sp.id, &key))];
        if pending.force_authn {
            q.push(("renew", "true".to_owned()));
        }
        if pending.is_passive {
            q.push(("gateway", "true".to_owned()));
        }
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ok(SsoNext::Login { url: with_query("/cas/login", &pairs) })
    }

    fn resume_url(&self, sp_id: &ServiceId, key: &str) -> String {
        format!("{}{RESUME_PATH}/{sp_id}?key={key}", self.public_base)
    }

    async fn read_authn(&self, incoming: Incoming<'_>) -> crate::Result<Result<(Pending, SamlSp), Refusal>> {
        let now = self.clock.now();
        if let Incoming::Unsolicited { sp, relay_state } = incoming {
            let registered = match ServiceId::parse(sp) {
                Ok(id) => self.sps.get(&id).await?.and_then(|s| self.descriptor(s)),
                Err(_) => None,
            };
            let Some((sp, descriptor)) = registered else { return Ok(Err(Refusal::UnknownSp)) };
            if !sp.idp_initiated {
                return Ok(Err(Refusal::UnsolicitedNotAllowed));
            }
            let Some(acs) = descriptor.acs_for(None, None) else { return Ok(Err(Refusal::UnknownAcs)) };
            let pending = Pending {
                sp_id: sp.id.to_string(),
                request_id: None,
                acs: acs.to_owned(),
                relay_state: relay_state.map(str::to_owned),
                force_authn: false,
                is_passive: false,
            };
            return Ok(Ok((pending, sp)));
        }
        let issuer = match &incoming {
            Incoming::Redirect(q) => redirect_issuer(q, Kind::Request),
            Incoming::Post { message, .. } => {
                idp_saml::response::decode_post(message).and_then(|x| idp_saml::idp::issuer_of(&x))
            }
            Incoming::Unsolicited { .. } => return Ok(Err(Refusal::BadRequest)),
        };
        let Ok(issuer) = issuer else { return Ok(Err(Refusal::BadRequest)) };
        let Some((sp, descriptor)) = self.sp_by_entity(&issuer).await? else { return Ok(Err(Refusal::UnknownSp)) };
        let received = match incoming {
            Incoming::Redirect(q) => read_redirect_from_sp(q, Kind::Request, &descriptor.signing_certs),
            Incoming::Post { message, relay_state } => {
                read_post_from_sp(message, relay_state.map(str::to_owned), &descriptor.signing_certs)
            }
            Incoming::Unsolicited { .. } => return Ok(Err(Refusal::BadRequest)),
        };
        let received = match received {
            Ok(r) => r,
            Err(idp_saml::Error::Signature(_)) => return Ok(Err(Refusal::Unsigned)),
            Err(_) => return Ok(Err(Refusal::BadRequest)),
        };
        if (sp.require_signed_requests || descriptor.authn_requests_signed) && !received.signed {
            return Ok(Err(Refusal::Unsigned));
        }
        let (request, acs) = match check_authn_request(&received.xml, &descriptor, now) {
            Ok(r) => r,
            Err(idp_saml::Error::Destination) => return Ok(Err(Refusal::UnknownAcs)),
            Err(_) => return Ok(Err(Refusal::BadRequest)),
        };
        if !self.first_sight(&sp, &request, now).await? {
            tracing::warn!(sp = %sp.id, "SAML AuthnRequest replayed");
            return Ok(Err(Refusal::Replayed));
        }
        let pending = Pending {
            sp_id: sp.id.to_string(),
            request_id: Some(request.id),
            acs,
            relay_state: received.relay_state,
            force_authn: request.force_authn,
            is_passive: request.is_passive,
        };
        Ok(Ok((pending, sp)))
    }

    /// Whether this is the first time the SP's request `ID` is seen: it is
    /// remembered until the request's validity window ends, with one
    /// atomic put-if-absent (of two nodes given the same request at the
    /// same moment, only one accepts it).
    async fn first_sight(
        &self,
        sp: &SamlSp,
        request: &idp_saml::request::IncomingAuthn,
        now: chrono::DateTime<chrono::Utc>,
    ) -> crate::Result<bool> {
        let seen = format!("saml-idp-request:{}\n{}", sp.id, request.id);
        let ttl = (request.valid_until - now).to_std().unwrap_or_default() + Duration::from_secs(60);
        Ok(self.pending.put_if_absent(&seen, String::new(), ttl).await?)
    }

    /// `/saml/idp/resume/<sp>?key=…&ticket=…`: back from the CAS login of
    /// the browser whose TGC cookie is `tgc`.
    pub async fn resume(
        &self,
        sp_id: &str,
        key: &str,
        ticket: Option<&str>,
        tgc: Option<&str>,
    ) -> crate::Result<SsoNext> {
        let resume_url = format!("{}{RESUME_PATH}/{sp_id}?key={key}", self.public_base);
        let pending = match key.bytes().all(|b| b.is_ascii_alphanumeric()) && !key.is_empty() && key.len() <= 64 {
            true => self.pending.take(&pending_key(key)).await?,
            false => None,
        };
        let Some(pending) = pending.and_then(|p| serde_json::from_str::<Pending>(&p).ok()) else {
            return Ok(SsoNext::Refuse(Refusal::Expired));
        };
        let registered = match ServiceId::parse(&pending.sp_id) {
            Ok(id) if pending.sp_id == sp_id => self.sps.get(&id).await?.and_then(|s| self.descriptor(s)),
            _ => None,
        };
        let Some((sp, descriptor)) = registered else { return Ok(SsoNext::Refuse(Refusal::UnknownSp)) };
        let to = Recipient {
            sp_entity_id: &descriptor.entity_id,
            acs_url: &pending.acs,
            in_response_to: pending.request_id.as_deref(),
            encrypt_to: None,
        };
        let Some(ticket) = ticket.filter(|t| !t.is_empty()) else {
            // `gateway`: CAS came back without a ticket, no session.
            if pending.is_passive {
                let xml = self.saml(self.idp.refusal_xml(&to, idp_saml::idp::NO_PASSIVE, self.clock.now()))?;
                return Ok(post(&pending, &xml));
            }
            return Ok(SsoNext::Refuse(Refusal::Expired));
        };
        let params = ValidateParams {
            service: Some(resume_url),
            ticket: Some(ticket.to_owned()),
            renew: pending.force_authn.then(|| "true".to_owned()),
            ..Default::default()
        };
        let Ok(success) = self.cas.validate(&params).await else { return Ok(SsoNext::Refuse(Refusal::Expired)) };
        let Some((session, _)) = self.cas.current_session(tgc).await? else {
            return Ok(SsoNext::Refuse(Refusal::Expired));
        };
        let (name_id, format) = match sp.name_id {
            NameIdKind::Transient => (idp_saml::new_id().map_err(saml_err)?, name_id::TRANSIENT),
            NameIdKind::Persistent => (success.user.clone(), name_id::PERSISTENT),
            NameIdKind::Unspecified => (success.user.clone(), name_id::UNSPECIFIED),
        };
        let session_index = idp_saml::new_id().map_err(saml_err)?;
        let entry = SessionService::saml(sp.id.as_str(), &name_id, &session_index);
        self.cas.sessions.add_service(session.id.expose(), entry).await?;
        self.index_assertion(sp.id.as_str(), &session_index, session.id.expose(), &name_id).await?;
        let encrypt_to =
            sp.encrypt.then(|| descriptor.encryption_certs.first().or(descriptor.signing_certs.first())).flatten();
        let subject = Subject {
            name_id: &name_id,
            name_id_format: format,
            session_index: &session_index,
            authn_instant: success.authentication_date,
            authn_context_class: authn_context_class(&success.authentication_methods),
            attributes: &success.attributes,
        };
        let xml = self.saml(self.idp.response_xml(&subject, &Recipient { encrypt_to, ..to }, self.clock.now()))?;
        Ok(post(&pending, &xml))
    }

    fn saml<T>(&self, r: idp_saml::Result<T>) -> crate::Result<T> {
        r.map_err(saml_err)
    }
}

/// The SP with its metadata read, when the metadata is still usable.
pub(crate) fn descriptor(sp: SamlSp, now: chrono::DateTime<chrono::Utc>) -> Option<(SamlSp, SpDescriptor)> {
    match SpDescriptor::parse(&sp.metadata, Some(&sp.entity_id), now) {
        Ok(d) => Some((sp, d)),
        Err(e) => {
            tracing::warn!(sp = %sp.id, error = %e, "SAML SP metadata unusable");
            None
        }
    }
}

fn saml_err(e: idp_saml::Error) -> crate::Error {
    idp_core::Error::invalid("saml idp", e.to_string()).into()
}

fn post(pending: &Pending, xml: &str) -> SsoNext {
    SsoNext::Post {
        action: pending.acs.clone(),
        saml_response: idp_saml::idp::post_encode(xml),
        relay_state: pending.relay_state.clone(),
    }
}

/// The `AuthnContextClassRef` of a session's `amr`: a passkey is the
/// REFEDS multi-factor profile, a one-time code `TimeSyncToken`, a
/// password alone (or an upstream's login) `PasswordProtectedTransport`.
pub fn authn_context_class(amr: &[String]) -> &'static str {
    use idp_core::second_factor::{AMR_PASSKEY, has_second_factor};
    if amr.iter().any(|m| m == AMR_PASSKEY) {
        idp_saml::idp::REFEDS_MFA
    } else if has_second_factor(amr) {
        idp_saml::idp::TIME_SYNC_TOKEN
    } else {
        idp_saml::idp::PASSWORD_PROTECTED
    }
}

#[cfg(test)]
mod tests {
    use super::authn_context_class;

    #[test]
    fn the_authn_context_follows_the_factor() {
        let amr = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(authn_context_class(&amr(&["pwd"])), idp_saml::idp::PASSWORD_PROTECTED);
        assert_eq!(authn_context_class(&amr(&[])), idp_saml::idp::PASSWORD_PROTECTED);
        assert_eq!(authn_context_class(&amr(&["pwd", "otp"])), idp_saml::idp::TIME_SYNC_TOKEN);
        assert_eq!(authn_context_class(&amr(&["pwd", "hwk"])), "https://refeds.org/profile/mfa");
    }
}
