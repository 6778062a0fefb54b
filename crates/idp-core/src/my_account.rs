//! "Mon compte", on the SSO session: change the personal e-mail (valid only
//! once its link is followed), the password (the current one required),
//! the secret questions; see recent logins; download what the ENT holds.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::lifecycle::{FlowError, FlowResult, Lifecycle, MailKind, key, new_code};
use crate::ports::AuditEvent;
use crate::secret::Secret;
use crate::throttle::{Admission, ThrottleKind};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct EmailChange {
    account_id: i64,
    email: String,
    expires_at: DateTime<Utc>,
    /// When the change was asked: a reset or a new password since then
    /// voids it (whoever asked may no longer be the account's owner).
    requested_at: DateTime<Utc>,
}

fn change_key(code: &str) -> String {
    key("email-change", code)
}

/// What "Mon compte" shows and what the download holds.
#[derive(Clone, Debug, Serialize)]
pub struct AccountData {
    pub login: String,
    pub profile: &'static str,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub schools: Vec<String>,
    pub state: &'static str,
    pub cgu_version: Option<String>,
    pub cgu_accepted_at: Option<DateTime<Utc>>,
    /// The texts of the chosen questions (the answers are only kept hashed
    /// and are not included).
    pub secret_questions: Vec<String>,
    pub attributes: std::collections::BTreeMap<String, Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub recent_logins: Vec<crate::lifecycle::LoginRecord>,
}

impl Lifecycle {
    /// Everything the ENT holds about the account (no password hashes).
    pub async fn account_data(&self, account: &Account) -> FlowResult<AccountData> {
        let extras = self.security.get(account.id).await?;
        let questions = extras.questions.as_ref().map(|q| vec![q.question1.clone(), q.question2.clone()]);
        Ok(AccountData {
            login: account.login.as_str().to_owned(),
            profile: account.profile.as_str(),
            given_name: account.given_name.clone(),
            family_name: account.family_name.clone(),
            email: account.email.clone(),
            email_verified: extras.email_is_verified(account),
            schools: account.schools.clone(),
            state: account.state.as_str(),
            cgu_version: account.cgu_version.clone(),
            cgu_accepted_at: account.cgu_accepted_at,
            secret_questions: questions.unwrap_or_default(),
            attributes: account.attributes.clone(),
            created_at: account.created_at,
            last_login_at: account.last_login_at,
            recent_logins: self.security.recent_logins(account.id, 10).await?,
        })
    }

    /// Changes the password; the current one is required. Every session
    /// ends: the caller opens a fresh one for this browser.
    pub async fn change_password(
        &self,
        account: &Account,
        current: &str,
        password: &str,
        confirmation: &str,
        source: &str,
    ) -> FlowResult<Account> {
        let login = account.login.as_str();
        self.check_current_password(account, current, source).await?;
        self.check_password(account, password, confirmation)?;
        let mut account = account.clone();
        let now = self.now();
        account.password_hash = Some(self.hashing.hash(Secret::new(password)).await?);
        account.sessions_valid_after = now;
        account.updated_at = now;
        self.accounts.update(&account).await?;
        self.audit.record(AuditEvent::PasswordChanged { login: login.to_owned(), how: "mon compte" });
        Ok(account)
    }

    /// The current password, checked before any change of what recovers
    /// the account (someone at an unattended, logged-in computer must not
    /// be able to set their own address or answers). Throttled as a login.
    pub async fn check_current_password(&self, account: &Account, current: &str, source: &str) -> FlowResult<()> {
        let login = account.login.as_str();
        if self.throttle.attempt(ThrottleKind::Password, login, source).await? == Admission::Refused {
            return Err(FlowError::Throttled);
        }
        if !self.hashing.verify(Secret::new(current), account.password_hash.clone()).await? {
            self.throttle.failed(ThrottleKind::Password, source).await?;
            return Err(FlowError::WrongPassword);
        }
        self.throttle.succeeded(ThrottleKind::Password, login, source).await?;
        Ok(())
    }

    /// Sends a validation link to a new address (after the current
    /// password); the address replaces the old one only when the link is
    /// followed.
    pub async fn request_email_change(
        &self,
        account: &Account,
        current: &str,
        (email, confirmation): (&str, &str),
        source: &str,
    ) -> FlowResult<()> {
        self.check_current_password(account, current, source).await?;
        let email = self.new_address(email, confirmation).await?;
        let code = new_code()?;
        let expires_at = self.now() + Duration::hours(self.policy.email_link_hours);
        let change = EmailChange { account_id: account.id, email: email.clone(), expires_at, requested_at: self.now() };
        self.put_json(&change_key(&code), &change, expires_at).await?;
        self.send(&MailKind::EmailChange { code, expires_at }, &email, &account.display_name()).await?;
        Ok(())
    }

    /// The address a change code is for, without spending it (GET).
    pub async fn peek_email_change(&self, code: &str) -> FlowResult<String> {
        match self.get_json::<EmailChange>(&change_key(code)).await? {
            Some(c) if self.now() < c.expires_at => Ok(c.email),
            _ => Err(FlowError::Expired),
        }
    }

    /// Spends a change code: the new address is the account's, validated.
    /// The previous address, if any, is told of the change.
    pub async fn confirm_email_change(&self, code: &str) -> FlowResult<Account> {
        self.peek_email_change(code).await?;
        let Some(change) = self.take_json::<EmailChange>(&change_key(code)).await? else {
            return Err(FlowError::Expired);
        };
        let Some(mut account) = self.accounts.find_by_id(change.account_id).await? else {
            return Err(FlowError::Expired);
        };
        if account.sessions_valid_after > change.requested_at {
            return Err(FlowError::Expired);
        }
        let now = self.now();
        let previous = account.email.replace(change.email.clone());
        account.updated_at = now;
        let mut extras = self.security.get(account.id).await?;
        extras.email_verified = Some(change.email.clone());
        extras.email_verified_at = Some(now);
        self.security.save(account.id, &extras).await?;
        self.accounts.update(&account).await?;
        self.audit.record(AuditEvent::EmailValidated { login: account.login.as_str().to_owned() });
        if let Some(previous) = previous.filter(|p| !p.eq_ignore_ascii_case(&change.email)) {
            let notice = MailKind::AddressReplaced { new_address: mask_address(&change.email) };
            self.send(&notice, &previous, &account.display_name()).await?;
        }
        Ok(account)
    }

    /// Replaces the secret questions (after the current password).
    pub async fn change_questions(
        &self,
        account: &Account,
        current: &str,
        answers: (&str, &str, &str, &str),
        source: &str,
    ) -> FlowResult<()> {
        self.check_current_password(account, current, source).await?;
        let (q1, a1, q2, a2) = answers;
        let mut extras = self.security.get(account.id).await?;
        extras.questions = Some(self.secret_answers(q1, a1, q2, a2).await?);
        self.security.save(account.id, &extras).await?;
        Ok(())
    }
}

/// An address shown in a notice sent elsewhere: its first character and
/// its domain (`l…@example.fr`).
fn mask_address(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".to_owned(),
    }
}
