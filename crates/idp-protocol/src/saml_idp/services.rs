//! How a login for a SAML SP borrows the CAS login: each registered SP is
//! seen by the login pipeline as an internal service (`saml.<id>`) that
//! only our own `/saml/idp/resume/<id>?key=…` URLs match (see
//! [`SamlSp::login_service`]). So the profile choice, upstreams, charter,
//! access rules, release rules and pseudonyms of CAS apply to SAML SPs as
//! they are, and no SAML SP URL is ever a CAS redirect target.

use async_trait::async_trait;
use std::sync::Arc;

use idp_core::Result;
use idp_core::ports::ServiceRegistry;
use idp_core::saml_sp::{LOGIN_SERVICE_PREFIX, RESUME_PATH, SamlSpRegistry};
use idp_core::service::{Service, ServiceId, ServiceUrl};

/// The service registry plus the login services of the SAML SPs. Listing,
/// adding and removing go to the real registry only.
pub struct WithSamlSps {
    pub inner: Arc<dyn ServiceRegistry>,
    pub sps: Arc<dyn SamlSpRegistry>,
    /// Our public URL, without trailing slash.
    pub public_base: String,
}

impl WithSamlSps {
    async fn login_service(&self, sp_id: &str) -> Result<Option<Service>> {
        let Ok(id) = ServiceId::parse(sp_id) else { return Ok(None) };
        match self.sps.get(&id).await? {
            Some(sp) => sp.login_service(&self.public_base).map(Some),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl ServiceRegistry for WithSamlSps {
    async fn find_match(&self, url: &ServiceUrl) -> Result<Option<Service>> {
        // Checked piece by piece: this runs for every service URL of the
        // ticket path, where a formatted prefix would be an allocation each.
        let resume = url.as_str().strip_prefix(self.public_base.as_str()).and_then(|r| r.strip_prefix(RESUME_PATH));
        if let Some(rest) = resume.and_then(|r| r.strip_prefix('/')) {
            let sp_id = rest.split('?').next().unwrap_or_default();
            return Ok(self.login_service(sp_id).await?.filter(|s| s.matches(url)));
        }
        self.inner.find_match(url).await
    }

    async fn get(&self, id: &ServiceId) -> Result<Option<Service>> {
        if let Some(sp_id) = id.as_str().strip_prefix(LOGIN_SERVICE_PREFIX) {
            return self.login_service(sp_id).await;
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
