//! Security headers on every response, and the rendering of error pages.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;

use crate::error::ErrorPage;
use crate::state::AppState;

/// No inline script or style, nothing from elsewhere, no framing. There is
/// no `form-action`: after a login the browser is redirected to the
/// service, and browsers apply `form-action` to that redirect too.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers, forbids caching of dynamic pages, and renders
/// [`ErrorPage`] extensions with the theme's `error.html`.
pub async fn headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(page) = response.extensions_mut().remove::<ErrorPage>() {
        response = render_error(&state, response.status(), page);
    }
    let h = response.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
    if state.config.https() {
        h.insert("strict-transport-security", HeaderValue::from_static("max-age=31536000"));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        no_store(h);
    }
    response
}

/// `Cache-Control: no-store` and the older equivalents (CAS Appendix B).
pub fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::EXPIRES, HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
}

fn render_error(state: &AppState, status: axum::http::StatusCode, page: ErrorPage) -> Response {
    if let Some(detail) = &page.detail {
        if status.is_server_error() {
            tracing::error!(code = page.code, %detail, "request failed");
        } else {
            tracing::info!(code = page.code, %detail, "request refused");
        }
    }
    let ctx = context! { title => page.title, message => page.message, code => page.code, back_url => Option::<String>::None };
    let body = match state.views.render("error.html", ctx) {
        Ok(html) => Html(html).into_response(),
        // The error page itself failed: plain French text, still no detail.
        Err(_) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from(format!("{} ({})", page.title, page.code.unwrap_or("WEB0001"))),
        )
            .into_response(),
    };
    (status, body).into_response()
}
