//! The one place where errors become HTTP statuses and French pages.
//!
//! `WebError::into_response` has no side effects and no access to the
//! views: it sets the status and attaches an [`ErrorPage`] extension; the
//! [`crate::security::headers`] middleware renders that extension with the
//! theme's `error.html` and logs the detail, which never reaches the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt::Display;

use idp_core::lifecycle::FlowError;

/// The stable codes shown on error pages (and in the logs), so that a
/// help desk can tell one failure from another. `docs/operations.md` lists
/// them with the codes of the lower layers (`CORE…`, `CAS0001`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// WEB0001: a template does not render.
    Template,
    /// WEB0002: an account flow failed in a way that is not the person's.
    Flow,
    /// WEB0003: a value could not be serialised (JSON export).
    Serialize,
    /// WEB0004: a form came back without its valid CSRF token.
    FormExpired,
    /// WEB0005: a form body that does not parse.
    BadForm,
    /// WEB0006: an uploaded file over the size limit.
    TooLarge,
    /// CAS0002: the `service` is not registered (or not a valid URL).
    ServiceNotAllowed,
    /// CAS0003: the login's `method` is neither GET nor POST.
    UnsupportedMethod,
    /// OIDC0001: unknown `client_id`.
    UnknownClient,
    /// OIDC0002: `redirect_uri` not registered for the client.
    UnregisteredRedirectUri,
    /// OIDC0003: the consent page expired.
    ConsentExpired,
    /// OIDC0004: an authorization request that does not parse.
    BadAuthorizeRequest,
    /// OIDC0005: a logout request that does not parse.
    BadLogoutRequest,
    /// OIDC0006: unknown client or unregistered `post_logout_redirect_uri`.
    UnregisteredLogoutUri,
    /// OIDC0007: a consent answer for no consent page the server showed.
    UnknownConsent,
    /// A code of a lower layer (`CORE0004`, `FLOW0001`, ...).
    Lower(&'static str),
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Template => "WEB0001",
            ErrorCode::Flow => "WEB0002",
            ErrorCode::Serialize => "WEB0003",
            ErrorCode::FormExpired => "WEB0004",
            ErrorCode::BadForm => "WEB0005",
            ErrorCode::TooLarge => "WEB0006",
            ErrorCode::ServiceNotAllowed => "CAS0002",
            ErrorCode::UnsupportedMethod => "CAS0003",
            ErrorCode::UnknownClient => "OIDC0001",
            ErrorCode::UnregisteredRedirectUri => "OIDC0002",
            ErrorCode::ConsentExpired => "OIDC0003",
            ErrorCode::BadAuthorizeRequest => "OIDC0004",
            ErrorCode::BadLogoutRequest => "OIDC0005",
            ErrorCode::UnregisteredLogoutUri => "OIDC0006",
            ErrorCode::UnknownConsent => "OIDC0007",
            ErrorCode::Lower(code) => code,
        }
    }
}

impl Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    BadRequest { code: ErrorCode, message: &'static str },
    /// A form posted without its valid CSRF token (an old page, or another
    /// site): nothing is done, the person reloads the page.
    #[error("WEB0004 form expired")]
    FormExpired,
    /// An uploaded file over the size limit: nothing is read further.
    #[error("WEB0006 too large")]
    TooLarge { message: &'static str },
    /// The `service` of a CAS request is not registered: refused, and never
    /// redirected to.
    #[error("{code} service not allowed: {detail}")]
    ServiceNotAllowed { code: ErrorCode, detail: String },
    /// The thing changed or was created meanwhile (two writes at once).
    #[error("{code} conflict: {detail}")]
    Conflict { code: ErrorCode, detail: String },
    /// A store does not answer, or the password hashing queue is full: try
    /// again later.
    #[error("{code} unavailable: {detail}")]
    Unavailable { code: ErrorCode, detail: String },
    /// More logins at once than the hashing queue holds: the same page as
    /// [`WebError::Unavailable`], without a log line per request (the
    /// hashing adapter counts and sums them up).
    #[error("CORE0011 overloaded")]
    Overloaded,
    /// A bug of ours (a template that does not render).
    #[error("{code} internal error: {detail}")]
    Internal { code: ErrorCode, detail: String },
}

impl WebError {
    pub fn internal(code: ErrorCode, e: impl Display) -> Self {
        WebError::Internal { code, detail: e.to_string() }
    }

    pub fn bad_request(code: ErrorCode, message: &'static str) -> Self {
        WebError::BadRequest { code, message }
    }

    fn page(&self) -> (StatusCode, ErrorPage) {
        let (status, title, message) = self.words();
        let (code, detail) = match self {
            WebError::NotFound => (None, None),
            WebError::BadRequest { code, .. } => (Some(*code), None),
            WebError::FormExpired => (Some(ErrorCode::FormExpired), None),
            WebError::TooLarge { .. } => (Some(ErrorCode::TooLarge), None),
            WebError::Overloaded => (Some(ErrorCode::Lower(idp_core::Error::Overloaded.code())), None),
            WebError::ServiceNotAllowed { code, detail }
            | WebError::Conflict { code, detail }
            | WebError::Unavailable { code, detail }
            | WebError::Internal { code, detail } => (Some(*code), Some(detail.clone())),
        };
        (status, ErrorPage { title, message, code: code.map(ErrorCode::as_str), detail })
    }

    /// The status, title and French message of each kind of error.
    fn words(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            WebError::NotFound => {
                (StatusCode::NOT_FOUND, "Page introuvable", "La page demandée n'existe pas ou n'existe plus.")
            }
            WebError::BadRequest { message, .. } => (StatusCode::BAD_REQUEST, "Requête incorrecte", message),
            WebError::FormExpired => (
                StatusCode::FORBIDDEN,
                "Page expirée",
                "Cette page a expiré. Veuillez revenir en arrière, recharger la page et recommencer.",
            ),
            WebError::TooLarge { message } => (StatusCode::PAYLOAD_TOO_LARGE, "Fichier trop volumineux", message),
            WebError::ServiceNotAllowed { .. } => (
                StatusCode::FORBIDDEN,
                "Application non autorisée",
                "L'application qui vous a envoyé ici n'est pas autorisée à utiliser la connexion de l'ENT. Vous \
                 n'avez pas été redirigé(e) vers elle.",
            ),
            WebError::Conflict { .. } => (
                StatusCode::CONFLICT,
                "Modification simultanée",
                "Ces informations ont été modifiées en même temps par ailleurs. Veuillez recharger la page et \
                 recommencer.",
            ),
            WebError::Unavailable { .. } | WebError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service momentanément indisponible",
                "La connexion à l'ENT est momentanément indisponible. Veuillez réessayer dans quelques minutes.",
            ),
            WebError::Internal { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Une erreur est survenue",
                "Une erreur inattendue est survenue. Veuillez réessayer dans quelques minutes.",
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
                WebError::bad_request(ErrorCode::Lower("CORE0001"), "Les informations envoyées sont incorrectes.")
            }
            idp_core::Error::NotFound(_) => WebError::NotFound,
            idp_core::Error::Overloaded => WebError::Overloaded,
            idp_core::Error::Conflict(_) => {
                WebError::Conflict { code: ErrorCode::Lower(e.code()), detail: e.to_string() }
            }
            other => WebError::Unavailable { code: ErrorCode::Lower(other.code()), detail: other.to_string() },
        }
    }
}

/// An account flow's refusal that reached here is not the person's (those
/// are shown on the flow's page): a store failure, or a bug.
impl From<FlowError> for WebError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Core(e) => e.into(),
            other => WebError::internal(ErrorCode::Flow, other),
        }
    }
}

impl From<idp_protocol::Error> for WebError {
    fn from(e: idp_protocol::Error) -> Self {
        match e {
            idp_protocol::Error::InvalidServiceUrl(d) | idp_protocol::Error::UnknownService(d) => {
                WebError::ServiceNotAllowed { code: ErrorCode::ServiceNotAllowed, detail: d }
            }
            idp_protocol::Error::UnsupportedMethod => WebError::bad_request(
                ErrorCode::UnsupportedMethod,
                "La méthode de retour demandée n'est pas prise en charge.",
            ),
            idp_protocol::Error::UnknownUpstream => WebError::NotFound,
            idp_protocol::Error::Flow(e) => e.into(),
            idp_protocol::Error::Passkey(d) => WebError::internal(ErrorCode::Lower("PASS0001"), d),
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
        let hashing = WebError::from(idp_core::Error::Hashing("no thread".into())).into_response();
        assert_eq!(hashing.status(), StatusCode::SERVICE_UNAVAILABLE);
        let page = hashing.extensions().get::<ErrorPage>().unwrap();
        assert_eq!((page.title, page.code), ("Service momentanément indisponible", Some("CORE0005")));
        assert!(page.detail.is_some(), "logged");
        let full = WebError::from(idp_core::Error::Overloaded).into_response();
        assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
        let page = full.extensions().get::<ErrorPage>().unwrap();
        assert_eq!((page.title, page.code), ("Service momentanément indisponible", Some("CORE0011")));
        assert!(page.detail.is_none(), "not logged once per request");
    }
}
