//! `/healthz` (the process answers), `/readyz` (its stores answer) and
//! `/metrics` (Prometheus text format), which tells about the traffic and
//! so answers only the machine itself and the trusted proxies, or only on a
//! listener of its own ([`metrics_router`]).

use axum::Router;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::IpAddr;
use std::sync::Arc;

use crate::net::client_ip;
use crate::state::AppState;

pub async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n")
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ready\n".to_owned()),
        Err(what) => {
            tracing::warn!(%what, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("not ready: {what}\n"),
            )
        }
    }
}

/// `/metrics` on the main listener: for a loopback address or a trusted
/// proxy only, and not at all when the metrics have a listener of their own.
pub async fn metrics(State(state): State<AppState>, parts: Parts) -> Response {
    if state.config.metrics_elsewhere {
        return crate::error::not_found().await.into_response();
    }
    if !may_read_metrics(&parts, &state.config.trusted_proxies) {
        let text = "Accès réservé à la supervision.\n";
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response();
    }
    exposition(&state.metrics)
}

/// A router that serves `/metrics` to whoever reaches it: the listener of
/// `metrics_bind`, which the operator opens to the monitoring only.
pub fn metrics_router(render: Arc<dyn Fn() -> String + Send + Sync>) -> Router {
    Router::new().route("/metrics", get(move || async move { exposition(&render) }))
}

fn exposition(render: &Arc<dyn Fn() -> String + Send + Sync>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render()).into_response()
}

/// The client is the machine itself or a trusted proxy, and the request was
/// not relayed by a proxy that is not trusted (a local reverse proxy not
/// listed in `trusted_proxies` would make every client look local).
fn may_read_metrics(parts: &Parts, trusted: &[ipnet::IpNet]) -> bool {
    let Ok(client) = client_ip(parts, trusted).parse::<IpAddr>() else { return false };
    let relayed = parts.headers.contains_key("x-forwarded-for") || parts.headers.contains_key(header::FORWARDED);
    let peer_trusted = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|c| crate::net::is_trusted(trusted, &c.0.ip()));
    (client.is_loopback() || crate::net::is_trusted(trusted, &client)) && (peer_trusted || !relayed)
}
