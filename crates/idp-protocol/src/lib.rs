//! idp-protocol: the CAS protocol and the OpenID Connect / OAuth 2
//! provider on top of idp-core.
//!
//! It owns the protocol rules — which ticket is valid for which service,
//! when `renew` and `gateway` apply, what a validation answers — and the
//! wire formats (CAS 1 text, CAS 2/3 XML valid against the CAS 3.0 schema,
//! JSON, single logout messages). It reaches storage only through the
//! idp-core ports and knows nothing of HTTP status codes, cookies or
//! templates (that is idp-web), nor of SQL or Redis (idp-store).
//!
//! Start with [`login`] (the login pipeline every way into a session ends
//! in), then [`cas::Cas`], [`cas::validate`] and [`cas::response`];
//! for OIDC, [`oidc`] (JOSE with josekit), which shares the CAS SSO session.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod cas;
pub mod login;
pub mod oidc;
pub mod passkeys;
pub mod saml_idp;
pub mod upstream;

/// Errors of the protocol layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `service` parameter is not an acceptable URL.
    #[error("CAS0001 invalid service URL: {0}")]
    InvalidServiceUrl(String),
    /// No registered service matches the URL.
    #[error("CAS0002 service not registered: {0}")]
    UnknownService(String),
    /// No upstream identity provider has this id.
    #[error("CAS0004 unknown upstream identity provider")]
    UnknownUpstream,
    /// The `method` parameter of a login is neither GET nor POST.
    #[error("CAS0003 unsupported response method")]
    UnsupportedMethod,
    /// An account flow refused a step the pipeline depends on.
    #[error("FLOW0001 account flow: {0}")]
    Flow(#[source] idp_core::lifecycle::FlowError),
    /// The WebAuthn library could not start a ceremony.
    #[error("PASS0001 passkey ceremony: {0}")]
    Passkey(String),
    /// A port failed.
    #[error(transparent)]
    Core(#[from] idp_core::Error),
}

impl Error {
    /// The stable code of the error, shown on error pages.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidServiceUrl(_) => "CAS0001",
            Error::UnknownService(_) => "CAS0002",
            Error::UnsupportedMethod => "CAS0003",
            Error::UnknownUpstream => "CAS0004",
            Error::Flow(_) => "FLOW0001",
            Error::Passkey(_) => "PASS0001",
            Error::Core(e) => e.code(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
