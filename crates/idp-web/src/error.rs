//! The one place where errors become HTTP statuses and French pages.
//!
//! `WebError::into_response` has no side effects and no access to the
//! views: it sets the status and attaches an [`ErrorPage`] extension; the
//! [`crate::security::headers`] middleware renders that extension with the
//! theme's `error.html` and logs the detail, which never reaches the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt::Display;

/// What the error page shows, attached to the response as an extension.
#[derive(Clone, Debug)]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: &'static str,
    pub code: Option<&'static str>,
    /// For the logs only.
    pub detail: Option<String>,
}

/// Errors of the web layer.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    /// Bad input: a clear message, nothing lost.
    #[error("{code} bad request: {message}")]
    BadRequest { code: &'static str, message: &'static str },
    /// The `service` of a CAS request is not registered: refused, and never
    /// redirected to.
    #[error("{code} service not allowed: {detail}")]
    ServiceNotAllowed { code: &'static str, detail: String },
    /// The thing changed or was created meanwhile (two writes at once).
    #[error("{code} conflict: {detail}")]
    Conflict { code: &'static str, detail: String },
    /// A store does not answer, or the password hashing queue is full: try
    /// again later.
    #[error("{code} unavailable: {detail}")]
    Unavailable { code: &'static str, detail: String },
    /// A bug of ours (a template that does not render).
    #[error("{code} internal error: {detail}")]
    Internal { code: &'static str, detail: String },
}

impl WebError {
    pub fn internal(code: &'static str, e: impl Display) -> Self {
        WebError::Internal { code, detail: e.to_string() }
    }

    pub fn bad_request(code: &'static str, message: &'static str) -> Self {
        WebError::BadRequest { code, message }
    }

    fn page(&self) -> (StatusCode, ErrorPage) {
        match self {
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                ErrorPage {
                    title: "Page introuvable",
                    message: "La page demandée n'existe pas ou n'existe plus.",
                    code: None,
                    detail: None,
                },
            ),
            WebError::BadRequest { code, message } => (
                StatusCode::BAD_REQUEST,
                ErrorPage { title: "Requête incorrecte", message, code: Some(code), detail: None },
            ),
            WebError::ServiceNotAllowed { code, detail } => (
                StatusCode::FORBIDDEN,
                ErrorPage {
                    title: "Application non autorisée",
                    message: "L'application qui vous a envoyé ici n'est pas autorisée à utiliser la connexion de l'ENT. Vous n'avez pas été redirigé(e) vers elle.",
                    code: Some(code),
                    detail: Some(detail.clone()),
                },
            ),
            WebError::Conflict { code, detail } => (
                StatusCode::CONFLICT,
                ErrorPage {
                    title: "Modification simultanée",
                    message: "Ces informations ont été modifiées en même temps par ailleurs. Veuillez recharger la page et recommencer.",
                    code: Some(code),
                    detail: Some(detail.clone()),
                },
            ),
            WebError::Unavailable { code, detail } => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorPage {
                    title: "Service momentanément indisponible",
                    message: "La connexion à l'ENT est momentanément indisponible. Veuillez réessayer dans quelques minutes.",
                    code: Some(code),
                    detail: Some(detail.clone()),
                },
            ),
            WebError::Internal { code, detail } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorPage {
                    title: "Une erreur est survenue",
                    message: "Une erreur inattendue est survenue. Veuillez réessayer dans quelques minutes.",
                    code: Some(code),
                    detail: Some(detail.clone()),
                },
            ),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, page) = self.page();
        let mut response = (status, page.title).into_response();
        response.extensions_mut().insert(page);
        response
    }
}

impl From<idp_core::Error> for WebError {
    fn from(e: idp_core::Error) -> Self {
        match e {
            idp_core::Error::Invalid { .. } => {
                WebError::bad_request("CORE0001", "Les informations envoyées sont incorrectes.")
            }
            idp_core::Error::NotFound(_) => WebError::NotFound,
            idp_core::Error::Conflict(_) => WebError::Conflict { code: e.code(), detail: e.to_string() },
            idp_core::Error::Hashing(_) => WebError::Unavailable { code: e.code(), detail: e.to_string() },
            other => WebError::Unavailable { code: other.code(), detail: other.to_string() },
        }
    }
}

impl From<idp_protocol::Error> for WebError {
    fn from(e: idp_protocol::Error) -> Self {
        match e {
            idp_protocol::Error::InvalidServiceUrl(d) | idp_protocol::Error::UnknownService(d) => {
                WebError::ServiceNotAllowed { code: "CAS0002", detail: d }
            }
            idp_protocol::Error::Core(e) => e.into(),
        }
    }
}

/// The fallback handler: a French 404 page.
pub async fn not_found() -> WebError {
    WebError::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_and_hashing_have_their_own_statuses() {
        let conflict = WebError::from(idp_core::Error::Conflict("account 'x' changed since it was read".into()));
        assert_eq!(conflict.into_response().status(), StatusCode::CONFLICT);
        let hashing = WebError::from(idp_core::Error::Hashing("queue full".into())).into_response();
        assert_eq!(hashing.status(), StatusCode::SERVICE_UNAVAILABLE);
        let page = hashing.extensions().get::<ErrorPage>().unwrap();
        assert_eq!((page.title, page.code), ("Service momentanément indisponible", Some("CORE0005")));
    }
}
