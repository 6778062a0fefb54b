//! The audit trail as structured log events (target `idp::audit`), which a
//! log shipper collects. Passwords and tickets never appear in events. A
//! login or service is what someone typed or sent: it is cut and its
//! control characters escaped, so that it can neither fill the logs nor
//! forge a line.

use idp_core::ports::{AuditEvent, AuditLog};

/// The [`AuditLog`] adapter writing to `tracing`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAudit;

impl AuditLog for TracingAudit {
    fn record(&self, event: AuditEvent) {
        match shown(event) {
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
            AuditEvent::AccountCreatedByUpstream { login, upstream } => {
                tracing::info!(target: "idp::audit", %login, %upstream, "account created from an upstream identity")
            }
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
            AuditEvent::SecondFactorEnrolled { login, kind } => {
                tracing::info!(target: "idp::audit", %login, kind, "second factor enrolled")
            }
            AuditEvent::SecondFactorRemoved { login, by } => {
                tracing::warn!(target: "idp::audit", %login, %by, "second factor removed")
            }
            AuditEvent::PasskeyRemoved { login } => tracing::info!(target: "idp::audit", %login, "passkey removed"),
        }
    }
}

/// Characters of a login kept in the logs (a real login is far shorter).
const LOGIN_CHARS: usize = 64;
/// Characters of a service URL kept in the logs.
const SERVICE_CHARS: usize = 512;

/// The event with its typed values made safe to write: see [`printable`].
fn shown(event: AuditEvent) -> AuditEvent {
    use AuditEvent::*;
    let login = |l: String| printable(&l, LOGIN_CHARS);
    let service = |s: String| printable(&s, SERVICE_CHARS);
    match event {
        LoginSucceeded { login: l, source } => LoginSucceeded { login: login(l), source },
        LoginFailed { login: l, source, reason } => LoginFailed { login: login(l), source, reason },
        LoginThrottled { login: l, source } => LoginThrottled { login: login(l), source },
        AccountLocked { login: l } => AccountLocked { login: login(l) },
        ServiceTicketIssued { login: l, service: s } => ServiceTicketIssued { login: login(l), service: service(s) },
        ServiceTicketValidated { login: l, service: s } => {
            ServiceTicketValidated { login: login(l), service: service(s) }
        }
        ValidationFailed { code, service: s } => ValidationFailed { code, service: service(s) },
        Logout { login: l, services } => Logout { login: login(l), services },
        AccountActivated { login: l } => AccountActivated { login: login(l) },
        AccountCreatedByUpstream { login: l, upstream } => AccountCreatedByUpstream { login: login(l), upstream },
        PasswordChanged { login: l, how } => PasswordChanged { login: login(l), how },
        CguAccepted { login: l, version } => CguAccepted { login: login(l), version },
        EmailValidated { login: l } => EmailValidated { login: login(l) },
        TokensIssued { login: l, client, grant } => TokensIssued { login: login(l), client: login(client), grant },
        TokenRefused { client, grant, code } => TokenRefused { client: login(client), grant: login(grant), code },
        SecondFactorEnrolled { login: l, kind } => SecondFactorEnrolled { login: login(l), kind },
        SecondFactorRemoved { login: l, by } => SecondFactorRemoved { login: login(l), by: login(by) },
        PasskeyRemoved { login: l } => PasskeyRemoved { login: login(l) },
    }
}

/// At most `max` characters of `value`, then `…` when it was longer;
/// the characters of [`unsafe_in_a_line`] (line breaks, terminal escapes,
/// the backslash) written as Rust escapes (`\n`, `\u{1b}`, `\\`), so that
/// the result reads back unambiguously on one line.
pub fn printable(value: &str, max: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max * 2));
    for (i, c) in value.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if unsafe_in_a_line(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that break or disguise a log line: control characters, the
/// Unicode line and paragraph separators, bidirectional overrides, and the
/// backslash that starts an escape.
fn unsafe_in_a_line(c: char) -> bool {
    c.is_control() || matches!(c, '\\' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn typed_values_are_cut_and_escaped() {
        assert_eq!(printable("c.martin", 64), "c.martin");
        assert_eq!(printable("a\nb\r\u{1b}[31mc\\", 64), "a\\nb\\r\\u{1b}[31mc\\\\");
        assert_eq!(printable("x\u{2028}y\u{202e}z", 64), "x\\u{2028}y\\u{202e}z");
        let long = "é".repeat(70_000);
        let shown = printable(&long, 64);
        assert_eq!(shown.chars().count(), 65);
        assert!(shown.ends_with('…'));
    }
}
