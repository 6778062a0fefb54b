//! The French page shown instead of a ticket when a service's access rules
//! leave the person out.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;

use idp_core::access::Denial;
use idp_core::service::Service;

use crate::error::WebError;
use crate::state::AppState;

/// Renders `service_denied.html` (403): no ticket, no redirect.
pub fn denied(state: &AppState, jar: CookieJar, service: &Service, denial: Denial) -> Result<Response, WebError> {
    let message = match denial {
        Denial::Profile => "Ce service n'est pas ouvert à votre profil.",
        Denial::School => "Ce service n'est pas ouvert aux usagers de votre établissement.",
    };
    let html = state.views.render("service_denied.html", context! { service_name => &service.name, message })?;
    Ok((StatusCode::FORBIDDEN, jar, Html(html)).into_response())
}
