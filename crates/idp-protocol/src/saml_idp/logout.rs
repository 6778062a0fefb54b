//! Single logout with SAML SPs, both ways.
//!
//! Each assertion is indexed by its SP and `SessionIndex` back to the SSO
//! session (with the NameID it carried), for as long as a session lives.
//! An SP's `LogoutRequest` at `/saml/idp/slo` (HTTP-Redirect or HTTP-POST,
//! signed when the SP's metadata has a signing key) ends that session with
//! `Cas::end_session` — so CAS services and OIDC clients are told — and is
//! answered by a signed `LogoutResponse`. When a session ends anywhere
//! else, [`SamlLogoutHook`] sends a signed `LogoutRequest` by SOAP to each
//! SP that got an assertion in it and whose metadata offers the SOAP
//! binding (the SP that asked for the logout is not asked back).

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

use idp_core::clock::Clock;
use idp_core::oidc::SessionEndHook;
use idp_core::ports::{EphemeralStore, HttpCall, HttpMethod, Outbound};
use idp_core::saml_sp::SamlSpRegistry;
use idp_core::service::ServiceId;
use idp_core::session::{Participant, SessionService, SsoSession};
use idp_saml::idp::{
    IdentityProvider, SOAP, parse_sp_logout, read_post_from_sp, read_redirect_from_sp, redirect_issuer, slo_endpoint,
};
use idp_saml::request::{Kind, logout_response_xml, redirect_url};
use idp_saml::{binding, xml::Document};

pub use idp_saml::idp::soap_fault;

use super::front::{CHAIN_TTL, ChainEnd, FrontStep, ended_key};
use super::{Incoming, Refusal, SamlIdp};

/// What the browser gets after an SP's logout request.
#[derive(Debug)]
pub enum SloNext {
    /// To the SP's logout endpoint, with our signed LogoutResponse.
    Redirect(String),
    /// Our signed LogoutResponse posted to the SP's logout endpoint.
    Post { action: String, saml_response: String, relay_state: Option<String> },
    /// A French error page.
    Refuse(Refusal),
    /// To the next SP of the front-channel logout chain `key` (also the
    /// browser's cookie) with our signed LogoutRequest.
    Chain { url: String, key: String },
    /// The end of a chain: our logged-out page.
    LoggedOut,
    /// The end of a chain: the registered service `/cas/logout` was given.
    ToService(String),
}

fn index_key(sp_id: &str, session_index: &str) -> String {
    format!("saml-idp-sindex:{sp_id}:{session_index}")
}

fn initiator_key(session_id: &str, sp_id: &str) -> String {
    format!("saml-idp-slo:{session_id}:{sp_id}")
}

impl SamlIdp {
    /// Remembers which session an assertion to `sp_id` belongs to.
    pub(crate) async fn index_assertion(
        &self,
        sp_id: &str,
        session_index: &str,
        session_id: &str,
        name_id: &str,
    ) -> crate::Result<()> {
        let value = format!("{session_id}\n{name_id}");
        self.pending.put(&index_key(sp_id, session_index), value, self.cas.session_ttl()).await?;
        Ok(())
    }

    /// `/saml/idp/slo`: an SP's LogoutRequest, from the browser whose TGC
    /// cookie is `tgc`.
    pub async fn single_logout(&self, incoming: Incoming<'_>, tgc: Option<&str>) -> crate::Result<SloNext> {
        let issuer = match &incoming {
            Incoming::Redirect(q) => redirect_issuer(q, Kind::Request),
            Incoming::Post { message, .. } => {
                idp_saml::response::decode_post(message).and_then(|x| idp_saml::idp::issuer_of(&x))
            }
            Incoming::Unsolicited { .. } => return Ok(SloNext::Refuse(Refusal::BadRequest)),
        };
        let Ok(issuer) = issuer else { return Ok(SloNext::Refuse(Refusal::BadRequest)) };
        let Some((sp, descriptor)) = self.sp_by_entity(&issuer).await? else {
            return Ok(SloNext::Refuse(Refusal::UnknownSp));
        };
        let received = match incoming {
            Incoming::Redirect(q) => read_redirect_from_sp(q, Kind::Request, &descriptor.signing_certs),
            Incoming::Post { message, relay_state } => {
                read_post_from_sp(message, relay_state.map(str::to_owned), &descriptor.signing_certs)
            }
            Incoming::Unsolicited { .. } => return Ok(SloNext::Refuse(Refusal::BadRequest)),
        };
        let received = match received {
            Ok(r) if r.signed || descriptor.signing_certs.is_empty() => r,
            Ok(_) | Err(idp_saml::Error::Signature(_)) => return Ok(SloNext::Refuse(Refusal::Unsigned)),
            Err(_) => return Ok(SloNext::Refuse(Refusal::BadRequest)),
        };
        let Ok(request) = parse_sp_logout(&received.xml, &self.idp.slo_url, self.clock.now()) else {
            return Ok(SloNext::Refuse(Refusal::BadRequest));
        };
        let Some(sid) = self.named_session(sp.id.as_str(), &request, tgc).await? else {
            return self.logout_response(&descriptor, &request.id, false, received.relay_state);
        };
        let ended = self.end_as_asked(sp.id.as_str(), &sid).await?;
        let end = ChainEnd::Initiator {
            sp_id: sp.id.to_string(),
            in_response_to: request.id.clone(),
            ended,
            relay_state: received.relay_state.clone(),
        };
        match self.front_channel(&sid, end).await? {
            Some(chain) => Ok(chain),
            None => self.logout_response(&descriptor, &request.id, ended, received.relay_state),
        }
    }

    /// `POST /saml/idp/slo` with `text/xml`: an SP's LogoutRequest by SOAP
    /// (back channel, no browser). The session named by its
    /// `SessionIndex` (and `NameID`) ends; the answer is our signed
    /// `LogoutResponse` in a SOAP envelope, or the refusal.
    pub async fn soap_logout(&self, envelope: &str) -> crate::Result<Result<String, Refusal>> {
        let Some(issuer) = soap_issuer(envelope) else { return Ok(Err(Refusal::BadRequest)) };
        let Some((sp, descriptor)) = self.sp_by_entity(&issuer).await? else { return Ok(Err(Refusal::UnknownSp)) };
        let received = match idp_saml::idp::read_soap_from_sp(envelope, &descriptor.signing_certs) {
            Ok(r) if r.signed || descriptor.signing_certs.is_empty() => r,
            Ok(_) | Err(idp_saml::Error::Signature(_)) => return Ok(Err(Refusal::Unsigned)),
            Err(_) => return Ok(Err(Refusal::BadRequest)),
        };
        let Ok(request) = parse_sp_logout(&received.xml, &self.idp.slo_url, self.clock.now()) else {
            return Ok(Err(Refusal::BadRequest));
        };
        let ended = match self.named_session(sp.id.as_str(), &request, None).await? {
            Some(sid) => self.end_as_asked(sp.id.as_str(), &sid).await?,
            None => false,
        };
        let now = self.clock.now();
        let id = idp_saml::new_id().map_err(super::saml_err)?;
        let dest = slo_endpoint(&descriptor, SOAP).unwrap_or_default();
        let xml = logout_response_xml(&id, &request.id, &self.idp.entity_id, dest, ended, now);
        let doc = Document::parse(&xml).map_err(super::saml_err)?;
        let signed = idp_saml::dsig::sign(&doc, doc.root(), &self.idp.key.key, &self.idp.key.cert);
        Ok(Ok(idp_saml::idp::soap_envelope(&signed.map_err(super::saml_err)?)))
    }

    /// The session an SP's LogoutRequest names: the one its
    /// `SessionIndex` was issued in with this `NameID`; without a
    /// `SessionIndex`, the browser's own (`tgc`; none by SOAP).
    async fn named_session(
        &self,
        sp_id: &str,
        request: &idp_saml::idp::SpLogout,
        tgc: Option<&str>,
    ) -> crate::Result<Option<String>> {
        let mut session_id = None;
        for index in &request.session_indexes {
            if let Some(v) = self.pending.get(&index_key(sp_id, index)).await?
                && let Some((sid, name_id)) = v.split_once('\n')
                && name_id == request.name_id
            {
                session_id = Some(sid.to_owned());
            }
        }
        if request.session_indexes.is_empty() {
            session_id = self.cas.current_session(tgc).await?.map(|(s, _)| s.id.expose().to_owned());
        }
        Ok(session_id)
    }

    /// Ends session `sid` as SP `sp_id` asked (that SP is not asked back).
    /// Whether a live session ended.
    async fn end_as_asked(&self, sp_id: &str, sid: &str) -> crate::Result<bool> {
        let marker = initiator_key(sid, sp_id);
        self.pending.put(&marker, "1".into(), Duration::from_secs(60)).await?;
        Ok(self.cas.end_session(sid).await?.is_some())
    }

    pub(crate) fn logout_response(
        &self,
        sp: &idp_saml::metadata::SpDescriptor,
        in_response_to: &str,
        ended: bool,
        relay_state: Option<String>,
    ) -> crate::Result<SloNext> {
        let now = self.clock.now();
        let id = idp_saml::new_id().map_err(super::saml_err)?;
        if let Some(dest) = slo_endpoint(sp, binding::REDIRECT) {
            let xml = logout_response_xml(&id, in_response_to, &self.idp.entity_id, dest, ended, now);
            let url = redirect_url(dest, Kind::Response, &xml, relay_state.as_deref(), Some(&self.idp.key));
            return Ok(SloNext::Redirect(url.map_err(super::saml_err)?));
        }
        let Some(dest) = slo_endpoint(sp, binding::POST) else { return Ok(SloNext::Refuse(Refusal::UnknownAcs)) };
        let xml = logout_response_xml(&id, in_response_to, &self.idp.entity_id, dest, ended, now);
        let doc = Document::parse(&xml).map_err(super::saml_err)?;
        let signed = idp_saml::dsig::sign(&doc, doc.root(), &self.idp.key.key, &self.idp.key.cert);
        Ok(SloNext::Post {
            action: dest.to_owned(),
            saml_response: idp_saml::idp::post_encode(&signed.map_err(super::saml_err)?),
            relay_state,
        })
    }
}

/// The issuer of the message in a SOAP envelope, before its signature is
/// checked (to find the SP whose keys check it).
fn soap_issuer(envelope: &str) -> Option<String> {
    let doc = Document::parse(envelope).ok()?;
    let body = doc.only_child(doc.root(), idp_saml::idp::SOAP_ENV, "Body")?;
    let message = doc.children(body).next()?;
    let issuer = doc.only_child(message, idp_saml::ns::SAML, "Issuer")?;
    doc.text(issuer).ok().map(|t| t.trim().to_owned())
}

/// Sends the SAML single logout when a session ends.
pub struct SamlLogoutHook {
    pub idp: IdentityProvider,
    pub sps: Arc<dyn SamlSpRegistry>,
    /// Where [`SamlIdp`] marks the SP that asked for the logout.
    pub pending: Arc<dyn EphemeralStore>,
    pub outbound: Arc<dyn Outbound>,
    pub clock: Arc<dyn Clock>,
}

impl SamlLogoutHook {
    /// Tells `sp_id` by SOAP that the session ended when its metadata
    /// offers the SOAP binding; an SP with only front-channel endpoints is
    /// left to the browser's chain.
    async fn tell_sp(&self, sp_id: &str, name_id: &str, session_index: &str) -> crate::Result<Told> {
        let Ok(id) = ServiceId::parse(sp_id) else { return Ok(Told::No) };
        let Some((sp, descriptor)) = self.sps.get(&id).await?.and_then(|s| super::descriptor(s, self.clock.now()))
        else {
            return Ok(Told::No);
        };
        let format = match sp.name_id {
            idp_core::saml_sp::NameIdKind::Transient => idp_saml::idp::name_id::TRANSIENT,
            idp_core::saml_sp::NameIdKind::Persistent => idp_saml::idp::name_id::PERSISTENT,
            idp_core::saml_sp::NameIdKind::Unspecified => idp_saml::idp::name_id::UNSPECIFIED,
        };
        let Some(dest) = slo_endpoint(&descriptor, SOAP) else {
            if slo_endpoint(&descriptor, binding::REDIRECT).is_none() {
                return Ok(Told::No);
            }
            return Ok(Told::Front(FrontStep {
                sp_id: sp_id.to_owned(),
                name_id: name_id.to_owned(),
                format: format.to_owned(),
                session_index: session_index.to_owned(),
            }));
        };
        let xml = self
            .idp
            .logout_request_xml(dest, name_id, format, session_index, self.clock.now())
            .map_err(super::saml_err)?;
        let call = HttpCall {
            method: HttpMethod::Post,
            url: dest.to_owned(),
            headers: vec![
                ("Content-Type".into(), "text/xml; charset=utf-8".into()),
                ("SOAPAction".into(), "\"http://www.oasis-open.org/committees/security\"".into()),
            ],
            body: idp_saml::idp::soap_envelope(&xml).into_bytes(),
        };
        let answer = self.outbound.call(call).await?;
        Ok(if answer.status == 200 { Told::Soap } else { Told::No })
    }
}

/// What became of an SP at the end of a session.
enum Told {
    /// It answered our SOAP LogoutRequest.
    Soap,
    /// It has only front-channel endpoints: the browser's chain visits it.
    Front(FrontStep),
    /// It was not told (no usable endpoint, or it refused).
    No,
}

#[async_trait]
impl SessionEndHook for SamlLogoutHook {
    async fn session_ended(&self, session: &SsoSession, services: &[SessionService]) -> idp_core::Result<()> {
        let mut front = Vec::new();
        for entry in services {
            let Participant::SamlSp { sp_id, name_id, session_index } = entry.participant() else { continue };
            let marker = initiator_key(session.id.expose(), sp_id);
            if self.pending.take(&marker).await?.is_some() {
                continue;
            }
            match self.tell_sp(sp_id, name_id, session_index).await {
                Ok(Told::Soap) => {}
                Ok(Told::Front(step)) => front.push(step),
                Ok(Told::No) => {
                    tracing::info!(sp = %sp_id, "SAML SP not told of the logout (no SLO endpoint or refused)")
                }
                Err(e) => tracing::warn!(sp = %sp_id, error = %e, "SAML single logout failed"),
            }
        }
        if !front.is_empty() {
            let value =
                serde_json::to_string(&front).map_err(|e| idp_core::Error::invalid("saml slo", e.to_string()))?;
            self.pending.put(&ended_key(session.id.expose()), value, CHAIN_TTL).await?;
        }
        Ok(())
    }
}
