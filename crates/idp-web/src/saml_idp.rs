//! Our SAML identity provider: `/saml/idp/metadata`, `/saml/idp/sso`
//! (HTTP-Redirect and HTTP-POST; `?sp=ID` for an IdP-initiated login),
//! `/saml/idp/resume/<id>` (back from the CAS login) and `/saml/idp/slo`.
//! Parse, one call to `SamlIdp`, render: the response posted by the
//! self-submitting form, or a French page, never an assertion.
//!
//! The SSO and SLO endpoints take cross-site POSTs from service providers,
//! so they carry no CSRF token of ours: the SP's signature (where
//! required) and the assertion consumer read from its metadata are what
//! bind them.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use idp_protocol::login::LogoutNext;
use idp_protocol::saml_idp::front::{ChainEnd, is_response};
use idp_protocol::saml_idp::logout::SloNext;
use idp_protocol::saml_idp::logout::soap_fault;
use idp_protocol::saml_idp::{Incoming, Refusal, SsoNext};

use crate::cookies;
use crate::error::WebError;
use crate::state::AppState;

/// A message of the HTTP-POST binding, or the parameters of a redirect.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Params {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
    sp: Option<String>,
    key: String,
    ticket: Option<String>,
}

/// `GET /saml/idp/metadata`: our metadata (its URL is our entity id).
pub async fn metadata(State(state): State<AppState>) -> Result<Response, WebError> {
    let xml = state.saml_idp.metadata_xml()?;
    Ok(([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml).into_response())
}

/// `GET /saml/idp/sso`: an AuthnRequest by HTTP-Redirect, or `?sp=ID`.
pub async fn sso_redirect(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, WebError> {
    let query = query.unwrap_or_default();
    let p: Params = crate::params::parse(&query);
    let incoming = match (&p.saml_request, &p.sp) {
        (Some(_), _) => Incoming::Redirect(&query),
        (None, Some(sp)) => Incoming::Unsolicited { sp, relay_state: p.relay_state.as_deref() },
        (None, None) => return refuse(&state, Refusal::BadRequest),
    };
    let next = state.saml_idp.sso(incoming).await?;
    render(&state, next)
}

/// `POST /saml/idp/sso`: an AuthnRequest by HTTP-POST.
pub async fn sso_post(State(state): State<AppState>, body: Bytes) -> Result<Response, WebError> {
    let p: Params = crate::params::parse(std::str::from_utf8(&body).unwrap_or_default());
    let Some(message) = p.saml_request.as_deref() else { return refuse(&state, Refusal::BadRequest) };
    let next = state.saml_idp.sso(Incoming::Post { message, relay_state: p.relay_state.as_deref() }).await?;
    render(&state, next)
}

/// `GET /saml/idp/resume/<id>?key=…&ticket=…`: back from the CAS login.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let p: Params = crate::params::parse(query.as_deref().unwrap_or_default());
    let tgc = cookies::session_id(&jar, state.config.https());
    let next = state.saml_idp.resume(&id, &p.key, p.ticket.as_deref(), tgc.as_deref()).await?;
    render(&state, next)
}

/// `GET /saml/idp/slo`: an SP's LogoutRequest by HTTP-Redirect.
pub async fn slo_redirect(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    jar: CookieJar,
) -> Result<Response, WebError> {
    let query = query.unwrap_or_default();
    let https = state.config.https();
    if is_response(&query) {
        let p: Params = crate::params::parse(&query);
        let chain = cookies::get(&jar, cookies::Name::SloChain, https);
        let next =
            state.saml_idp.continue_chain(Incoming::Redirect(&query), p.relay_state.as_deref(), chain.as_deref());
        return render_slo(&state, jar, next.await?);
    }
    let tgc = cookies::session_id(&jar, https);
    let next = state.saml_idp.single_logout(Incoming::Redirect(&query), tgc.as_deref()).await?;
    render_slo(&state, jar, next)
}

/// `POST /saml/idp/slo`: an SP's LogoutRequest by HTTP-POST, or by SOAP
/// (`text/xml`, the back channel).
pub async fn slo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, WebError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if content_type.trim_start().to_ascii_lowercase().starts_with("text/xml") {
        return soap_slo(&state, &body).await;
    }
    let p: Params = crate::params::parse(std::str::from_utf8(&body).unwrap_or_default());
    let relay_state = p.relay_state.as_deref();
    if let Some(message) = p.saml_response.as_deref() {
        let chain = cookies::get(&jar, cookies::Name::SloChain, state.config.https());
        let next =
            state.saml_idp.continue_chain(Incoming::Post { message, relay_state }, relay_state, chain.as_deref());
        return render_slo(&state, jar, next.await?);
    }
    let Some(message) = p.saml_request.as_deref() else { return refuse(&state, Refusal::BadRequest) };
    let tgc = cookies::session_id(&jar, state.config.https());
    let incoming = Incoming::Post { message, relay_state: p.relay_state.as_deref() };
    let next = state.saml_idp.single_logout(incoming, tgc.as_deref()).await?;
    render_slo(&state, jar, next)
}

/// The SOAP answer: our signed LogoutResponse, or a SOAP fault (400/403).
async fn soap_slo(state: &AppState, body: &[u8]) -> Result<Response, WebError> {
    let xml = |status: StatusCode, body: String| (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body);
    let Ok(envelope) = std::str::from_utf8(body) else {
        return Ok(xml(StatusCode::BAD_REQUEST, soap_fault("not UTF-8")).into_response());
    };
    let answer = match state.saml_idp.soap_logout(envelope).await? {
        Ok(answer) => xml(StatusCode::OK, answer),
        Err(Refusal::UnknownSp) => xml(StatusCode::FORBIDDEN, soap_fault("unknown service provider")),
        Err(Refusal::Unsigned) => xml(StatusCode::FORBIDDEN, soap_fault("unsigned or badly signed request")),
        Err(_) => xml(StatusCode::BAD_REQUEST, soap_fault("unreadable LogoutRequest")),
    };
    Ok(answer.into_response())
}

fn render(state: &AppState, next: SsoNext) -> Result<Response, WebError> {
    match next {
        SsoNext::Login { url } => Ok(Redirect::to(&url).into_response()),
        SsoNext::Post { action, saml_response, relay_state } => post_form(state, &action, saml_response, relay_state),
        SsoNext::Refuse(refusal) => refuse(state, refusal),
    }
}

/// `/cas/logout` ended session `tgc`: the browser goes through the SAML
/// SPs that only a front-channel logout reaches, then where `next` says.
pub(crate) async fn after_cas_logout(
    state: &AppState,
    jar: CookieJar,
    tgc: Option<&str>,
    next: LogoutNext,
) -> Result<Response, WebError> {
    let end = match &next {
        LogoutNext::LoggedOut => ChainEnd::LoggedOut,
        LogoutNext::ToService(url) => ChainEnd::ToService(url.clone()),
        LogoutNext::ToUpstream(_) | LogoutNext::Refused => return crate::cas::logout::respond(state, jar, next),
    };
    match tgc {
        Some(tgc) => match state.saml_idp.front_channel(tgc, end).await? {
            Some(chain) => render_slo(state, jar, chain),
            None => crate::cas::logout::respond(state, jar, next),
        },
        None => crate::cas::logout::respond(state, jar, next),
    }
}

fn render_slo(state: &AppState, jar: CookieJar, next: SloNext) -> Result<Response, WebError> {
    let https = state.config.https();
    let jar = cookies::remove(jar, cookies::Name::Session, https);
    let response = match next {
        SloNext::Chain { url, key } => {
            return Ok(
                (cookies::set(jar, cookies::Name::SloChain, &key, https, false), Redirect::to(&url)).into_response()
            );
        }
        SloNext::LoggedOut => {
            let jar = cookies::remove(jar, cookies::Name::SloChain, https);
            return crate::cas::logout::respond(state, jar, LogoutNext::LoggedOut);
        }
        SloNext::ToService(url) => {
            let jar = cookies::remove(jar, cookies::Name::SloChain, https);
            return crate::cas::logout::respond(state, jar, LogoutNext::ToService(url));
        }
        SloNext::Redirect(url) => Redirect::to(&url).into_response(),
        SloNext::Post { action, saml_response, relay_state } => post_form(state, &action, saml_response, relay_state)?,
        SloNext::Refuse(refusal) => return refuse(state, refusal),
    };
    Ok((jar, response).into_response())
}

/// The self-submitting form carrying `SAMLResponse` (and `RelayState`).
fn post_form(
    state: &AppState,
    action: &str,
    saml_response: String,
    relay_state: Option<String>,
) -> Result<Response, WebError> {
    let mut fields = vec![context! { name => "SAMLResponse", value => saml_response }];
    fields.extend(relay_state.map(|r| context! { name => "RelayState", value => r }));
    let html = state.views.render("post_redirect.html", context! { action, fields })?;
    let mut response = Html(html).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The French page of a refusal: no assertion leaves.
fn refuse(state: &AppState, refusal: Refusal) -> Result<Response, WebError> {
    let (status, title, message, code) = match refusal {
        Refusal::UnknownSp => (
            StatusCode::FORBIDDEN,
            "Service non autorisé",
            "Ce service n'est pas autorisé à utiliser la connexion de l'ENT.",
            "SAMLIDP0001",
        ),
        Refusal::Unsigned => (
            StatusCode::FORBIDDEN,
            "Demande non signée",
            "La demande de connexion de ce service n'est pas signée comme convenu : elle est refusée.",
            "SAMLIDP0002",
        ),
        Refusal::UnknownAcs => (
            StatusCode::FORBIDDEN,
            "Adresse de retour inconnue",
            "Ce service demande à recevoir la connexion à une adresse qui n'a pas été déclarée : elle est refusée.",
            "SAMLIDP0003",
        ),
        Refusal::BadRequest => (
            StatusCode::BAD_REQUEST,
            "Demande de connexion invalide",
            "La demande de connexion reçue est illisible, incomplète ou trop ancienne.",
            "SAMLIDP0004",
        ),
        Refusal::UnsolicitedNotAllowed => (
            StatusCode::FORBIDDEN,
            "Accès direct non autorisé",
            "Ce service ne peut être ouvert que depuis son propre site.",
            "SAMLIDP0005",
        ),
        Refusal::Expired => (
            StatusCode::BAD_REQUEST,
            "Connexion expirée",
            "Cette connexion a expiré ou a déjà été utilisée. Veuillez retourner sur le service et recommencer.",
            "SAMLIDP0006",
        ),
        Refusal::Replayed => (
            StatusCode::BAD_REQUEST,
            "Demande déjà reçue",
            "Cette demande de connexion a déjà été reçue une fois : elle est refusée. Veuillez retourner sur le service et recommencer.",
            "SAMLIDP0007",
        ),
    };
    let html = state.views.render("error.html", context! { title, message, code })?;
    Ok((status, Html(html)).into_response())
}
