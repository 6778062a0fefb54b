//! `/cas/login` and `/cas/login/cgu`: parse, one call to the login
//! pipeline ([`idp_protocol::login`]), then render its [`LoginNext`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use idp_core::access::Denial;
use idp_core::account::Login;
use idp_core::secret::Secret;
use idp_core::trusted_devices::TRUSTED_DAYS;
use idp_protocol::login::{LoginNext, LoginRequest, LoginStep, Refusal};

use crate::cas::flag;
use crate::config::{AuthMethod, LoginProfile};
use crate::cookies::{self, Name};
use crate::csrf::{self, CsrfForm};
use crate::error::WebError;
use crate::net::{ClientIp, with_query};
use crate::params::Params;
use crate::security::no_store;
use crate::state::AppState;

/// Parameters of `GET /cas/login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    service: Option<String>,
    renew: Option<String>,
    gateway: Option<String>,
    method: Option<String>,
    /// A profile chosen on the profile page (`eleve-parent`, ...); `choose`
    /// asks for the profile page again.
    profile: Option<String>,
    /// An identifiant to pre-fill (the OIDC `login_hint`); ignored unless it
    /// is a valid login.
    username: Option<String>,
}

/// Fields of `POST /cas/login`.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    service: Option<String>,
    renew: Option<String>,
    method: Option<String>,
}

/// Fields of `POST /cas/login/cgu`.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CguForm {
    jeton: String,
    accepte: Option<String>,
}

/// What a page rendered by this module needs beside the pipeline's answer.
pub(crate) struct Page<'a> {
    state: &'a AppState,
    request: Option<&'a LoginRequest>,
    /// The profile chosen on the profile page.
    profile: Option<String>,
    username: &'a str,
    /// The request came as a POST: a redirect is a 303.
    posted: bool,
}

/// `GET /cas/login`.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Params(q): Params<LoginQuery>,
) -> Result<Response, WebError> {
    let request =
        state.login.request(q.service.as_deref(), flag(&q.renew), flag(&q.gateway), q.method.as_deref()).await?;
    let https = state.config.https();
    let step = state.login.show(&request, cookies::session_id(&jar, https).as_deref()).await?;
    let (jar, profile) = match q.profile.as_deref() {
        Some("choose") => (cookies::remove(jar, Name::Profile, https), None),
        Some(id) if state.config.profile(id).is_some() => {
            (cookies::set(jar, Name::Profile, id, https, true), Some(id.to_owned()))
        }
        _ => {
            let chosen = cookies::get(&jar, Name::Profile, https);
            (jar, chosen)
        }
    };
    // A profile chosen now that has one upstream goes straight there.
    let chosen_now = q.profile.as_deref().and_then(|id| state.config.profile(id));
    if let (LoginNext::Form { refused: None }, Some(url)) =
        (&step.next, chosen_now.and_then(|p| single_upstream(p, &request)))
    {
        return Ok((jar, redirect(StatusCode::FOUND, &url)).into_response());
    }
    let hint = q.username.as_deref().and_then(|u| Login::parse(u).ok());
    let username = hint.as_ref().map(Login::as_str).unwrap_or("");
    Page { state: &state, request: Some(&request), profile, username, posted: false }.render(jar, step)
}

/// `POST /cas/login`: checks the credentials.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(source): ClientIp,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, WebError> {
    let request =
        state.login.request(form.service.as_deref(), flag(&form.renew), false, form.method.as_deref()).await?;
    let https = state.config.https();
    let tgc = cookies::session_id(&jar, https);
    let password = Secret::new(form.password);
    let device = cookies::get(&jar, Name::TrustedDevice, https);
    let credentials = (form.username.as_str(), password);
    let step = state.login.with_password(&request, credentials, &source, tgc.as_deref(), device.as_deref()).await?;
    metrics::counter!("idp_logins_total", "outcome" => outcome_label(&step.next)).increment(1);
    let profile =
        cookies::get(&jar, Name::Profile, https).or_else(|| state.config.profiles.first().map(|p| p.id.clone()));
    Page { state: &state, request: Some(&request), profile, username: &form.username, posted: true }.render(jar, step)
}

/// `POST /cas/login/cgu`: the answer to the charter. Accepted, the login
/// goes on as after any login.
pub async fn accept_cgu(
    State(state): State<AppState>,
    jar: CookieJar,
    CsrfForm(form): CsrfForm<CguForm>,
) -> Result<Response, WebError> {
    let tgc = cookies::session_id(&jar, state.config.https());
    let step = state.login.resume_after_cgu(&form.jeton, form.accepte.is_some(), tgc.as_deref()).await?;
    Page::plain(&state, true).render(jar, step)
}

fn outcome_label(next: &LoginNext) -> &'static str {
    match next {
        LoginNext::Form { refused: Some(Refusal::InvalidCredentials | Refusal::MissingCredentials) } => {
            "invalid_credentials"
        }
        LoginNext::Form { refused: Some(Refusal::Throttled) } => "throttled",
        LoginNext::Form { refused: Some(Refusal::Locked) } => "locked",
        LoginNext::Form { refused: Some(Refusal::Disabled) } => "disabled",
        LoginNext::MustActivate { .. } => "must_activate",
        LoginNext::AskCode { .. } | LoginNext::MustEnrol { .. } => "second_factor",
        _ => "success",
    }
}

/// The start URL of the one upstream of `profile`, if it has exactly one.
fn single_upstream(profile: &LoginProfile, request: &LoginRequest) -> Option<String> {
    match (profile.method, profile.upstreams.as_slice()) {
        (AuthMethod::Upstream, [only]) => Some(upstream_start(only, request)),
        _ => None,
    }
}

/// The parameters that carry a login request from page to page.
fn request_pairs(request: &LoginRequest) -> Vec<(&'static str, &str)> {
    let mut q = Vec::new();
    q.extend(request.service_url().map(|s| ("service", s)));
    q.extend(request.renew.then_some(("renew", "true")));
    q.extend(request.method.param().map(|m| ("method", m)));
    q
}

/// `/upstream/<id>/start` carrying the login request.
fn upstream_start(id: &str, request: &LoginRequest) -> String {
    let q = request_pairs(request);
    let base = format!("/upstream/{id}/start");
    if q.is_empty() { base } else { with_query(&base, &q) }
}

impl<'a> Page<'a> {
    /// A page without a login form context (the upstream routes).
    pub(crate) fn plain(state: &'a AppState, posted: bool) -> Self {
        Page { state, request: None, profile: None, username: "", posted }
    }

    /// Maps the pipeline's answer to a response, with its cookies
    /// ([`Page::step_cookies`]).
    pub(crate) fn render(&self, jar: CookieJar, step: LoginStep) -> Result<Response, WebError> {
        let jar = self.step_cookies(jar, &step);
        let views = &self.state.views;
        let mut response = match step.next {
            LoginNext::Form { refused } => return self.form(jar, refused),
            LoginNext::ToService { url, fresh } => {
                count_ticket(fresh);
                // 303 after a POST, so the browser follows with a GET
                // (specification Appendix B); 302 for a GET, as Apereo CAS.
                redirect(if self.posted { StatusCode::SEE_OTHER } else { StatusCode::FOUND }, &url)
            }
            LoginNext::PostToService { action, ticket, fresh } => {
                count_ticket(fresh);
                let fields = vec![context! { name => "ticket", value => ticket.expose() }];
                Html(views.render("post_redirect.html", context! { action, fields })?).into_response()
            }
            LoginNext::Gateway { url } => redirect(StatusCode::FOUND, &url),
            LoginNext::AskCgu { token, refused } => return self.cgu(jar, &token, refused),
            LoginNext::CguExpired => return self.cgu_expired(jar),
            next @ (LoginNext::AskCode { .. }
            | LoginNext::MustEnrol { .. }
            | LoginNext::ShowRecoveryCodes { .. }
            | LoginNext::CodeExpired) => return crate::cas::code::render(self.state, jar, next),
            LoginNext::Denied { service, denial } => {
                let message = denial_message(denial);
                let html = views.render("service_denied.html", context! { service_name => service.name, message })?;
                (StatusCode::FORBIDDEN, Html(html)).into_response()
            }
            LoginNext::MustActivate { reset } => {
                let base = if reset { "/compte/activation?reinitialise=1" } else { "/compte/activation" };
                let activation_url = self.with_service(base);
                let ctx = context! { activation_url, reset, login_url => "/cas/login" };
                Html(views.render("must_activate.html", ctx)?).into_response()
            }
            LoginNext::Welcome { account } => {
                let ctx = context! {
                    display_name => account.display_name(), login => account.login.as_str(), logout_url => "/cas/logout",
                };
                Html(views.render("logged_in.html", ctx)?).into_response()
            }
            LoginNext::ToUpstream { url } => redirect(StatusCode::FOUND, &url),
            other => return self.upstream_problem(jar, other),
        };
        no_store(response.headers_mut());
        Ok((jar, response).into_response())
    }

    /// The cookies a step sets: the session's when one was opened, the
    /// trusted device's when the browser was just trusted.
    fn step_cookies(&self, jar: CookieJar, step: &LoginStep) -> CookieJar {
        let https = self.state.config.https();
        let jar = match &step.session {
            Some(id) => cookies::set(jar, Name::Session, id.expose(), https, false),
            None => jar,
        };
        match &step.trusted_device {
            Some(token) => cookies::set_for(jar, Name::TrustedDevice, token.expose(), https, Some(TRUSTED_DAYS)),
            None => jar,
        }
    }

    /// The pages of a login through an upstream that did not end in a
    /// session: an expired callback, a refusal or silence of the upstream,
    /// an identity that matches no account.
    fn upstream_problem(&self, jar: CookieJar, next: LoginNext) -> Result<Response, WebError> {
        let (status, title, message) = match next {
            LoginNext::UpstreamExpired => (
                StatusCode::BAD_REQUEST,
                "Connexion expirée",
                "Cette connexion a expiré ou a déjà été utilisée. Veuillez vous connecter à nouveau.".to_owned(),
            ),
            LoginNext::UpstreamFailed { label, unreachable: true } => (
                StatusCode::BAD_GATEWAY,
                "Service d'authentification injoignable",
                format!(
                    "Le service d'authentification « {label} » ne répond pas. Veuillez réessayer dans quelques minutes."
                ),
            ),
            LoginNext::UpstreamFailed { label, unreachable: false } => (
                StatusCode::UNAUTHORIZED,
                "Connexion refusée",
                format!(
                    "La connexion auprès du service d'authentification « {label} » n'a pas abouti. Veuillez vous connecter à nouveau."
                ),
            ),
            LoginNext::UpstreamCancelled { label } => (
                StatusCode::UNAUTHORIZED,
                "Connexion annulée",
                format!(
                    "La connexion auprès du service d'authentification « {label} » a été annulée. Choisissez à nouveau votre profil pour vous connecter."
                ),
            ),
            LoginNext::NoLinkedAccount { label } => (
                StatusCode::FORBIDDEN,
                "Compte introuvable",
                format!(
                    "Aucun compte de l'ENT ne correspond à cette identité (« {label} »). Veuillez contacter votre établissement scolaire."
                ),
            ),
            _ => return Err(WebError::NotFound),
        };
        let ctx = context! { title, message, back_url => "/cas/login?profile=choose" };
        crate::compte::page(self.state, jar, "error.html", status, ctx)
    }

    /// `base` with the request's service appended, for the activation links.
    fn with_service(&self, base: &str) -> String {
        match self.request.and_then(LoginRequest::service_url) {
            Some(service) => with_query(base, &[("service", service)]),
            None => base.to_owned(),
        }
    }

    /// The profile page or the credentials form, with the refusal's message.
    fn form(&self, jar: CookieJar, refused: Option<Refusal>) -> Result<Response, WebError> {
        let state = self.state;
        let (jar, csrf_token) = csrf::token(jar, &state.config)?;
        let request = self.request;
        let service = request.and_then(LoginRequest::service_url);
        let renew = request.is_some_and(|r| r.renew);
        let method = request.and_then(|r| r.method.param());
        let link = |profile: &str| {
            let mut q = vec![("profile", profile)];
            q.extend(request.map(request_pairs).unwrap_or_default());
            q.extend((!self.username.is_empty()).then_some(("username", self.username)));
            with_query("/cas/login", &q)
        };
        let profiles: Vec<_> = state
            .config
            .profiles
            .iter()
            .map(|p| context! { id => &p.id, label => &p.label, url => link(&p.id) })
            .collect();
        let chosen = self.profile.as_deref().and_then(|id| state.config.profile(id));
        let upstreams: Vec<_> = match (chosen, request) {
            (Some(p), Some(r)) if p.method == AuthMethod::Upstream => p
                .upstreams
                .iter()
                .map(|id| context! { label => state.config.upstream_label(id), url => upstream_start(id, r) })
                .collect(),
            _ => Vec::new(),
        };
        let chosen = chosen.map(|p| context! { id => &p.id, label => &p.label });
        let (status, error) = refused.map(refusal).unzip();
        let html = state.views.render(
            "login.html",
            context! {
                profiles, chosen, change_profile_url => link("choose"), form_action => "/cas/login",
                csrf_token, service, renew, method, username => self.username, error, upstreams,
                forgot_url => "/compte/mot-de-passe-oublie",
                activate_url => self.with_service("/compte/activation"),
                reset_url => self.with_service("/compte/activation?reinitialise=1"),
            },
        )?;
        Ok((status.unwrap_or(StatusCode::OK), jar, Html(html)).into_response())
    }

    /// The charter at login.
    fn cgu(&self, jar: CookieJar, token: &str, refused: bool) -> Result<Response, WebError> {
        let error = refused.then_some(
            "Pour continuer, cochez la case « J'ai lu et j'accepte les Conditions Générales d'Utilisation décrites \
             ci-dessus. »",
        );
        let status = if refused { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        let ctx = context! { jeton => token, error, cgu_version => &self.state.lifecycle.cgu_version };
        crate::compte::page(self.state, jar, "cgu_login.html", status, ctx)
    }

    fn cgu_expired(&self, jar: CookieJar) -> Result<Response, WebError> {
        let ctx = context! {
            title => "Connexion expirée",
            message => "Votre connexion a expiré avant l'acceptation des Conditions Générales d'Utilisation. \
                        Veuillez vous connecter à nouveau.",
            back_url => "/cas/login",
        };
        crate::compte::page(self.state, jar, "error.html", StatusCode::GONE, ctx)
    }
}

/// The status and French message of a refused login.
fn refusal(r: Refusal) -> (StatusCode, &'static str) {
    match r {
        Refusal::MissingCredentials => {
            (StatusCode::BAD_REQUEST, "Veuillez saisir votre identifiant et votre mot de passe.")
        }
        Refusal::InvalidCredentials => (StatusCode::UNAUTHORIZED, "Identifiant ou mot de passe incorrect."),
        Refusal::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            "Trop de tentatives de connexion ont échoué. Veuillez patienter quelques minutes avant de réessayer.",
        ),
        Refusal::Locked => {
            (StatusCode::FORBIDDEN, "Votre compte est bloqué. Veuillez contacter votre établissement scolaire.")
        }
        Refusal::Disabled => {
            (StatusCode::FORBIDDEN, "Votre compte est désactivé. Veuillez contacter votre établissement scolaire.")
        }
    }
}

fn denial_message(denial: Denial) -> &'static str {
    match denial {
        Denial::Profile => "Ce service n'est pas ouvert à votre profil.",
        Denial::School => "Ce service n'est pas ouvert aux usagers de votre établissement.",
    }
}

/// Counts service tickets by how the session was reached.
fn count_ticket(fresh: bool) {
    metrics::counter!("idp_service_tickets_total", "sso" => if fresh { "false" } else { "true" }).increment(1);
}

/// A redirect to `location` (made ASCII) with `status`.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    (status, [(axum::http::header::LOCATION, ascii_location(location))]).into_response()
}

/// A `Location` header value must be ASCII: percent-encode any other byte
/// of the service URL (a service may have accents in its path).
pub fn ascii_location(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        if c.is_ascii() && !c.is_ascii_control() && c != ' ' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}
