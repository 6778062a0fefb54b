//! "Mot de passe oublié ?": by the validated e-mail address (a single-use
//! link with a short expiry) or by the two secret questions (wrong answers
//! throttled). Both end with a new password under the policy, and every
//! SSO session of the account ends.
//!
//! No step tells whether a login or an address exists: the e-mail request
//! always answers the same, and a login without questions gets decoy
//! questions that are always the same for that login.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountState, Login};
use crate::lifecycle::{FlowError, FlowResult, Lifecycle, MailKind, key, new_code};
use crate::ports::AuditEvent;
use crate::questions::normalise_answer;
use crate::secret::Secret;
use crate::throttle::{Admission, ThrottleKind};

/// A granted password reset.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResetGrant {
    pub account_id: i64,
    pub login: String,
    pub expires_at: DateTime<Utc>,
    /// The password hash when the grant was made: a password changed
    /// meanwhile spends the grant.
    password_hash: Option<String>,
}

fn reset_key(code: &str) -> String {
    key("reset", code)
}

const QUESTIONS: ThrottleKind = ThrottleKind::SecretAnswers;

impl Lifecycle {
    async fn active_account(&self, login: &str) -> FlowResult<Option<Account>> {
        let Ok(login) = Login::parse(login.trim()) else { return Ok(None) };
        Ok(self.accounts.find_by_login(&login).await?.filter(|a| a.state == AccountState::Active))
    }

    async fn grant(&self, account: &Account, minutes: i64) -> FlowResult<(String, ResetGrant)> {
        let code = new_code()?;
        let grant = ResetGrant {
            account_id: account.id,
            login: account.login.as_str().to_owned(),
            expires_at: self.now() + Duration::minutes(minutes),
            password_hash: account.password_hash.clone(),
        };
        self.put_json(&reset_key(&code), &grant, grant.expires_at).await?;
        Ok((code, grant))
    }

    /// Sends a reset link when `login` is active and `email` is its
    /// validated address. Answers the same in every case.
    pub async fn forgot_by_email(&self, login: &str, email: &str, source: &str) -> FlowResult<()> {
        // Requests per address are limited like failed logins.
        if self.throttle.address_over_limit(ThrottleKind::ResetByEmail, source).await? {
            return Ok(());
        }
        let Some(account) = self.active_account(login).await? else { return Ok(()) };
        let extras = self.security.get(account.id).await?;
        let matches = extras.email_is_verified(&account)
            && account.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email.trim()));
        let Some(to) = account.email.clone().filter(|_| matches) else { return Ok(()) };
        if !self.mail_allowed(&to).await? {
            return Ok(());
        }
        let (code, grant) = self.grant(&account, self.policy.reset_link_minutes).await?;
        self.send(&MailKind::PasswordReset { code, expires_at: grant.expires_at }, &to, &account.display_name())
            .await?;
        Ok(())
    }

    /// The two questions to ask for `login` (decoys when it has none).
    pub async fn recovery_questions(&self, login: &str) -> FlowResult<(String, String)> {
        if let Some(account) = self.active_account(login).await?
            && let Some(q) = self.security.get(account.id).await?.questions
        {
            return Ok((q.question1, q.question2));
        }
        Ok(self.decoy_questions(login))
    }

    /// Checks the answers; right ones give a reset code (used at once by
    /// the page, not mailed). Wrong answers are throttled per login and
    /// per address.
    pub async fn answer_recovery_questions(&self, login: &str, a1: &str, a2: &str, source: &str) -> FlowResult<String> {
        let typed = login.trim().to_owned();
        if self.throttle.attempt(QUESTIONS, &typed, source).await? == Admission::Refused {
            return Err(FlowError::Throttled);
        }
        let account = self.active_account(&typed).await?;
        let questions = match &account {
            Some(a) => self.security.get(a.id).await?.questions,
            None => None,
        };
        let (h1, h2) = match &questions {
            Some(q) => (Some(q.answer1_hash.clone()), Some(q.answer2_hash.clone())),
            None => (None, None),
        };
        let ok1 = self.hashing.verify(Secret::new(normalise_answer(a1)), h1).await?;
        let ok2 = self.hashing.verify(Secret::new(normalise_answer(a2)), h2).await?;
        match account {
            Some(account) if ok1 && ok2 => {
                self.throttle.succeeded(QUESTIONS, &typed, source).await?;
                let (code, _) = self.grant(&account, 15).await?;
                Ok(code)
            }
            _ => {
                self.throttle.failed(QUESTIONS, source).await?;
                Err(FlowError::WrongAnswers)
            }
        }
    }

    /// The grant behind a reset code, without spending it (GET).
    pub async fn reset_grant(&self, code: &str) -> FlowResult<ResetGrant> {
        match self.get_json::<ResetGrant>(&reset_key(code)).await? {
            Some(g) if self.now() < g.expires_at => Ok(g),
            _ => Err(FlowError::Expired),
        }
    }

    /// Sets the new password (spending the code) and ends every session of
    /// the account.
    pub async fn reset_password(&self, code: &str, password: &str, confirmation: &str) -> FlowResult<Account> {
        let grant = self.reset_grant(code).await?;
        let Some(mut account) = self.accounts.find_by_id(grant.account_id).await? else {
            return Err(FlowError::Expired);
        };
        if account.state != AccountState::Active || account.password_hash != grant.password_hash {
            return Err(FlowError::Expired);
        }
        self.check_password(&account, password, confirmation)?;
        if self.take_json::<ResetGrant>(&reset_key(code)).await?.is_none() {
            return Err(FlowError::Expired);
        }
        let now = self.now();
        account.password_hash = Some(self.hashing.hash(Secret::new(password)).await?);
        account.sessions_valid_after = now;
        account.failed_logins = 0;
        account.updated_at = now;
        self.accounts.update(&account).await?;
        self.throttle.forget_login(ThrottleKind::Password, account.login.as_str()).await?;
        self.audit.record(AuditEvent::PasswordChanged { login: account.login.as_str().to_owned(), how: "forgotten" });
        Ok(account)
    }
}
