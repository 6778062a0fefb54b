//! `/cas/proxy` (proxy tickets from a PGT) and `/cas/proxyValidate`,
//! `/cas/p3/proxyValidate` (validation accepting proxy tickets too).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use idp_protocol::cas::proxy::{ProxyParams, proxy_json, proxy_xml};
use idp_protocol::cas::validate::{Accept, Format, ValidateParams};

use crate::cas::validate::{JSON, XML, xml_or_json};
use crate::params::Params;
use crate::state::AppState;

/// `GET /cas/proxy?pgt=…&targetService=…`.
pub async fn proxy(State(state): State<AppState>, Params(params): Params<ProxyParams>) -> Response {
    let outcome = state.cas.proxy(&params).await;
    match Format::parse(params.format.as_deref()) {
        Ok(Format::Json) => ([(header::CONTENT_TYPE, JSON)], proxy_json(&outcome)).into_response(),
        Ok(Format::Xml) | Err(_) => ([(header::CONTENT_TYPE, XML)], proxy_xml(&outcome)).into_response(),
    }
}

/// `/cas/proxyValidate` and `/cas/p3/proxyValidate`: service or proxy tickets.
pub async fn proxy_validate(state: State<AppState>, params: Params<ValidateParams>) -> Response {
    xml_or_json(state, params, Accept::ProxyTickets).await
}
