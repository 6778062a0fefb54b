//! Logging in through an upstream identity provider (the académie's CAS
//! server): the redirect there, the callback with its ticket, the
//! validation at the upstream, and the local account the identity links to.
//!
//! A login that leaves for the upstream is remembered under a random
//! `state` (ephemeral store, 10 minutes, single use), carried in the
//! callback URL given to the upstream as its `service`; the callback takes
//! it back before anything else, so a replayed or forged callback finds
//! nothing. What the pipeline does with the linked account is in
//! [`crate::login`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use idp_core::account::{Account, Login};
use idp_core::cgu::ResumeTarget;
use idp_core::ports::{AccountRepository, EphemeralStore, Outbound};
use idp_core::query::with_query;
use idp_core::secret::random_token;
use idp_core::upstream::{LinkTo, UpstreamConfig, UpstreamKind, account_matches};

use crate::Result;
use crate::upstream_saml::{Asserted, SamlUpstreams, identity};

/// How long the person may take at the upstream.
const PENDING: Duration = Duration::from_secs(600);

/// The configured upstreams and what they need.
pub struct Upstreams {
    configs: Vec<UpstreamConfig>,
    outbound: Arc<dyn Outbound>,
    pending: Arc<dyn EphemeralStore>,
    accounts: Arc<dyn AccountRepository>,
    /// The server's public URL without a trailing `/` (callback URLs).
    public_base: String,
    /// The SAML upstreams' service providers.
    saml: Option<SamlUpstreams>,
}

/// A login waiting at an upstream.
#[derive(Serialize, Deserialize)]
struct Pending {
    upstream: String,
    target: ResumeTarget,
}

/// What came back from the upstream.
#[derive(Debug)]
pub enum Returned {
    /// The identity links to this local account; the login goes on to
    /// `target`.
    Linked { account: Box<Account>, target: ResumeTarget },
    /// No pending login under this `state` (unknown, spent or expired).
    UnknownState,
    /// The upstream refused the ticket, or answered something unreadable.
    Refused,
    /// The upstream did not answer.
    Unreachable,
    /// No local account matches the identity.
    NoAccount,
}

impl Upstreams {
    pub fn new(
        configs: Vec<UpstreamConfig>,
        outbound: Arc<dyn Outbound>,
        pending: Arc<dyn EphemeralStore>,
        accounts: Arc<dyn AccountRepository>,
        public_base: &str,
    ) -> Self {
        let public_base = public_base.trim_end_matches('/').to_owned();
        Self { configs, outbound, pending, accounts, public_base, saml: None }
    }

    /// Adds the service providers of the SAML upstreams.
    pub fn with_saml(mut self, saml: SamlUpstreams) -> Self {
        self.saml = Some(saml);
        self
    }

    /// The SAML upstreams, when some are configured.
    pub fn saml(&self) -> Result<&SamlUpstreams> {
        self.saml.as_ref().ok_or(crate::Error::UnknownUpstream)
    }

    /// The response posted to `/upstream/<id>/acs` of a SAML upstream.
    pub async fn finish_saml(&self, upstream: &UpstreamConfig, relay_state: &str, response: &str) -> Result<Returned> {
        let (assertion, target) = match self.saml()?.finish(&upstream.id, relay_state, response).await? {
            Asserted::Yes { assertion, target } => (assertion, target),
            Asserted::UnknownState => return Ok(Returned::UnknownState),
            Asserted::Refused => return Ok(Returned::Refused),
        };
        let (user, attributes) = identity(&assertion);
        Ok(match self.link(upstream, &user, &attributes).await? {
            Some(account) => Returned::Linked { account: Box::new(account), target },
            None => Returned::NoAccount,
        })
    }

    /// The upstream `id`, if configured.
    pub fn get(&self, id: &str) -> Option<&UpstreamConfig> {
        self.configs.iter().find(|u| u.id == id)
    }

    /// Remembers a login for `target` and gives the upstream's login URL.
    pub async fn start(&self, upstream: &UpstreamConfig, target: ResumeTarget) -> Result<String> {
        if upstream.kind == UpstreamKind::Saml {
            return self.saml()?.start(&upstream.id, target).await;
        }
        let state = random_token(32)?;
        let renew = target.renew;
        let pending =
            serde_json::to_string(&Pending { upstream: upstream.id.clone(), target }).map_err(idp_core::Error::from)?;
        self.pending.put(&pending_key(&state), pending, PENDING).await?;
        let base = upstream.cas_base()?;
        let callback = self.callback(upstream, &state);
        let mut pairs = vec![("service", callback.as_str())];
        if renew {
            pairs.push(("renew", "true"));
        }
        Ok(with_query(&format!("{base}/login"), &pairs))
    }

    /// The callback of `upstream` with `state` and the upstream's `ticket`.
    pub async fn finish(&self, upstream: &UpstreamConfig, state: &str, ticket: &str) -> Result<Returned> {
        let Some(pending) = self.take_pending(state).await? else { return Ok(Returned::UnknownState) };
        if pending.upstream != upstream.id {
            return Ok(Returned::UnknownState);
        }
        let base = upstream.cas_base()?;
        let url = with_query(
            &format!("{base}/p3/serviceValidate"),
            &[("service", &self.callback(upstream, state)), ("ticket", ticket)],
        );
        let body = match self.outbound.get_text(&url).await {
            Ok((200, body)) => body,
            Ok(_) => return Ok(Returned::Refused),
            Err(_) => return Ok(Returned::Unreachable),
        };
        let Some((user, attributes)) = parse_validation(&body) else { return Ok(Returned::Refused) };
        Ok(match self.link(upstream, &user, &attributes).await? {
            Some(account) => Returned::Linked { account: Box::new(account), target: pending.target },
            None => Returned::NoAccount,
        })
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
    async fn link(
        &self,
        upstream: &UpstreamConfig,
        user: &str,
        attributes: &BTreeMap<String, Vec<String>>,
    ) -> Result<Option<Account>> {
        let link = LinkTo::parse(&upstream.link_to);
        let mut found: Vec<Account> = Vec::new();
        for asserted in upstream.asserted(user, attributes) {
            let candidates = match &link {
                LinkTo::Login => match Login::parse(asserted) {
                    Ok(login) => self.accounts.find_by_login(&login).await?.into_iter().collect(),
                    Err(_) => Vec::new(),
                },
                _ => self.accounts.find_candidates(asserted).await?,
            };
            for account in candidates.into_iter().filter(|a| account_matches(a, &link, asserted)) {
                if !found.iter().any(|f| f.id == account.id) {
                    found.push(account);
                }
            }
        }
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    /// The upstream's logout, coming back to `/upstream/<id>/deconnexion`
    /// (with the `service` to go on to, if any).
    pub fn logout_url(&self, upstream: &UpstreamConfig, service: Option<&str>) -> Result<String> {
        let back = format!("{}/upstream/{}/deconnexion", self.public_base, upstream.id);
        let back = match service {
            Some(s) => with_query(&back, &[("service", s)]),
            None => back,
        };
        Ok(with_query(&format!("{}/logout", upstream.cas_base()?), &[("service", &back)]))
    }

    fn callback(&self, upstream: &UpstreamConfig, state: &str) -> String {
        with_query(&format!("{}/upstream/{}/callback", self.public_base, upstream.id), &[("state", state)])
    }
}

fn pending_key(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    format!("upstream:{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The user and attributes of a CAS 2/3 validation success, or None.
pub fn parse_validation(xml: &str) -> Option<(String, BTreeMap<String, Vec<String>>)> {
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut user = None;
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => path.push(e.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.unescape().ok()?.trim().to_owned();
                let names: Vec<&[u8]> = path.iter().map(Vec::as_slice).collect();
                match names.as_slice() {
                    [.., b"authenticationSuccess", b"user"] if !text.is_empty() => user = Some(text),
                    [.., b"authenticationSuccess", b"attributes", name] => {
                        let name = String::from_utf8_lossy(name).into_owned();
                        attributes.entry(name).or_default().push(text);
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Err(_) => return None,
            Ok(_) => {}
        }
    }
    user.map(|u| (u, attributes))
}

#[cfg(test)]
mod tests {
    use super::parse_validation;

    #[test]
    fn a_validation_success_gives_the_user_and_its_attributes() {
        let xml = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>
            <cas:user>jdupont</cas:user><cas:attributes><cas:mail>j@ac.fr</cas:mail>
            <cas:FrEduCtRefId>1234</cas:FrEduCtRefId><cas:FrEduCtRefId>99</cas:FrEduCtRefId>
            </cas:attributes></cas:authenticationSuccess></cas:serviceResponse>"#;
        let (user, attributes) = parse_validation(xml).unwrap();
        assert_eq!(user, "jdupont");
        assert_eq!(attributes["FrEduCtRefId"], ["1234", "99"]);
        assert_eq!(attributes["mail"], ["j@ac.fr"]);
        let failure = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">no</cas:authenticationFailure></cas:serviceResponse>"#;
        assert!(parse_validation(failure).is_none());
        assert!(parse_validation("pas du XML <<").is_none());
        assert!(parse_validation("<a><cas:user>x</cas:user></a>").is_none());
    }
}
