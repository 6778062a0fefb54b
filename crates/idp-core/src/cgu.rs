//! Terms of use (CGU) at login: when the operator publishes a new version,
//! every person must accept it at their next login before any ticket or
//! token is issued, whatever the protocol.
//!
//! The login pipeline asks [`must_accept`] after a successful credential
//! check (or on a live session). When it must, it calls
//! [`Lifecycle::begin_cgu`] with the [`ResumeTarget`] of the login (what it
//! needs to finish the request: service URL, options) and shows the
//! charter; the person's answer goes to [`Lifecycle::accept_cgu_at_login`],
//! which records the acceptance (version, time) and gives the account and
//! the pending login back, so the pipeline opens its session and issues its
//! ticket then, not before. Accepting the charter is not a login: the
//! pending login keeps the instant the credentials were checked.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountState};
use crate::lifecycle::{FlowError, FlowResult, Lifecycle, key, new_code};
use crate::ports::AuditEvent;

/// Whether `account` must accept the `current` version before being let in.
pub fn must_accept(account: &Account, current: &str) -> bool {
    account.cgu_version.as_deref() != Some(current)
}

/// What a login waiting for the charter was for: the service it goes on
/// to and the options of its request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeTarget {
    /// The service URL as requested (checked again against the registry
    /// when the login resumes).
    pub service: Option<String>,
    /// The request forced a credential check (`renew`).
    pub renew: bool,
    /// The ticket goes back by an auto-submitted POST form.
    pub post: bool,
    /// The credentials were typed for this login (not a live session).
    pub fresh: bool,
    /// The upstream identity provider that asserted the identity, if any.
    #[serde(default)]
    pub upstream: Option<String>,
    /// How the person logged in (`amr`), for the session that opens.
    #[serde(default)]
    pub amr: Vec<String>,
}

/// A login waiting for the acceptance of the terms of use.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingCgu {
    pub account_id: i64,
    /// When the credentials were checked: the session keeps this instant,
    /// whatever time the person takes to read the charter.
    pub authenticated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub target: ResumeTarget,
}

/// How long the person may take to read the charter.
const PENDING_MINUTES: i64 = 30;

fn pending_key(token: &str) -> String {
    key("cgu", token)
}

impl Lifecycle {
    /// Whether `account` must accept the current version.
    pub fn must_accept_cgu(&self, account: &Account) -> bool {
        must_accept(account, &self.cgu_version)
    }

    /// Remembers a login (credentials checked at `authenticated_at`) that
    /// waits for the acceptance; returns the token the page sends back.
    pub async fn begin_cgu(
        &self,
        account: &Account,
        authenticated_at: DateTime<Utc>,
        target: ResumeTarget,
    ) -> FlowResult<String> {
        let token = new_code()?;
        let now = self.now();
        let pending = PendingCgu {
            account_id: account.id,
            authenticated_at,
            expires_at: now + Duration::minutes(PENDING_MINUTES),
            target,
        };
        self.put_json(&pending_key(&token), &pending, pending.expires_at).await?;
        Ok(token)
    }

    /// The person's answer. With the box ticked: records the acceptance and
    /// returns the (updated) account and the pending login, once.
    pub async fn accept_cgu_at_login(&self, token: &str, ticked: bool) -> FlowResult<(Account, PendingCgu)> {
        let Some(pending) = self.get_json::<PendingCgu>(&pending_key(token)).await? else {
            return Err(FlowError::Expired);
        };
        if self.now() >= pending.expires_at {
            return Err(FlowError::Expired);
        }
        if !ticked {
            return Err(FlowError::CguNotAccepted);
        }
        let Some(pending) = self.take_json::<PendingCgu>(&pending_key(token)).await? else {
            return Err(FlowError::Expired);
        };
        let Some(mut account) = self.accounts.find_by_id(pending.account_id).await? else {
            return Err(FlowError::Expired);
        };
        // Reset, locked or disabled meanwhile: the login no longer stands.
        if account.state != AccountState::Active || account.sessions_valid_after > pending.authenticated_at {
            return Err(FlowError::Expired);
        }
        let now = self.now();
        account.cgu_version = Some(self.cgu_version.clone());
        account.cgu_accepted_at = Some(now);
        account.updated_at = now;
        self.accounts.update(&account).await?;
        self.audit.record(AuditEvent::CguAccepted {
            login: account.login.as_str().to_owned(),
            version: self.cgu_version.clone(),
        });
        Ok((account, pending))
    }
}
