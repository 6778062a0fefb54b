//! The audit trail as structured log events (target `idp::audit`), which a
//! log shipper collects. Passwords and tickets never appear in events.

use idp_core::ports::{AuditEvent, AuditLog};

/// The [`AuditLog`] adapter writing to `tracing`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAudit;

impl AuditLog for TracingAudit {
    fn record(&self, event: AuditEvent) {
        match event {
            AuditEvent::LoginSucceeded { login, source } => {
                tracing::info!(target: "idp::audit", %login, %source, "login succeeded")
            }
            AuditEvent::LoginFailed { login, source, reason } => {
                tracing::info!(target: "idp::audit", %login, %source, reason, "login failed")
            }
            AuditEvent::LoginThrottled { login, source } => {
                tracing::warn!(target: "idp::audit", %login, %source, "login throttled")
            }
            AuditEvent::AccountLocked { login } => tracing::warn!(target: "idp::audit", %login, "account locked"),
            AuditEvent::ServiceTicketIssued { login, service } => {
                tracing::info!(target: "idp::audit", %login, %service, "service ticket issued")
            }
            AuditEvent::ServiceTicketValidated { login, service } => {
                tracing::info!(target: "idp::audit", %login, %service, "service ticket validated")
            }
            AuditEvent::ValidationFailed { code, service } => {
                tracing::info!(target: "idp::audit", code, %service, "validation failed")
            }
            AuditEvent::Logout { login, services } => tracing::info!(target: "idp::audit", %login, services, "logout"),
            AuditEvent::AccountActivated { login } => tracing::info!(target: "idp::audit", %login, "account activated"),
            AuditEvent::PasswordChanged { login, how } => {
                tracing::info!(target: "idp::audit", %login, how, "password changed")
            }
            AuditEvent::CguAccepted { login, version } => {
                tracing::info!(target: "idp::audit", %login, %version, "terms of use accepted")
            }
            AuditEvent::EmailValidated { login } => tracing::info!(target: "idp::audit", %login, "e-mail validated"),
            AuditEvent::TokensIssued { login, client, grant } => {
                tracing::info!(target: "idp::audit", %login, %client, grant, "oidc tokens issued")
            }
            AuditEvent::TokenRefused { client, grant, code } => {
                tracing::info!(target: "idp::audit", %client, %grant, code, "oidc token request refused")
            }
        }
    }
}
