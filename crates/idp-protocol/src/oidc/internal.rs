//! How the authorization endpoint borrows the CAS login.
//!
//! Without a session, the browser goes to `/cas/login` with, as `service`,
//! the authorization request itself (`<issuer>/oidc/authorize?...`). That
//! URL is accepted by CAS because it matches an **internal service** that
//! [`WithInternalServices`] adds to the registry: only the provider's own
//! authorization endpoint matches it, so it is no open redirect. After the
//! login, CAS sends the browser back to the authorization request with a
//! service ticket, which the endpoint spends to learn that the person has
//! just typed their credentials (`prompt=login`, `max_age`).

use async_trait::async_trait;

use idp_core::Result;
use idp_core::ports::ServiceRegistry;
use idp_core::service::{Service, ServiceId, ServiceUrl, UrlPattern};
use std::sync::Arc;

/// The id of the internal service.
pub const INTERNAL_SERVICE_ID: &str = "idp-oidc-authorize";

/// The path of the authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/oidc/authorize";

/// The internal service for the provider at `issuer` (no trailing slash).
pub fn internal_service(issuer: &str) -> Result<Service> {
    let escaped = UrlPattern::escape(&format!("{issuer}{AUTHORIZE_PATH}"));
    Ok(Service {
        id: ServiceId::parse(INTERNAL_SERVICE_ID)?,
        name: "OpenID Connect".into(),
        url_pattern: UrlPattern::parse(&format!(r"{escaped}\?[^#]*"))?,
        attributes: Vec::new(),
        logout_url: None,
        evaluation_order: i32::MIN,
        policy: Default::default(),
    })
}

/// The service registry plus the internal service. Listing, adding and
/// removing go to the real registry only.
pub struct WithInternalServices {
    pub inner: Arc<dyn ServiceRegistry>,
    pub internal: Service,
}

#[async_trait]
impl ServiceRegistry for WithInternalServices {
    async fn find_match(&self, url: &ServiceUrl) -> Result<Option<Service>> {
        if self.internal.matches(url) {
            return Ok(Some(self.internal.clone()));
        }
        self.inner.find_match(url).await
    }

    async fn get(&self, id: &ServiceId) -> Result<Option<Service>> {
        if *id == self.internal.id {
            return Ok(Some(self.internal.clone()));
        }
        self.inner.get(id).await
    }

    async fn list(&self) -> Result<Vec<Service>> {
        self.inner.list().await
    }

    async fn add(&self, service: Service) -> Result<()> {
        self.inner.add(service).await
    }

    async fn update(&self, service: Service) -> Result<()> {
        self.inner.update(service).await
    }

    async fn remove(&self, id: &ServiceId) -> Result<bool> {
        self.inner.remove(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_own_authorization_endpoint_matches() {
        let s = internal_service("https://ent.example.fr").unwrap();
        assert!(s.matches(&ServiceUrl::parse("https://ent.example.fr/oidc/authorize?client_id=a").unwrap()));
        assert!(!s.matches(&ServiceUrl::parse("https://ent.example.fr/oidc/authorizeX?a").unwrap()));
        assert!(!s.matches(&ServiceUrl::parse("https://ent-example.fr/oidc/authorize?a").unwrap()));
        assert!(!s.matches(&ServiceUrl::parse("https://evil.fr/?https://ent.example.fr/oidc/authorize?a").unwrap()));
    }
}
