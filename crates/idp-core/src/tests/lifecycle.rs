//! Unit tests of the account flows on small in-memory fakes of the ports
//! (the adapters of idp-store are tested over HTTP by the black-box tests).

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::Result;
use crate::account::{Account, AccountState, Login, NewAccount, Profile};
use crate::activation::Step;
use crate::cgu::ResumeTarget;
use crate::clock::FixedClock;
use crate::lifecycle::{AccountExtras, FlowError, Lifecycle, LifecyclePolicy, LoginRecord, MailKind};
use crate::password_policy::PasswordPolicy;
use crate::ports::*;
use crate::secret::Secret;
use crate::throttle::{Throttle, ThrottlePolicy};

#[derive(Default)]
struct Fakes {
    accounts: Mutex<Vec<Account>>,
    extras: Mutex<HashMap<i64, AccountExtras>>,
    records: Mutex<HashMap<String, String>>,
    counters: Mutex<HashMap<String, u64>>,
    mails: Mutex<Vec<(String, String)>>,
    /// The slowdown delays the throttle asked for.
    paused: Mutex<std::time::Duration>,
    /// Runs once on the records just before the next `take`: what another
    /// request does between a check and the spending of a code.
    before_take: Mutex<Option<Meanwhile>>,
}

type Meanwhile = Box<dyn FnOnce(&mut HashMap<String, String>) + Send>;

#[async_trait]
impl AccountRepository for Fakes {
    async fn find_candidates(&self, _: &str) -> Result<Vec<Account>> {
        Ok(Vec::new())
    }

    async fn find_by_login(&self, login: &Login) -> Result<Option<Account>> {
        Ok(self.accounts.lock().unwrap().iter().find(|a| a.login.canonical() == login.canonical()).cloned())
    }
    async fn find_by_id(&self, id: i64) -> Result<Option<Account>> {
        Ok(self.accounts.lock().unwrap().iter().find(|a| a.id == id).cloned())
    }
    async fn create(&self, _: NewAccount) -> Result<Account> {
        Err(crate::Error::Storage("not used by these tests".into()))
    }
    async fn update(&self, account: &Account) -> Result<()> {
        // As the SQL repository: refused when the row changed since it was read.
        for a in self.accounts.lock().unwrap().iter_mut().filter(|a| a.id == account.id) {
            if a.version != account.version {
                return Err(crate::Error::Conflict(format!("account '{}' changed since it was read", a.login)));
            }
            *a = Account { version: account.version + 1, ..account.clone() };
        }
        Ok(())
    }
    async fn delete(&self, _: &Login) -> Result<bool> {
        Err(crate::Error::Storage("not used by these tests".into()))
    }
    async fn apply_batch(&self, _: Vec<NewAccount>, _: Vec<Account>) -> Result<()> {
        Err(crate::Error::Storage("not used by these tests".into()))
    }
    async fn record_failed_login(&self, _: i64) -> Result<i32> {
        Ok(1)
    }
    async fn record_login(&self, _: i64, _: DateTime<Utc>) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl AccountSecurityRepository for Fakes {
    async fn get(&self, id: i64) -> Result<AccountExtras> {
        Ok(self.extras.lock().unwrap().get(&id).cloned().unwrap_or_default())
    }
    async fn save(&self, id: i64, extras: &AccountExtras) -> Result<()> {
        self.extras.lock().unwrap().insert(id, extras.clone());
        Ok(())
    }
    async fn record_login(&self, _: i64, _: DateTime<Utc>, _: &str) -> Result<()> {
        Ok(())
    }
    async fn recent_logins(&self, _: i64, _: u64) -> Result<Vec<LoginRecord>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl EphemeralStore for Fakes {
    async fn put(&self, key: &str, value: String, _: std::time::Duration) -> Result<()> {
        self.records.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn put_if_absent(&self, key: &str, value: String, _: std::time::Duration) -> Result<bool> {
        let mut records = self.records.lock().unwrap();
        if records.contains_key(key) {
            return Ok(false);
        }
        records.insert(key.to_owned(), value);
        Ok(true)
    }
    async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.records.lock().unwrap().get(key).cloned())
    }
    async fn take(&self, key: &str) -> Result<Option<String>> {
        let mut records = self.records.lock().unwrap();
        if let Some(meanwhile) = self.before_take.lock().unwrap().take() {
            meanwhile(&mut records);
        }
        Ok(records.remove(key))
    }
    async fn remove(&self, key: &str) -> Result<()> {
        self.records.lock().unwrap().remove(key);
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for Fakes {
    async fn pause(&self, delay: std::time::Duration) {
        *self.paused.lock().unwrap() += delay;
    }

    async fn hit(&self, key: &str, _: std::time::Duration) -> Result<u64> {
        let mut c = self.counters.lock().unwrap();
        let n = c.entry(key.to_owned()).or_default();
        *n += 1;
        Ok(*n)
    }
    async fn count(&self, key: &str) -> Result<u64> {
        Ok(self.counters.lock().unwrap().get(key).copied().unwrap_or(0))
    }
    async fn clear(&self, key: &str) -> Result<()> {
        self.counters.lock().unwrap().remove(key);
        Ok(())
    }
}

/// "Hashes" by prefixing: enough to check what is compared.
#[async_trait]
impl PasswordHashing for Fakes {
    async fn hash(&self, password: Secret) -> Result<String> {
        Ok(format!("h:{}", password.expose()))
    }
    async fn verify(&self, password: Secret, hash: Option<String>) -> Result<bool> {
        Ok(hash.is_some_and(|h| h == format!("h:{}", password.expose())))
    }
}

#[async_trait]
impl Mailer for Fakes {
    async fn send(&self, mail: OutgoingMail) -> Result<()> {
        self.mails.lock().unwrap().push((mail.to, mail.text));
        Ok(())
    }
}

impl MailComposer for Fakes {
    fn compose(&self, kind: &MailKind, to: &str, _: &str) -> Result<OutgoingMail> {
        let code = match kind {
            MailKind::ActivationValidation { code, .. }
            | MailKind::EmailChange { code, .. }
            | MailKind::PasswordReset { code, .. } => code.clone(),
            MailKind::AddressReplaced { new_address } => new_address.clone(),
            MailKind::SecondFactorRemoved => String::new(),
        };
        Ok(OutgoingMail { to: to.to_owned(), subject: String::new(), text: code, html: None })
    }
}

impl AuditLog for Fakes {
    fn record(&self, _: AuditEvent) {}
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0).unwrap()
}

fn setup() -> (Lifecycle, Arc<Fakes>, Arc<FixedClock>) {
    let fakes = Arc::new(Fakes::default());
    let clock = Arc::new(FixedClock::new(start()));
    fakes.accounts.lock().unwrap().push(Account {
        id: 1,
        login: Login::parse("l.petit").unwrap(),
        profile: Profile::Eleve,
        given_name: "Léa".into(),
        family_name: "Petit".into(),
        email: None,
        schools: vec![],
        state: AccountState::Provisioned,
        password_hash: None,
        provisional_hash: Some("h:Prov1soire".into()),
        provisional_set_at: Some(start()),
        cgu_version: None,
        cgu_accepted_at: None,
        sessions_valid_after: DateTime::<Utc>::UNIX_EPOCH,
        failed_logins: 0,
        attributes: Default::default(),
        created_at: start(),
        updated_at: start(),
        last_login_at: None,
        version: 0,
    });
    let lifecycle = Lifecycle {
        accounts: fakes.clone(),
        security: fakes.clone(),
        ephemeral: fakes.clone(),
        hashing: fakes.clone(),
        limiter: fakes.clone(),
        throttle: Throttle::new(fakes.clone(), ThrottlePolicy::default()),
        mailer: fakes.clone(),
        composer: fakes.clone(),
        audit: fakes.clone(),
        clock: clock.clone(),
        policy: LifecyclePolicy::default(),
        passwords: PasswordPolicy::default(),
        cgu_version: "3".into(),
    };
    (lifecycle, fakes, clock)
}

#[tokio::test]
async fn a_code_does_not_validate_an_address_typed_after_it_was_sent() {
    let (l, fakes, _) = setup();
    let a = l.start_activation("l.petit", Secret::new("Prov1soire"), "ip", None).await.unwrap();
    l.accept_cgu(&a.id, true).await.unwrap();
    l.set_activation_email(&a.id, "p@ex.fr", "p@ex.fr").await.unwrap();
    let code = fakes.mails.lock().unwrap().last().unwrap().1.clone();
    // Between the check of the code and its spending, the attempt gets
    // another address (the e-mail step posted again in another tab).
    let id = a.id.clone();
    *fakes.before_take.lock().unwrap() = Some(Box::new(move |records: &mut HashMap<String, String>| {
        for json in records.values_mut() {
            let Ok(mut v) = serde_json::from_str::<serde_json::Value>(json) else { continue };
            if v["id"] == id.as_str() && v.get("step").is_some() {
                v["email"] = "autre@ex.fr".into();
                *json = v.to_string();
            }
        }
    }));
    assert!(matches!(l.confirm_email_code(&code).await, Err(FlowError::Expired)));
    let attempt = l.attempt(&a.id).await.unwrap();
    assert_eq!(attempt.email.as_deref(), Some("autre@ex.fr"));
    assert!(!attempt.email_verified, "the other address is not validated by the code sent to p@ex.fr");
}

#[tokio::test]
async fn the_wizard_goes_step_by_step_and_activates() {
    let (l, fakes, _) = setup();
    let a = l.start_activation("L.PETIT", Secret::new("Prov1soire"), "ip", None).await.unwrap();
    assert_eq!(a.step, Step::Cgu);
    assert!(matches!(l.set_activation_email(&a.id, "p@ex.fr", "p@ex.fr").await, Err(FlowError::WrongStep)));
    assert!(matches!(l.accept_cgu(&a.id, false).await, Err(FlowError::CguNotAccepted)));
    assert_eq!(l.accept_cgu(&a.id, true).await.unwrap().step, Step::Email);
    assert!(matches!(l.set_activation_email(&a.id, "p@ex.fr", "q@ex.fr").await, Err(FlowError::EmailMismatch)));
    assert!(matches!(l.set_activation_email(&a.id, "pas une adresse", "x").await, Err(FlowError::EmailInvalid)));
    assert_eq!(l.set_activation_email(&a.id, "p@ex.fr", "P@EX.FR").await.unwrap().step, Step::AwaitingEmail);
    let code = fakes.mails.lock().unwrap().last().unwrap().1.clone();
    // Peeking (GET) spends nothing; confirming (POST) does, once.
    l.peek_email_code(&code).await.unwrap();
    l.peek_email_code(&code).await.unwrap();
    assert_eq!(l.confirm_email_code(&code).await.unwrap().step, Step::Password);
    assert!(matches!(l.confirm_email_code(&code).await, Err(FlowError::Expired)));
    assert!(matches!(l.finish_activation(&a.id, "court", "court").await, Err(FlowError::Password(_))));
    let (account, _, _) = l.finish_activation(&a.id, "Vélo-Rouge-27", "Vélo-Rouge-27").await.unwrap();
    assert_eq!(account.state, AccountState::Active);
    assert_eq!(account.email.as_deref(), Some("p@ex.fr"));
    assert_eq!(account.cgu_version.as_deref(), Some("3"));
    assert!(account.provisional_hash.is_none());
    assert!(l.security.get(1).await.unwrap().email_is_verified(&account));
    assert!(matches!(l.attempt(&a.id).await, Err(FlowError::Expired)), "the attempt is over");
    assert!(matches!(
        l.start_activation("l.petit", Secret::new("Prov1soire"), "ip", None).await,
        Err(FlowError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn attempts_expire_and_are_replaced() {
    let (l, _, clock) = setup();
    let first = l.start_activation("l.petit", Secret::new("Prov1soire"), "ip", None).await.unwrap();
    let second = l.start_activation("l.petit", Secret::new("Prov1soire"), "ip", None).await.unwrap();
    assert!(matches!(l.attempt(&first.id).await, Err(FlowError::Expired)), "one live attempt per account");
    l.attempt(&second.id).await.unwrap();
    clock.advance(Duration::hours(48));
    assert!(matches!(l.attempt(&second.id).await, Err(FlowError::Expired)));
    clock.advance(Duration::days(90));
    assert!(matches!(
        l.start_activation("l.petit", Secret::new("Prov1soire"), "ip", None).await,
        Err(FlowError::ProvisionalExpired)
    ));
}

#[tokio::test]
async fn secret_questions_are_hashed_normalised_and_checked() {
    let (l, _, _) = setup();
    let q = crate::questions::default_questions();
    let a = l.start_activation("l.petit", Secret::new("Prov1soire"), "ip", None).await.unwrap();
    l.accept_cgu(&a.id, true).await.unwrap();
    let same = l.choose_activation_questions(&a.id, (&q[0], "x", &q[0], "y")).await;
    assert!(matches!(same, Err(FlowError::SameQuestion)));
    let unknown = l.choose_activation_questions(&a.id, ("Autre ?", "x", &q[0], "y")).await;
    assert!(matches!(unknown, Err(FlowError::UnknownQuestion)));
    l.choose_activation_questions(&a.id, (&q[0], " Médor ", &q[1], "Tours")).await.unwrap();
    l.finish_activation(&a.id, "Vélo-Rouge-27", "Vélo-Rouge-27").await.unwrap();
    let stored = l.security.get(1).await.unwrap().questions.unwrap();
    assert_eq!(stored.answer1_hash, "h:medor");
    assert!(matches!(l.answer_recovery_questions("l.petit", "rex", "tours", "ip").await, Err(FlowError::WrongAnswers)));
    let code = l.answer_recovery_questions("l.petit", "MÉDOR", "  tours", "ip").await.unwrap();
    let account = l.reset_password(&code, "Train-Vert-88", "Train-Vert-88").await.unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("h:Train-Vert-88"));
    assert!(matches!(l.reset_password(&code, "Train-Vert-88", "Train-Vert-88").await, Err(FlowError::Expired)));
    // Unknown logins get decoy questions, always the same.
    assert_eq!(l.recovery_questions("personne").await.unwrap(), l.recovery_questions("personne").await.unwrap());
}

#[tokio::test]
async fn a_pending_cgu_acceptance_is_single_use() {
    let (l, _, _) = setup();
    let mut account = l.accounts.find_by_id(1).await.unwrap().unwrap();
    account.state = AccountState::Active;
    account.cgu_version = Some("2".into());
    l.accounts.update(&account).await.unwrap();
    assert!(l.must_accept_cgu(&account));
    let target = ResumeTarget {
        service: Some("https://s.example/".into()),
        renew: true,
        post: false,
        fresh: true,
        upstream: None,
        amr: vec!["pwd".into()],
    };
    let checked_at = l.now() - Duration::minutes(5);
    let token = l.begin_cgu(&account, checked_at, target.clone()).await.unwrap();
    assert!(matches!(l.accept_cgu_at_login(&token, false).await, Err(FlowError::CguNotAccepted)));
    let (account, pending) = l.accept_cgu_at_login(&token, true).await.unwrap();
    assert_eq!(pending.target, target);
    // Reading the charter is not a login: the credential check keeps its time.
    assert_eq!(pending.authenticated_at, checked_at);
    assert!(!l.must_accept_cgu(&account));
    assert!(matches!(l.accept_cgu_at_login(&token, true).await, Err(FlowError::Expired)));
}

#[tokio::test]
async fn provisional_password_guesses_are_refused_per_address_and_slowed_per_login() {
    let (l, fakes, _) = setup();
    let wrong = || Secret::new("faux");
    for _ in 0..5 {
        assert!(matches!(
            l.start_activation("l.petit", wrong(), "10.0.0.66", None).await,
            Err(FlowError::InvalidCredentials)
        ));
    }
    // The sixth from that address is refused before any check, even right.
    let right = l.start_activation("l.petit", Secret::new("Prov1soire"), "10.0.0.66", None).await;
    assert!(matches!(right, Err(FlowError::Throttled)));
    assert_eq!(*fakes.paused.lock().unwrap(), std::time::Duration::ZERO);
    // From elsewhere: admitted, but slowed once the login is over its limit.
    for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"] {
        let _ = l.start_activation("l.petit", wrong(), address, None).await;
    }
    let _ = l.start_activation("l.petit", wrong(), "10.0.0.6", None).await;
    assert_eq!(*fakes.paused.lock().unwrap(), std::time::Duration::from_secs(1));
    assert!(l.start_activation("l.petit", Secret::new("Prov1soire"), "10.0.0.7", None).await.is_ok());
}
