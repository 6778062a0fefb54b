//! The state shared by every handler.

use async_trait::async_trait;
use std::sync::Arc;

use idp_core::lifecycle::Lifecycle;
use idp_protocol::cas::Cas;
use idp_protocol::login::LoginPipeline;
use idp_protocol::oidc::Oidc;

use crate::config::WebConfig;
use crate::views::Views;

/// Readiness of the stores (database, ticket registry), for `/readyz`.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Err` names the store that does not answer.
    async fn check(&self) -> Result<(), String>;
}

/// Everything a handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub cas: Arc<Cas>,
    /// Every way into a session: the CAS login, the charter at login.
    pub login: Arc<LoginPipeline>,
    /// The OpenID Connect provider, on the same SSO session as `cas`.
    pub oidc: Arc<Oidc>,
    pub views: Arc<Views>,
    pub config: Arc<WebConfig>,
    pub readiness: Arc<dyn Readiness>,
    /// Renders the Prometheus text exposition of the process's metrics.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// The account flows: activation, forgotten password, CGU, Mon compte.
    pub lifecycle: Arc<Lifecycle>,
    /// The SAML identity provider, on the same SSO session.
    pub saml_idp: Arc<idp_protocol::saml_idp::SamlIdp>,
    /// The school help desk at `/gestion/`.
    pub console: Arc<idp_core::admin::Console>,
    /// TOTP, recovery codes and passkeys (Mon compte, the console).
    pub second_factor: Arc<idp_core::second_factor::SecondFactor>,
    /// The WebAuthn ceremonies of passkeys (Mon compte, the login).
    pub passkeys: Arc<idp_protocol::passkeys::Passkeys>,
}
