//! CAS protocol 3.0 (Apereo specification): sessions, service tickets,
//! validation, proxy tickets, SAML 1.1 validation and single logout.

pub mod logout;
pub mod proxy;
pub mod response;
pub mod rules;
pub mod saml;
pub mod validate;

use std::sync::Arc;

use idp_core::account::{Account, AccountState};
use idp_core::clock::Clock;
use idp_core::oidc::SessionEndHook;
use idp_core::ports::{
    AccountRepository, AuditEvent, AuditLog, Outbound, ServiceRegistry, SessionStore, TicketRegistry,
};
use idp_core::proxy::ProxyTicketStore;
use idp_core::pseudonym::PseudonymStore;
use idp_core::service::{Service, ServiceUrl};
use idp_core::session::{ServiceTicket, SessionPolicy, SessionService, SsoSession, TicketId, is_ticket_id};

use crate::{Error, Result};

/// The ports the CAS server works with.
pub struct CasPorts {
    pub accounts: Arc<dyn AccountRepository>,
    pub services: Arc<dyn ServiceRegistry>,
    pub tickets: Arc<dyn TicketRegistry>,
    pub sessions: Arc<dyn SessionStore>,
    pub outbound: Arc<dyn Outbound>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    /// Proxy-granting and proxy tickets.
    pub proxies: Arc<dyn ProxyTicketStore>,
    /// Per-service pseudonymous identifiers.
    pub pseudonyms: Arc<dyn PseudonymStore>,
}

/// The CAS server logic, shared by every request. Its ports are private:
/// callers go through its methods, which keep the protocol's order of
/// checks (a ticket is taken before it is checked, a session ends in one
/// place).
#[derive(Clone)]
pub struct Cas {
    pub(crate) accounts: Arc<dyn AccountRepository>,
    pub(crate) services: Arc<dyn ServiceRegistry>,
    pub(crate) tickets: Arc<dyn TicketRegistry>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) outbound: Arc<dyn Outbound>,
    pub(crate) audit: Arc<dyn AuditLog>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: SessionPolicy,
    pub(crate) proxies: Arc<dyn ProxyTicketStore>,
    pub(crate) pseudonyms: Arc<dyn PseudonymStore>,
    /// Run whenever a session ends, after the CAS single logout (the OIDC
    /// back-channel logout): one session end, every protocol told.
    pub(crate) session_end_hooks: Vec<Arc<dyn SessionEndHook>>,
}

/// Whether a CAS flag parameter (`renew`, `gateway`) is set: present with
/// any value but "false" (the specification only says "if this parameter
/// is set").
pub fn flag(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.eq_ignore_ascii_case("false"))
}

/// Store TTLs are a backstop for memory: expiry is decided with the clock,
/// so that tests can move a fixed clock; the backstop must outlive that.
const TTL_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

fn std_ttl(d: chrono::Duration) -> std::time::Duration {
    (d + TTL_MARGIN).to_std().unwrap_or(std::time::Duration::from_secs(60))
}

impl Cas {
    /// A CAS server over `ports`, with the session timeouts of `policy`;
    /// `session_end_hooks` run after the CAS single logout of every session.
    pub fn new(ports: CasPorts, policy: SessionPolicy, session_end_hooks: Vec<Arc<dyn SessionEndHook>>) -> Self {
        let CasPorts { accounts, services, tickets, sessions, outbound, audit, clock, proxies, pseudonyms } = ports;
        Cas {
            accounts,
            services,
            tickets,
            sessions,
            outbound,
            audit,
            clock,
            policy,
            proxies,
            pseudonyms,
            session_end_hooks,
        }
    }

    /// The current time of the server's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The registered service a `service=` parameter belongs to. An
    /// unregistered service is an error: CAS never redirects to it.
    pub async fn registered_service(&self, raw: &str) -> Result<(ServiceUrl, Service)> {
        let url = ServiceUrl::parse(raw).map_err(|e| Error::InvalidServiceUrl(e.to_string()))?;
        match self.services.find_match(&url).await? {
            Some(service) => Ok((url, service)),
            None => Err(Error::UnknownService(raw.to_owned())),
        }
    }

    /// The live SSO session behind a TGC cookie value, with its account.
    /// A session that timed out, was ended by a reset, or whose account is no
    /// longer active is removed and not returned.
    pub async fn current_session(&self, tgc: Option<&str>) -> Result<Option<(SsoSession, Account)>> {
        let Some(id) = tgc.filter(|id| is_ticket_id(id, "TGT")) else {
            return Ok(None);
        };
        let now = self.clock.now();
        // Read and touched at once; a session found over below is removed.
        let Some(session) = self.sessions.get_and_touch(id, now).await? else {
            return Ok(None);
        };
        let account = self.accounts.find_by_id(session.account_id).await?;
        match account {
            Some(account)
                if account.state == AccountState::Active
                    && session.is_alive(now, &self.policy, account.sessions_valid_after) =>
            {
                Ok(Some((session, account)))
            }
            _ => {
                self.end_session(id).await?;
                Ok(None)
            }
        }
    }

    /// Opens an SSO session for `account` whose credentials were checked at
    /// `authenticated_at`. A previous session of this browser that belongs
    /// to someone else (or is no longer alive) is ended first and the id
    /// changes; the same person's live session is kept, with the new login
    /// time.
    pub async fn open_session(
        &self,
        account: &Account,
        previous: Option<&str>,
        authenticated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<SsoSession> {
        self.open_session_via(account, previous, authenticated_at, None, None).await
    }

    /// How long the store keeps a session at most (what lives beside a
    /// session is kept as long).
    pub fn session_ttl(&self) -> std::time::Duration {
        std_ttl(self.policy.sso_hard_timeout)
    }

    /// [`Cas::open_session`] for a login through the upstream identity
    /// provider `upstream` (ended with the session at logout), recording
    /// how the person logged in (`amr`; `None` keeps what the same
    /// person's live session recorded).
    pub async fn open_session_via(
        &self,
        account: &Account,
        previous: Option<&str>,
        authenticated_at: chrono::DateTime<chrono::Utc>,
        upstream: Option<&str>,
        amr: Option<&[String]>,
    ) -> Result<SsoSession> {
        let now = self.clock.now();
        if let Some(old) = previous {
            // The same person typing their credentials again (renew, a
            // service without single sign-on) keeps their session and its
            // services: no single logout for them. Keeping the id is safe:
            // the session already belonged to this person, so nobody could
            // have planted it. Anyone else's session ends first.
            let same_person = match self.sessions.get(old).await? {
                Some(s) => s.account_id == account.id && s.is_alive(now, &self.policy, account.sessions_valid_after),
                None => false,
            };
            if same_person
                && let Some(session) = self
                    .sessions
                    .reauthenticate(old, authenticated_at, amr, std_ttl(self.policy.sso_hard_timeout))
                    .await?
            {
                return Ok(session);
            }
            self.end_session(old).await?;
        }
        let session = SsoSession {
            id: TicketId::new("TGT")?,
            account_id: account.id,
            login: account.login.as_str().to_owned(),
            authenticated_at,
            last_used_at: now,
            upstream: upstream.map(str::to_owned),
            amr: amr.unwrap_or_default().to_vec(),
        };
        self.sessions.create(&session, std_ttl(self.policy.sso_hard_timeout)).await?;
        Ok(session)
    }

    /// Records in the live `session` that its holder just proved the
    /// second factor `factor` (an `amr` value), as a new login would.
    pub async fn record_factor(&self, session: &SsoSession, factor: &str) -> Result<()> {
        let mut amr = session.amr.clone();
        if amr.is_empty() {
            amr.push(idp_core::second_factor::AMR_PASSWORD.to_owned());
        }
        if !amr.iter().any(|m| m == factor) {
            amr.push(factor.to_owned());
        }
        let ttl = std_ttl(self.policy.sso_hard_timeout);
        self.sessions.reauthenticate(session.id.expose(), self.clock.now(), Some(&amr), ttl).await?;
        Ok(())
    }

    /// Issues a service ticket for `url` within `session` and returns the
    /// URL to send the browser to (`service?ticket=ST-…`).
    pub async fn issue_service_ticket(
        &self,
        session: &SsoSession,
        url: &ServiceUrl,
        service: &Service,
        from_new_login: bool,
    ) -> Result<ServiceTicket> {
        let ticket = ServiceTicket {
            id: TicketId::new("ST")?,
            service_url: url.as_str().to_owned(),
            service_id: service.id.as_str().to_owned(),
            session_id: session.id.clone(),
            account_id: session.account_id,
            login: session.login.clone(),
            authenticated_at: session.authenticated_at,
            from_new_login,
            expires_at: self.clock.now() + self.policy.service_ticket_ttl,
            amr: session.amr.clone(),
        };
        let entry = SessionService::cas(&ticket.service_id, &ticket.service_url, ticket.id.expose());
        // Both at once: on a shared Redis connection, one round trip. The
        // ticket's id reaches nobody before both are stored.
        futures_util::future::try_join(
            self.tickets.put(&ticket, std_ttl(self.policy.service_ticket_ttl)),
            self.sessions.add_service(session.id.expose(), entry),
        )
        .await?;
        self.audit.record(AuditEvent::ServiceTicketIssued {
            login: session.login.clone(),
            service: ticket.service_url.clone(),
        });
        Ok(ticket)
    }
}
