//! Service ticket validation: `/validate` (CAS 1), `/serviceValidate`
//! (CAS 2) and `/p3/serviceValidate` (CAS 3); with proxy tickets too,
//! `/proxyValidate` and `/p3/proxyValidate`.
//!
//! The order of the checks follows the specification: a missing parameter is
//! INVALID_REQUEST; a ticket that is not a service ticket is
//! INVALID_TICKET_SPEC; an unknown, spent or expired ticket is
//! INVALID_TICKET; a ticket for another service is INVALID_SERVICE. Any
//! attempt that names a ticket spends it, whatever the outcome (a missing
//! `service`, an unknown `format` included).

use chrono::{DateTime, Utc};

use idp_core::account::AccountState;
use idp_core::ports::AuditEvent;
use idp_core::service::ServiceUrl;
use idp_core::session::is_ticket_id;

use super::{Cas, flag};

/// The failure codes of the CAS specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureCode {
    InvalidRequest,
    InvalidTicketSpec,
    UnauthorizedServiceProxy,
    InvalidProxyCallback,
    InvalidTicket,
    InvalidService,
    InternalError,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::InvalidRequest => "INVALID_REQUEST",
            FailureCode::InvalidTicketSpec => "INVALID_TICKET_SPEC",
            FailureCode::UnauthorizedServiceProxy => "UNAUTHORIZED_SERVICE_PROXY",
            FailureCode::InvalidProxyCallback => "INVALID_PROXY_CALLBACK",
            FailureCode::InvalidTicket => "INVALID_TICKET",
            FailureCode::InvalidService => "INVALID_SERVICE",
            FailureCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

/// A failed validation: the code and a description for the service's logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: FailureCode,
    pub description: String,
}

impl Failure {
    pub(crate) fn new(code: FailureCode, description: impl Into<String>) -> Self {
        Failure { code, description: description.into() }
    }
}

/// A successful validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Success {
    pub user: String,
    pub authentication_date: DateTime<Utc>,
    pub from_new_login: bool,
    /// Released attributes, in the service's order.
    pub attributes: Vec<(String, Vec<String>)>,
    /// The PGT IOU, when a `pgtUrl` callback received a proxy-granting ticket.
    pub proxy_granting_ticket: Option<String>,
    /// For a proxy ticket: the proxies it went through, most recent first.
    pub proxies: Vec<String>,
    /// How the person logged in (the session's `amr` values), written as
    /// the attribute Apereo names `authenticationMethod`.
    pub authentication_methods: Vec<String>,
}

/// Which tickets a validation endpoint accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// `/validate`, `/serviceValidate`, `/p3/serviceValidate`: service tickets only.
    ServiceTickets,
    /// `/proxyValidate`, `/p3/proxyValidate`: service and proxy tickets.
    ProxyTickets,
}

/// The response format asked with `format=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

/// The query parameters of a validation request, as received.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ValidateParams {
    pub service: Option<String>,
    pub ticket: Option<String>,
    pub renew: Option<String>,
    pub format: Option<String>,
    #[serde(rename = "pgtUrl")]
    pub pgt_url: Option<String>,
}

impl ValidateParams {
    /// The format to answer in. An unknown `format` value is answered (in
    /// XML) with INVALID_REQUEST rather than silently ignored.
    pub fn format(&self) -> Result<Format, Failure> {
        Format::parse(self.format.as_deref())
    }
}

impl Format {
    /// `format=`: XML (the default) or JSON, in either case.
    pub fn parse(value: Option<&str>) -> Result<Format, Failure> {
        match value {
            None | Some("XML") | Some("xml") => Ok(Format::Xml),
            Some("JSON") | Some("json") => Ok(Format::Json),
            Some(other) => {
                Err(Failure::new(FailureCode::InvalidRequest, format!("Unsupported format '{other}': use XML or JSON")))
            }
        }
    }
}

/// The answer to a validation request: its format (XML when the asked
/// one is unknown, since the failure must be told in some format) and its
/// outcome.
#[derive(Clone, Debug)]
pub struct Validation {
    pub format: Format,
    pub outcome: Result<Success, Failure>,
}

impl Cas {
    /// Validates a service ticket for the service in `params` (the format
    /// is not looked at: CAS 1 and SAML 1.1 have their own).
    pub async fn validate(&self, params: &ValidateParams) -> Result<Success, Failure> {
        self.validate_with(params, Accept::ServiceTickets).await
    }

    /// Validates a ticket of the kinds `accept` allows, in the format the
    /// request asks for.
    pub async fn validate_as(&self, params: &ValidateParams, accept: Accept) -> Validation {
        match params.format() {
            Ok(format) => Validation { format, outcome: self.validate_with(params, accept).await },
            Err(failure) => {
                self.spend(non_empty(&params.ticket)).await;
                Validation { format: Format::Xml, outcome: Err(failure) }
            }
        }
    }

    async fn validate_with(&self, params: &ValidateParams, accept: Accept) -> Result<Success, Failure> {
        let ticket = non_empty(&params.ticket);
        let (Some(service), Some(ticket)) = (non_empty(&params.service), ticket) else {
            self.spend(ticket).await;
            return Err(Failure::new(
                FailureCode::InvalidRequest,
                "'service' and 'ticket' parameters are both required",
            ));
        };
        let pgt_url = non_empty(&params.pgt_url);
        let outcome = self.validate_ticket(service, ticket, flag(&params.renew), pgt_url, accept).await;
        match &outcome {
            Ok(s) => self
                .audit
                .record(AuditEvent::ServiceTicketValidated { login: s.user.clone(), service: service.to_owned() }),
            Err(f) => {
                self.audit.record(AuditEvent::ValidationFailed { code: f.code.as_str(), service: service.to_owned() })
            }
        }
        outcome
    }

    async fn validate_ticket(
        &self,
        service: &str,
        ticket_id: &str,
        renew: bool,
        pgt_url: Option<&str>,
        accept: Accept,
    ) -> Result<Success, Failure> {
        let internal = |e: idp_core::Error| {
            tracing::error!(error = %e, "ticket validation failed on a port");
            Failure::new(FailureCode::InternalError, "The server could not validate the ticket, try again later")
        };
        // Taken first, so that the ticket is spent whatever happens next.
        let is_proxy_ticket = ticket_id.starts_with("PT-");
        let well_formed = is_ticket_id(ticket_id, "ST") || is_ticket_id(ticket_id, "PT");
        let (taken, proxies) = if !well_formed {
            (None, Vec::new())
        } else if is_proxy_ticket {
            match self.proxies.take_pt(ticket_id).await.map_err(internal)? {
                Some(pt) => (Some(pt.ticket), pt.proxies),
                None => (None, Vec::new()),
            }
        } else {
            (self.tickets.take(ticket_id).await.map_err(internal)?, Vec::new())
        };
        if !(ticket_id.starts_with("ST-") || is_proxy_ticket && accept == Accept::ProxyTickets) {
            return Err(Failure::new(
                FailureCode::InvalidTicketSpec,
                format!("Ticket '{ticket_id}' is not a service ticket"),
            ));
        }
        let not_recognized =
            || Failure::new(FailureCode::InvalidTicket, format!("Ticket '{ticket_id}' not recognized"));
        let ticket = taken.ok_or_else(not_recognized)?;
        let now = self.clock.now();
        if now > ticket.expires_at {
            return Err(Failure::new(FailureCode::InvalidTicket, format!("Ticket '{ticket_id}' has expired")));
        }
        if ticket.service_url != service {
            return Err(Failure::new(
                FailureCode::InvalidService,
                format!("Ticket '{ticket_id}' does not match the service '{service}'"),
            ));
        }
        if renew && !ticket.from_new_login {
            return Err(Failure::new(
                FailureCode::InvalidTicket,
                format!("Ticket '{ticket_id}' was issued from single sign-on, but renew was asked"),
            ));
        }
        // The service must still be registered: its release policy is read
        // now, so that a removed service gets nothing.
        let url =
            ServiceUrl::parse(service).map_err(|_| Failure::new(FailureCode::InvalidService, "Invalid service URL"))?;
        let registered = self.services.find_match(&url).await.map_err(internal)?;
        let Some(registered) = registered.filter(|s| s.id.as_str() == ticket.service_id) else {
            return Err(Failure::new(FailureCode::InvalidService, format!("Service '{service}' is not registered")));
        };
        let account = self.accounts.find_by_id(ticket.account_id).await.map_err(internal)?;
        let Some(account) =
            account.filter(|a| a.state == AccountState::Active && ticket.authenticated_at >= a.sessions_valid_after)
        else {
            return Err(not_recognized());
        };
        // The service's access rules may have changed since the ticket was
        // issued: they are checked again, and a user outside them gets nothing.
        if self.access_denial(&registered, &account).is_some() {
            return Err(Failure::new(
                FailureCode::InvalidService,
                format!("The user of ticket '{ticket_id}' may not use the service '{service}'"),
            ));
        }
        let released = self.released(&registered, &account).await.map_err(internal)?;
        // Only a service whose proxy policy allows it gets a PGT, after its
        // https callback answered 200.
        let proxy_granting_ticket = match pgt_url {
            Some(url) => Some(self.grant_pgt(&registered, url, &ticket, &proxies).await?),
            None => None,
        };
        Ok(Success {
            user: released.user,
            authentication_date: ticket.authenticated_at,
            from_new_login: ticket.from_new_login,
            attributes: released.attributes,
            proxy_granting_ticket,
            proxies,
            authentication_methods: ticket.amr.clone(),
        })
    }
}

impl Cas {
    /// Spends a ticket named by a request that is refused before its
    /// checks: any attempt spends the ticket.
    async fn spend(&self, ticket: Option<&str>) {
        let Some(id) = ticket.filter(|t| is_ticket_id(t, "ST") || is_ticket_id(t, "PT")) else { return };
        let taken = if id.starts_with("PT-") {
            self.proxies.take_pt(id).await.map(|_| ())
        } else {
            self.tickets.take(id).await.map(|_| ())
        };
        if let Err(e) = taken {
            tracing::warn!(error = %e, "cannot spend a ticket of a refused validation");
        }
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}
