//! Outbound HTTP (single logout POSTs, CAS proxy callbacks) with reqwest and
//! rustls. Server certificates are always verified, against the platform's
//! roots plus the operator's extra CA file when configured.

use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

use idp_core::ports::{HttpAnswer, HttpCall, HttpMethod, Outbound};

/// Pauses before each attempt of a background send: at once, then after
/// 1 s and 3 s more.
const RETRY_PAUSES: [Duration; 3] = [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(3)];

/// The longest a background send can take: its attempts and pauses.
pub fn longest_send(timeout: Duration) -> Duration {
    RETRY_PAUSES.iter().sum::<Duration>() + timeout * RETRY_PAUSES.len() as u32
}

/// The [`Outbound`] adapter: a shared client with connect and total
/// timeouts; background sends are spawned on the runtime and only logged.
#[derive(Clone)]
pub struct HttpOutbound {
    client: reqwest::Client,
    /// Background sends not finished yet, so that a short-lived process
    /// (the CLI) can wait for them before it exits.
    in_flight: Arc<(AtomicUsize, Notify)>,
}

impl HttpOutbound {
    pub fn new(timeout: Duration) -> idp_core::Result<Self> {
        Self::with_extra_ca(timeout, None)
    }

    /// Like [`HttpOutbound::new`], also trusting the certificates of the PEM
    /// file `extra_ca` (a private school CA; a test CA).
    pub fn with_extra_ca(timeout: Duration, extra_ca: Option<&Path>) -> idp_core::Result<Self> {
        // Installing twice is harmless (the second call reports the first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path).map_err(|e| crate::storage(format!("{}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| crate::storage(format!("{}: {e}", path.display())))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("idp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(crate::storage)?;
        Ok(Self { client, in_flight: Arc::new((AtomicUsize::new(0), Notify::new())) })
    }

    /// Waits until every background send has ended, `limit` at most (each
    /// send has its own timeout, so this ends).
    pub async fn drain(&self, limit: Duration) {
        let wait = async {
            loop {
                let notified = self.in_flight.1.notified();
                if self.in_flight.0.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }
}

#[async_trait]
impl Outbound for HttpOutbound {
    fn post_form_in_background(&self, url: String, form: Vec<(String, String)>) {
        let client = self.client.clone();
        let in_flight = self.in_flight.clone();
        in_flight.0.fetch_add(1, Ordering::SeqCst);
        let endpoint = origin_and_path(&url);
        tokio::spawn(async move {
            // A service that is down or busy (connection error, 5xx) gets
            // the message again after 1 s and 3 s; a 4xx is its answer.
            for (attempt, pause) in RETRY_PAUSES.iter().enumerate() {
                tokio::time::sleep(*pause).await;
                let last = attempt + 1 == RETRY_PAUSES.len();
                match client.post(&url).form(&form).send().await {
                    Ok(r) if r.status().is_success() => {
                        metrics::counter!("idp_single_logout_total", "result" => "delivered").increment(1);
                        tracing::info!(target: "idp::slo", %endpoint, status = r.status().as_u16(), attempt, "single logout delivered");
                        break;
                    }
                    Ok(r) if r.status().is_client_error() || (last && r.status().is_server_error()) => {
                        metrics::counter!("idp_single_logout_total", "result" => "refused").increment(1);
                        tracing::warn!(target: "idp::slo", %endpoint, status = r.status().as_u16(), attempt, "single logout refused");
                        break;
                    }
                    Ok(r) => {
                        tracing::info!(target: "idp::slo", %endpoint, status = r.status().as_u16(), attempt, "single logout to retry")
                    }
                    Err(e) if last => {
                        let e = e.without_url();
                        metrics::counter!("idp_single_logout_total", "result" => "failed").increment(1);
                        tracing::warn!(target: "idp::slo", %endpoint, error = %e, attempt, "single logout failed");
                    }
                    Err(e) => {
                        let e = e.without_url();
                        tracing::info!(target: "idp::slo", %endpoint, error = %e, attempt, "single logout to retry")
                    }
                }
            }
            in_flight.0.fetch_sub(1, Ordering::SeqCst);
            in_flight.1.notify_waiters();
        });
    }

    async fn get_status(&self, url: &str) -> idp_core::Result<u16> {
        let endpoint = origin_and_path(url);
        match self.client.get(url).send().await {
            Ok(r) => {
                tracing::info!(target: "idp::proxy", %endpoint, status = r.status().as_u16(), "proxy callback answered");
                Ok(r.status().as_u16())
            }
            Err(e) => {
                let e = e.without_url();
                tracing::warn!(target: "idp::proxy", %endpoint, error = %e, "proxy callback failed");
                Err(idp_core::Error::Outbound(e.into()))
            }
        }
    }

    async fn get_text(&self, url: &str) -> idp_core::Result<(u16, String)> {
        let call = HttpCall { method: HttpMethod::Get, url: url.to_owned(), headers: Vec::new(), body: Vec::new() };
        let answer = self.call(call).await?;
        Ok((answer.status, String::from_utf8_lossy(&answer.body).into_owned()))
    }

    async fn call(&self, call: HttpCall) -> idp_core::Result<HttpAnswer> {
        let endpoint = origin_and_path(&call.url);
        let failed = |e: reqwest::Error| {
            let e = e.without_url();
            tracing::warn!(target: "idp::upstream", %endpoint, error = %e, "upstream call failed");
            idp_core::Error::Outbound(e.into())
        };
        let mut request = match call.method {
            HttpMethod::Get => self.client.get(&call.url),
            HttpMethod::Post => self.client.post(&call.url).body(call.body),
        };
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_UPSTREAM_BODY {
                return Err(idp_core::Error::Outbound("the upstream's answer is too long".into()));
            }
        }
        tracing::info!(target: "idp::upstream", %endpoint, status, "upstream answered");
        Ok(HttpAnswer { status, headers, body })
    }
}

/// The most of an upstream's answer that is read.
const MAX_UPSTREAM_BODY: usize = 1 << 20;

/// What the logs say of an outbound URL: its origin and path. The query
/// may carry a secret (the `pgtId` of a proxy callback) and the user part a
/// password, so neither is written.
fn origin_and_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}{}", u.origin().ascii_serialization(), u.path()),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::origin_and_path;

    #[test]
    fn logged_urls_lose_their_query_and_user() {
        assert_eq!(
            origin_and_path("https://u:secret@cb.example.fr:8443/pgt/x?pgtId=PGT-1-abc&pgtIou=PGTIOU-1#f"),
            "https://cb.example.fr:8443/pgt/x"
        );
        assert_eq!(origin_and_path("not a url ?pgtId=PGT-1"), "(invalid URL)");
    }
}
