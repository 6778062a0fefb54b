//! `/oidc/authorize`: the authorization endpoint, on the CAS SSO session,
//! and the consent form it may show.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use idp_protocol::oidc::authorize::{AuthorizeParams, ConsentAnswer, ConsentReply, Next, Refusal};

use crate::cas::login::redirect;
use crate::cookies;
use crate::csrf;
use crate::error::{ErrorCode, WebError};
use crate::security::no_store;
use crate::state::AppState;

/// `GET /oidc/authorize`.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(params) = query.map_err(|_| bad_request())?;
    let tgc = cookies::session_id(&jar, state.config.https());
    let next = state.oidc.authorize(&params, tgc.as_deref(), None).await?;
    respond(&state, jar, &params, next)
}

/// The consent form's fields: the authorization request, the CSRF token,
/// the pending consent it answers and the answer.
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    csrf_token: Option<String>,
    consent_id: Option<String>,
    consent: Option<String>,
}

/// `POST /oidc/authorize`: the answer of the consent page (with its CSRF
/// token), or an authorization request sent by POST.
pub async fn consent(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|_| bad_request())?;
    let tgc = cookies::session_id(&jar, state.config.https());
    if form.consent.is_none() {
        // An authorization request sent by POST (OIDC Core §3.1.2.1).
        let next = state.oidc.authorize(&form.params, tgc.as_deref(), None).await?;
        return respond(&state, jar, &form.params, next);
    }
    if !csrf::verify(&jar, &state.config, form.csrf_token.as_deref()) {
        return Err(expired(ErrorCode::ConsentExpired));
    }
    let answer = match form.consent.as_deref() {
        Some("accept") => ConsentAnswer::Accept,
        _ => ConsentAnswer::Deny,
    };
    let reply = ConsentReply { answer, consent_id: form.consent_id.unwrap_or_default() };
    let next = state.oidc.authorize(&form.params, tgc.as_deref(), Some(reply)).await?;
    respond(&state, jar, &form.params, next)
}

fn expired(code: ErrorCode) -> WebError {
    WebError::bad_request(code, "Cette page a expiré. Veuillez revenir à l'application et recommencer.")
}

fn bad_request() -> WebError {
    WebError::bad_request(ErrorCode::BadAuthorizeRequest, "La demande de connexion de l'application est incorrecte.")
}

fn respond(state: &AppState, jar: CookieJar, params: &AuthorizeParams, next: Next) -> Result<Response, WebError> {
    let mut response = match next {
        Next::Redirect(url) | Next::Login { url } => redirect(StatusCode::FOUND, &url),
        Next::Refuse(Refusal::UnknownClient) => {
            return Err(WebError::ServiceNotAllowed {
                code: ErrorCode::UnknownClient,
                detail: "unknown client_id".into(),
            });
        }
        Next::Refuse(Refusal::UnregisteredRedirectUri) => {
            return Err(WebError::ServiceNotAllowed {
                code: ErrorCode::UnregisteredRedirectUri,
                detail: "unregistered redirect_uri".into(),
            });
        }
        Next::Refuse(Refusal::ConsentExpired) => return Err(expired(ErrorCode::UnknownConsent)),
        Next::Consent { client, scopes, account, consent_id } => {
            let (jar, csrf_token) = csrf::token(jar, &state.config)?;
            let fields: Vec<_> = url::form_urlencoded::parse(params.to_query().as_bytes())
                .map(|(name, value)| context! { name => name.into_owned(), value => value.into_owned() })
                .collect();
            let scopes: Vec<&str> = scopes.iter().map(|s| scope_label(s)).collect();
            let html = state.views.render(
                "consent.html",
                context! {
                    client_name => client.name, scopes, fields, csrf_token, consent_id,
                    display_name => account.display_name(), action => "/oidc/authorize",
                },
            )?;
            return Ok((jar, Html(html)).into_response());
        }
    };
    no_store(response.headers_mut());
    Ok((jar, response).into_response())
}

/// What a scope gives, in the person's words.
fn scope_label(scope: &str) -> &'static str {
    match scope {
        "openid" => "votre identifiant ENT",
        "profile" => "vos nom et prénom",
        "email" => "votre adresse électronique",
        "ent" => "votre profil (élève, parent, personnel...) et vos établissements",
        "offline_access" => "un accès qui continue quand vous êtes déconnecté(e)",
        _ => "d'autres informations",
    }
}
