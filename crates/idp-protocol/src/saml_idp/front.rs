//! Front-channel single logout: the browser that ended the session is sent
//! through the SAML SPs that have only an HTTP-Redirect (or HTTP-POST)
//! `SingleLogoutService`, one after the other, with our signed
//! `LogoutRequest` by HTTP-Redirect.
//!
//! When the session ends, [`super::logout::SamlLogoutHook`] keeps those SPs
//! (with the NameID and `SessionIndex` each got) for a few minutes under the
//! session's id. The browser's logout then turns them into a chain kept
//! under a random key, which goes to each SP as the `RelayState` and to the
//! browser as a cookie: an SP's `LogoutResponse` continues the chain only
//! when both agree. The session is over before the first step, so a browser
//! that never comes back loses nothing.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use idp_core::saml_sp::SamlSp;
use idp_core::secret::random_token;
use idp_core::service::ServiceId;
use idp_saml::binding;
use idp_saml::idp::{read_post_from_sp, read_redirect_from_sp, slo_endpoint};
use idp_saml::metadata::SpDescriptor;
use idp_saml::request::{Kind, parse_logout_response, redirect_url};

use super::logout::SloNext;
use super::{Incoming, SamlIdp};

/// How long the SPs of an ended session, then a chain, are kept.
pub const CHAIN_TTL: Duration = Duration::from_secs(300);

/// One SP to visit: whom our `LogoutRequest` names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FrontStep {
    pub sp_id: String,
    pub name_id: String,
    pub format: String,
    pub session_index: String,
}

/// Where the chain ends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ChainEnd {
    /// Our logged-out page.
    LoggedOut,
    /// The registered service `/cas/logout` was given.
    ToService(String),
    /// Our `LogoutResponse` to the SP that asked for the logout.
    Initiator { sp_id: String, in_response_to: String, ended: bool, relay_state: Option<String> },
}

#[derive(Debug, Serialize, Deserialize)]
struct Chain {
    /// The SP the browser was last sent to.
    current: Option<String>,
    steps: Vec<FrontStep>,
    end: ChainEnd,
}

pub(crate) fn ended_key(session_id: &str) -> String {
    format!("saml-idp-front:{session_id}")
}

fn chain_key(key: &str) -> String {
    format!("saml-idp-chain:{key}")
}

impl SamlIdp {
    /// After the browser ended session `session_id`: the chain through its
    /// front-channel SPs, if it has any, or `None`.
    pub async fn front_channel(&self, session_id: &str, end: ChainEnd) -> crate::Result<Option<SloNext>> {
        let Some(raw) = self.pending.take(&ended_key(session_id)).await? else { return Ok(None) };
        let steps: Vec<FrontStep> = serde_json::from_str(&raw).unwrap_or_default();
        if steps.is_empty() {
            return Ok(None);
        }
        let key = random_token(32)?;
        self.next_step(&key, Chain { current: None, steps, end }).await.map(Some)
    }

    /// `/saml/idp/slo` with a `LogoutResponse`: the browser is back from an
    /// SP of the chain `relay_state`, whose key its cookie `cookie` holds.
    /// Any other key ends at our logged-out page.
    pub async fn continue_chain(
        &self,
        incoming: Incoming<'_>,
        relay_state: Option<&str>,
        cookie: Option<&str>,
    ) -> crate::Result<SloNext> {
        let key = match (relay_state, cookie) {
            (Some(r), Some(c)) if r == c && valid_key(r) => r,
            _ => {
                tracing::info!("SAML logout chain unknown or not this browser's");
                return Ok(SloNext::LoggedOut);
            }
        };
        let Some(chain) = self.pending.take(&chain_key(key)).await? else { return Ok(SloNext::LoggedOut) };
        let Ok(chain) = serde_json::from_str::<Chain>(&chain) else { return Ok(SloNext::LoggedOut) };
        if let Some(current) = &chain.current {
            self.log_answer(current, incoming).await?;
        }
        self.next_step(key, chain).await
    }

    /// Sends the browser to the next SP of `chain`, or to its end.
    async fn next_step(&self, key: &str, mut chain: Chain) -> crate::Result<SloNext> {
        while !chain.steps.is_empty() {
            let step = chain.steps.remove(0);
            let Some(url) = self.request_url(&step, key).await? else { continue };
            chain.current = Some(step.sp_id);
            let value = serde_json::to_string(&chain).map_err(|e| idp_core::Error::invalid("chain", e.to_string()))?;
            self.pending.put(&chain_key(key), value, CHAIN_TTL).await?;
            return Ok(SloNext::Chain { url, key: key.to_owned() });
        }
        match chain.end {
            ChainEnd::LoggedOut => Ok(SloNext::LoggedOut),
            ChainEnd::ToService(url) => Ok(SloNext::ToService(url)),
            ChainEnd::Initiator { sp_id, in_response_to, ended, relay_state } => {
                let Some((_, descriptor)) = self.sp_by_id(&sp_id).await? else { return Ok(SloNext::LoggedOut) };
                self.logout_response(&descriptor, &in_response_to, ended, relay_state)
            }
        }
    }

    /// Our signed LogoutRequest to `step`'s SP by HTTP-Redirect, with the
    /// chain key as `RelayState` (none when the SP is gone or has no
    /// redirect endpoint).
    async fn request_url(&self, step: &FrontStep, key: &str) -> crate::Result<Option<String>> {
        let Some((_, descriptor)) = self.sp_by_id(&step.sp_id).await? else { return Ok(None) };
        let Some(dest) = slo_endpoint(&descriptor, binding::REDIRECT) else { return Ok(None) };
        let now = self.clock.now();
        let xml = self.idp.logout_request_xml(dest, &step.name_id, &step.format, &step.session_index, now);
        let xml = xml.map_err(super::saml_err)?;
        let url = redirect_url(dest, Kind::Request, &xml, Some(key), Some(&self.idp.key));
        Ok(Some(url.map_err(super::saml_err)?))
    }

    /// Logs what the SP `sp_id` answered (a logout it refused or a message
    /// not its own is only logged: the session is over either way).
    async fn log_answer(&self, sp_id: &str, incoming: Incoming<'_>) -> crate::Result<()> {
        let Some((_, descriptor)) = self.sp_by_id(sp_id).await? else { return Ok(()) };
        let received = match incoming {
            Incoming::Redirect(q) => read_redirect_from_sp(q, Kind::Response, &descriptor.signing_certs),
            Incoming::Post { message, relay_state } => {
                read_post_from_sp(message, relay_state.map(str::to_owned), &descriptor.signing_certs)
            }
            Incoming::Unsolicited { .. } => return Ok(()),
        };
        let answer = received
            .ok()
            .filter(|r| r.signed || descriptor.signing_certs.is_empty())
            .and_then(|r| parse_logout_response(&r.xml, &descriptor.entity_id, &self.idp.slo_url).ok());
        match answer {
            Some(a) if a.success => {}
            Some(_) => tracing::info!(sp = %sp_id, "SAML SP answered the logout with an error status"),
            None => tracing::warn!(sp = %sp_id, "SAML SP's LogoutResponse unreadable, unsigned or not its own"),
        }
        Ok(())
    }

    async fn sp_by_id(&self, sp_id: &str) -> crate::Result<Option<(SamlSp, SpDescriptor)>> {
        let Ok(id) = ServiceId::parse(sp_id) else { return Ok(None) };
        Ok(self.sps.get(&id).await?.and_then(|s| self.descriptor(s)))
    }
}

/// Whether `raw` has the shape of a chain key.
fn valid_key(raw: &str) -> bool {
    !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether a redirect query carries a `LogoutResponse` (not a request).
pub fn is_response(raw_query: &str) -> bool {
    raw_query.split('&').any(|p| p.starts_with("SAMLResponse="))
}
