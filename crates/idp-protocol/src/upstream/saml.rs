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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use idp_core::account::Profile;
use idp_core::cgu::ResumeTarget;
use idp_core::clock::Clock;
use idp_core::ports::EphemeralStore;
use idp_core::secret::random_token;
use idp_saml::response::Assertion;
use idp_saml::sp::ServiceProvider;

use crate::{Error, Result};

/// How long the person may take at the identity provider.
const PENDING: Duration = Duration::from_secs(600);

/// The SAML service providers, one per `kind = "saml"` upstream.
pub struct SamlUpstreams {
    sps: BTreeMap<String, ServiceProvider>,
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
        Self { sps, pending, clock }
    }

    /// Our metadata for upstream `id`.
    pub fn metadata(&self, id: &str) -> Result<String> {
        self.sps.get(id).ok_or(Error::UnknownUpstream)?.metadata_xml().map_err(config_error)
    }

    /// Remembers a login for `target` and gives the identity provider's URL.
    pub async fn start(&self, id: &str, target: ResumeTarget, profile: Option<Profile>) -> Result<String> {
        let sp = self.sps.get(id).ok_or(Error::UnknownUpstream)?;
        let relay_state = random_token(32)?;
        let request_id = idp_saml::new_id().map_err(config_error)?;
        let url = sp.login_url(&request_id, &relay_state, self.clock.now()).map_err(config_error)?;
        let pending = Pending { upstream: id.to_owned(), request_id, target, profile };
        let json = serde_json::to_string(&pending).map_err(idp_core::Error::from)?;
        self.pending.put(&key("saml-relay", &relay_state), json, PENDING).await?;
        Ok(url)
    }

    /// The form posted to `/upstream/<id>/acs`.
    pub async fn finish(&self, id: &str, relay_state: &str, saml_response: &str) -> Result<Answer> {
        let sp = self.sps.get(id).ok_or(Error::UnknownUpstream)?;
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
        let seen = key("saml-assertion", &format!("{}\n{}", assertion.issuer, assertion.id));
        if self.pending.get(&seen).await?.is_some() {
            tracing::warn!(upstream = id, "SAML assertion replayed");
            return Ok(Answer::Refused);
        }
        let ttl = (assertion.expires - now).to_std().unwrap_or_default() + Duration::from_secs(180);
        self.pending.put(&seen, String::new(), ttl).await?;
        Ok(Answer::Yes { assertion: Box::new(assertion), target: pending.target, profile: pending.profile })
    }

    async fn take_pending(&self, relay_state: &str) -> Result<Option<Pending>> {
        if relay_state.is_empty() || relay_state.len() > 64 || !relay_state.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let Some(json) = self.pending.take(&key("saml-relay", relay_state)).await? else { return Ok(None) };
        Ok(serde_json::from_str(&json).ok())
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

fn key(prefix: &str, value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    format!("{prefix}:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}
