//! RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel
//! logout (OIDC Back-Channel Logout 1.0).
//!
//! Both go through [`crate::cas::Cas::end_session`]: the CAS single logout
//! runs there, then [`BackChannelLogout`] (a session end hook) revokes the
//! session-bound grants and POSTs a logout token to each client of the
//! session that declared a back-channel logout URI.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

use idp_core::clock::Clock;
use idp_core::oidc::{ClientId, ClientRegistry, OidcStore, SessionEndHook};
use idp_core::ports::Outbound;
use idp_core::secret::random_token;
use idp_core::session::{Participant, SessionService, SsoSession};

use super::keys::Keys;
use super::token::into_map;
use super::{Oidc, session_sid};

/// The event of a logout token.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Parameters of the end session endpoint.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EndSessionParams {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
}

/// What the end session endpoint does after ending the session.
#[derive(Debug, PartialEq, Eq)]
pub enum EndSessionNext {
    /// Back to the client's registered post-logout URI.
    Redirect(String),
    /// Show the "logged out" page.
    LoggedOut,
    /// The request names an unknown client or an unregistered URI: nothing
    /// was ended, the person sees an error page.
    Refuse,
}

impl Oidc {
    /// RP-initiated logout from a browser whose TGC cookie is `tgc`.
    pub async fn end_session_request(&self, p: &EndSessionParams, tgc: Option<&str>) -> crate::Result<EndSessionNext> {
        let hinted = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            // An expired ID token is still a good hint: only the signature
            // and the issuer are checked.
            Some(hint) => match self.keys.verify(hint).await? {
                Some((_, claims)) if claims.get("iss").and_then(Value::as_str) == Some(&self.issuer) => {
                    match claims.get("aud") {
                        Some(Value::String(a)) => Some(a.clone()),
                        Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
                        _ => None,
                    }
                }
                _ => return Ok(EndSessionNext::Refuse),
            },
            None => None,
        };
        let client_id = match (hinted, p.client_id.clone().filter(|c| !c.is_empty())) {
            (Some(a), Some(b)) if a != b => return Ok(EndSessionNext::Refuse),
            (a, b) => a.or(b),
        };
        let mut next = EndSessionNext::LoggedOut;
        if let Some(uri) = p.post_logout_redirect_uri.as_deref().filter(|u| !u.is_empty()) {
            let client = match client_id.as_deref().map(ClientId::parse) {
                Some(Ok(id)) => self.clients.get(&id).await?,
                _ => None,
            };
            let Some(client) = client.filter(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri)) else {
                return Ok(EndSessionNext::Refuse);
            };
            let target = match &p.state {
                Some(state) => idp_core::query::with_query(uri, &[("state", state)]),
                None => uri.to_owned(),
            };
            tracing::debug!(client = %client.id, "RP-initiated logout");
            next = EndSessionNext::Redirect(target);
        }
        if let Some(id) = tgc {
            self.cas.end_session(id).await?;
        }
        Ok(next)
    }
}

/// The OIDC side of a session end.
pub struct BackChannelLogout {
    pub clients: Arc<dyn ClientRegistry>,
    /// Where the clients' subjects are kept (`sub` of the logout token).
    pub pseudonyms: Arc<dyn idp_core::pseudonym::PseudonymStore>,
    pub store: Arc<dyn OidcStore>,
    pub keys: Arc<Keys>,
    pub outbound: Arc<dyn Outbound>,
    pub clock: Arc<dyn Clock>,
    pub issuer: String,
}

#[async_trait]
impl SessionEndHook for BackChannelLogout {
    async fn session_ended(&self, session: &SsoSession, services: &[SessionService]) -> idp_core::Result<()> {
        let mut clients = BTreeSet::new();
        for entry in services {
            let Participant::OidcClient { client_id, grant } = entry.participant() else { continue };
            clients.insert(client_id.to_owned());
            // Tokens bound to the session end with it; offline_access ones
            // outlive it, as asked.
            if !grant.is_empty()
                && let Some(grant) = self.store.get_grant(grant).await?
                && !grant.offline
            {
                self.store.remove_grant(&grant.id).await?;
            }
        }
        let now = self.clock.now();
        for id in clients {
            let Ok(id) = ClientId::parse(&id) else { continue };
            let Some(client) = self.clients.get(&id).await? else { continue };
            let Some(uri) = client.backchannel_logout_uri.clone() else { continue };
            let sub = super::claims::subject(self.pseudonyms.as_ref(), &client, session.account_id).await?;
            let claims = json!({
                "iss": self.issuer, "sub": sub, "aud": client.id.as_str(),
                "iat": now.timestamp(), "exp": (now + chrono::Duration::minutes(2)).timestamp(),
                "jti": random_token(32)?, "sid": session_sid(session.id.expose()),
                "events": { BACKCHANNEL_EVENT: {} },
            });
            let token = self.keys.sign("RS256", "logout+jwt", into_map(claims)).await?;
            self.outbound.post_form_in_background(uri, vec![("logout_token".to_owned(), token)]);
        }
        Ok(())
    }
}
