//! The login pipeline: every way into a session ends here.
//!
//! A login request (`/cas/login`, and through it the OIDC authorization
//! endpoint) is decided in one place and answered with one [`LoginNext`]
//! value that the web layer renders. The order is fixed:
//!
//! 1. the credentials are checked (local password today; an upstream
//!    identity provider tomorrow: both give an [`Identified`] account);
//! 2. the login is recorded in the account's history;
//!    after a password, the second factor is asked when one is enrolled
//!    (unless the browser is a trusted device of the account, see
//!    [`idp_core::trusted_devices`]), or enrolled first when the policy
//!    requires one ([`LoginPipeline::with_code`],
//!    [`LoginPipeline::enrol_at_login`]);
//! 3. a new charter (CGU) must be accepted before anything else: no session,
//!    no ticket until then ([`LoginPipeline::resume_after_cgu`] goes on);
//! 4. the SSO session opens (or the same person's live one is kept);
//! 5. the service's access rules are checked;
//! 6. a service ticket is issued and travels back by redirect or POST form.
//!
//! A browser with a live session skips 1 to 4 (single sign-on), unless the
//! request says `renew` or the service turned single sign-on off.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use idp_core::access::Denial;
use idp_core::account::{Account, AccountState, Profile};
use idp_core::auth::{Authenticator, LoginOutcome};
use idp_core::cgu::ResumeTarget;
use idp_core::lifecycle::{FlowError, Lifecycle};
use idp_core::second_factor::{AMR_OTP, AMR_PASSWORD, Check, Confirmation, SecondFactor, TotpOffer};
use idp_core::secret::Secret;
use idp_core::service::{Service, ServiceUrl};
use idp_core::session::{SsoSession, TicketId};
use idp_core::upstream::{UpstreamConfig, UpstreamKind};

use crate::cas::{Cas, SsoTicket};
use crate::passkeys::{PasskeyRefusal, Passkeys};
use crate::upstream::{Callback, Returned, Slo, Started, Upstreams};
use crate::{Error, Result};

mod passkey;

/// How the ticket travels back to the service (`method=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResponseMethod {
    /// A redirect with `ticket=` in the query string.
    #[default]
    Get,
    /// An auto-submitted POST form carrying `ticket`.
    Post,
}

impl ResponseMethod {
    /// Parses `method=`: absent, empty or `GET`, or `POST` (any case).
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value.map(str::to_ascii_uppercase).as_deref() {
            None | Some("") | Some("GET") => Ok(ResponseMethod::Get),
            Some("POST") => Ok(ResponseMethod::Post),
            _ => Err(Error::UnsupportedMethod),
        }
    }

    /// The value to carry in links and forms (none for the default).
    pub fn param(self) -> Option<&'static str> {
        match self {
            ResponseMethod::Get => None,
            ResponseMethod::Post => Some("POST"),
        }
    }
}

/// A checked login request: the registered service it is for, if any, and
/// the CAS options.
#[derive(Clone, Debug)]
pub struct LoginRequest {
    pub service: Option<(ServiceUrl, Service)>,
    /// Credentials must be typed, even with a live session.
    pub renew: bool,
    /// Never show a page: back to the service without a ticket instead.
    pub gateway: bool,
    pub method: ResponseMethod,
}

impl LoginRequest {
    /// The service URL as requested, if any.
    pub fn service_url(&self) -> Option<&str> {
        self.service.as_ref().map(|(url, _)| url.as_str())
    }

    /// Whether a live session may be reused: not with `renew`, nor when the
    /// service turned single sign-on off (`ssoEnabled=false`).
    fn may_reuse_session(&self) -> bool {
        !self.renew && self.service.as_ref().is_none_or(|(_, s)| s.policy.sso_enabled)
    }

    fn resume_target(&self, fresh: bool, upstream: Option<&str>, amr: &[String]) -> ResumeTarget {
        ResumeTarget {
            service: self.service_url().map(str::to_owned),
            renew: self.renew,
            post: self.method == ResponseMethod::Post,
            fresh,
            upstream: upstream.map(str::to_owned),
            amr: amr.to_vec(),
        }
    }
}

/// Who the pipeline is logging in, and how that was established.
#[derive(Debug)]
pub enum Identified {
    /// A local account whose password was just checked.
    Password(Box<Account>),
    /// A local account linked to the identity an upstream identity provider
    /// just asserted.
    Upstream { account: Box<Account>, upstream: String },
}

impl Identified {
    fn account(&self) -> &Account {
        match self {
            Identified::Password(a) | Identified::Upstream { account: a, .. } => a,
        }
    }

    fn upstream(&self) -> Option<&str> {
        match self {
            Identified::Password(_) => None,
            Identified::Upstream { upstream, .. } => Some(upstream),
        }
    }

    /// The session's `amr` before any second factor: `pwd` for a password,
    /// none for an upstream's login (its own methods are not known).
    fn amr(&self) -> Vec<String> {
        match self {
            Identified::Password(_) => vec![AMR_PASSWORD.to_owned()],
            Identified::Upstream { .. } => Vec::new(),
        }
    }
}

/// Why a second-factor code or passkey was refused; the code page is
/// shown again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Wrong, already used, or a spent recovery code.
    Wrong,
    /// Too many attempts.
    Throttled,
    /// A passkey refused (never [`PasskeyRefusal::Throttled`]: that is
    /// [`CodeRefusal::Throttled`]).
    Passkey(PasskeyRefusal),
}

impl From<PasskeyRefusal> for CodeRefusal {
    fn from(refusal: PasskeyRefusal) -> Self {
        match refusal {
            PasskeyRefusal::Throttled => CodeRefusal::Throttled,
            other => CodeRefusal::Passkey(other),
        }
    }
}

/// Where the browser goes after `/cas/logout`.
#[derive(Debug, PartialEq, Eq)]
pub enum LogoutNext {
    /// To the registered service that asked for the logout.
    ToService(String),
    /// To the upstream identity provider's logout, which comes back to us.
    ToUpstream(String),
    /// The "logged out" page.
    LoggedOut,
    /// A logout message of an upstream that is unsigned, altered, unknown
    /// or spent.
    Refused,
}

/// Why credentials were refused; the form is shown again with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The identifiant or the password is empty.
    MissingCredentials,
    /// Unknown login or wrong password (indistinguishable on purpose).
    InvalidCredentials,
    /// Too many failures for this login or address.
    Throttled,
    /// Right password, locked account.
    Locked,
    /// Right password, disabled account.
    Disabled,
}

/// What the browser gets next.
#[derive(Debug)]
pub enum LoginNext {
    /// The profile choice or the credentials form, with the reason of a
    /// refusal when the last attempt failed.
    Form { refused: Option<Refusal> },
    /// To the service with a ticket in the query string (`fresh`: the
    /// credentials were just typed, not single sign-on).
    ToService { url: String, fresh: bool },
    /// To the service with a ticket, by an auto-submitted POST form.
    PostToService { action: String, ticket: TicketId, fresh: bool },
    /// `gateway`: back to the service without a ticket, no page shown.
    Gateway { url: String },
    /// The charter must be accepted first; `token` identifies the pending
    /// login, `refused` is set when the box was not ticked.
    AskCgu { token: String, refused: bool },
    /// The pending charter acceptance is unknown, spent or expired.
    CguExpired,
    /// The password was right; the second factor is asked (`token` names
    /// the pending login; `passkey`: the person may use a passkey).
    AskCode { token: String, refused: Option<CodeRefusal>, passkey: bool },
    /// The password was right and the policy requires a second factor that
    /// is not enrolled: the TOTP enrolment (or a passkey's, when `passkey`),
    /// before anything else.
    MustEnrol { token: String, offer: Box<TotpOffer>, refused: Option<CodeRefusal>, passkey: bool },
    /// Enrolled at login: the recovery codes, shown once, then `token`
    /// goes on with the login.
    ShowRecoveryCodes { token: String, codes: Vec<String> },
    /// The pending second-factor step is unknown, spent or expired.
    CodeExpired,
    /// The service's access rules leave this person out.
    Denied { service: Box<Service>, denial: Denial },
    /// The provisional password was right: the account must be activated
    /// first (`reset`: an operator reset it).
    MustActivate { reset: bool },
    /// Logged in, no service: the "connected" page.
    Welcome { account: Box<Account> },
    /// To an upstream identity provider's login page.
    ToUpstream { url: String },
    /// A callback whose pending login is unknown, spent or expired.
    UpstreamExpired,
    /// The upstream `label` refused the login or did not answer.
    UpstreamFailed { label: String, unreachable: bool },
    /// The person cancelled the login at the upstream `label`.
    UpstreamCancelled { label: String },
    /// No local account matches the identity the upstream `label` asserted.
    NoLinkedAccount { label: String },
}

/// The answer of the pipeline: what comes next, and the SSO session the
/// browser must now carry when one was opened.
#[derive(Debug)]
pub struct LoginStep {
    pub next: LoginNext,
    /// The id of a session opened by this step (the TGC cookie's value).
    pub session: Option<TicketId>,
    /// The token of the device just trusted (the trusted-device cookie's
    /// value), when the person ticked the box with a right second factor.
    pub trusted_device: Option<Secret>,
}

impl From<LoginNext> for LoginStep {
    fn from(next: LoginNext) -> Self {
        LoginStep { next, session: None, trusted_device: None }
    }
}

/// The login pipeline over CAS, the credential check and the account life
/// cycle (login history, charter).
#[derive(Clone)]
pub struct LoginPipeline {
    cas: Arc<Cas>,
    auth: Arc<Authenticator>,
    lifecycle: Arc<Lifecycle>,
    upstreams: Arc<Upstreams>,
    second_factor: Arc<SecondFactor>,
    passkeys: Arc<Passkeys>,
}

impl LoginPipeline {
    pub fn new(
        cas: Arc<Cas>,
        auth: Arc<Authenticator>,
        lifecycle: Arc<Lifecycle>,
        upstreams: Arc<Upstreams>,
        (second_factor, passkeys): (Arc<SecondFactor>, Arc<Passkeys>),
    ) -> Self {
        Self { cas, auth, lifecycle, upstreams, second_factor, passkeys }
    }

    /// `/cas/logout`: ends the session behind `tgc` (single logout to its
    /// services), then the upstream's session it came through, then back
    /// to `service` when it is registered.
    pub async fn logout(&self, tgc: Option<&str>, service: Option<&str>) -> Result<LogoutNext> {
        let ended = match tgc {
            Some(id) => self.cas.end_session(id).await?,
            None => None,
        };
        let service = self.registered_url(service).await;
        if let Some(session) = ended
            && let Some(upstream) = session.upstream.as_deref().and_then(|id| self.upstreams.get(id))
        {
            match self.upstreams.logout_url(upstream, session.id.expose(), service.as_deref()).await {
                Ok(Some(url)) => return Ok(LogoutNext::ToUpstream(url)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, upstream = %upstream.id, "no logout at the upstream"),
            }
        }
        Ok(service.map_or(LogoutNext::LoggedOut, LogoutNext::ToService))
    }

    /// `/upstream/<id>/deconnexion`: back from the upstream's logout.
    pub async fn after_upstream_logout(&self, service: Option<&str>) -> LogoutNext {
        self.registered_url(service).await.map_or(LogoutNext::LoggedOut, LogoutNext::ToService)
    }

    /// `/upstream/<id>/slo`: the SAML identity provider's answer to our
    /// logout request, or its own logout request (the sessions it names end
    /// as at `/cas/logout`, then the IdP gets our answer).
    pub async fn saml_single_logout(&self, id: &str, raw_query: &str) -> Result<LogoutNext> {
        self.upstreams.get(id).filter(|u| u.kind == UpstreamKind::Saml).ok_or(Error::UnknownUpstream)?;
        let saml = self.upstreams.saml()?;
        let (sessions, request_id, relay_state) = match saml.single_logout(id, raw_query).await? {
            Slo::Answered { service } => return Ok(self.after_upstream_logout(service.as_deref()).await),
            Slo::Refused => return Ok(LogoutNext::Refused),
            Slo::Asked { sessions, request_id, relay_state } => (sessions, request_id, relay_state),
        };
        let mut ended = false;
        for session in &sessions {
            ended |= self.cas.end_session(session).await?.is_some();
        }
        Ok(match saml.logout_reply(id, &request_id, relay_state.as_deref(), ended)? {
            Some(url) => LogoutNext::ToUpstream(url),
            None => LogoutNext::LoggedOut,
        })
    }

    /// `service` when it is a registered service (a logout follows nothing
    /// else: no open redirect).
    async fn registered_url(&self, service: Option<&str>) -> Option<String> {
        let raw = service.filter(|s| !s.is_empty())?;
        self.cas.registered_service(raw).await.ok().map(|(url, _)| url.as_str().to_owned())
    }

    /// `/upstream/<id>/start`: the login leaves for the upstream `id`;
    /// `profile` is the account profile of the profile chosen on the login
    /// page (the profile of an account `create_missing` creates).
    pub async fn start_upstream(
        &self,
        id: &str,
        request: &LoginRequest,
        profile: Option<Profile>,
    ) -> Result<LoginStep> {
        let upstream = self.upstreams.get(id).ok_or(Error::UnknownUpstream)?;
        Ok(match self.upstreams.start(upstream, request.resume_target(true, None, &[]), profile).await? {
            Started::Redirect(url) => LoginNext::ToUpstream { url },
            Started::Unreachable => LoginNext::UpstreamFailed { label: upstream.label.clone(), unreachable: true },
        }
        .into())
    }

    /// `/upstream/<id>/callback`: back from the upstream. A linked account
    /// goes through the same pipeline as a password.
    pub async fn with_upstream(
        &self,
        id: &str,
        callback: &Callback,
        source: &str,
        tgc: Option<&str>,
    ) -> Result<LoginStep> {
        let upstream = self.upstreams.get(id).ok_or(Error::UnknownUpstream)?;
        let returned = self.upstreams.finish(upstream, callback).await?;
        self.after_upstream(upstream, returned, source, tgc).await
    }

    /// `/upstream/<id>/acs`: a SAML response posted back with its
    /// `RelayState`. The same pipeline as a CAS callback.
    pub async fn with_saml_response(
        &self,
        id: &str,
        (relay_state, response): (&str, &str),
        source: &str,
        tgc: Option<&str>,
    ) -> Result<LoginStep> {
        let upstream = self.upstreams.get(id).filter(|u| u.kind == UpstreamKind::Saml).ok_or(Error::UnknownUpstream)?;
        let returned = self.upstreams.finish_saml(upstream, relay_state, response).await?;
        self.after_upstream(upstream, returned, source, tgc).await
    }

    /// Our SAML metadata for upstream `id`.
    pub fn saml_metadata(&self, id: &str) -> Result<String> {
        self.upstreams.get(id).filter(|u| u.kind == UpstreamKind::Saml).ok_or(Error::UnknownUpstream)?;
        self.upstreams.saml()?.metadata(id)
    }

    /// What an upstream's answer leads to: a linked account goes through
    /// the same pipeline as a password.
    async fn after_upstream(
        &self,
        upstream: &UpstreamConfig,
        returned: Returned,
        source: &str,
        tgc: Option<&str>,
    ) -> Result<LoginStep> {
        let label = upstream.label.clone();
        let (mut account, target, id_token) = match returned {
            Returned::Linked { account, target, id_token } => (account, target, id_token),
            Returned::UnknownState => return Ok(LoginNext::UpstreamExpired.into()),
            Returned::Cancelled => return Ok(LoginNext::UpstreamCancelled { label }.into()),
            Returned::Refused => return Ok(LoginNext::UpstreamFailed { label, unreachable: false }.into()),
            Returned::Unreachable => return Ok(LoginNext::UpstreamFailed { label, unreachable: true }.into()),
            Returned::NoAccount => return Ok(LoginNext::NoLinkedAccount { label }.into()),
        };
        match account.state {
            AccountState::Locked => return Ok(refused(Refusal::Locked)),
            AccountState::Disabled => return Ok(refused(Refusal::Disabled)),
            AccountState::Provisioned | AccountState::Reset => {
                account.activate_by_upstream(self.cas.now());
                self.cas.accounts.update(&account).await?;
            }
            AccountState::Active => {}
        }
        let method = if target.post { Some("POST") } else { None };
        let request = self.request(target.service.as_deref(), target.renew, false, method).await?;
        let step = self
            .complete(&request, Identified::Upstream { account, upstream: upstream.id.clone() }, source, tgc, None)
            .await?;
        // The ID token is kept for the upstream logout's id_token_hint:
        // under the session, or under the charter acceptance until it opens.
        let owner = match (&step.session, &step.next) {
            (Some(session), _) => Some(session.expose()),
            (None, LoginNext::AskCgu { token, .. }) => Some(token.as_str()),
            _ => None,
        };
        if let (Some(owner), Some(id_token)) = (owner, id_token) {
            let ttl = self.cas.session_ttl();
            self.upstreams.keep_id_token(owner, id_token, ttl).await?;
            if let Some(session) = &step.session {
                self.upstreams.session_opened(&upstream.id, session.expose(), ttl).await?;
            }
        }
        Ok(step)
    }

    /// Checks the parameters of a login request: the service must be
    /// registered, the response method known.
    pub async fn request(
        &self,
        service: Option<&str>,
        renew: bool,
        gateway: bool,
        method: Option<&str>,
    ) -> Result<LoginRequest> {
        let service = match service.filter(|s| !s.is_empty()) {
            Some(raw) => Some(self.cas.registered_service(raw).await?),
            None => None,
        };
        Ok(LoginRequest { service, renew, gateway, method: ResponseMethod::parse(method)? })
    }

    /// `GET /cas/login`: single sign-on with the live session behind `tgc`,
    /// `gateway`, or the form.
    pub async fn show(&self, request: &LoginRequest, tgc: Option<&str>) -> Result<LoginStep> {
        if request.may_reuse_session()
            && let Some(step) = self.single_sign_on(request, tgc).await?
        {
            return Ok(step);
        }
        // renew forces credentials and cancels gateway (specification 2.1.1).
        if !request.renew
            && let Some(url) = request.gateway.then(|| request.service_url()).flatten()
        {
            return Ok(LoginNext::Gateway { url: url.to_owned() }.into());
        }
        Ok(LoginNext::Form { refused: None }.into())
    }

    /// The step of a live session behind `tgc`, if any: the service's
    /// ticket (issued with the session's read, see [`Cas::sso_ticket`]),
    /// the charter still to accept, the access refusal or, without a
    /// service, the "connected" page.
    async fn single_sign_on(&self, request: &LoginRequest, tgc: Option<&str>) -> Result<Option<LoginStep>> {
        let Some((url, service)) = &request.service else {
            let Some((session, account)) = self.cas.current_session(tgc).await? else { return Ok(None) };
            if self.lifecycle.must_accept_cgu(&account) {
                return self.cgu_first(request, &session, &account).await.map(Some);
            }
            return self.to_service(&session, &account, request, false).await.map(Some);
        };
        let check = |_: &SsoSession, account: &Account| {
            if self.lifecycle.must_accept_cgu(account) {
                return Some(Held::Cgu);
            }
            self.cas.access_denial(service, account).map(Held::Denied)
        };
        let step = match self.cas.sso_ticket(tgc, url, service, check).await? {
            SsoTicket::NoSession => return Ok(None),
            SsoTicket::Refused { session, account, why: Held::Cgu } => {
                self.cgu_first(request, &session, &account).await?
            }
            SsoTicket::Refused { why: Held::Denied(denial), .. } => {
                LoginNext::Denied { service: Box::new(service.clone()), denial }.into()
            }
            SsoTicket::Issued { ticket, .. } => deliver(request, url, ticket.id, false),
        };
        Ok(Some(step))
    }

    /// A live session whose account must accept the charter first.
    async fn cgu_first(&self, request: &LoginRequest, session: &SsoSession, account: &Account) -> Result<LoginStep> {
        // gateway shows no page: back to the service.
        if let Some(url) = request.gateway.then(|| request.service_url()).flatten() {
            return Ok(LoginNext::Gateway { url: url.to_owned() }.into());
        }
        let target = request.resume_target(false, session.upstream.as_deref(), &session.amr);
        self.ask_cgu(account, session.authenticated_at, target).await
    }

    /// `POST /cas/login`: checks the password typed from `source` (an IP
    /// address), then goes on as [`LoginPipeline::complete`]; `device` is
    /// the browser's trusted-device token, if it carries one.
    pub async fn with_password(
        &self,
        request: &LoginRequest,
        (username, password): (&str, Secret),
        source: &str,
        tgc: Option<&str>,
        device: Option<&str>,
    ) -> Result<LoginStep> {
        if username.trim().is_empty() || password.expose().is_empty() {
            return Ok(refused(Refusal::MissingCredentials));
        }
        let outcome = self.auth.login(username, password, source).await?;
        let step = match outcome {
            LoginOutcome::Success(account) => {
                return self.complete(request, Identified::Password(account), source, tgc, device).await;
            }
            LoginOutcome::InvalidCredentials => refused(Refusal::InvalidCredentials),
            LoginOutcome::Throttled => refused(Refusal::Throttled),
            LoginOutcome::Locked => refused(Refusal::Locked),
            LoginOutcome::Disabled => refused(Refusal::Disabled),
            LoginOutcome::MustActivate { reset } => LoginNext::MustActivate { reset }.into(),
        };
        Ok(step)
    }

    /// Finishes a login whose identity is established: history, second
    /// factor (`device`: the browser's trusted-device token), charter,
    /// session, access rules, ticket, in that order.
    pub async fn complete(
        &self,
        request: &LoginRequest,
        who: Identified,
        source: &str,
        tgc: Option<&str>,
        device: Option<&str>,
    ) -> Result<LoginStep> {
        let account = who.account();
        let now = self.cas.now();
        // The login history is a convenience: its failure never blocks a login.
        if let Err(e) = self.lifecycle.security.record_login(account.id, now, source).await {
            tracing::warn!(error = %e, "cannot record the login in the history");
        }
        if let Identified::Password(_) = who
            && let Some(step) = self.second_factor_step(request, account, now, device).await?
        {
            return Ok(step);
        }
        self.finish(request, account, now, who.upstream(), who.amr(), tgc).await
    }

    /// After the credentials and any second factor: the charter, then the
    /// session (with its `amr`), access rules and ticket.
    async fn finish(
        &self,
        request: &LoginRequest,
        account: &Account,
        authenticated_at: DateTime<Utc>,
        upstream: Option<&str>,
        amr: Vec<String>,
        tgc: Option<&str>,
    ) -> Result<LoginStep> {
        if self.lifecycle.must_accept_cgu(account) {
            return self.ask_cgu(account, authenticated_at, request.resume_target(true, upstream, &amr)).await;
        }
        let session = self.cas.open_session_via(account, tgc, authenticated_at, upstream, Some(&amr)).await?;
        self.opened(session, account, request, true).await
    }

    /// The second factor of a password login: asked when one is enrolled,
    /// enrolled first when the policy requires one; `None` otherwise, and
    /// when the browser is a trusted device of the account (the session
    /// then has no second factor: `amr` `pwd`). `renew` always asks: it
    /// is how the console asks for a second factor again.
    async fn second_factor_step(
        &self,
        request: &LoginRequest,
        account: &Account,
        now: DateTime<Utc>,
        device: Option<&str>,
    ) -> Result<Option<LoginStep>> {
        let mfa = &self.second_factor;
        let target = request.resume_target(true, None, &[]);
        let enrolled = mfa.enrolled(account.id).await?;
        if enrolled.any() {
            if !request.renew && mfa.device_trusted(account, device).await? {
                return Ok(None);
            }
            let token = mfa.begin_login(account, now, target, None).await?;
            let passkey = enrolled.passkeys > 0 && self.passkeys.enabled();
            return Ok(Some(LoginNext::AskCode { token, refused: None, passkey }.into()));
        }
        if !mfa.required(account).await? {
            return Ok(None);
        }
        let offer = mfa.begin_totp(account).await?;
        let token = mfa.begin_login(account, now, target, Some(offer.token.clone())).await?;
        let passkey = self.passkeys.enabled();
        Ok(Some(LoginNext::MustEnrol { token, offer: Box::new(offer), refused: None, passkey }.into()))
    }

    /// `POST /cas/login/code`: the code typed (from `source`) for the
    /// pending login `token`. Accepted, the login goes on, and the browser
    /// is trusted when `remember` (its User-Agent) is given.
    pub async fn with_code(
        &self,
        (token, code): (&str, &str),
        source: &str,
        tgc: Option<&str>,
        remember: Option<&str>,
    ) -> Result<LoginStep> {
        let mfa = &self.second_factor;
        let Some((_, account)) = mfa.pending_login(token).await?.filter(|(p, _)| p.enrolment.is_none()) else {
            return Ok(LoginNext::CodeExpired.into());
        };
        let refused = match mfa.check(&account, code, source).await? {
            Check::Accepted(factor) => {
                let amr = vec![AMR_PASSWORD.to_owned(), factor.to_owned()];
                return self.after_factor(token, account, amr, tgc, remember).await;
            }
            Check::Wrong => CodeRefusal::Wrong,
            Check::Throttled => CodeRefusal::Throttled,
        };
        self.ask_code_again(token, &account, refused).await
    }

    /// `POST /cas/login/enrolement`: the first code of the enrolment the
    /// policy requires. Accepted, the recovery codes are shown.
    pub async fn enrol_at_login(&self, token: &str, code: &str, source: &str) -> Result<LoginStep> {
        let mfa = &self.second_factor;
        let Some((pending, account)) = mfa.pending_login(token).await? else {
            return Ok(LoginNext::CodeExpired.into());
        };
        let Some(enrolment) = pending.enrolment.clone().filter(|_| pending.amr.is_none()) else {
            return Ok(LoginNext::CodeExpired.into());
        };
        let refused = match mfa.confirm_totp(&account, &enrolment, code, source).await? {
            Confirmation::Enrolled(codes) => {
                mfa.passed(token, pending, vec![AMR_PASSWORD.to_owned(), AMR_OTP.to_owned()]).await?;
                return Ok(LoginNext::ShowRecoveryCodes { token: token.to_owned(), codes }.into());
            }
            Confirmation::WrongCode => CodeRefusal::Wrong,
            Confirmation::Throttled => CodeRefusal::Throttled,
            Confirmation::Expired => return Ok(LoginNext::CodeExpired.into()),
        };
        self.enrol_again(token, &account, &enrolment, refused).await
    }

    /// `POST /cas/login/codes-de-secours`: the recovery codes were shown;
    /// the login enrolled at `token` goes on.
    pub async fn after_enrolment(&self, token: &str, tgc: Option<&str>) -> Result<LoginStep> {
        let Some((pending, account)) = self.second_factor.pending_login(token).await? else {
            return Ok(LoginNext::CodeExpired.into());
        };
        match pending.amr {
            Some(amr) => self.after_factor(token, account, amr, tgc, None).await,
            None => Ok(LoginNext::CodeExpired.into()),
        }
    }

    /// The pending login `token` passed its second factor: it goes on
    /// where it stopped (charter, session, ticket); the browser of
    /// `remember` (its User-Agent) becomes a trusted device.
    async fn after_factor(
        &self,
        token: &str,
        account: Account,
        amr: Vec<String>,
        tgc: Option<&str>,
        remember: Option<&str>,
    ) -> Result<LoginStep> {
        let Some(pending) = self.second_factor.take_login(token).await? else {
            return Ok(LoginNext::CodeExpired.into());
        };
        let trusted_device = match remember {
            Some(user_agent) => Some(self.second_factor.trust_device(&account, user_agent).await?),
            None => None,
        };
        let target = pending.target;
        let method = if target.post { Some("POST") } else { None };
        let request = self.request(target.service.as_deref(), target.renew, false, method).await?;
        let mut step = self.finish(&request, &account, pending.authenticated_at, None, amr, tgc).await?;
        step.trusted_device = trusted_device;
        Ok(step)
    }

    /// `POST /cas/login/cgu`: the answer to the charter of the pending login
    /// `token`. Ticked, the login goes on from where it stopped.
    pub async fn resume_after_cgu(&self, token: &str, ticked: bool, tgc: Option<&str>) -> Result<LoginStep> {
        let (account, pending) = match self.lifecycle.accept_cgu_at_login(token, ticked).await {
            Ok(done) => done,
            Err(FlowError::CguNotAccepted) => {
                return Ok(LoginNext::AskCgu { token: token.to_owned(), refused: true }.into());
            }
            Err(FlowError::Core(e)) => return Err(e.into()),
            Err(_) => return Ok(LoginNext::CguExpired.into()),
        };
        let target = pending.target;
        let method = if target.post { Some("POST") } else { None };
        let request = self.request(target.service.as_deref(), target.renew, false, method).await?;
        let upstream = target.upstream.as_deref();
        let amr = Some(target.amr.as_slice());
        let session = self.cas.open_session_via(&account, tgc, pending.authenticated_at, upstream, amr).await?;
        if let Some(upstream) = upstream {
            self.upstreams.id_token_to_session(upstream, token, session.id.expose(), self.cas.session_ttl()).await?;
        }
        self.opened(session, &account, &request, target.fresh).await
    }

    async fn ask_cgu(
        &self,
        account: &Account,
        authenticated_at: DateTime<Utc>,
        target: ResumeTarget,
    ) -> Result<LoginStep> {
        let token = self.lifecycle.begin_cgu(account, authenticated_at, target).await.map_err(flow_error)?;
        Ok(LoginNext::AskCgu { token, refused: false }.into())
    }

    async fn opened(
        &self,
        session: SsoSession,
        account: &Account,
        request: &LoginRequest,
        fresh: bool,
    ) -> Result<LoginStep> {
        let mut step = self.to_service(&session, account, request, fresh).await?;
        step.session = Some(session.id);
        Ok(step)
    }

    /// With a session: the access rules, then a ticket for the service, or
    /// the "connected" page without a service.
    async fn to_service(
        &self,
        session: &SsoSession,
        account: &Account,
        request: &LoginRequest,
        fresh: bool,
    ) -> Result<LoginStep> {
        let Some((url, service)) = &request.service else {
            return Ok(LoginNext::Welcome { account: Box::new(account.clone()) }.into());
        };
        if let Some(denial) = self.cas.access_denial(service, account) {
            return Ok(LoginNext::Denied { service: Box::new(service.clone()), denial }.into());
        }
        let ticket = self.cas.issue_service_ticket(session, url, service, fresh).await?;
        Ok(deliver(request, url, ticket.id, fresh))
    }
}

/// Why a single sign-on ticket is held back.
enum Held {
    /// The account must accept the charter first.
    Cgu,
    Denied(Denial),
}

/// The way back to the service with `ticket`, by the request's method.
fn deliver(request: &LoginRequest, url: &ServiceUrl, ticket: TicketId, fresh: bool) -> LoginStep {
    let next = match request.method {
        ResponseMethod::Get => LoginNext::ToService { url: url.with_param("ticket", ticket.expose()), fresh },
        ResponseMethod::Post => LoginNext::PostToService { action: url.as_str().to_owned(), ticket, fresh },
    };
    next.into()
}

fn refused(refusal: Refusal) -> LoginStep {
    LoginNext::Form { refused: Some(refusal) }.into()
}

fn flow_error(e: FlowError) -> Error {
    match e {
        FlowError::Core(e) => e.into(),
        other => Error::Flow(other),
    }
}
