//! One access log line and one latency observation per request, named by
//! the matched route (`/cas/serviceValidate`, `/static/{theme}/{*path}`),
//! never by the requested path: the query strings of CAS and OIDC carry
//! tickets and codes, and paths a client invents would each make a new
//! metric series.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The histogram of request durations, in seconds.
pub const REQUEST_DURATION: &str = "idp_http_request_duration_seconds";

/// The route of a request no route matched (404 pages).
const UNMATCHED: &str = "unmatched";

/// Times the request, then logs it (target `idp::access`) and records its
/// duration by method, route and status.
pub async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = route.unwrap_or_else(|| UNMATCHED.to_owned());
    let status = response.status().as_u16();
    tracing::info!(
        target: "idp::access",
        method = %method,
        route = %route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    metrics::histogram!(REQUEST_DURATION, "method" => method.to_string(), "route" => route, "status" => status.to_string())
        .record(elapsed.as_secs_f64());
    response
}
