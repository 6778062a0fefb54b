//! The terms of use at login: after a successful credential check, a person
//! who has not accepted the current CGU version sees the charter, and gets
//! no session and no ticket until the box is ticked
//! ([`idp_core::cgu`] decides; this is the CAS front end of it).

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::{Deserialize, Serialize};

use idp_core::account::Account;
use idp_core::lifecycle::FlowError;

use crate::cas::TGC;
use crate::cas::login::{Target, target, tgc_cookie, to_service_or_welcome};
use crate::compte::{page, user_error};
use crate::csrf;
use crate::error::WebError;
use crate::state::AppState;

/// What the CAS login needs to finish after the acceptance.
#[derive(Serialize, Deserialize)]
struct Resume {
    service: Option<String>,
    renew: bool,
    method: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CguForm {
    csrf_token: Option<String>,
    jeton: String,
    accepte: Option<String>,
}

fn cgu_page(
    state: &AppState,
    jar: CookieJar,
    token: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, WebError> {
    page(
        state,
        jar,
        "cgu_login.html",
        status,
        context! { jeton => token, error, cgu_version => &state.lifecycle.cgu_version },
    )
}

/// Called by the login instead of opening a session: shows the charter.
pub(crate) async fn ask(state: &AppState, jar: CookieJar, account: &Account, t: &Target) -> Result<Response, WebError> {
    let resume = Resume {
        service: t.service.as_ref().map(|(url, _)| url.as_str().to_owned()),
        renew: t.renew,
        method: t.method.param().map(str::to_owned),
    };
    let resume = serde_json::to_string(&resume).map_err(|e| WebError::internal("WEB0003", e))?;
    let token = state.lifecycle.begin_cgu(account, resume).await.map_err(core)?;
    cgu_page(state, jar, &token, None, StatusCode::OK)
}

fn core(e: FlowError) -> WebError {
    match e {
        FlowError::Core(e) => e.into(),
        other => WebError::internal("WEB0002", other),
    }
}

/// `POST /cas/login/cgu`: the answer. Accepted: the session opens and the
/// service gets its ticket, as after any login.
pub async fn accept(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CguForm>,
) -> Result<Response, WebError> {
    let expired = |jar| {
        page(
            &state,
            jar,
            "error.html",
            StatusCode::GONE,
            context! {
                title => "Connexion expirée",
                message => "Votre connexion a expiré avant l'acceptation des Conditions Générales d'Utilisation. Veuillez vous connecter à nouveau.",
                back_url => "/cas/login",
            },
        )
    };
    if !csrf::verify(&jar, form.csrf_token.as_deref()) {
        return expired(jar);
    }
    let (account, pending) = match state.lifecycle.accept_cgu_at_login(&form.jeton, form.accepte.is_some()).await {
        Ok(done) => done,
        Err(e @ FlowError::CguNotAccepted) => {
            return cgu_page(&state, jar, &form.jeton, Some(user_error(e)?), StatusCode::BAD_REQUEST);
        }
        Err(FlowError::Core(e)) => return Err(e.into()),
        Err(_) => return expired(jar),
    };
    let resume: Resume = serde_json::from_str(&pending.resume).map_err(|e| WebError::internal("WEB0003", e))?;
    let t = target(&state, resume.service.as_deref(), resume.renew, resume.method.as_deref()).await?;
    let previous = jar.get(TGC).map(|c| c.value().to_owned());
    let session = state.cas.open_session(&account, previous.as_deref()).await?;
    let jar = jar.add(tgc_cookie(&session.id, state.config.https()));
    to_service_or_welcome(&state, jar, &session, &account, &t, true).await
}
