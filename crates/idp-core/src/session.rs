//! SSO sessions (ticket-granting tickets) and service tickets.
//!
//! These are storage records: adapters serialise them to keep them in Redis.
//! They are never sent to a client as such; only the ids travel (the TGC
//! cookie, the `ticket=` parameter).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The id of a ticket or a session (`ST-…`, `PT-…`, `PGT-…`, `TGT-…`): the
/// secret that lets its holder in. `Debug` and `Display` show its prefix and
/// four random characters only, so that no log line can carry a usable
/// one; [`TicketId::expose`] gives the whole value where it must travel
/// (a cookie, a redirect, a store key). Stored as the plain string.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(String);

impl TicketId {
    /// A fresh id `PREFIX-<random>`.
    pub fn new(prefix: &str) -> crate::Result<Self> {
        new_ticket_id(prefix).map(TicketId)
    }

    /// `value` when it has the shape of an id with `prefix` (checked before
    /// any lookup, see [`is_ticket_id`]).
    pub fn parse(value: &str, prefix: &str) -> Option<Self> {
        is_ticket_id(value, prefix).then(|| TicketId(value.to_owned()))
    }

    /// An id as given, without the shape check: for values read back from
    /// a store that only ever holds ids made by [`TicketId::new`], and tests.
    pub fn from_raw(value: String) -> Self {
        TicketId(value)
    }

    /// The whole id, for where it must travel.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for TicketId {
    /// As [`TicketId::from_raw`].
    fn from(value: &str) -> Self {
        TicketId(value.to_owned())
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match self.0.split_once('-') {
            Some((prefix, random)) => format!("{prefix}-{}…", random.chars().take(4).collect::<String>()),
            None => "…".to_owned(),
        };
        f.write_str(&shown)
    }
}

impl fmt::Debug for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketId({self})")
    }
}

/// Lifetimes of tickets and sessions, from config.
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    /// Service ticket lifetime (CAS: 10 seconds).
    pub service_ticket_ttl: Duration,
    /// An SSO session unused for this long ends (Apereo: 2 hours).
    pub sso_idle_timeout: Duration,
    /// An SSO session ends this long after the login, used or not (Apereo:
    /// 8 hours).
    pub sso_hard_timeout: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            service_ticket_ttl: Duration::seconds(10),
            sso_idle_timeout: Duration::hours(2),
            sso_hard_timeout: Duration::hours(8),
        }
    }
}

/// An SSO session, known to the browser by its id in the TGC cookie.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SsoSession {
    /// `TGT-` followed by random characters.
    pub id: TicketId,
    pub account_id: i64,
    pub login: String,
    /// When the person typed their credentials.
    pub authenticated_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    /// The upstream identity provider the login came through, if any: its
    /// session is ended too at logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// How the person logged in (`pwd`, `otp`, `hwk`: see
    /// [`crate::second_factor`]); empty for an upstream's login and for
    /// sessions stored before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

impl SsoSession {
    /// Whether the session may still be used at `now`, given the policy and
    /// the account's `sessions_valid_after`.
    pub fn is_alive(&self, now: DateTime<Utc>, policy: &SessionPolicy, valid_after: DateTime<Utc>) -> bool {
        now - self.last_used_at <= policy.sso_idle_timeout
            && now - self.authenticated_at <= policy.sso_hard_timeout
            && self.authenticated_at >= valid_after
    }
}

/// A service that received a ticket within an SSO session, remembered for
/// single logout. Stored as it is (the store format); read it through
/// [`SessionService::participant`]. Its `Debug` hides the ticket.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionService {
    /// The service ticket that was issued (sent back as `SessionIndex`).
    pub ticket: String,
    pub service_url: String,
    pub service_id: String,
}

impl fmt::Debug for SessionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("ticket", &"…")
            .field("service_url", &self.service_url)
            .field("service_id", &self.service_id)
            .finish()
    }
}

/// Who takes part in an SSO session, and must be told when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Participant<'a> {
    /// A CAS service that got `ticket` for `url`.
    CasService { service_id: &'a str, url: &'a str, ticket: &'a str },
    /// An OpenID Connect client that got a code (and maybe tokens of the
    /// grant `grant`, empty before the code is exchanged).
    OidcClient { client_id: &'a str, grant: &'a str },
    /// A SAML service provider that got an assertion about `name_id` with
    /// `session_index`.
    SamlSp { sp_id: &'a str, name_id: &'a str, session_index: &'a str },
}

/// How an OIDC client is marked among a session's services: a CAS service
/// id cannot contain `:`, so the two never mix.
const OIDC_CLIENT: &str = "oidc:";
/// How a SAML service provider is marked among a session's services.
const SAML_SP: &str = "saml:";

impl SessionService {
    /// A CAS service that got `ticket` for `url`.
    pub fn cas(service_id: &str, url: &str, ticket: &str) -> Self {
        SessionService { ticket: ticket.to_owned(), service_url: url.to_owned(), service_id: service_id.to_owned() }
    }

    /// An OIDC client (and its grant, once the code is exchanged).
    pub fn oidc(client_id: &str, grant: &str) -> Self {
        SessionService {
            ticket: grant.to_owned(),
            service_url: String::new(),
            service_id: format!("{OIDC_CLIENT}{client_id}"),
        }
    }

    /// A SAML SP that got an assertion about `name_id` with `session_index`.
    pub fn saml(sp_id: &str, name_id: &str, session_index: &str) -> Self {
        SessionService {
            ticket: session_index.to_owned(),
            service_url: name_id.to_owned(),
            service_id: format!("{SAML_SP}{sp_id}"),
        }
    }

    pub fn participant(&self) -> Participant<'_> {
        if let Some(sp_id) = self.service_id.strip_prefix(SAML_SP) {
            return Participant::SamlSp { sp_id, name_id: &self.service_url, session_index: &self.ticket };
        }
        match self.service_id.strip_prefix(OIDC_CLIENT) {
            Some(client_id) => Participant::OidcClient { client_id, grant: &self.ticket },
            None => {
                Participant::CasService { service_id: &self.service_id, url: &self.service_url, ticket: &self.ticket }
            }
        }
    }
}

/// A service ticket: single use, short-lived, bound to one service URL.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServiceTicket {
    /// `ST-` (or `PT-`) followed by random characters.
    pub id: TicketId,
    pub service_url: String,
    pub service_id: String,
    pub session_id: TicketId,
    pub account_id: i64,
    pub login: String,
    pub authenticated_at: DateTime<Utc>,
    /// True only for the ticket issued right after an interactive login.
    pub from_new_login: bool,
    pub expires_at: DateTime<Utc>,
    /// The session's `amr` when the ticket was issued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Length of the random part of tickets and session ids (≈ 238 bits).
pub const TICKET_RANDOM_CHARS: usize = 40;

/// A fresh id `PREFIX-<random>`, e.g. `ST-…`, `TGT-…`.
pub fn new_ticket_id(prefix: &str) -> crate::Result<String> {
    Ok(format!("{prefix}-{}", crate::secret::random_token(TICKET_RANDOM_CHARS)?))
}

/// Whether `value` has the shape of an id made by [`new_ticket_id`] with
/// `prefix`. Checked before any lookup, so that a forged value (a cookie
/// `TGT-x:svc`) never reaches a store key of another kind.
pub fn is_ticket_id(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|random| random.len() == TICKET_RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn ids_never_show_whole_in_debug_or_display() {
        let id = TicketId::new("ST").unwrap();
        let whole = id.expose().to_owned();
        for shown in [format!("{id}"), format!("{id:?}")] {
            assert!(!shown.contains(&whole), "{shown}");
            assert!(shown.contains(&whole[..7]), "{shown} keeps the prefix and four characters");
        }
        let session = SsoSession {
            id: TicketId::new("TGT").unwrap(),
            account_id: 1,
            login: "c.martin".into(),
            authenticated_at: chrono::DateTime::<Utc>::UNIX_EPOCH,
            last_used_at: chrono::DateTime::<Utc>::UNIX_EPOCH,
            upstream: None,
            amr: Vec::new(),
        };
        assert!(!format!("{session:?}").contains(session.id.expose()));
        let entry = SessionService::cas("cdt", "https://cdt.example/", &whole);
        assert!(!format!("{entry:?}").contains(&whole));
        // Stored as the plain string.
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{whole}\""));
    }

    #[test]
    fn only_well_formed_ids_pass() {
        let id = new_ticket_id("TGT").unwrap();
        assert!(is_ticket_id(&id, "TGT"));
        assert!(!is_ticket_id(&id, "ST"));
        assert!(!is_ticket_id(&format!("{id}:services"), "TGT"));
        assert!(!is_ticket_id("TGT-x:svc", "TGT"));
        assert!(!is_ticket_id("TGT-", "TGT"));
        assert!(!is_ticket_id(&format!("TGT-{}", "é".repeat(20)), "TGT"));
    }
}
