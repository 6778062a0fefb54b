//! The activation wizard (also "Mon compte a été réinitialisé."), as a
//! state machine independent of any page, so that themes and a JSON API can
//! drive the same flow.
//!
//! ```text
//! start(identifiant, provisoire) ─► Cgu ─accept─► Email ─set_email─► AwaitingEmail
//!                                               │                   │ confirm_email (code from the mail, POST)
//!                                               └─choose_questions─►├─► Password ─set_password─► Done
//! ```
//! `back` goes one step back. The attempt lives server-side in the
//! [`crate::ports::EphemeralStore`] under a random id (the browser keeps it
//! in a cookie); one account has one live attempt, a new one replaces the
//! old. The attempt, and the link mailed for it, expire
//! `email_link_hours` (48) after the start.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountState, Login, parse_email};
use crate::lifecycle::{FlowError, FlowResult, Lifecycle, MailKind, SecretAnswers, key, new_code};
use crate::password_policy::Strength;
use crate::ports::AuditEvent;
use crate::secret::Secret;
use crate::throttle::{Admission, ThrottleKind};

/// Where an attempt stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Read and accept the terms of use.
    Cgu,
    /// Give a personal e-mail address, or choose secret questions.
    Email,
    /// The validation e-mail is sent; waiting for its link (or questions).
    AwaitingEmail,
    /// Choose the password.
    Password,
}

/// One activation attempt.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attempt {
    /// The random id the browser keeps (a secret).
    pub id: String,
    pub account_id: i64,
    pub login: String,
    pub display_name: String,
    /// The account was reset by the help desk (reactivation).
    pub reset: bool,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The account's provisional password date when the attempt started: a
    /// new reset in between ends the attempt.
    pub provisional_set_at: Option<DateTime<Utc>>,
    pub step: Step,
    pub cgu_version: Option<String>,
    pub cgu_accepted_at: Option<DateTime<Utc>>,
    /// The address typed (validated once `email_verified`).
    pub email: Option<String>,
    pub email_verified: bool,
    pub questions: Option<SecretAnswers>,
    /// The service the person came from (CAS `service` URL), for "Accès ENT".
    pub service: Option<String>,
}

/// What the mailed link points at.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct EmailCode {
    attempt_id: String,
    email: String,
}

const KIND: ThrottleKind = ThrottleKind::Password;

fn attempt_key(id: &str) -> String {
    key("act", id)
}

fn account_key(account_id: i64) -> String {
    format!("act-account:{account_id}")
}

fn code_key(code: &str) -> String {
    key("act-code", code)
}

impl Lifecycle {
    /// First step: the identifiant and the provisional password. Unknown
    /// logins, wrong passwords and accounts that need no activation answer
    /// the same, after the same work.
    pub async fn start_activation(
        &self,
        login: &str,
        provisional: Secret,
        source: &str,
        service: Option<String>,
    ) -> FlowResult<Attempt> {
        let typed = login.trim().to_owned();
        if self.throttle.attempt(KIND, &typed, source).await? == Admission::Refused {
            return Err(FlowError::Throttled);
        }
        let account = match Login::parse(&typed) {
            Ok(l) => self.accounts.find_by_login(&l).await?,
            Err(_) => None,
        };
        let account = account.filter(|a| a.state.must_activate());
        let hash = account.as_ref().and_then(|a| a.provisional_hash.clone());
        let ok = self.hashing.verify(provisional, hash).await?;
        let Some(account) = account.filter(|_| ok) else {
            self.throttle.failed(KIND, source).await?;
            return Err(FlowError::InvalidCredentials);
        };
        self.throttle.succeeded(KIND, &typed, source).await?;
        let now = self.now();
        let set_at = account.provisional_set_at.unwrap_or(account.created_at);
        if now - set_at > Duration::days(self.policy.provisional_validity_days) {
            return Err(FlowError::ProvisionalExpired);
        }
        // One live attempt per account: forget the previous one.
        if let Some(old) = self.ephemeral.get(&account_key(account.id)).await? {
            self.ephemeral.remove(&attempt_key(&old)).await?;
        }
        let attempt = Attempt {
            id: new_code()?,
            account_id: account.id,
            login: account.login.as_str().to_owned(),
            display_name: account.display_name(),
            reset: account.state == AccountState::Reset,
            started_at: now,
            expires_at: now + Duration::hours(self.policy.email_link_hours),
            provisional_set_at: account.provisional_set_at,
            step: Step::Cgu,
            cgu_version: None,
            cgu_accepted_at: None,
            email: None,
            email_verified: false,
            questions: None,
            service,
        };
        self.ephemeral.put(&account_key(account.id), attempt.id.clone(), self.attempt_ttl(&attempt)).await?;
        self.save_attempt(&attempt).await?;
        Ok(attempt)
    }

    fn attempt_ttl(&self, attempt: &Attempt) -> std::time::Duration {
        ((attempt.expires_at - self.now()).max(Duration::zero()) + Duration::minutes(5))
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(300))
    }

    async fn save_attempt(&self, attempt: &Attempt) -> FlowResult<()> {
        Ok(self.put_json(&attempt_key(&attempt.id), attempt, attempt.expires_at).await?)
    }

    /// The live attempt with this id: not expired, not replaced by a newer
    /// attempt of the same account.
    pub async fn attempt(&self, id: &str) -> FlowResult<Attempt> {
        let Some(attempt) = self.get_json::<Attempt>(&attempt_key(id)).await? else {
            return Err(FlowError::Expired);
        };
        let current = self.ephemeral.get(&account_key(attempt.account_id)).await?;
        if current.as_deref() != Some(id) || self.now() >= attempt.expires_at {
            return Err(FlowError::Expired);
        }
        Ok(attempt)
    }

    /// Ends an attempt (the person starts again).
    pub async fn abandon_activation(&self, id: &str) -> FlowResult<()> {
        if let Ok(attempt) = self.attempt(id).await {
            self.ephemeral.remove(&account_key(attempt.account_id)).await?;
        }
        Ok(self.ephemeral.remove(&attempt_key(id)).await?)
    }

    /// The CGU step: the box must be ticked.
    pub async fn accept_cgu(&self, id: &str, ticked: bool) -> FlowResult<Attempt> {
        let mut attempt = self.attempt(id).await?;
        if attempt.step != Step::Cgu {
            return Err(FlowError::WrongStep);
        }
        if !ticked {
            return Err(FlowError::CguNotAccepted);
        }
        attempt.cgu_version = Some(self.cgu_version.clone());
        attempt.cgu_accepted_at = Some(self.now());
        attempt.step = Step::Email;
        self.save_attempt(&attempt).await?;
        Ok(attempt)
    }

    /// The e-mail step: the address twice; sends the validation link.
    pub async fn set_activation_email(&self, id: &str, email: &str, confirmation: &str) -> FlowResult<Attempt> {
        let mut attempt = self.attempt(id).await?;
        if !matches!(attempt.step, Step::Email | Step::AwaitingEmail) {
            return Err(FlowError::WrongStep);
        }
        let email = self.new_address(email, confirmation).await?;
        let code = new_code()?;
        let record = EmailCode { attempt_id: attempt.id.clone(), email: email.clone() };
        self.put_json(&code_key(&code), &record, attempt.expires_at).await?;
        attempt.email = Some(email.clone());
        attempt.email_verified = false;
        attempt.step = Step::AwaitingEmail;
        self.save_attempt(&attempt).await?;
        let kind = MailKind::ActivationValidation {
            code,
            expires_at: attempt.expires_at,
            hours: self.policy.email_link_hours,
        };
        self.send(&kind, &email, &attempt.display_name).await?;
        Ok(attempt)
    }

    /// An address typed twice for a validation mail: well formed, the same
    /// both times, and within the mail limit.
    pub(crate) async fn new_address(&self, email: &str, confirmation: &str) -> FlowResult<String> {
        let email = parse_email(email).map_err(|_| FlowError::EmailInvalid)?;
        if !email.eq_ignore_ascii_case(confirmation.trim()) {
            return Err(FlowError::EmailMismatch);
        }
        if !self.mail_allowed(&email).await? {
            return Err(FlowError::MailLimit);
        }
        Ok(email)
    }

    /// The attempt a mailed code belongs to, without spending the code (a
    /// GET, which mail scanners also do).
    pub async fn peek_email_code(&self, code: &str) -> FlowResult<Attempt> {
        let Some(record) = self.get_json::<EmailCode>(&code_key(code)).await? else {
            return Err(FlowError::Expired);
        };
        self.attempt_awaiting(&record).await
    }

    /// Spends the mailed code (the person pressed "Continuer"): the address
    /// is validated and the attempt goes on to the password. The attempt may
    /// continue in this browser even if it started in another one. The
    /// attempt is checked after the code is spent: an address typed anew in
    /// the meantime is not validated by the code sent to the previous one.
    pub async fn confirm_email_code(&self, code: &str) -> FlowResult<Attempt> {
        let Some(record) = self.take_json::<EmailCode>(&code_key(code)).await? else {
            return Err(FlowError::Expired);
        };
        let mut attempt = self.attempt_awaiting(&record).await?;
        attempt.email_verified = true;
        attempt.questions = None;
        attempt.step = Step::Password;
        self.save_attempt(&attempt).await?;
        Ok(attempt)
    }

    /// The attempt of a mailed code, if it still waits for the address the
    /// code was sent to.
    async fn attempt_awaiting(&self, record: &EmailCode) -> FlowResult<Attempt> {
        let attempt = self.attempt(&record.attempt_id).await?;
        if attempt.email.as_deref() != Some(record.email.as_str()) || attempt.step != Step::AwaitingEmail {
            return Err(FlowError::Expired);
        }
        Ok(attempt)
    }

    /// "Sinon ... Questions secrètes": two questions instead of an address.
    pub async fn choose_activation_questions(
        &self,
        id: &str,
        answers: (&str, &str, &str, &str),
    ) -> FlowResult<Attempt> {
        let mut attempt = self.attempt(id).await?;
        if !matches!(attempt.step, Step::Email | Step::AwaitingEmail) {
            return Err(FlowError::WrongStep);
        }
        let (q1, a1, q2, a2) = answers;
        attempt.questions = Some(self.secret_answers(q1, a1, q2, a2).await?);
        attempt.email = None;
        attempt.email_verified = false;
        attempt.step = Step::Password;
        self.save_attempt(&attempt).await?;
        Ok(attempt)
    }

    /// "Retour": one step back.
    pub async fn activation_back(&self, id: &str) -> FlowResult<Attempt> {
        let mut attempt = self.attempt(id).await?;
        attempt.step = match attempt.step {
            Step::Cgu | Step::Email => Step::Cgu,
            Step::AwaitingEmail | Step::Password => Step::Email,
        };
        if attempt.step == Step::Email {
            attempt.email_verified = false;
            attempt.questions = None;
        }
        self.save_attempt(&attempt).await?;
        Ok(attempt)
    }

    /// The last step: the password. The account becomes active, its
    /// sessions (if any) end, the attempt is over.
    pub async fn finish_activation(
        &self,
        id: &str,
        password: &str,
        confirmation: &str,
    ) -> FlowResult<(Account, Attempt, Strength)> {
        let attempt = self.attempt(id).await?;
        if attempt.step != Step::Password {
            return Err(FlowError::WrongStep);
        }
        let Some(mut account) = self.accounts.find_by_id(attempt.account_id).await? else {
            return Err(FlowError::Expired);
        };
        if !account.state.must_activate() || account.provisional_set_at != attempt.provisional_set_at {
            return Err(FlowError::Expired);
        }
        let strength = self.check_password(&account, password, confirmation)?;
        let hash = self.hashing.hash(Secret::new(password)).await?;
        let now = self.now();
        let mut extras = self.security.get(account.id).await?;
        if attempt.reset {
            // A reset may follow a takeover: only the means of recovery
            // chosen in this wizard remain.
            extras = crate::lifecycle::AccountExtras::default();
        }
        if attempt.email_verified
            && let Some(email) = &attempt.email
        {
            account.email = Some(email.clone());
            extras.email_verified = Some(email.clone());
            extras.email_verified_at = Some(now);
        }
        if let Some(q) = &attempt.questions {
            extras.questions = Some(q.clone());
        }
        account.password_hash = Some(hash);
        account.provisional_hash = None;
        account.provisional_set_at = None;
        account.state = AccountState::Active;
        account.cgu_version = attempt.cgu_version.clone();
        account.cgu_accepted_at = attempt.cgu_accepted_at;
        account.sessions_valid_after = now;
        account.failed_logins = 0;
        account.updated_at = now;
        self.security.save(account.id, &extras).await?;
        self.accounts.update(&account).await?;
        self.ephemeral.remove(&account_key(account.id)).await?;
        self.ephemeral.remove(&attempt_key(id)).await?;
        self.audit.record(AuditEvent::AccountActivated { login: account.login.as_str().to_owned() });
        Ok((account, attempt, strength))
    }
}
