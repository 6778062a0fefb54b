//! `/healthz` (the process answers), `/readyz` (its stores answer) and
//! `/metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

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

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], (state.metrics)())
}
