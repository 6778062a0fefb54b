//! Logging in through an upstream identity provider: the redirect there,
//! the callback, the identity the upstream asserts, and the local account
//! it links to (or that is created for it).
//!
//! The pieces every kind shares live here: the pending login, linking and
//! `create_missing`. What is specific to a protocol is in its module
//! ([`cas`], [`oidc`], [`saml`]), reached through one `match` on the kind
//! in [`Upstreams::start`] and [`Upstreams::finish`] (a SAML response comes
//! back by POST to its own endpoint: [`Upstreams::finish_saml`]).
//!
//! A login that leaves for the upstream is remembered under a random
//! `state` (ephemeral store, 10 minutes, single use), carried in the
//! callback URL (CAS `service`) or the OpenID `state`; the callback takes
//! it back before anything else, so a replayed or forged callback finds
//! nothing. What the pipeline does with the linked account is in
//! [`crate::login`].

mod cas;
mod create;
mod oidc;
mod saml;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use idp_core::account::{Account, Login, Profile};
use idp_core::cgu::ResumeTarget;
use idp_core::clock::Clock;
use idp_core::ports::{AccountRepository, AuditLog, EphemeralStore, Outbound};
use idp_core::query::with_query;
use idp_core::secret::random_token;
use idp_core::upstream::{LinkTo, UpstreamConfig, UpstreamKind, account_matches};

use crate::Result;

pub use cas::parse_validation;
pub use saml::{SamlUpstreams, Slo};

/// How long the person may take at the upstream.
const PENDING: Duration = Duration::from_secs(600);

/// The configured upstreams and what they need.
pub struct Upstreams {
    configs: Vec<UpstreamConfig>,
    outbound: Arc<dyn Outbound>,
    /// Pending logins, and the OpenID ID tokens kept for the logout.
    pending: Arc<dyn EphemeralStore>,
    accounts: Arc<dyn AccountRepository>,
    audit: Arc<dyn AuditLog>,
    /// The server's public URL without a trailing `/` (callback URLs).
    public_base: String,
    /// The OpenID providers' discovery documents and keys.
    oidc: oidc::Providers,
    /// The SAML upstreams' service providers.
    saml: Option<Arc<SamlUpstreams>>,
}

/// The ports [`Upstreams`] works with.
pub struct UpstreamPorts {
    pub outbound: Arc<dyn Outbound>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub accounts: Arc<dyn AccountRepository>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

/// A login waiting at an upstream.
#[derive(Serialize, Deserialize)]
struct Pending {
    upstream: String,
    target: ResumeTarget,
    /// The account profile of the profile chosen on the login page (the
    /// profile of an account `create_missing` creates).
    #[serde(default)]
    profile: Option<Profile>,
    /// The OpenID `nonce` and PKCE verifier of this login.
    #[serde(default)]
    oidc: Option<oidc::PendingOidc>,
}

/// What the upstream sent to `/upstream/<id>/callback`: each kind reads
/// its own parameters.
#[derive(Debug, Default)]
pub struct Callback {
    /// Ours: the key of the pending login.
    pub state: String,
    /// CAS: the service ticket.
    pub ticket: Option<String>,
    /// OpenID Connect: the authorization code.
    pub code: Option<String>,
    /// OpenID Connect: the provider's `error` (`access_denied`, …).
    pub error: Option<String>,
}

/// An identity an upstream asserted, whatever its protocol.
#[derive(Debug, Default)]
struct Asserted {
    /// The CAS user, the OpenID subject.
    user: String,
    /// CAS attributes, OpenID claims (`sub` among them).
    attributes: BTreeMap<String, Vec<String>>,
    /// What the upstream logout needs: the OpenID ID token, or the SAML
    /// NameID and SessionIndex.
    id_token: Option<String>,
}

/// Where `/upstream/<id>/start` sends the browser.
#[derive(Debug)]
pub enum Started {
    /// To the upstream's login page.
    Redirect(String),
    /// The upstream did not answer (OpenID discovery), or cannot be used
    /// (SAML metadata past its `validUntil`).
    Unreachable,
}

/// What came back from the upstream.
#[derive(Debug)]
pub enum Returned {
    /// The identity links to this local account (found, or just created
    /// by `create_missing`); the login goes on to `target`. `id_token` (the
    /// OpenID ID token, or the SAML NameID and SessionIndex) is kept for
    /// the upstream logout.
    Linked { account: Box<Account>, target: ResumeTarget, id_token: Option<String> },
    /// No pending login under this `state` (unknown, spent or expired).
    UnknownState,
    /// The person cancelled at the upstream (OpenID `access_denied`).
    Cancelled,
    /// The upstream refused the login, or answered something unreadable or
    /// unverifiable (a bad ID token signature, issuer, audience, nonce).
    Refused,
    /// The upstream did not answer.
    Unreachable,
    /// No local account matches the identity.
    NoAccount,
}

impl Upstreams {
    pub fn new(configs: Vec<UpstreamConfig>, ports: UpstreamPorts, public_base: &str) -> Self {
        let oidc = oidc::Providers::new(ports.outbound.clone(), ports.clock);
        Self {
            configs,
            outbound: ports.outbound,
            pending: ports.ephemeral,
            accounts: ports.accounts,
            audit: ports.audit,
            public_base: public_base.trim_end_matches('/').to_owned(),
            oidc,
            saml: None,
        }
    }

    /// Adds the service providers of the SAML upstreams.
    pub fn with_saml(mut self, saml: Arc<SamlUpstreams>) -> Self {
        self.saml = Some(saml);
        self
    }

    /// The SAML upstreams, when some are configured.
    pub fn saml(&self) -> Result<&SamlUpstreams> {
        self.saml.as_deref().ok_or(crate::Error::UnknownUpstream)
    }

    /// The upstream `id`, if configured.
    pub fn get(&self, id: &str) -> Option<&UpstreamConfig> {
        self.configs.iter().find(|u| u.id == id)
    }

    /// Remembers a login for `target` (chosen with the account `profile`)
    /// and gives the upstream's login URL.
    pub async fn start(
        &self,
        upstream: &UpstreamConfig,
        target: ResumeTarget,
        profile: Option<Profile>,
    ) -> Result<Started> {
        let state = random_token(32)?;
        let renew = target.renew;
        let (url, oidc) = match upstream.kind {
            UpstreamKind::Cas => (cas::login_url(upstream, &self.callback(upstream, Some(&state)), renew)?, None),
            UpstreamKind::Oidc => {
                let redirect = self.callback(upstream, None);
                match self.oidc.authorize_url(upstream, &redirect, &state, renew).await? {
                    Some((url, pending)) => (url, Some(pending)),
                    None => return Ok(Started::Unreachable),
                }
            }
            UpstreamKind::Saml => {
                return Ok(match self.saml()?.start(&upstream.id, target, profile).await? {
                    Some(url) => Started::Redirect(url),
                    None => Started::Unreachable,
                });
            }
        };
        let pending = Pending { upstream: upstream.id.clone(), target, profile, oidc };
        let pending = serde_json::to_string(&pending).map_err(idp_core::Error::from)?;
        self.pending.put(&pending_key(&state), pending, PENDING).await?;
        Ok(Started::Redirect(url))
    }

    /// The callback of `upstream`: the pending login, the identity the
    /// upstream asserts, the local account it links to.
    pub async fn finish(&self, upstream: &UpstreamConfig, callback: &Callback) -> Result<Returned> {
        let Some(pending) = self.take_pending(&callback.state).await? else { return Ok(Returned::UnknownState) };
        if pending.upstream != upstream.id {
            return Ok(Returned::UnknownState);
        }
        let checked = match (upstream.kind, &pending.oidc) {
            (UpstreamKind::Cas, _) => {
                let service = self.callback(upstream, Some(&callback.state));
                cas::validate(self.outbound.as_ref(), upstream, &service, callback).await
            }
            (UpstreamKind::Oidc, Some(oidc)) => {
                let redirect = self.callback(upstream, None);
                self.oidc.finish(upstream, &redirect, callback, oidc).await?
            }
            _ => Err(Returned::Refused),
        };
        match checked {
            Ok(asserted) => self.linked(upstream, asserted, pending.target, pending.profile).await,
            Err(failure) => Ok(failure),
        }
    }

    /// The response posted to `/upstream/<id>/acs` of a SAML upstream with
    /// its `RelayState`.
    pub async fn finish_saml(&self, upstream: &UpstreamConfig, relay_state: &str, response: &str) -> Result<Returned> {
        let (assertion, target, profile) = match self.saml()?.finish(&upstream.id, relay_state, response).await? {
            saml::Answer::Yes { assertion, target, profile } => (assertion, target, profile),
            saml::Answer::UnknownState => return Ok(Returned::UnknownState),
            saml::Answer::Refused => return Ok(Returned::Refused),
        };
        let (user, attributes) = saml::identity(&assertion);
        let id_token = saml::logout_data(&assertion);
        self.linked(upstream, Asserted { user, attributes, id_token }, target, profile).await
    }

    /// The account `asserted` links to, or the one `create_missing` makes.
    async fn linked(
        &self,
        upstream: &UpstreamConfig,
        asserted: Asserted,
        target: ResumeTarget,
        profile: Option<Profile>,
    ) -> Result<Returned> {
        let account = match self.link(upstream, &asserted).await? {
            Some(account) => account,
            None if upstream.create_missing => match self.create(upstream, &asserted, profile).await? {
                Some(account) => account,
                None => return Ok(Returned::NoAccount),
            },
            None => return Ok(Returned::NoAccount),
        };
        Ok(Returned::Linked { account: Box::new(account), target, id_token: asserted.id_token })
    }

    async fn take_pending(&self, state: &str) -> Result<Option<Pending>> {
        if state.is_empty() || state.len() > 64 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let Some(json) = self.pending.take(&pending_key(state)).await? else { return Ok(None) };
        Ok(serde_json::from_str(&json).ok())
    }

    /// The local account the asserted identity links to: exactly one, or
    /// none (several candidates is no match: the help desk must fix the
    /// directory rather than let someone into another's account).
    async fn link(&self, upstream: &UpstreamConfig, asserted: &Asserted) -> Result<Option<Account>> {
        let link = LinkTo::parse(&upstream.link_to);
        let mut found: Vec<Account> = Vec::new();
        for value in upstream.asserted(&asserted.user, &asserted.attributes) {
            let candidates = match &link {
                LinkTo::Login => match Login::parse(value) {
                    Ok(login) => self.accounts.find_by_login(&login).await?.into_iter().collect(),
                    Err(_) => Vec::new(),
                },
                _ => self.accounts.find_candidates(value).await?,
            };
            for account in candidates.into_iter().filter(|a| account_matches(a, &link, value)) {
                if !found.iter().any(|f| f.id == account.id) {
                    found.push(account);
                }
            }
        }
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    /// Keeps the ID token of an OpenID login for the `id_token_hint` of the
    /// upstream logout, under its session (`owner` is the session id), or
    /// under the pending charter acceptance (`owner` is its token) until
    /// the session opens: beside the session, not in it, so that sessions
    /// stay small.
    pub async fn keep_id_token(&self, owner: &str, id_token: String, ttl: Duration) -> Result<()> {
        Ok(self.pending.put(&id_token_key(owner), id_token, ttl).await?)
    }

    /// Moves the ID token kept under the charter acceptance `token` to the
    /// session `session` of `upstream` that acceptance opened.
    pub async fn id_token_to_session(&self, upstream: &str, token: &str, session: &str, ttl: Duration) -> Result<()> {
        if let Some(id_token) = self.pending.take(&id_token_key(token)).await? {
            self.keep_id_token(session, id_token, ttl).await?;
            self.session_opened(upstream, session, ttl).await?;
        }
        Ok(())
    }

    /// The session `session` opened through `upstream`, its logout data
    /// kept: a SAML upstream's logout request must find it by NameID.
    pub async fn session_opened(&self, upstream: &str, session: &str, ttl: Duration) -> Result<()> {
        let Some(saml) =
            self.saml.as_ref().filter(|_| self.get(upstream).is_some_and(|u| u.kind == UpstreamKind::Saml))
        else {
            return Ok(());
        };
        match self.pending.get(&id_token_key(session)).await? {
            Some(data) => saml.index_session(upstream, &data, session, ttl).await,
            None => Ok(()),
        }
    }

    /// The upstream's logout for the ended session `session`, coming back
    /// to `/upstream/<id>/deconnexion` (with the `service` to go on to, if
    /// any; a SAML upstream comes back to `/upstream/<id>/slo`, the
    /// `service` bound to its `RelayState`). None when the upstream has no
    /// logout to send the browser to.
    pub async fn logout_url(
        &self,
        upstream: &UpstreamConfig,
        session: &str,
        service: Option<&str>,
    ) -> Result<Option<String>> {
        let back = format!("{}/upstream/{}/deconnexion", self.public_base, upstream.id);
        let back = match service {
            Some(s) => with_query(&back, &[("service", s)]),
            None => back,
        };
        match upstream.kind {
            UpstreamKind::Cas => Ok(Some(cas::logout_url(upstream, &back)?)),
            UpstreamKind::Oidc => {
                let id_token = self.pending.take(&id_token_key(session)).await?;
                Ok(self.oidc.logout_url(upstream, id_token.as_deref(), &back).await)
            }
            UpstreamKind::Saml => match self.pending.take(&id_token_key(session)).await? {
                Some(data) => self.saml()?.logout_url(&upstream.id, &data, service).await,
                None => Ok(None),
            },
        }
    }

    /// `/upstream/<id>/callback`, with the CAS kind's `state` in it (the
    /// OpenID kind carries `state` as its own parameter: its redirect URI
    /// is registered without a query).
    fn callback(&self, upstream: &UpstreamConfig, state: Option<&str>) -> String {
        let base = format!("{}/upstream/{}/callback", self.public_base, upstream.id);
        match state {
            Some(state) => with_query(&base, &[("state", state)]),
            None => base,
        }
    }
}

/// Whether `upstream` answers (`idp upstream list`): its CAS login page,
/// its OpenID discovery document. The words say how.
pub async fn probe(
    upstream: &UpstreamConfig,
    outbound: Arc<dyn Outbound>,
    clock: Arc<dyn Clock>,
) -> std::result::Result<String, String> {
    match upstream.kind {
        UpstreamKind::Cas => cas::probe(outbound.as_ref(), upstream).await,
        UpstreamKind::Oidc => oidc::Providers::new(outbound, clock).probe(upstream).await,
        UpstreamKind::Saml => probe_saml(outbound.as_ref(), upstream).await,
    }
}

/// A SAML upstream's metadata URL answers; a metadata file was read at
/// start (the server does not start without it).
async fn probe_saml(outbound: &dyn Outbound, upstream: &UpstreamConfig) -> std::result::Result<String, String> {
    let source = upstream.idp_metadata.as_deref().unwrap_or_default();
    if !source.contains("://") {
        return Ok("metadata file (read at start)".to_owned());
    }
    match outbound.get_text(source).await {
        Ok((200, _)) => Ok("answers (metadata)".to_owned()),
        Ok((status, _)) => Err(format!("fails (metadata: HTTP {status})")),
        Err(_) => Err("does not answer (metadata)".to_owned()),
    }
}

fn pending_key(state: &str) -> String {
    format!("upstream:{}", sha256_hex(state))
}

fn id_token_key(session: &str) -> String {
    format!("upstream-idt:{}", sha256_hex(session))
}

fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
