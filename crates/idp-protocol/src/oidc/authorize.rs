//! The authorization endpoint (OIDC Core §3.1.2, RFC 7636): checks the
//! request, reuses the CAS SSO session, asks for a login when needed, and
//! issues a single-use code.
//!
//! Order of the checks: an unknown client or a redirect URI that is not
//! registered byte for byte is shown to the person (never redirected to);
//! every later error goes back to the client's redirect URI with `error=`.
//!
//! The consent page is shown only after the login checks (`prompt=login`,
//! `max_age`, `login_hint`) passed, and an answer counts only for the
//! pending consent the page was made for: a record under a random id, bound
//! to the session and to the request, kept a few minutes in the ephemeral
//! store and spent by the answer. So posting an answer cannot stand in for
//! the login a request asked for.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use idp_core::account::Account;
use idp_core::oidc::{AuthorizationCode, ClientId, OFFLINE_ACCESS, OidcClient};
use idp_core::query::with_query;
use idp_core::secret::random_token;
use idp_core::session::{SessionService, SsoSession, TicketId};

use super::internal::{AUTHORIZE_PATH, INTERNAL_SERVICE_ID};
use super::{ErrorCode, Oidc, split_scopes};

/// The parameters of an authorization request, as received.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub response_mode: Option<String>,
    /// Set by CAS when it sends the browser back after a login.
    #[serde(skip_serializing)]
    pub ticket: Option<String>,
}

impl AuthorizeParams {
    /// The request as a query string, without `ticket`.
    pub fn to_query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        let fields = [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("prompt", &self.prompt),
            ("max_age", &self.max_age),
            ("login_hint", &self.login_hint),
            ("response_mode", &self.response_mode),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                q.append_pair(name, v);
            }
        }
        q.finish()
    }
}

/// Why the request cannot go back to the client: shown to the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No `client_id`, or not a registered client.
    UnknownClient,
    /// No `redirect_uri`, or not one registered for the client.
    UnregisteredRedirectUri,
    /// A consent answer for no pending consent of this session and request
    /// (expired, already answered, or never shown).
    ConsentExpired,
}

/// How long a consent page may wait for its answer.
pub const PENDING_CONSENT_SECONDS: u64 = 600;

/// What the endpoint does next.
#[derive(Debug)]
pub enum Next {
    /// Send the browser to this URL (the client, with a code or an error).
    Redirect(String),
    /// Send the browser to the CAS login (`renew` forces the credentials).
    Login { url: String },
    /// Ask the person's consent (client flag `require_consent`); the page
    /// posts `consent_id` back with the answer.
    Consent { client: Box<OidcClient>, scopes: Vec<String>, account: Box<Account>, consent_id: String },
    /// Cannot go back to the client.
    Refuse(Refusal),
}

/// A consent answer posted from the consent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentAnswer {
    Accept,
    Deny,
}

/// The answer of a consent page and the id of the pending consent it
/// answers.
#[derive(Clone, Debug)]
pub struct ConsentReply {
    pub answer: ConsentAnswer,
    pub consent_id: String,
}

/// What the server remembers of a consent page it showed.
#[derive(Serialize, Deserialize)]
struct PendingConsent {
    session_id: TicketId,
    /// The authorization request, as [`AuthorizeParams::to_query`].
    request: String,
}

fn pending_key(id: &str) -> String {
    format!("oidc-consent:{id}")
}

/// A checked request.
struct Checked {
    client: OidcClient,
    redirect_uri: String,
    scopes: Vec<String>,
    prompts: Vec<String>,
    max_age: Option<i64>,
}

fn error_redirect(redirect_uri: &str, state: Option<&str>, issuer: &str, code: ErrorCode, why: &str) -> Next {
    let mut pairs = vec![("error", code.as_str()), ("error_description", why)];
    pairs.extend(state.map(|s| ("state", s)));
    pairs.push(("iss", issuer));
    Next::Redirect(with_query(redirect_uri, &pairs))
}

impl Oidc {
    /// Handles an authorization request from a browser whose TGC cookie is
    /// `tgc`. `consent` is the answer of the consent page, if any.
    pub async fn authorize(
        &self,
        p: &AuthorizeParams,
        tgc: Option<&str>,
        consent: Option<ConsentReply>,
    ) -> crate::Result<Next> {
        let client = match p.client_id.as_deref().map(ClientId::parse) {
            Some(Ok(id)) => self.clients.get(&id).await?,
            _ => None,
        };
        let Some(client) = client else { return Ok(Next::Refuse(Refusal::UnknownClient)) };
        let Some(redirect_uri) = p.redirect_uri.clone().filter(|r| client.redirect_uris.contains(r)) else {
            return Ok(Next::Refuse(Refusal::UnregisteredRedirectUri));
        };
        let state = p.state.as_deref();
        let mut checked = match self.check(p, client, redirect_uri.clone()) {
            Ok(c) => c,
            Err((code, why)) => return Ok(error_redirect(&redirect_uri, state, &self.issuer, code, why)),
        };
        let fail = |code, why: &str| Ok(error_redirect(&redirect_uri, state, &self.issuer, code, why));
        let prompt_none = checked.prompts.iter().any(|p| p == "none");
        // The ticket CAS appended after a login tells that the person has
        // just typed their credentials; it is spent here.
        let session = self.cas.current_session(tgc).await?;
        let Some((session, account)) = session else {
            if prompt_none {
                return fail(ErrorCode::LoginRequired, "no session");
            }
            return Ok(self.login_redirect(p, false));
        };
        // A charter published since the login: the CAS login page asks for
        // it on the same session, then comes back here.
        if idp_core::cgu::must_accept(&account, &self.cgu_version) {
            if prompt_none {
                return fail(ErrorCode::InteractionRequired, "the terms of use must be accepted");
            }
            return Ok(self.login_redirect(p, false));
        }
        // An answer stands for the login checks only when it answers a page
        // shown after them, in this session, for this very request.
        let answer = match consent {
            Some(reply) => match self.take_pending_consent(&reply.consent_id, &session, p).await? {
                true => Some(reply.answer),
                false => return Ok(Next::Refuse(Refusal::ConsentExpired)),
            },
            None => None,
        };
        let fresh = self.fresh_login(p.ticket.as_deref(), &session).await?;
        let now = self.cas.clock.now();
        let too_old = checked.max_age.is_some_and(|m| (now - session.authenticated_at).num_seconds() > m);
        let other_user = p
            .login_hint
            .as_deref()
            .is_some_and(|h| !h.trim().is_empty() && !h.trim().eq_ignore_ascii_case(&session.login));
        let wants_login = checked.prompts.iter().any(|p| p == "login");
        if answer.is_none() && !fresh && (wants_login || too_old || other_user) {
            if prompt_none {
                return fail(ErrorCode::LoginRequired, "a new login is required");
            }
            return Ok(self.login_redirect(p, true));
        }
        // Tokens that outlive the session need the person's consent (OIDC
        // Core §11), even from a client that does not otherwise ask for it.
        let offline = checked.scopes.iter().any(|s| s == OFFLINE_ACCESS);
        if checked.client.require_consent || offline {
            match answer {
                Some(ConsentAnswer::Deny) => return fail(ErrorCode::AccessDenied, "the person refused"),
                Some(ConsentAnswer::Accept) => {
                    let ttl = seconds(self.lifetimes.consent_seconds);
                    self.store.put_consent(account.id, checked.client.id.as_str(), &checked.scopes, ttl).await?;
                }
                None => {
                    let given = self.store.get_consent(account.id, checked.client.id.as_str()).await?;
                    let covered = given.is_some_and(|g| checked.scopes.iter().all(|s| g.contains(s)));
                    let asked = checked.prompts.iter().any(|p| p == "consent");
                    if (!covered || asked) && prompt_none && !checked.client.require_consent {
                        // No consent can be asked: offline_access is ignored.
                        checked.scopes.retain(|s| s != OFFLINE_ACCESS);
                    } else if !covered || asked {
                        if prompt_none {
                            return fail(ErrorCode::ConsentRequired, "consent is required");
                        }
                        let consent_id = self.put_pending_consent(&session, p).await?;
                        return Ok(Next::Consent {
                            client: Box::new(checked.client),
                            scopes: checked.scopes,
                            account: Box::new(account),
                            consent_id,
                        });
                    }
                }
            }
        }
        let code = self.issue_code(p, &checked, &session).await?;
        let mut pairs = vec![("code", code.as_str())];
        pairs.extend(state.map(|s| ("state", s)));
        pairs.push(("iss", &self.issuer));
        Ok(Next::Redirect(with_query(&redirect_uri, &pairs)))
    }

    fn check(
        &self,
        p: &AuthorizeParams,
        client: OidcClient,
        redirect_uri: String,
    ) -> Result<Checked, (ErrorCode, &'static str)> {
        match p.response_type.as_deref() {
            Some("code") => {}
            None => return Err((ErrorCode::InvalidRequest, "response_type is required")),
            Some(_) => return Err((ErrorCode::UnsupportedResponseType, "only response_type=code is supported")),
        }
        if p.response_mode.as_deref().is_some_and(|m| m != "query") {
            return Err((ErrorCode::InvalidRequest, "only response_mode=query is supported"));
        }
        let mut scopes = split_scopes(p.scope.as_deref().unwrap_or(""));
        // A client not registered with offline_access does not get it, and
        // the request goes on without it (OIDC Core §11: ignored).
        scopes.retain(|s| s != OFFLINE_ACCESS || client.scopes.iter().any(|c| c == OFFLINE_ACCESS));
        if scopes.is_empty() {
            return Err((ErrorCode::InvalidScope, "scope is required"));
        }
        if scopes.iter().any(|s| !client.scopes.contains(s)) {
            return Err((ErrorCode::InvalidScope, "a requested scope is not allowed for this client"));
        }
        if scopes.iter().any(|s| !idp_core::oidc::KNOWN_SCOPES.contains(&s.as_str())) {
            return Err((ErrorCode::InvalidScope, "unknown scope"));
        }
        match (p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
            (Some(c), Some("S256")) if (43..=128).contains(&c.len()) => {}
            (Some(_), Some("S256")) => return Err((ErrorCode::InvalidRequest, "code_challenge has a wrong length")),
            (Some(_), _) => return Err((ErrorCode::InvalidRequest, "code_challenge_method must be S256")),
            (None, Some(_)) => return Err((ErrorCode::InvalidRequest, "code_challenge is missing")),
            (None, None) if client.is_public() => {
                return Err((ErrorCode::InvalidRequest, "PKCE (S256) is required for public clients"));
            }
            (None, None) => {}
        }
        let prompts = split_scopes(p.prompt.as_deref().unwrap_or(""));
        if prompts.iter().any(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account")) {
            return Err((ErrorCode::InvalidRequest, "unknown prompt value"));
        }
        if prompts.len() > 1 && prompts.iter().any(|p| p == "none") {
            return Err((ErrorCode::InvalidRequest, "prompt=none cannot be combined"));
        }
        let max_age = match p.max_age.as_deref() {
            None | Some("") => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return Err((ErrorCode::InvalidRequest, "max_age must be a number of seconds")),
            },
        };
        Ok(Checked { client, redirect_uri, scopes, prompts, max_age })
    }

    /// The CAS login URL that comes back to this authorization request.
    fn login_redirect(&self, p: &AuthorizeParams, renew: bool) -> Next {
        let back = format!("{}{AUTHORIZE_PATH}?{}", self.issuer, p.to_query());
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("service", &back);
        if renew {
            q.append_pair("renew", "true");
        }
        // The login page pre-fills the identifiant with a valid login_hint.
        if let Some(hint) = p.login_hint.as_deref().and_then(|h| idp_core::account::Login::parse(h).ok()) {
            q.append_pair("username", hint.as_str());
        }
        Next::Login { url: format!("/cas/login?{}", q.finish()) }
    }

    /// Remembers a consent page shown in `session` for the request `p`;
    /// returns the id the page posts back.
    async fn put_pending_consent(&self, session: &SsoSession, p: &AuthorizeParams) -> crate::Result<String> {
        let id = random_token(32)?;
        let pending = PendingConsent { session_id: session.id.clone(), request: p.to_query() };
        let value = serde_json::to_string(&pending).map_err(idp_core::Error::from)?;
        self.pending.put(&pending_key(&id), value, Duration::from_secs(PENDING_CONSENT_SECONDS)).await?;
        Ok(id)
    }

    /// Spends the pending consent `id`; whether it was shown in `session`
    /// for the request `p`.
    async fn take_pending_consent(&self, id: &str, session: &SsoSession, p: &AuthorizeParams) -> crate::Result<bool> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(false);
        }
        let Some(value) = self.pending.take(&pending_key(id)).await? else { return Ok(false) };
        let Ok(pending) = serde_json::from_str::<PendingConsent>(&value) else { return Ok(false) };
        Ok(pending.session_id == session.id && pending.request == p.to_query())
    }

    /// Whether `ticket` is a service ticket for the internal service, issued
    /// right after an interactive login in `session`. Spends it.
    async fn fresh_login(&self, ticket: Option<&str>, session: &SsoSession) -> crate::Result<bool> {
        let Some(id) = ticket.filter(|t| t.starts_with("ST-")) else { return Ok(false) };
        let Some(st) = self.cas.tickets.take(id).await? else { return Ok(false) };
        Ok(st.service_id == INTERNAL_SERVICE_ID
            && st.session_id == session.id
            && st.from_new_login
            && st.expires_at >= self.cas.clock.now())
    }

    async fn issue_code(&self, p: &AuthorizeParams, c: &Checked, session: &SsoSession) -> crate::Result<String> {
        let code = random_token(43)?;
        let now = self.cas.clock.now();
        let value = AuthorizationCode {
            client_id: c.client.id.as_str().to_owned(),
            redirect_uri: c.redirect_uri.clone(),
            account_id: session.account_id,
            login: session.login.clone(),
            session_id: session.id.clone(),
            scopes: c.scopes.clone(),
            nonce: p.nonce.clone(),
            code_challenge: p.code_challenge.clone(),
            auth_time: session.authenticated_at,
            expires_at: now + chrono::Duration::seconds(self.lifetimes.code_seconds),
            amr: session.amr.clone(),
        };
        self.store.put_code(&code, &value, seconds(self.lifetimes.code_seconds)).await?;
        // The session remembers the client, for the back-channel logout.
        let entry = SessionService::oidc(c.client.id.as_str(), "");
        self.cas.sessions.add_service(session.id.expose(), entry).await?;
        Ok(code)
    }
}

/// A store TTL: the lifetime plus a margin, since expiry is decided with
/// the clock and the store only forgets.
pub(crate) fn seconds(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0) + 60)
}
