//! Logging in through a SAML 2.0 identity provider (ÉduConnect, an
//! académie federation): the AuthnRequest, the response posted back to
//! `/upstream/<id>/acs`, and the assertion handed to the linking of
//! [`super::Upstreams`].
//!
//! A login that leaves is remembered under a random `RelayState`
//! (ephemeral store, 10 minutes, taken once) with the `ID` of the request
//! sent; the response must answer that request (`InResponseTo`), so a
//! response replayed or sent for another login finds nothing. Assertion
//! ids are also kept until the assertion expires (all nodes share the
//! ephemeral store): the same assertion is never used twice.
//!
//! Single logout with the identity provider, when its metadata offers it
//! (HTTP-Redirect): a login leaves the assertion's NameID and SessionIndex
//! beside its session ([`logout_data`], kept by [`super::Upstreams`]), and
//! an index from them back to the session ([`SamlUpstreams::index_session`]).
//! Our logout sends the browser to the IdP with our signed LogoutRequest,
//! its `RelayState` bound (10 minutes, taken once) to the request `ID` and
//! where to go afterwards; `/upstream/<id>/slo` reads the IdP's signed
//! answer, or its own signed LogoutRequest ([`SamlUpstreams::single_logout`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use idp_core::account::Profile;
use idp_core::cgu::ResumeTarget;
use idp_core::clock::Clock;
use idp_core::ports::EphemeralStore;
use idp_core::secret::random_token;
use idp_saml::metadata::IdpMetadata;
use idp_saml::response::{Assertion, NameId};
use idp_saml::sp::ServiceProvider;

use crate::{Error, Result};

/// How long the person may take at the identity provider.
const PENDING: Duration = Duration::from_secs(600);

/// The SAML service providers, one per `kind = "saml"` upstream.
pub struct SamlUpstreams {
    /// Behind a lock: the IdP metadata is refreshed while the server runs.
    sps: RwLock<BTreeMap<String, Arc<ServiceProvider>>>,
    pending: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
}

/// A login waiting at the identity provider.
#[derive(Serialize, Deserialize)]
struct Pending {
    upstream: String,
    request_id: String,
    target: ResumeTarget,
    /// The account profile of the profile chosen on the login page.
    #[serde(default)]
    profile: Option<Profile>,
}

/// What came back to the assertion consumer.
#[derive(Debug)]
pub enum Answer {
    /// A checked, first-time assertion for the login waiting for `target`.
    Yes { assertion: Box<Assertion>, target: ResumeTarget, profile: Option<Profile> },
    /// No pending login under this `RelayState` (unknown, spent or expired).
    UnknownState,
    /// The response failed a check (logged with its code) or was replayed.
    Refused,
}

/// What a SAML login keeps beside its session for the single logout: the
/// assertion's NameID, whole, and its SessionIndex.
#[derive(Serialize, Deserialize)]
struct Subject {
    name_id: String,
    format: Option<String>,
    name_qualifier: Option<String>,
    sp_name_qualifier: Option<String>,
    session_index: Option<String>,
}

impl Subject {
    fn name_id(&self) -> NameId {
        NameId {
            value: self.name_id.clone(),
            format: self.format.clone(),
            name_qualifier: self.name_qualifier.clone(),
            sp_name_qualifier: self.sp_name_qualifier.clone(),
        }
    }
}

/// Our logout waiting at the identity provider.
#[derive(Serialize, Deserialize)]
struct PendingLogout {
    upstream: String,
    request_id: String,
    /// The registered service to go on to afterwards.
    service: Option<String>,
}

/// What came to our single logout endpoint.
#[derive(Debug)]
pub enum Slo {
    /// The IdP answered our logout request: on to `service`, or to the
    /// logged-out page.
    Answered { service: Option<String> },
    /// The IdP asks us to end the sessions of a person (`sessions`, the
    /// ones the index knows), then to answer request `request_id`.
    Asked { sessions: Vec<String>, request_id: String, relay_state: Option<String> },
    /// Unsigned, altered, unknown or spent: logged with its reason.
    Refused,
}

/// The NameID and SessionIndex of a checked assertion, as the session
/// keeps them for the logout.
pub fn logout_data(assertion: &Assertion) -> Option<String> {
    let n = &assertion.name_id;
    let subject = Subject {
        name_id: n.value.clone(),
        format: n.format.clone(),
        name_qualifier: n.name_qualifier.clone(),
        sp_name_qualifier: n.sp_name_qualifier.clone(),
        session_index: assertion.session_index.clone(),
    };
    serde_json::to_string(&subject).ok()
}

fn config_error(e: idp_saml::Error) -> Error {
    Error::Core(idp_core::Error::invalid("upstreams (saml)", e.to_string()))
}

impl SamlUpstreams {
    /// `sps` by upstream id.
    pub fn new(
        sps: BTreeMap<String, ServiceProvider>,
        pending: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let sps = sps.into_iter().map(|(id, sp)| (id, Arc::new(sp))).collect();
        Self { sps: RwLock::new(sps), pending, clock }
    }

    /// The service provider of upstream `id`.
    fn sp(&self, id: &str) -> Result<Arc<ServiceProvider>> {
        let sps = self.sps.read().unwrap_or_else(|e| e.into_inner());
        sps.get(id).cloned().ok_or(Error::UnknownUpstream)
    }

    /// Puts the identity provider's metadata of upstream `id`, read again
    /// (its keys rolled, its endpoints moved); false for an unknown id.
    pub fn replace_idp_metadata(&self, id: &str, idp: IdpMetadata) -> bool {
        let mut sps = self.sps.write().unwrap_or_else(|e| e.into_inner());
        let Some(sp) = sps.get_mut(id) else { return false };
        let mut updated = ServiceProvider::clone(sp);
        updated.idp = idp;
        *sp = Arc::new(updated);
        true
    }

    /// The identity provider's metadata of upstream `id` in use.
    pub fn idp_metadata(&self, id: &str) -> Option<IdpMetadata> {
        self.sp(id).ok().map(|sp| sp.idp.clone())
    }

    /// Our metadata for upstream `id`.
    pub fn metadata(&self, id: &str) -> Result<String> {
        self.sp(id)?.metadata_xml().map_err(config_error)
    }

    /// Remembers a login for `target` and gives the identity provider's
    /// URL; None when its metadata has expired (logged).
    pub async fn start(&self, id: &str, target: ResumeTarget, profile: Option<Profile>) -> Result<Option<String>> {
        let sp = self.sp(id)?;
        let relay_state = random_token(32)?;
        let request_id = idp_saml::new_id().map_err(config_error)?;
        let url = match sp.login_url(&request_id, &relay_state, self.clock.now()) {
            Ok(url) => url,
            Err(e @ idp_saml::Error::MetadataExpired) => {
                tracing::warn!(upstream = id, error = %e, "the identity provider's metadata has expired");
                return Ok(None);
            }
            Err(e) => return Err(config_error(e)),
        };
        let pending = Pending { upstream: id.to_owned(), request_id, target, profile };
        let json = serde_json::to_string(&pending).map_err(idp_core::Error::from)?;
        self.pending.put(&key("saml-relay", &relay_state), json, PENDING).await?;
        Ok(Some(url))
    }

    /// The form posted to `/upstream/<id>/acs`.
    pub async fn finish(&self, id: &str, relay_state: &str, saml_response: &str) -> Result<Answer> {
        let sp = self.sp(id)?;
        let Some(pending) = self.take_pending(relay_state).await? else { return Ok(Answer::UnknownState) };
        if pending.upstream != id {
            return Ok(Answer::UnknownState);
        }
        let now = self.clock.now();
        let assertion = match sp.accept(saml_response, &pending.request_id, now) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(upstream = id, error = %e, "SAML response refused");
                return Ok(Answer::Refused);
            }
        };
        // One atomic put-if-absent: of two nodes given the same assertion
        // at the same moment, only one accepts it.
        let seen = key("saml-assertion", &format!("{}\n{}", assertion.issuer, assertion.id));
        let ttl = (assertion.expires - now).to_std().unwrap_or_default() + Duration::from_secs(180);
        if !self.pending.put_if_absent(&seen, String::new(), ttl).await? {
            tracing::warn!(upstream = id, "SAML assertion replayed");
            return Ok(Answer::Refused);
        }
        Ok(Answer::Yes { assertion: Box::new(assertion), target: pending.target, profile: pending.profile })
    }

    async fn take_pending(&self, relay_state: &str) -> Result<Option<Pending>> {
        self.take("saml-relay", relay_state).await
    }

    /// The value kept under `prefix` and the random `token`, taken once.
    async fn take<T: serde::de::DeserializeOwned>(&self, prefix: &str, token: &str) -> Result<Option<T>> {
        if token.is_empty() || token.len() > 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let Some(json) = self.pending.take(&key(prefix, token)).await? else { return Ok(None) };
        Ok(serde_json::from_str(&json).ok())
    }

    /// Remembers that the login which left `data` ([`logout_data`]) opened
    /// `session`, so that the IdP's logout request finds it: by NameID and
    /// SessionIndex, and by NameID alone (the latest session of that person).
    pub async fn index_session(&self, id: &str, data: &str, session: &str, ttl: Duration) -> Result<()> {
        let Ok(subject) = serde_json::from_str::<Subject>(data) else { return Ok(()) };
        let mut keys = vec![session_key(id, &subject.name_id, None)];
        if let Some(index) = &subject.session_index {
            keys.push(session_key(id, &subject.name_id, Some(index)));
        }
        for k in keys {
            self.pending.put(&k, session.to_owned(), ttl).await?;
        }
        Ok(())
    }

    /// The IdP URL ending the person's IdP session that `data` describes,
    /// coming back to `/upstream/<id>/slo` then to `service`. None when
    /// the IdP offers no single logout.
    pub async fn logout_url(&self, id: &str, data: &str, service: Option<&str>) -> Result<Option<String>> {
        let sp = self.sp(id)?;
        let Ok(subject) = serde_json::from_str::<Subject>(data) else { return Ok(None) };
        let relay_state = random_token(32)?;
        let now = self.clock.now();
        let built = sp.logout_url(&subject.name_id(), subject.session_index.as_deref(), Some(&relay_state), now);
        let Some((request_id, url)) = built.map_err(config_error)? else { return Ok(None) };
        let pending = PendingLogout { upstream: id.to_owned(), request_id, service: service.map(str::to_owned) };
        let json = serde_json::to_string(&pending).map_err(idp_core::Error::from)?;
        self.pending.put(&key("saml-logout", &relay_state), json, PENDING).await?;
        Ok(Some(url))
    }

    /// What reached `/upstream/<id>/slo` (its raw query string): the IdP's
    /// answer to our logout request, or its own logout request. Both must
    /// be signed by the IdP.
    pub async fn single_logout(&self, id: &str, raw_query: &str) -> Result<Slo> {
        let sp = self.sp(id)?;
        let is_response = raw_query.split('&').any(|p| p.starts_with("SAMLResponse="));
        if is_response {
            return self.answered(&sp, id, raw_query).await;
        }
        let (logout, relay_state) = match sp.read_logout_request(raw_query, self.clock.now()) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(upstream = id, error = %e, "SAML logout request refused");
                return Ok(Slo::Refused);
            }
        };
        let keys: Vec<String> = if logout.session_indexes.is_empty() {
            vec![session_key(id, &logout.name_id, None)]
        } else {
            logout.session_indexes.iter().map(|i| session_key(id, &logout.name_id, Some(i))).collect()
        };
        let mut sessions = Vec::new();
        for k in keys {
            sessions.extend(self.pending.take(&k).await?);
        }
        Ok(Slo::Asked { sessions, request_id: logout.id, relay_state })
    }

    async fn answered(&self, sp: &ServiceProvider, id: &str, raw_query: &str) -> Result<Slo> {
        let (answer, relay_state) = match sp.read_logout_response(raw_query) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(upstream = id, error = %e, "SAML logout response refused");
                return Ok(Slo::Refused);
            }
        };
        let relay_state = relay_state.unwrap_or_default();
        let pending: Option<PendingLogout> = self.take("saml-logout", &relay_state).await?;
        let Some(pending) = pending.filter(|p| p.upstream == id && p.request_id == answer.in_response_to) else {
            tracing::warn!(upstream = id, "SAML logout response for no pending logout");
            return Ok(Slo::Refused);
        };
        if !answer.success {
            tracing::warn!(upstream = id, "the identity provider did not end its session");
        }
        Ok(Slo::Answered { service: pending.service })
    }

    /// Our signed answer to the IdP's logout request `request_id`: Success
    /// when a session `ended`. None when the IdP offers no single logout.
    pub fn logout_reply(
        &self,
        id: &str,
        request_id: &str,
        relay_state: Option<&str>,
        ended: bool,
    ) -> Result<Option<String>> {
        let sp = self.sp(id)?;
        sp.logout_response_url(request_id, relay_state, ended, self.clock.now()).map_err(config_error)
    }
}

/// What linking reads of an assertion: the NameID as the "user" and as the
/// attribute `NameID`, and every attribute by name.
pub fn identity(assertion: &Assertion) -> (String, BTreeMap<String, Vec<String>>) {
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, values) in &assertion.attributes {
        attributes.entry(name.clone()).or_default().extend(values.iter().cloned());
    }
    attributes.insert("NameID".to_owned(), vec![assertion.name_id.value.clone()]);
    (assertion.name_id.value.clone(), attributes)
}

fn session_key(upstream: &str, name_id: &str, session_index: Option<&str>) -> String {
    key("saml-session", &format!("{upstream}\n{name_id}\n{}", session_index.unwrap_or_default()))
}

fn key(prefix: &str, value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    format!("{prefix}:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
