//! Outbound HTTP (single logout POSTs) with reqwest and rustls.

use std::time::Duration;

use idp_core::ports::Outbound;

/// The [`Outbound`] adapter: a shared client with connect and total
/// timeouts; background sends are spawned on the runtime and only logged.
#[derive(Clone)]
pub struct HttpOutbound {
    client: reqwest::Client,
}

impl HttpOutbound {
    pub fn new(timeout: Duration) -> idp_core::Result<Self> {
        // Installing twice is harmless (the second call reports the first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("idp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(crate::storage)?;
        Ok(Self { client })
    }
}

impl Outbound for HttpOutbound {
    fn post_form_in_background(&self, url: String, form: Vec<(String, String)>) {
        let client = self.client.clone();
        tokio::spawn(async move {
            match client.post(&url).form(&form).send().await {
                Ok(r) if r.status().is_success() => {
                    metrics::counter!("idp_single_logout_total", "result" => "delivered").increment(1);
                    tracing::info!(target: "idp::slo", %url, status = r.status().as_u16(), "single logout delivered");
                }
                Ok(r) => {
                    tracing::warn!(target: "idp::slo", %url, status = r.status().as_u16(), "single logout refused")
                }
                Err(e) => tracing::warn!(target: "idp::slo", %url, error = %e, "single logout failed"),
            }
        });
    }
}
