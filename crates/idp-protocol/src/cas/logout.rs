//! Ending an SSO session and single logout (CAS protocol, Appendix C):
//! every service that got a ticket in the session and declared a logout URL
//! receives a back-channel `logoutRequest`, in the background. Then the
//! session end hooks run (OIDC back-channel logout), so that every protocol
//! learns of the logout from this one place.

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::escape::escape;

use idp_core::ports::AuditEvent;
use idp_core::service::ServiceId;
use idp_core::session::{Participant, SsoSession, new_ticket_id};

use super::Cas;
use crate::Result;

impl Cas {
    /// Ends the session `id` (if it exists) and sends the single logout
    /// messages. Returns the session that ended.
    pub async fn end_session(&self, id: &str) -> Result<Option<SsoSession>> {
        // Proxy-granting tickets die with their session, even one already
        // gone from the session store.
        self.proxies.remove_session(id).await?;
        let Some((session, services)) = self.sessions.remove(id).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let mut sent = 0;
        for entry in &services {
            let Participant::CasService { service_id, ticket, .. } = entry.participant() else { continue };
            let Ok(service_id) = ServiceId::parse(service_id) else { continue };
            // The logout URL is read now: a service that declared one after
            // the ticket was issued still learns of the logout.
            let Some(service) = self.services.get(&service_id).await? else { continue };
            let Some(logout_url) = service.logout_url else { continue };
            let message = logout_request(ticket, now)?;
            self.outbound.post_form_in_background(logout_url.to_string(), vec![("logoutRequest".to_owned(), message)]);
            sent += 1;
        }
        self.audit.record(AuditEvent::Logout { login: session.login.clone(), services: sent });
        for hook in &self.session_end_hooks {
            // One failing hook must not keep the others from running.
            if let Err(e) = hook.session_ended(&session, &services).await {
                tracing::warn!(error = %e, "a session end hook failed");
            }
        }
        Ok(Some(session))
    }
}

impl Cas {
    /// Ends every live session of an account but `keep` (the one the person
    /// is using, if any), each with its single logout: after a password
    /// reset or change, the services learn at once that those sessions are
    /// over. Returns how many were ended.
    pub async fn end_sessions_of(&self, account_id: i64, keep: Option<&str>) -> Result<usize> {
        let mut ended = 0;
        for id in self.sessions.sessions_of(account_id).await? {
            if Some(id.as_str()) != keep && self.end_session(&id).await?.is_some() {
                ended += 1;
            }
        }
        Ok(ended)
    }
}

/// The SAML 2 `LogoutRequest` that CAS clients expect, with the service
/// ticket as `SessionIndex`.
pub fn logout_request(ticket: &str, now: DateTime<Utc>) -> Result<String> {
    let id = new_ticket_id("LR")?;
    Ok(format!(
        concat!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}">"#,
            r#"<saml:NameID>@NOT_USED@</saml:NameID><samlp:SessionIndex>{ticket}</samlp:SessionIndex>"#,
            r#"</samlp:LogoutRequest>"#
        ),
        id = id,
        instant = now.to_rfc3339_opts(SecondsFormat::Secs, true),
        ticket = escape(ticket),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_request_carries_the_ticket() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T08:00:00Z").unwrap().with_timezone(&Utc);
        let m = logout_request("ST-abc", now).unwrap();
        assert!(m.contains("<samlp:SessionIndex>ST-abc</samlp:SessionIndex>"));
        assert!(m.contains(r#"IssueInstant="2026-11-28T08:00:00Z""#));
        assert!(m.starts_with("<samlp:LogoutRequest"));
    }
}
