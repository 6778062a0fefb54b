//! CAS proxy authentication (specification 2.5.4, 2.7, 2.6): delivering a
//! proxy-granting ticket to a `pgtUrl` callback, issuing proxy tickets at
//! `/proxy`, and the `proxySuccess` / `proxyFailure` answers.
//!
//! No service may proxy unless its policy says so ([`ProxyPolicy`]): the
//! callback must match the policy's pattern and be https with a verified
//! certificate, and proxy tickets are only issued for targets matching the
//! policy's target pattern, registered, and open to the user. A PGT lives
//! as long as its SSO session.

use quick_xml::escape::escape;
use serde_json::json;

use idp_core::account::AccountState;
use idp_core::ports::AuditEvent;
use idp_core::proxy::{ProxyGrantingTicket, ProxyTicket, is_https_callback};
use idp_core::service::{Service, ServiceUrl};
use idp_core::session::{ServiceTicket, SessionService, TicketId, new_ticket_id};

use super::validate::{Failure, FailureCode};
use super::{Cas, std_ttl};

/// The failure codes of `/proxy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyFailureCode {
    InvalidRequest,
    /// The PGT is unknown, or its SSO session has ended (Apereo's code).
    InvalidTicket,
    UnauthorizedService,
    InternalError,
}

impl ProxyFailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyFailureCode::InvalidRequest => "INVALID_REQUEST",
            ProxyFailureCode::InvalidTicket => "INVALID_TICKET",
            ProxyFailureCode::UnauthorizedService => "UNAUTHORIZED_SERVICE",
            ProxyFailureCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

/// A refused `/proxy` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyFailure {
    pub code: ProxyFailureCode,
    pub description: String,
}

fn refuse(code: ProxyFailureCode, description: impl Into<String>) -> ProxyFailure {
    ProxyFailure { code, description: description.into() }
}

/// The query parameters of `/proxy`, as received.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ProxyParams {
    pub pgt: Option<String>,
    #[serde(rename = "targetService")]
    pub target_service: Option<String>,
    pub format: Option<String>,
}

impl Cas {
    /// Delivers a new PGT for `ticket` to the `pgt_url` callback of
    /// `service` and stores it; returns the PGT IOU for the validation
    /// answer. `proxies` is the chain the validated ticket went through.
    pub(crate) async fn grant_pgt(
        &self,
        service: &Service,
        pgt_url: &str,
        ticket: &ServiceTicket,
        proxies: &[String],
    ) -> Result<String, Failure> {
        let unauthorized = || {
            Failure::new(
                FailureCode::UnauthorizedServiceProxy,
                format!("Service '{}' is not allowed to use proxy authentication", ticket.service_url),
            )
        };
        let policy = service.policy.proxy.as_ref().ok_or_else(unauthorized)?;
        let invalid = |why: &str| {
            Failure::new(FailureCode::InvalidProxyCallback, format!("The proxy callback '{pgt_url}' {why}"))
        };
        // The pattern is matched against the URL as it will be requested
        // (dot segments resolved), not as written.
        let normalized = url::Url::parse(pgt_url).map(String::from).map_err(|_| invalid("is not a valid URL"))?;
        let url = ServiceUrl::parse(&normalized).map_err(|_| invalid("is not a valid URL"))?;
        if !is_https_callback(&normalized) {
            return Err(invalid("is not an https URL"));
        }
        if !policy.callback.matches(&url) {
            return Err(unauthorized());
        }
        let internal = |e: idp_core::Error| {
            tracing::error!(error = %e, "proxy-granting ticket not stored");
            Failure::new(FailureCode::InternalError, "The server could not grant a proxy ticket, try again later")
        };
        let pgt_id = TicketId::new("PGT").map_err(internal)?;
        let iou = new_ticket_id("PGTIOU").map_err(internal)?;
        let with_iou = ServiceUrl::parse(&url.with_param("pgtIou", &iou)).map_err(|_| invalid("is too long"))?;
        match self.outbound.get_status(&with_iou.with_param("pgtId", pgt_id.expose())).await {
            Ok(200) => {}
            Ok(status) => return Err(invalid(&format!("answered HTTP {status} instead of 200"))),
            Err(_) => return Err(invalid("could not be reached over https with a trusted certificate")),
        }
        let pgt = ProxyGrantingTicket {
            id: pgt_id,
            session_id: ticket.session_id.clone(),
            account_id: ticket.account_id,
            login: ticket.login.clone(),
            authenticated_at: ticket.authenticated_at,
            service_id: service.id.as_str().to_owned(),
            callback_url: url.as_str().to_owned(),
            proxies: proxies.to_vec(),
        };
        self.proxies.put_pgt(&pgt, std_ttl(self.policy.sso_hard_timeout)).await.map_err(internal)?;
        Ok(iou)
    }

    /// `/proxy`: a proxy ticket for `targetService`, from a PGT.
    pub async fn proxy(&self, params: &ProxyParams) -> Result<String, ProxyFailure> {
        let non_empty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        let (Some(pgt_id), Some(target)) = (non_empty(&params.pgt), non_empty(&params.target_service)) else {
            return Err(refuse(
                ProxyFailureCode::InvalidRequest,
                "'pgt' and 'targetService' parameters are both required",
            ));
        };
        let outcome = self.issue_proxy_ticket(&pgt_id, &target).await;
        if let Err(f) = &outcome {
            self.audit.record(AuditEvent::ValidationFailed { code: f.code.as_str(), service: target });
        }
        outcome
    }

    async fn issue_proxy_ticket(&self, pgt_id: &str, target: &str) -> Result<String, ProxyFailure> {
        let internal = |e: idp_core::Error| {
            tracing::error!(error = %e, "proxy ticket not issued");
            refuse(ProxyFailureCode::InternalError, "The server could not issue a proxy ticket, try again later")
        };
        let not_recognized = || refuse(ProxyFailureCode::InvalidTicket, format!("Ticket '{pgt_id}' not recognized"));
        if !pgt_id.starts_with("PGT-") {
            return Err(not_recognized());
        }
        let pgt = self.proxies.get_pgt(pgt_id).await.map_err(internal)?.ok_or_else(not_recognized)?;
        // The PGT lives only as long as its SSO session and its account.
        let session = self.sessions.get(pgt.session_id.expose()).await.map_err(internal)?;
        let account = self.accounts.find_by_id(pgt.account_id).await.map_err(internal)?;
        let now = self.clock.now();
        let (Some(session), Some(account)) = (session, account) else {
            self.proxies.remove_session(pgt.session_id.expose()).await.map_err(internal)?;
            return Err(not_recognized());
        };
        if account.state != AccountState::Active || !session.is_alive(now, &self.policy, account.sessions_valid_after) {
            // Ending the session also removes its PGTs.
            if let Err(e) = self.end_session(session.id.expose()).await {
                tracing::error!(error = %e, "ending a dead session failed");
            }
            return Err(not_recognized());
        }
        let unauthorized = |why: &str| {
            refuse(ProxyFailureCode::UnauthorizedService, format!("Service '{target}' cannot be proxied: {why}"))
        };
        let owner = idp_core::service::ServiceId::parse(&pgt.service_id).map_err(|_| unauthorized("unknown proxy"))?;
        let owner = self.services.get(&owner).await.map_err(internal)?;
        let Some(policy) = owner.and_then(|s| s.policy.proxy) else {
            return Err(unauthorized("the proxy is no longer allowed to proxy"));
        };
        let url = ServiceUrl::parse(target).map_err(|_| unauthorized("not a valid service URL"))?;
        if !policy.targets.matches(&url) {
            return Err(unauthorized("not among the proxy's allowed targets"));
        }
        let Some(service) = self.services.find_match(&url).await.map_err(internal)? else {
            return Err(unauthorized("not a registered service"));
        };
        if self.access_denial(&service, &account).is_some() {
            return Err(unauthorized("the user may not use it"));
        }
        let ticket = ServiceTicket {
            id: TicketId::new("PT").map_err(internal)?,
            service_url: url.as_str().to_owned(),
            service_id: service.id.as_str().to_owned(),
            session_id: session.id.clone(),
            account_id: account.id,
            login: account.login.as_str().to_owned(),
            authenticated_at: session.authenticated_at,
            from_new_login: false,
            expires_at: now + self.policy.service_ticket_ttl,
            amr: Vec::new(),
        };
        let mut proxies = vec![pgt.callback_url.clone()];
        proxies.extend(pgt.proxies.iter().cloned());
        let pt = ProxyTicket { ticket, proxies };
        self.proxies.put_pt(&pt, std_ttl(self.policy.service_ticket_ttl)).await.map_err(internal)?;
        let entry = SessionService::cas(&pt.ticket.service_id, &pt.ticket.service_url, pt.ticket.id.expose());
        self.sessions.add_service(session.id.expose(), entry).await.map_err(internal)?;
        self.audit.record(AuditEvent::ServiceTicketIssued {
            login: account.login.as_str().to_owned(),
            service: target.to_owned(),
        });
        Ok(pt.ticket.id.expose().to_owned())
    }
}

/// The `/proxy` answer in XML (valid against the CAS 3.0 schema).
pub fn proxy_xml(outcome: &Result<String, ProxyFailure>) -> String {
    let inner = match outcome {
        Ok(pt) => format!(
            "  <cas:proxySuccess>\n    <cas:proxyTicket>{}</cas:proxyTicket>\n  </cas:proxySuccess>\n",
            escape(pt.as_str())
        ),
        Err(f) => format!(
            "  <cas:proxyFailure code=\"{}\">{}</cas:proxyFailure>\n",
            f.code.as_str(),
            escape(f.description.as_str())
        ),
    };
    format!("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n{inner}</cas:serviceResponse>\n")
}

/// The `/proxy` answer in JSON.
pub fn proxy_json(outcome: &Result<String, ProxyFailure>) -> String {
    match outcome {
        Ok(pt) => json!({"serviceResponse": {"proxySuccess": {"proxyTicket": pt}}}),
        Err(f) => {
            json!({"serviceResponse": {"proxyFailure": {"code": f.code.as_str(), "description": f.description}}})
        }
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let ok = proxy_xml(&Ok("PT-abc".into()));
        assert!(ok.contains("<cas:proxyTicket>PT-abc</cas:proxyTicket>"));
        let ko = proxy_xml(&Err(refuse(ProxyFailureCode::UnauthorizedService, "no <way>")));
        assert!(ko.contains(r#"<cas:proxyFailure code="UNAUTHORIZED_SERVICE">no &lt;way&gt;</cas:proxyFailure>"#));
        assert!(proxy_json(&Ok("PT-1".into())).contains(r#""proxyTicket":"PT-1""#));
    }
}
