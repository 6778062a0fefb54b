//! The school help desk: who administers which schools (by UAI), and what
//! the console at `/gestion/` may do with the accounts of those schools.
//!
//! An administrator sees only the accounts that carry at least one of
//! their UAIs; every other account is answered as absent
//! ([`ConsoleError::NotFound`]), never as forbidden, so that the console
//! tells nothing about other schools. An operator ([`Scope::Global`])
//! sees every account. Each action is written to the help desk's audit
//! trail ([`AdminRepository::record`]), which operators export.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::account::{Account, AccountState, Login, NewAccount, Profile, parse_email, parse_name, parse_uai};
use crate::clock::Clock;
use crate::import::{ImportError, Plan};
use crate::ports::{AccountRepository, EphemeralStore, PasswordHashing, RateLimiter, SessionStore};
use crate::secret::{Secret, provisional_password};
use crate::session::SsoSession;
use crate::{Error, Result};

/// Which accounts an administrator sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// An operator: every school.
    Global,
    /// The schools of these UAI codes (never empty).
    Schools(Vec<String>),
}

impl Scope {
    /// Whether `account` belongs to one of the scope's schools.
    pub fn sees(&self, account: &Account) -> bool {
        match self {
            Scope::Global => true,
            Scope::Schools(uais) => account.schools.iter().any(|s| uais.contains(s)),
        }
    }

    /// The UAIs of the scope; `None` for every school.
    pub fn schools(&self) -> Option<&[String]> {
        match self {
            Scope::Global => None,
            Scope::Schools(uais) => Some(uais),
        }
    }

    /// `*` for every school, else the UAIs separated by spaces.
    pub fn describe(&self) -> String {
        match self {
            Scope::Global => "*".to_owned(),
            Scope::Schools(uais) => uais.join(" "),
        }
    }
}

/// A granted role, as `idp admin list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminGrant {
    pub account_id: i64,
    pub login: String,
    pub scope: Scope,
    pub granted_at: DateTime<Utc>,
}

/// One line of the help desk's audit trail: who did what to whom, when,
/// from where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// The administrator's login, or `cli` for a command of the operator.
    pub actor: String,
    /// `grant`, `revoke`, `create`, `import`, `reset`, `unlock`, `disable`, `enable` (searches,
    /// which change nothing, are not recorded).
    pub action: String,
    /// The login acted upon (empty for a search).
    pub target: String,
    /// The client's address (`cli` for a command).
    pub source: String,
    /// More about the action (the scope granted, an import's counts).
    pub detail: String,
}

/// The attribute holding an élève's classes, shown and searched as the class.
pub const CLASS_ATTRIBUTE: &str = "ENTEleveClasses";

/// What the console's search asks for; every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// Part of the login, given name or family name (case-insensitive);
    /// empty for any.
    pub text: String,
    pub profile: Option<Profile>,
    pub state: Option<AccountState>,
    /// One of the account's classes ([`CLASS_ATTRIBUTE`]), as the
    /// directory writes it: `UAI$CLASS` (the SDET form) or the `CLASS`
    /// part alone; a whole class, never a part.
    pub class: Option<String>,
}

impl AccountFilter {
    /// Whether a filter other than the text is given.
    pub fn has_criteria(&self) -> bool {
        self.profile.is_some() || self.state.is_some() || self.class.is_some()
    }

    /// Whether `account` matches the criteria other than the text (which
    /// the store compares).
    pub fn matches(&self, account: &Account) -> bool {
        self.profile.is_none_or(|p| account.profile == p)
            && self.state.is_none_or(|s| account.state == s)
            && self.class.as_deref().is_none_or(|wanted| {
                let classes = account.attributes.get(CLASS_ATTRIBUTE).map(Vec::as_slice).unwrap_or_default();
                classes.iter().any(|c| class_is(c, wanted))
            })
    }
}

/// Whether the class value `value` (`UAI$CLASS` or `CLASS`) is `wanted`,
/// given whole or without its UAI.
fn class_is(value: &str, wanted: &str) -> bool {
    let (value, wanted) = (value.trim(), wanted.trim());
    value == wanted || value.split_once('$').is_some_and(|(_, class)| class == wanted)
}

/// Roles, the console's account search and its audit trail, in the
/// database.
#[async_trait]
pub trait AdminRepository: Send + Sync {
    /// Makes `account_id` an administrator of `scope`, replacing any
    /// earlier grant.
    async fn grant(&self, account_id: i64, scope: &Scope, at: DateTime<Utc>) -> Result<()>;
    /// Removes the role; false when there was none.
    async fn revoke(&self, account_id: i64) -> Result<bool>;
    async fn scope_of(&self, account_id: i64) -> Result<Option<Scope>>;
    /// Every grant, by login.
    async fn list(&self) -> Result<Vec<AdminGrant>>;
    /// At most `limit` accounts of `schools` (every school when `None`)
    /// matching `filter`, by login. The class may be compared loosely
    /// (the caller checks [`AccountFilter::matches`] again).
    async fn search(&self, schools: Option<&[String]>, filter: &AccountFilter, limit: u64) -> Result<Vec<Account>>;
    async fn record(&self, entry: &AuditEntry) -> Result<()>;
    /// The trail from `since` (all of it when `None`), oldest first.
    async fn audit_since(&self, since: Option<DateTime<Utc>>) -> Result<Vec<AuditEntry>>;
}

/// A signed-in person who holds a role.
#[derive(Clone, Debug)]
pub struct Administrator {
    pub account: Account,
    pub scope: Scope,
    /// The client's address, for the audit trail.
    pub source: String,
}

/// Why the console refuses something. Each maps to a French page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No such account in the administrator's schools (whether it exists
    /// elsewhere is not said).
    #[error("no such account in the administrator's schools")]
    NotFound,
    #[error("fewer than two characters searched")]
    QueryTooShort,
    #[error("too many searches")]
    Throttled,
    /// The session's login is older than [`REAUTHENTICATE_AFTER`] and the
    /// administrator's password was missing or wrong.
    #[error("the administrator's password is needed again")]
    PasswordNeeded,
    /// A field of the creation form is not valid (its name, as
    /// [`Error::Invalid`] gives it: `login`, `profile`, `given name`,
    /// `family name`, `email`, `school`).
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The login of a new account is taken (by any school's account).
    #[error("the login is taken")]
    LoginTaken,
    /// A line of an imported file is refused (nothing is kept).
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The imported file has more rows than [`IMPORT_MAX_ROWS`].
    #[error("too many rows to import")]
    TooManyRows,
    /// The imported file would create more accounts than
    /// [`IMPORT_MAX_CREATED`] (the CLI has no such limit).
    #[error("too many accounts to create")]
    TooManyCreated,
    /// No previewed import under this key for this administrator: used,
    /// expired or never made.
    #[error("no such import preview")]
    PreviewGone,
    /// The accounts changed since the preview: it no longer holds.
    #[error("the accounts changed since the preview")]
    PreviewStale,
    #[error(transparent)]
    Core(#[from] Error),
}

/// What the console's creation form gives.
#[derive(Clone, Debug, Default)]
pub struct AccountDraft {
    pub login: String,
    pub profile: String,
    pub given_name: String,
    pub family_name: String,
    /// Empty for none.
    pub email: String,
    pub school: String,
}

impl AccountDraft {
    /// The account to create, once every field is checked as
    /// `idp account create` checks it, in the administrator's schools only.
    fn checked(&self, scope: &Scope) -> ConsoleResult<NewAccount> {
        let field = |e: Error| match e {
            Error::Invalid { what, .. } => ConsoleError::Invalid(what),
            other => ConsoleError::Core(other),
        };
        let school = parse_uai(&self.school).map_err(field)?;
        if scope.schools().is_some_and(|uais| !uais.contains(&school)) {
            return Err(ConsoleError::Invalid("school"));
        }
        let email = self.email.trim();
        Ok(NewAccount {
            login: Login::parse(self.login.trim()).map_err(field)?,
            profile: Profile::parse(self.profile.trim()).map_err(field)?,
            given_name: parse_name("given name", &self.given_name).map_err(field)?,
            family_name: parse_name("family name", &self.family_name).map_err(field)?,
            email: (!email.is_empty()).then(|| parse_email(email)).transpose().map_err(field)?,
            schools: vec![school],
            state: AccountState::Provisioned,
            password_hash: None,
            provisional_hash: None,
            cgu_version: None,
            attributes: Default::default(),
        })
    }
}

pub type ConsoleResult<T> = std::result::Result<T, ConsoleError>;

/// Sensitive actions ask for the password again after this long since the
/// credentials were checked.
pub const REAUTHENTICATE_AFTER: Duration = Duration::minutes(15);
/// Searches per administrator and minute.
pub const SEARCHES_PER_MINUTE: u64 = 30;
/// Results shown for one search.
pub const SEARCH_LIMIT: u64 = 50;
/// How long the letter of a reset can be printed.
pub const LETTER_MINUTES: i64 = 15;

/// What a first-login letter prints for one person.
#[derive(Clone, Serialize, Deserialize)]
pub struct Letter {
    pub login: String,
    pub display_name: String,
    pub provisional_password: String,
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letter").field("login", &self.login).finish_non_exhaustive()
    }
}

/// The letters of one reset, kept for their administrator only.
#[derive(Serialize, Deserialize)]
struct Letters {
    admin_id: i64,
    /// The letters can be printed until then (decided with the clock; the
    /// store's TTL only bounds memory).
    until: DateTime<Utc>,
    letters: Vec<Letter>,
}

/// The help desk's operations, shared by every request and the CLI.
#[derive(Clone)]
pub struct Console {
    pub admins: Arc<dyn AdminRepository>,
    pub accounts: Arc<dyn AccountRepository>,
    pub sessions: Arc<dyn SessionStore>,
    pub hashing: Arc<dyn PasswordHashing>,
    pub limiter: Arc<dyn RateLimiter>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub clock: Arc<dyn Clock>,
}

impl Console {
    /// The administrator `account` is, if it is active and holds a role.
    pub async fn administrator(&self, account: Account, source: String) -> Result<Option<Administrator>> {
        if account.state != AccountState::Active {
            return Ok(None);
        }
        let scope = self.admins.scope_of(account.id).await?;
        Ok(scope.map(|scope| Administrator { account, scope, source }))
    }

    /// The accounts of the administrator's schools matching `filter`: a
    /// text of two characters at least, or a profile, state or class
    /// alone. At most [`SEARCH_LIMIT`], by login.
    pub async fn search(&self, admin: &Administrator, filter: &AccountFilter) -> ConsoleResult<Vec<Account>> {
        let mut filter = filter.clone();
        filter.text = filter.text.trim().to_owned();
        filter.class = filter.class.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
        let text_len = filter.text.chars().count();
        if text_len == 1 || (text_len == 0 && !filter.has_criteria()) {
            return Err(ConsoleError::QueryTooShort);
        }
        let key = format!("gestion-recherche:{}", admin.account.id);
        if self.limiter.hit(&key, std::time::Duration::from_secs(60)).await? > SEARCHES_PER_MINUTE {
            return Err(ConsoleError::Throttled);
        }
        let found = self.admins.search(admin.scope.schools(), &filter, SEARCH_LIMIT).await?;
        // The store filters by school already; the rules are checked again
        // here, where they are stated.
        Ok(found.into_iter().filter(|a| admin.scope.sees(a) && filter.matches(a)).collect())
    }

    /// The account `login` if it belongs to the administrator's schools.
    pub async fn account(&self, admin: &Administrator, login: &str) -> ConsoleResult<Account> {
        let login = Login::parse(login).map_err(|_| ConsoleError::NotFound)?;
        match self.accounts.find_by_login(&login).await? {
            Some(account) if admin.scope.sees(&account) => Ok(account),
            _ => Err(ConsoleError::NotFound),
        }
    }

    /// Whether `session` must give the password again before a sensitive
    /// action.
    pub fn needs_password(&self, session: &SsoSession) -> bool {
        self.clock.now() - session.authenticated_at > REAUTHENTICATE_AFTER
    }

    /// Checks the administrator's password when `session` is older than
    /// [`REAUTHENTICATE_AFTER`]; a right password renews the session's
    /// login instant, as a new login would.
    pub async fn confirm(&self, admin: &Administrator, session: &SsoSession, password: &str) -> ConsoleResult<()> {
        if !self.needs_password(session) {
            return Ok(());
        }
        let hash = admin.account.password_hash.clone();
        if password.is_empty() || !self.hashing.verify(Secret::new(password), hash).await? {
            return Err(ConsoleError::PasswordNeeded);
        }
        let left = session.authenticated_at + Duration::hours(8) - self.clock.now();
        let ttl = left.to_std().unwrap_or(std::time::Duration::from_secs(60));
        self.sessions.reauthenticate(session.id.expose(), self.clock.now(), None, ttl).await?;
        Ok(())
    }

    /// Resets the accounts `logins` of the administrator's schools (others
    /// are left out, unsaid) with a new provisional password each, as
    /// `idp account reset` does; returns the reset accounts, and the code
    /// under which their letters can be printed for [`LETTER_MINUTES`].
    /// The caller ends the accounts' sessions.
    pub async fn reset(&self, admin: &Administrator, logins: &[String]) -> ConsoleResult<(Vec<Account>, String)> {
        let mut done = Vec::new();
        let mut letters = Vec::new();
        for login in logins {
            let Ok(account) = self.account(admin, login).await else { continue };
            let password = provisional_password()?;
            let hash = self.hashing.hash(Secret::new(password.clone())).await?;
            let account = self.change(account, |a, now| a.reset(hash.clone(), now)).await?;
            self.audit(admin, "reset", account.login.as_str(), "").await?;
            letters.push(Letter {
                login: account.login.to_string(),
                display_name: account.display_name(),
                provisional_password: password,
            });
            done.push(account);
        }
        if done.is_empty() {
            return Err(ConsoleError::NotFound);
        }
        Ok((done, self.keep_letters(admin, letters).await?))
    }

    /// Creates a provisioned account of one of the administrator's schools
    /// with a generated provisional password, as `idp account create`
    /// does; returns it and the code of its letter, as [`Console::reset`].
    pub async fn create(&self, admin: &Administrator, draft: &AccountDraft) -> ConsoleResult<(Account, String)> {
        let new = draft.checked(&admin.scope)?;
        // A taken login is said whichever school holds it (logins are
        // unique across schools): attempts count with the searches, so
        // the form cannot list other schools' logins faster than a search.
        let key = format!("gestion-recherche:{}", admin.account.id);
        if self.limiter.hit(&key, std::time::Duration::from_secs(60)).await? > SEARCHES_PER_MINUTE {
            return Err(ConsoleError::Throttled);
        }
        if self.accounts.find_by_login(&new.login).await?.is_some() {
            return Err(ConsoleError::LoginTaken);
        }
        let school = new.schools.join(" ");
        let (account, password) =
            match crate::lifecycle::provision(self.accounts.as_ref(), self.hashing.as_ref(), new, None).await {
                Err(Error::Conflict(_)) => return Err(ConsoleError::LoginTaken),
                created => created?,
            };
        self.audit(admin, "create", account.login.as_str(), &school).await?;
        let letter = Letter {
            login: account.login.to_string(),
            display_name: account.display_name(),
            provisional_password: password,
        };
        let code = self.keep_letters(admin, vec![letter]).await?;
        Ok((account, code))
    }

    /// Keeps `letters` for [`LETTER_MINUTES`], for `admin` only; returns
    /// their code.
    async fn keep_letters(&self, admin: &Administrator, letters: Vec<Letter>) -> Result<String> {
        let code = crate::secret::random_token(32)?;
        let until = self.clock.now() + Duration::minutes(LETTER_MINUTES);
        let record =
            serde_json::to_string(&Letters { admin_id: admin.account.id, until, letters }).map_err(Error::Json)?;
        let ttl = std::time::Duration::from_secs(60 * (LETTER_MINUTES as u64 + 5));
        self.ephemeral.put(&letters_key(&code), record, ttl).await?;
        Ok(code)
    }

    /// The letters kept under `code`, for the administrator who made them.
    pub async fn letters(&self, admin: &Administrator, code: &str) -> ConsoleResult<Vec<Letter>> {
        let json = self.ephemeral.get(&letters_key(code)).await?.ok_or(ConsoleError::NotFound)?;
        match serde_json::from_str::<Letters>(&json) {
            Ok(kept) if kept.admin_id == admin.account.id && self.clock.now() <= kept.until => Ok(kept.letters),
            _ => Err(ConsoleError::NotFound),
        }
    }

    /// Unlocks, disables or enables an account of the administrator's
    /// schools. The caller ends the sessions of a disabled account.
    pub async fn set_state(&self, admin: &Administrator, login: &str, action: StateChange) -> ConsoleResult<Account> {
        let account = self.account(admin, login).await?;
        let account = self
            .change(account, |a, now| match action {
                StateChange::Unlock => a.unlock(now),
                StateChange::Disable => a.disable(now),
                StateChange::Enable => a.enable(now),
            })
            .await?;
        self.audit(admin, action.as_str(), account.login.as_str(), "").await?;
        Ok(account)
    }

    /// Writes `change` of `account`; when the row changed meanwhile (the
    /// person logged in), reads it again and applies the change once more.
    async fn change(&self, mut account: Account, change: impl Fn(&mut Account, DateTime<Utc>)) -> Result<Account> {
        for attempt in 0..2 {
            change(&mut account, self.clock.now());
            match self.accounts.update(&account).await {
                Err(Error::Conflict(_)) if attempt == 0 => {
                    account =
                        self.accounts.find_by_id(account.id).await?.ok_or_else(|| Error::NotFound("account".into()))?;
                }
                written => return written.map(|()| account),
            }
        }
        Err(Error::Conflict(format!("account '{}' keeps changing", account.login)))
    }

    /// Writes `action` on `target` by `admin` to the console's audit trail
    /// (also for actions of other services, such as removing a second
    /// factor).
    pub async fn audit(&self, admin: &Administrator, action: &str, target: &str, detail: &str) -> Result<()> {
        self.admins
            .record(&AuditEntry {
                at: self.clock.now(),
                actor: admin.account.login.to_string(),
                action: action.to_owned(),
                target: target.to_owned(),
                source: admin.source.clone(),
                detail: detail.to_owned(),
            })
            .await
    }

    /// `idp admin grant`: only an active account gets a role.
    pub async fn grant(&self, login: &Login, scope: Scope) -> Result<Account> {
        let account =
            self.accounts.find_by_login(login).await?.ok_or_else(|| Error::NotFound(format!("account '{login}'")))?;
        if account.state != AccountState::Active {
            return Err(Error::invalid(
                "login",
                format!("account '{login}' is {}, not active", account.state.as_str()),
            ));
        }
        if matches!(&scope, Scope::Schools(uais) if uais.is_empty()) {
            return Err(Error::invalid("school", "at least one --school, or --global"));
        }
        self.admins.grant(account.id, &scope, self.clock.now()).await?;
        self.cli_audit("grant", login, &scope.describe()).await?;
        Ok(account)
    }

    /// `idp admin revoke`: false when the account held no role.
    pub async fn revoke(&self, login: &Login) -> Result<bool> {
        let account =
            self.accounts.find_by_login(login).await?.ok_or_else(|| Error::NotFound(format!("account '{login}'")))?;
        let revoked = self.admins.revoke(account.id).await?;
        if revoked {
            self.cli_audit("revoke", login, "").await?;
        }
        Ok(revoked)
    }

    async fn cli_audit(&self, action: &str, login: &Login, detail: &str) -> Result<()> {
        let entry = AuditEntry {
            at: self.clock.now(),
            actor: "cli".into(),
            action: action.into(),
            target: login.to_string(),
            source: "cli".into(),
            detail: detail.into(),
        };
        self.admins.record(&entry).await
    }
}

/// Accounts read for a dashboard, at most (a school has a few thousand).
pub const DASHBOARD_LIMIT: u64 = 20_000;
/// A reset counts as recent on the dashboard for this many days.
pub const RECENT_DAYS: i64 = 30;

/// The figures of one school on the dashboard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchoolFigures {
    pub uai: String,
    pub accounts: usize,
    /// Accounts by profile, in [`crate::account::Profile::ALL`] order.
    pub by_profile: Vec<(&'static str, usize)>,
    /// Accounts by state (`provisioned`, `active`, `reset`, `locked`, `disabled`).
    pub by_state: Vec<(&'static str, usize)>,
    /// Active accounts, in percent of all (rounded down).
    pub activation_percent: usize,
    /// Accounts nobody ever logged in with.
    pub never_used: usize,
    /// Resets made in the console in the last [`RECENT_DAYS`] days.
    pub recent_resets: usize,
}

impl Console {
    /// The dashboard of each of the administrator's schools (for an
    /// operator, of every school an account names).
    pub async fn dashboard(&self, admin: &Administrator) -> ConsoleResult<Vec<SchoolFigures>> {
        let accounts = self.admins.search(admin.scope.schools(), &AccountFilter::default(), DASHBOARD_LIMIT).await?;
        let since = self.clock.now() - Duration::days(RECENT_DAYS);
        let resets: Vec<String> = self
            .admins
            .audit_since(Some(since))
            .await?
            .into_iter()
            .filter(|e| e.action == "reset")
            .map(|e| e.target.to_ascii_lowercase())
            .collect();
        let mut uais: Vec<String> = match &admin.scope {
            Scope::Schools(uais) => uais.clone(),
            Scope::Global => accounts.iter().flat_map(|a| a.schools.iter().cloned()).collect(),
        };
        uais.sort();
        uais.dedup();
        Ok(uais.into_iter().map(|uai| figures(uai, &accounts, &resets)).collect())
    }
}

fn figures(uai: String, all: &[Account], resets: &[String]) -> SchoolFigures {
    let school: Vec<&Account> = all.iter().filter(|a| a.schools.contains(&uai)).collect();
    let count = |f: &dyn Fn(&Account) -> bool| school.iter().filter(|a| f(a)).count();
    let active = count(&|a| a.state == AccountState::Active);
    SchoolFigures {
        accounts: school.len(),
        by_profile: crate::account::Profile::ALL.iter().map(|p| (p.as_str(), count(&|a| a.profile == *p))).collect(),
        by_state: AccountState::ALL.iter().map(|s| (s.as_str(), count(&|a| a.state == *s))).collect(),
        activation_percent: (active * 100).checked_div(school.len()).unwrap_or(0),
        never_used: count(&|a| a.last_login_at.is_none()),
        recent_resets: resets.iter().filter(|l| school.iter().any(|a| a.login.canonical() == **l)).count(),
        uai,
    }
}

/// The state changes of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChange {
    Unlock,
    Disable,
    Enable,
}

impl StateChange {
    pub fn as_str(self) -> &'static str {
        match self {
            StateChange::Unlock => "unlock",
            StateChange::Disable => "disable",
            StateChange::Enable => "enable",
        }
    }
}

/// Rows of a file imported from the console, at most.
pub const IMPORT_MAX_ROWS: usize = 2000;
/// Accounts created by one import from the console, at most (more with
/// `idp account import`).
pub const IMPORT_MAX_CREATED: usize = 500;
/// How long a previewed import can be confirmed.
pub const IMPORT_MINUTES: i64 = 15;

/// A previewed import, kept for its administrator until confirmed.
#[derive(Serialize, Deserialize)]
struct KeptPlan {
    admin_id: i64,
    until: DateTime<Utc>,
    plan: Plan,
}

/// What a confirmed import did; the letters of the created accounts are
/// kept under `letters` (none when nothing was created).
#[derive(Debug)]
pub struct ImportDone {
    pub created: Vec<Letter>,
    pub updated: usize,
    pub unchanged: usize,
    pub letters: Option<String>,
}

impl Console {
    /// Reads `file` and compares it with the accounts, writing nothing:
    /// every row must belong to the administrator's schools
    /// ([`crate::import::plan`]), within [`IMPORT_MAX_ROWS`] and
    /// [`IMPORT_MAX_CREATED`]. Returns the plan and the single-use key
    /// under which [`Console::import_confirm`] applies it, for
    /// [`IMPORT_MINUTES`] and this administrator only. A preview counts as
    /// a search (it tells whether logins are taken).
    pub async fn import_preview(&self, admin: &Administrator, file: &[u8]) -> ConsoleResult<(Plan, String)> {
        let rows = crate::import::parse(file)?;
        if rows.len() > IMPORT_MAX_ROWS {
            return Err(ConsoleError::TooManyRows);
        }
        let key = format!("gestion-recherche:{}", admin.account.id);
        if self.limiter.hit(&key, std::time::Duration::from_secs(60)).await? > SEARCHES_PER_MINUTE {
            return Err(ConsoleError::Throttled);
        }
        let existing = crate::import::existing(self.accounts.as_ref(), &rows).await?;
        let plan = crate::import::plan(rows, &existing, &admin.scope)?;
        if plan.created() > IMPORT_MAX_CREATED {
            return Err(ConsoleError::TooManyCreated);
        }
        let code = crate::secret::random_token(32)?;
        let until = self.clock.now() + Duration::minutes(IMPORT_MINUTES);
        let kept = KeptPlan { admin_id: admin.account.id, until, plan };
        let record = serde_json::to_string(&kept).map_err(Error::Json)?;
        let ttl = std::time::Duration::from_secs(60 * (IMPORT_MINUTES as u64 + 5));
        self.ephemeral.put(&import_key(&code), record, ttl).await?;
        Ok((kept.plan, code))
    }

    /// Applies the import previewed under `code`, once: all or nothing,
    /// audited as `import` with its counts. [`ConsoleError::PreviewGone`]
    /// when the key was used, has expired or is another administrator's;
    /// [`ConsoleError::PreviewStale`] when the accounts changed since the
    /// preview (nothing is written).
    pub async fn import_confirm(&self, admin: &Administrator, code: &str) -> ConsoleResult<ImportDone> {
        let json = self.ephemeral.take(&import_key(code)).await?.ok_or(ConsoleError::PreviewGone)?;
        let plan = match serde_json::from_str::<KeptPlan>(&json) {
            Ok(kept) if kept.admin_id == admin.account.id && self.clock.now() <= kept.until => kept.plan,
            _ => return Err(ConsoleError::PreviewGone),
        };
        let applied = match crate::import::apply(&plan, self.accounts.as_ref(), self.hashing.as_ref()).await {
            Err(Error::Conflict(_)) => return Err(ConsoleError::PreviewStale),
            applied => applied?,
        };
        let detail =
            format!("created={} updated={} unchanged={}", applied.created.len(), applied.updated, applied.unchanged);
        self.audit(admin, "import", "", &detail).await?;
        let created: Vec<Letter> = applied
            .created
            .into_iter()
            .map(|c| Letter {
                login: c.login.to_string(),
                display_name: c.display_name,
                provisional_password: c.provisional_password,
            })
            .collect();
        let letters = match created.is_empty() {
            true => None,
            false => Some(self.keep_letters(admin, created.clone()).await?),
        };
        Ok(ImportDone { created, updated: applied.updated, unchanged: applied.unchanged, letters })
    }
}

fn import_key(code: &str) -> String {
    crate::lifecycle::key("gestion-import", code)
}

fn letters_key(code: &str) -> String {
    crate::lifecycle::key("gestion-lettres", code)
}

/// Where an account is in its activation, as the console shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Provisional credentials not used yet (or reset).
    Provisioned,
    /// Activated, the recovery address not validated yet.
    EmailPending,
    Active,
}

/// The activation progress of `account`, given whether its e-mail is
/// validated.
pub fn progress(account: &Account, email_verified: bool) -> Progress {
    match account.state {
        AccountState::Provisioned | AccountState::Reset => Progress::Provisioned,
        _ if account.email.is_some() && !email_verified => Progress::EmailPending,
        _ => Progress::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::test_account;
    use crate::account::Profile;

    fn of(login: &str, profile: Profile, schools: &[&str], state: AccountState, used: bool) -> Account {
        let mut a = test_account(profile, schools, &[]);
        a.login = Login::parse(login).unwrap();
        a.state = state;
        a.last_login_at = used.then(Utc::now);
        a
    }

    #[test]
    fn a_school_scope_sees_accounts_with_one_of_its_uais_only() {
        let scope = Scope::Schools(vec!["0370001A".into()]);
        assert!(scope.sees(&test_account(Profile::Eleve, &["0370002B", "0370001A"], &[])));
        assert!(!scope.sees(&test_account(Profile::Eleve, &["0370002B"], &[])));
        assert!(!scope.sees(&test_account(Profile::Eleve, &[], &[])), "no school, no administrator");
        assert!(Scope::Global.sees(&test_account(Profile::Eleve, &[], &[])));
        assert_eq!((scope.describe(), Scope::Global.describe()), ("0370001A".to_owned(), "*".to_owned()));
    }

    #[test]
    fn a_filter_matches_profile_state_and_class_together() {
        let mut a = of("l", Profile::Eleve, &["0370001A"], AccountState::Active, false);
        a.attributes.insert(CLASS_ATTRIBUTE.into(), vec!["4ème B".into()]);
        let class = |c: &str| AccountFilter { class: Some(c.into()), ..Default::default() };
        assert!(class(" 4ème B ").matches(&a), "spaces around are not part of it");
        assert!(!class("4").matches(&a), "a whole class, not a part");
        let both =
            AccountFilter { profile: Some(Profile::Eleve), state: Some(AccountState::Active), ..class("4ème B") };
        assert!(both.matches(&a));
        assert!(!AccountFilter { state: Some(AccountState::Locked), ..both.clone() }.matches(&a));
        assert!(!AccountFilter { profile: Some(Profile::Parent), ..both }.matches(&a));
        a.attributes.insert(CLASS_ATTRIBUTE.into(), vec!["0370001A$3A".into()]);
        assert!(class("3A").matches(&a) && class("0370001A$3A").matches(&a), "with or without the UAI");
        assert!(!class("A").matches(&a) && !class("0370001A").matches(&a));
        a.attributes.clear();
        assert!(!class("4ème B").matches(&a), "no class attribute");
        assert!(AccountFilter::default().matches(&a) && !AccountFilter::default().has_criteria());
    }

    #[test]
    fn progress_follows_the_state_and_the_validated_address() {
        let mut a = of("l", Profile::Eleve, &[], AccountState::Reset, false);
        assert_eq!(progress(&a, false), Progress::Provisioned);
        a.state = AccountState::Active;
        assert_eq!(progress(&a, false), Progress::Active, "no address: nothing pending");
        a.email = Some("l@example.fr".into());
        assert_eq!(progress(&a, false), Progress::EmailPending);
        assert_eq!(progress(&a, true), Progress::Active);
    }

    #[test]
    fn school_figures_count_that_school_only() {
        let all = [
            of("a", Profile::Eleve, &["0370001A"], AccountState::Active, true),
            of("b", Profile::Eleve, &["0370001A"], AccountState::Reset, false),
            of("c", Profile::Parent, &["0370001A", "0370002B"], AccountState::Provisioned, false),
            of("d", Profile::Eleve, &["0370002B"], AccountState::Active, true),
        ];
        let f = figures("0370001A".into(), &all, &["b".into(), "d".into()]);
        assert_eq!((f.accounts, f.activation_percent, f.never_used, f.recent_resets), (3, 33, 2, 1));
        assert_eq!(f.by_profile[..2], [("eleve", 2), ("parent", 1)]);
        assert_eq!(f.by_state[..3], [("provisioned", 1), ("active", 1), ("reset", 1)]);
        assert_eq!(figures("0999999Z".into(), &all, &[]).activation_percent, 0, "no division by zero");
    }
}
