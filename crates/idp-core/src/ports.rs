//! The ports: everything idp-core needs from the outside world, as traits.
//!
//! Adapters live in `idp-store` (SQL, memory, Redis, files, HTTP). The web
//! layer holds them as `Arc<dyn Port>`. Everything with a lifetime goes
//! through a port with TTL semantics, so that a clustered adapter (Redis) is
//! an adapter and not a rewrite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

use crate::Result;
use crate::account::{Account, Login, NewAccount};
use crate::secret::Secret;
use crate::service::{Service, ServiceId};
use crate::session::{ServiceTicket, SessionService, SsoSession, TicketDraft};

/// Accounts, in the database.
#[async_trait]
pub trait AccountRepository: Send + Sync {
    /// Case-insensitive lookup.
    async fn find_by_login(&self, login: &Login) -> Result<Option<Account>>;
    async fn find_by_id(&self, id: i64) -> Result<Option<Account>>;
    /// Accounts whose e-mail is `needle` or whose directory attributes
    /// contain it (a coarse search, at most 50; the caller checks the exact
    /// rule): the candidates to link an upstream identity to.
    async fn find_candidates(&self, needle: &str) -> Result<Vec<Account>>;
    /// Fails with [`crate::Error::Conflict`] when the login is taken.
    async fn create(&self, account: NewAccount) -> Result<Account>;
    /// Writes every field of `account` (by id) and bumps the row's version.
    /// Fails with [`crate::Error::Conflict`] when the row changed since
    /// `account` was read (its `version` is no longer the row's), and with
    /// [`crate::Error::NotFound`] when the account is gone: a write from an
    /// old read never undoes a change made meanwhile. Read again before a
    /// second write.
    async fn update(&self, account: &Account) -> Result<()>;
    /// Removes the account; false when there was none.
    async fn delete(&self, login: &Login) -> Result<bool>;
    /// Creates and updates many accounts in one transaction: all or nothing
    /// (an update refused as by [`AccountRepository::update`] refuses all).
    async fn apply_batch(&self, create: Vec<NewAccount>, update: Vec<Account>) -> Result<()>;
    /// Counts a failed login and returns the new count of consecutive
    /// failures (atomic, so that two nodes count both failures).
    async fn record_failed_login(&self, id: i64) -> Result<i32>;
    /// Records a successful login: resets the failure count.
    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<()>;
}

/// Registered services. Reads always reflect the latest writes, whichever
/// process made them (the CLI writes while servers run).
#[async_trait]
pub trait ServiceRegistry: Send + Sync {
    /// The service that `url` belongs to, if any (see
    /// [`crate::service::find_match`]).
    async fn find_match(&self, url: &crate::service::ServiceUrl) -> Result<Option<Service>>;
    async fn get(&self, id: &ServiceId) -> Result<Option<Service>>;
    async fn list(&self) -> Result<Vec<Service>>;
    /// Fails with [`crate::Error::Conflict`] when the id is taken.
    async fn add(&self, service: Service) -> Result<()>;
    /// Replaces the service with the same id; [`crate::Error::NotFound`] if none.
    async fn update(&self, service: Service) -> Result<()>;
    async fn remove(&self, id: &ServiceId) -> Result<bool>;
}

/// Single-use tickets (ST, later PT). `take` is atomic: of two nodes taking
/// the same ticket at once, only one gets it.
#[async_trait]
pub trait TicketRegistry: Send + Sync {
    /// Stores a ticket; the store forgets it after `ttl` at the latest.
    async fn put(&self, ticket: &ServiceTicket, ttl: Duration) -> Result<()>;
    /// Removes and returns the ticket: a ticket is spent by any attempt.
    async fn take(&self, id: &str) -> Result<Option<ServiceTicket>>;
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<()>;
}

/// SSO sessions (TGT) and what happened within them.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session, forgotten after `ttl` at the latest.
    async fn create(&self, session: &SsoSession, ttl: Duration) -> Result<()>;
    async fn get(&self, id: &str) -> Result<Option<SsoSession>>;
    /// Records that the session was used at `at`.
    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<()>;
    /// The session as it was before this use, recording that it is used at
    /// `at`: the single sign-on path reads and touches every session it
    /// serves, and a store that can do both in one operation (one Redis
    /// round trip) does. A session that turns out to be over is removed by
    /// the caller, so touching it first is harmless.
    async fn get_and_touch(&self, id: &str, at: DateTime<Utc>) -> Result<Option<SsoSession>> {
        let session = self.get(id).await?;
        if session.is_some() {
            self.touch(id, at).await?;
        }
        Ok(session)
    }
    /// Remembers that a service got a ticket in this session.
    async fn add_service(&self, id: &str, service: SessionService) -> Result<()>;
    /// Forgets a service entry of this session (the entry of a ticket
    /// withdrawn before anyone got it).
    async fn remove_service(&self, id: &str, service: &SessionService) -> Result<()>;
    /// The single sign-on issuance: reads and touches the session `id` as
    /// [`SessionStore::get_and_touch`] and, when it exists, stores the
    /// ticket `draft` completed with the session's fields
    /// ([`TicketDraft::for_session`]) for `ttl` and records it among the
    /// session's services. Returns the session as it was and the ticket.
    /// The caller checks the account afterwards and withdraws the ticket
    /// ([`TicketRegistry::take`], [`SessionStore::remove_service`]) when
    /// it refuses; nobody has the ticket's id before. `tickets` is where
    /// the tickets live: a store that keeps them itself (Redis, where both
    /// are wired together) writes there in the same operation, one round
    /// trip in all.
    async fn issue_from_session(
        &self,
        id: &str,
        at: DateTime<Utc>,
        draft: &TicketDraft,
        tickets: &dyn TicketRegistry,
        ttl: Duration,
    ) -> Result<Option<(SsoSession, ServiceTicket)>> {
        let Some(session) = self.get_and_touch(id, at).await? else { return Ok(None) };
        let ticket = draft.for_session(&session);
        tickets.put(&ticket, ttl).await?;
        self.add_service(id, draft.service_entry()).await?;
        Ok(Some((session, ticket)))
    }
    /// Ends the session; returns it with the services that got tickets, for
    /// single logout. None when it did not exist (any more).
    async fn remove(&self, id: &str) -> Result<Option<(SsoSession, Vec<SessionService>)>>;
    /// Records a new interactive login in an existing session of the same
    /// person (`renew`, a service without single sign-on): both instants
    /// become `at` and the session lives `ttl` from now, keeping its
    /// services. None when the session is gone.
    async fn reauthenticate(
        &self,
        id: &str,
        at: DateTime<Utc>,
        amr: Option<&[String]>,
        ttl: Duration,
    ) -> Result<Option<SsoSession>>;
    /// The ids of the live sessions of an account (to end them all when its
    /// password is reset or changed, with single logout).
    async fn sessions_of(&self, account_id: i64) -> Result<Vec<String>>;
}

/// Counters with a time window, for throttling.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Adds one to `key` and returns the count within the current window;
    /// the window starts at the first hit and lasts `window`.
    async fn hit(&self, key: &str, window: Duration) -> Result<u64>;
    /// The current count of `key` (0 when expired or never hit).
    async fn count(&self, key: &str) -> Result<u64>;
    async fn clear(&self, key: &str) -> Result<()>;
    /// Waits `delay` without holding a thread: the slowdown of an attempt
    /// over a soft limit.
    async fn pause(&self, delay: Duration);
}

/// Password hashing off the async runtime, on a bounded pool.
#[async_trait]
pub trait PasswordHashing: Send + Sync {
    async fn hash(&self, password: Secret) -> Result<String>;
    /// See [`crate::password::Argon2Hasher::verify`]: `None` costs the same.
    async fn verify(&self, password: Secret, hash: Option<String>) -> Result<bool>;
    /// [`crate::Error::Overloaded`] (counted as a refusal) when a hash asked
    /// now would be refused at once, its queue being full: a login under a
    /// flood is refused before any other work. A hint: `hash` and `verify`
    /// still refuse when the queue filled meanwhile.
    fn refuse_if_full(&self) -> Result<()> {
        Ok(())
    }
}

/// Outbound HTTP to services and upstreams. Calls have a timeout and never
/// block the user's request.
#[async_trait]
pub trait Outbound: Send + Sync {
    /// POSTs a form in the background (single logout); the outcome is logged
    /// and counted, never reported to the caller.
    fn post_form_in_background(&self, url: String, form: Vec<(String, String)>);
    /// GETs `url` (a CAS proxy callback) with the server certificate
    /// verified and no redirect followed; returns the status code. A
    /// connection or certificate failure is an error.
    async fn get_status(&self, url: &str) -> Result<u16>;
    /// GETs `url` (an upstream identity provider's validation endpoint)
    /// with the certificate verified, no redirect followed and at most
    /// 1 MiB read; returns the status and the body. A connection failure or
    /// a timeout is an error.
    async fn get_text(&self, url: &str) -> Result<(u16, String)>;
    /// Sends one request to an upstream identity provider (discovery,
    /// keys, token and userinfo endpoints), with the certificate verified,
    /// no redirect followed, the timeout of every outbound call and at most
    /// 1 MiB of answer read. Any HTTP status is an answer; a connection
    /// failure, a timeout or a too long answer is an error.
    async fn call(&self, request: HttpCall) -> Result<HttpAnswer>;
}

/// The methods of [`HttpCall`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

/// One outbound HTTP request: the body, when any, is already encoded (a
/// form) and its `Content-Type` among the headers. Its `Debug` shows the
/// method and the URL's origin and path only: the headers and the body may
/// carry a client secret, and the query a code.
#[derive(Clone)]
pub struct HttpCall {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for HttpCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        f.debug_struct("HttpCall").field("method", &self.method).field("url", &path).finish_non_exhaustive()
    }
}

/// The answer to an [`HttpCall`].
#[derive(Clone, Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An e-mail to send.
#[derive(Clone, Debug)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Sends e-mails (outbox folder by default, SMTP when configured).
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: OutgoingMail) -> Result<()>;
}

/// Security events, for the operators' audit trail.
#[derive(Clone, Debug)]
pub enum AuditEvent {
    LoginSucceeded {
        login: String,
        source: String,
    },
    LoginFailed {
        login: String,
        source: String,
        reason: &'static str,
    },
    LoginThrottled {
        login: String,
        source: String,
    },
    AccountLocked {
        login: String,
    },
    ServiceTicketIssued {
        login: String,
        service: String,
    },
    ServiceTicketValidated {
        login: String,
        service: String,
    },
    ValidationFailed {
        code: &'static str,
        service: String,
    },
    Logout {
        login: String,
        services: usize,
    },
    AccountActivated {
        login: String,
    },
    /// An account created for an identity an upstream asserted
    /// (`create_missing`).
    AccountCreatedByUpstream {
        login: String,
        upstream: String,
    },
    PasswordChanged {
        login: String,
        how: &'static str,
    },
    CguAccepted {
        login: String,
        version: String,
    },
    EmailValidated {
        login: String,
    },
    /// OIDC tokens issued to a client (`grant` is the grant type).
    TokensIssued {
        login: String,
        client: String,
        grant: &'static str,
    },
    /// A second factor enrolled (`kind`: `totp`, `passkey`).
    SecondFactorEnrolled {
        login: String,
        kind: &'static str,
    },
    /// Every second factor of `login` removed, by `by` (the person, an
    /// administrator's login, or `idp` for the CLI).
    SecondFactorRemoved {
        login: String,
        by: String,
    },
    /// One passkey removed by its owner.
    PasskeyRemoved {
        login: String,
    },
    /// A token request refused with an OAuth error code.
    TokenRefused {
        client: String,
        grant: String,
        code: &'static str,
    },
}

/// Where audit events go.
pub trait AuditLog: Send + Sync {
    fn record(&self, event: AuditEvent);
}

/// Short-lived records of the account flows (activation attempts, e-mail
/// codes, password reset codes, pending CGU acceptances), as strings under
/// keys. Every record has a TTL; `take` is atomic so that a single-use code
/// is spent once even with several nodes.
#[async_trait]
pub trait EphemeralStore: Send + Sync {
    /// Stores `value` under `key`, replacing any older value; forgotten
    /// after `ttl` at the latest.
    async fn put(&self, key: &str, value: String, ttl: Duration) -> Result<()>;
    /// Stores `value` under `key` only when no live value is there; true
    /// when this call stored it: of two callers, only one does.
    async fn put_if_absent(&self, key: &str, value: String, ttl: Duration) -> Result<bool>;
    async fn get(&self, key: &str) -> Result<Option<String>>;
    /// Removes and returns the value: of two callers, only one gets it.
    async fn take(&self, key: &str) -> Result<Option<String>>;
    async fn remove(&self, key: &str) -> Result<()>;
}

/// The account data of the account life cycle that is not in [`Account`]:
/// secret questions, e-mail validation, login history.
#[async_trait]
pub trait AccountSecurityRepository: Send + Sync {
    /// The extras of an account (empty when none were saved).
    async fn get(&self, account_id: i64) -> Result<crate::lifecycle::AccountExtras>;
    async fn save(&self, account_id: i64, extras: &crate::lifecycle::AccountExtras) -> Result<()>;
    /// Remembers a successful login (kept: the last 20).
    async fn record_login(&self, account_id: i64, at: DateTime<Utc>, source: &str) -> Result<()>;
    /// The most recent logins, newest first.
    async fn recent_logins(&self, account_id: i64, limit: u64) -> Result<Vec<crate::lifecycle::LoginRecord>>;
}

/// Writes the e-mails of the account flows (the words and layout belong to
/// the theme); implemented by the web layer with its templates.
pub trait MailComposer: Send + Sync {
    fn compose(&self, mail: &crate::lifecycle::MailKind, to: &str, display_name: &str) -> Result<OutgoingMail>;
}
