//! `/cas/login`: the profile choice, the credentials form, single sign-on,
//! `renew`, `gateway` and `method=POST`.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use minijinja::context;
use serde::Deserialize;

use idp_core::account::{Account, Login};
use idp_core::auth::LoginOutcome;
use idp_core::secret::Secret;
use idp_core::service::{Service, ServiceUrl};
use idp_core::session::SsoSession;

use crate::cas::{TGC, flag};
use crate::csrf;
use crate::error::WebError;
use crate::net::client_ip;
use crate::security::no_store;
use crate::state::AppState;

/// The cookie that remembers the chosen profile.
const PROFILE_COOKIE: &str = "idp_profile";

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
    csrf_token: Option<String>,
    service: Option<String>,
    renew: Option<String>,
    method: Option<String>,
}

/// How the ticket travels back to the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseMethod {
    Get,
    Post,
}

impl ResponseMethod {
    fn parse(value: Option<&str>) -> Result<Self, WebError> {
        match value.map(str::to_ascii_uppercase).as_deref() {
            None | Some("") | Some("GET") => Ok(ResponseMethod::Get),
            Some("POST") => Ok(ResponseMethod::Post),
            _ => Err(WebError::bad_request("CAS0003", "La méthode de retour demandée n'est pas prise en charge.")),
        }
    }

    pub(crate) fn param(self) -> Option<&'static str> {
        match self {
            ResponseMethod::Get => None,
            ResponseMethod::Post => Some("POST"),
        }
    }
}

/// What a login request is for: the service (checked against the registry)
/// and the CAS options.
pub(crate) struct Target {
    pub(crate) service: Option<(ServiceUrl, Service)>,
    pub(crate) renew: bool,
    pub(crate) method: ResponseMethod,
}

impl Target {
    /// Whether an SSO session may be reused: not when the service turned
    /// single sign-on off (`ssoEnabled=false`).
    pub(crate) fn sso(&self) -> bool {
        self.service.as_ref().is_none_or(|(_, s)| s.policy.sso_enabled)
    }
}

pub(crate) async fn target(
    state: &AppState,
    service: Option<&str>,
    renew: bool,
    method: Option<&str>,
) -> Result<Target, WebError> {
    let service = match service.filter(|s| !s.is_empty()) {
        Some(raw) => Some(state.cas.registered_service(raw).await?),
        None => None,
    };
    Ok(Target { service, renew, method: ResponseMethod::parse(method)? })
}

/// `GET /cas/login`.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Result<Response, WebError> {
    let renew = flag(&q.renew);
    let target = target(&state, q.service.as_deref(), renew, q.method.as_deref()).await?;
    // renew forces credentials and cancels gateway (specification 2.1.1).
    if !renew {
        let tgc = jar.get(TGC).map(|c| c.value().to_owned());
        if target.sso()
            && let Some((session, account)) = state.cas.current_session(tgc.as_deref()).await?
        {
            // A charter published since the login: no ticket before it is
            // accepted (gateway shows no page: back to the service).
            if state.lifecycle.must_accept_cgu(&account) {
                if flag(&q.gateway)
                    && let Some((url, _)) = &target.service
                {
                    return Ok(redirect(StatusCode::FOUND, url.as_str()));
                }
                return crate::cas::cgu::ask(&state, jar, &account, &target).await;
            }
            return to_service_or_welcome(&state, jar, &session, &account, &target, false).await;
        }
        if flag(&q.gateway)
            && let Some((url, _)) = &target.service
        {
            return Ok(redirect(StatusCode::FOUND, url.as_str()));
        }
    }
    let jar = match q.profile.as_deref() {
        Some(id) if state.config.profile(id).is_some() => jar.add(profile_cookie(id, state.config.https())),
        Some("choose") => jar.remove(Cookie::build(PROFILE_COOKIE).path("/")),
        _ => jar,
    };
    let chosen = match q.profile.as_deref() {
        Some("choose") => None,
        Some(id) if state.config.profile(id).is_some() => Some(id.to_owned()),
        _ => jar.get(PROFILE_COOKIE).map(|c| c.value().to_owned()),
    };
    let hint = q.username.as_deref().and_then(|u| Login::parse(u).ok());
    let hint = hint.as_ref().map(Login::as_str).unwrap_or("");
    login_page(&state, jar, &target, chosen.as_deref(), hint, None, StatusCode::OK)
}

/// `POST /cas/login`: checks the credentials.
pub async fn submit(
    State(state): State<AppState>,
    parts: Parts,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let target = target(&state, form.service.as_deref(), flag(&form.renew), form.method.as_deref()).await?;
    let chosen = jar.get(PROFILE_COOKIE).map(|c| c.value().to_owned());
    let chosen = chosen.as_deref().or_else(|| state.config.profiles.first().map(|p| p.id.as_str()));
    let page = |jar, message: &'static str, status| {
        login_page(&state, jar, &target, chosen, &form.username, Some(message), status)
    };
    if !csrf::verify(&jar, form.csrf_token.as_deref()) {
        return page(
            jar,
            "Votre page de connexion a expiré. Veuillez saisir à nouveau votre identifiant et votre mot de passe.",
            StatusCode::FORBIDDEN,
        );
    }
    if form.username.trim().is_empty() || form.password.is_empty() {
        return page(jar, "Veuillez saisir votre identifiant et votre mot de passe.", StatusCode::BAD_REQUEST);
    }
    let source = client_ip(&parts, &state.config.trusted_proxies);
    let outcome = state.auth.login(&form.username, Secret::new(form.password.clone()), &source).await?;
    metrics::counter!("idp_logins_total", "outcome" => outcome_label(&outcome)).increment(1);
    match outcome {
        LoginOutcome::Success(account) => {
            // The login history is a convenience: its failure never blocks a login.
            if let Err(e) = state.lifecycle.security.record_login(account.id, state.cas.clock.now(), &source).await {
                tracing::warn!(error = %e, "cannot record the login in the history");
            }
            // A new version of the terms of use: no session, no ticket
            // before it is accepted.
            if state.lifecycle.must_accept_cgu(&account) {
                return crate::cas::cgu::ask(&state, jar, &account, &target).await;
            }
            let previous = jar.get(TGC).map(|c| c.value().to_owned());
            let session = state.cas.open_session(&account, previous.as_deref()).await?;
            let jar = jar.add(tgc_cookie(&session.id, state.config.https()));
            to_service_or_welcome(&state, jar, &session, &account, &target, true).await
        }
        LoginOutcome::InvalidCredentials => {
            page(jar, "Identifiant ou mot de passe incorrect.", StatusCode::UNAUTHORIZED)
        }
        LoginOutcome::Throttled => page(
            jar,
            "Trop de tentatives de connexion ont échoué. Veuillez patienter quelques minutes avant de réessayer.",
            StatusCode::TOO_MANY_REQUESTS,
        ),
        LoginOutcome::Locked => page(
            jar,
            "Votre compte est bloqué. Veuillez contacter votre établissement scolaire.",
            StatusCode::FORBIDDEN,
        ),
        LoginOutcome::Disabled => page(
            jar,
            "Votre compte est désactivé. Veuillez contacter votre établissement scolaire.",
            StatusCode::FORBIDDEN,
        ),
        LoginOutcome::MustActivate { reset } => {
            let html = state.views.render(
                "must_activate.html",
                context! {
                    activation_url => activation_link(activation_url(reset), target.service.as_ref().map(|(u, _)| u.as_str())),
                    reset => reset,
                    login_url => "/cas/login",
                },
            )?;
            Ok((jar, Html(html)).into_response())
        }
    }
}

fn outcome_label(outcome: &LoginOutcome) -> &'static str {
    match outcome {
        LoginOutcome::Success(_) => "success",
        LoginOutcome::InvalidCredentials => "invalid_credentials",
        LoginOutcome::MustActivate { .. } => "must_activate",
        LoginOutcome::Locked => "locked",
        LoginOutcome::Disabled => "disabled",
        LoginOutcome::Throttled => "throttled",
    }
}

/// The activation link, keeping the service for "Accès ENT".
fn activation_link(base: &str, service: Option<&str>) -> String {
    match service {
        Some(s) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("service", s).finish();
            format!("{base}{sep}{q}")
        }
        None => base.to_owned(),
    }
}

fn activation_url(reset: bool) -> &'static str {
    if reset { "/compte/activation?reinitialise=1" } else { "/compte/activation" }
}

/// After a login or with a live session: a ticket for the service, or the
/// "logged in" page when there is no service.
pub(crate) async fn to_service_or_welcome(
    state: &AppState,
    jar: CookieJar,
    session: &SsoSession,
    account: &Account,
    target: &Target,
    from_new_login: bool,
) -> Result<Response, WebError> {
    let Some((url, service)) = &target.service else {
        let html = state.views.render(
            "logged_in.html",
            context! { display_name => account.display_name(), login => account.login.as_str(), logout_url => "/cas/logout" },
        )?;
        return Ok((jar, Html(html)).into_response());
    };
    if let Some(denial) = state.cas.access_denial(service, account) {
        return crate::cas::denied::denied(state, jar, service, denial);
    }
    let ticket = state.cas.issue_service_ticket(session, url, service, from_new_login).await?;
    metrics::counter!("idp_service_tickets_total", "sso" => if from_new_login { "false" } else { "true" }).increment(1);
    let mut response = match target.method {
        ResponseMethod::Get => {
            // 303 after the form POST, so the browser follows with a GET
            // (specification Appendix B); 302 for a GET, as Apereo CAS.
            let status = if from_new_login { StatusCode::SEE_OTHER } else { StatusCode::FOUND };
            redirect(status, &url.with_param("ticket", &ticket.id))
        }
        ResponseMethod::Post => {
            let html = state.views.render(
                "post_redirect.html",
                context! { action => url.as_str(), fields => vec![context! { name => "ticket", value => &ticket.id }] },
            )?;
            Html(html).into_response()
        }
    };
    no_store(response.headers_mut());
    Ok((jar, response).into_response())
}

/// Renders the profile page or the credentials form.
fn login_page(
    state: &AppState,
    jar: CookieJar,
    target: &Target,
    chosen: Option<&str>,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let (jar, csrf_token) = csrf::token(jar, state.config.https())?;
    let service = target.service.as_ref().map(|(url, _)| url.as_str());
    let link = |profile: &str| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("profile", profile);
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        if target.renew {
            q.append_pair("renew", "true");
        }
        if let Some(m) = target.method.param() {
            q.append_pair("method", m);
        }
        if !username.is_empty() {
            q.append_pair("username", username);
        }
        format!("/cas/login?{}", q.finish())
    };
    let profiles: Vec<_> =
        state.config.profiles.iter().map(|p| context! { id => &p.id, label => &p.label, url => link(&p.id) }).collect();
    let chosen = chosen.and_then(|id| state.config.profile(id)).map(|p| context! { id => &p.id, label => &p.label });
    let html = state.views.render(
        "login.html",
        context! {
            profiles, chosen,
            change_profile_url => link("choose"),
            form_action => "/cas/login",
            csrf_token, service, renew => target.renew, method => target.method.param(),
            username, error,
            forgot_url => "/compte/mot-de-passe-oublie",
            activate_url => activation_link("/compte/activation", service),
            reset_url => activation_link("/compte/activation?reinitialise=1", service),
        },
    )?;
    Ok((status, jar, Html(html)).into_response())
}

pub(crate) fn tgc_cookie(id: &str, secure: bool) -> Cookie<'static> {
    Cookie::build((TGC, id.to_owned())).path("/").http_only(true).secure(secure).same_site(SameSite::Lax).build()
}

fn profile_cookie(id: &str, secure: bool) -> Cookie<'static> {
    Cookie::build((PROFILE_COOKIE, id.to_owned()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .permanent()
        .build()
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
