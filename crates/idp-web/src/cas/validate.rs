//! `/cas/validate`, `/cas/serviceValidate`, `/cas/p3/serviceValidate` (the
//! proxyValidate paths, which also accept proxy tickets, are in `proxy`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use idp_protocol::cas::response::{self, Attributes};
use idp_protocol::cas::validate::{Accept, Failure, Format, Success, ValidateParams, Validation};

use crate::params::Params;
use crate::state::AppState;

const TEXT: &str = "text/plain; charset=utf-8";
pub(crate) const XML: &str = "application/xml; charset=utf-8";
pub(crate) const JSON: &str = "application/json; charset=utf-8";

/// CAS 1: `yes\n<user>\n` or `no\n`, as text with a charset (python-cas
/// decodes by it).
pub async fn cas1(State(state): State<AppState>, Params(params): Params<ValidateParams>) -> Response {
    let outcome = state.cas.validate(&params).await;
    count("validate", &outcome);
    ([(header::CONTENT_TYPE, TEXT)], response::cas1(&outcome)).into_response()
}

/// CAS 2 (`/serviceValidate`). Attributes are released here too, as Apereo
/// CAS does, for clients that never moved to `/p3`.
pub async fn cas2(state: State<AppState>, params: Params<ValidateParams>) -> Response {
    xml_or_json(state, params, Accept::ServiceTickets).await
}

/// CAS 3 (`/p3/serviceValidate`).
pub async fn cas3(state: State<AppState>, params: Params<ValidateParams>) -> Response {
    xml_or_json(state, params, Accept::ServiceTickets).await
}

pub(crate) async fn xml_or_json(
    State(state): State<AppState>,
    Params(params): Params<ValidateParams>,
    accept: Accept,
) -> Response {
    let Validation { format, outcome } = state.cas.validate_as(&params, accept).await;
    count(if accept == Accept::ServiceTickets { "serviceValidate" } else { "proxyValidate" }, &outcome);
    match format {
        Format::Xml => ([(header::CONTENT_TYPE, XML)], response::xml(&outcome, Attributes::Include)).into_response(),
        Format::Json => ([(header::CONTENT_TYPE, JSON)], response::json(&outcome)).into_response(),
    }
}

/// Counts validations by endpoint kind and outcome (`success` or the CAS
/// failure code).
fn count(endpoint: &'static str, outcome: &Result<Success, Failure>) {
    let result = match outcome {
        Ok(_) => "success",
        Err(f) => f.code.as_str(),
    };
    metrics::counter!("idp_ticket_validations_total", "endpoint" => endpoint, "result" => result).increment(1);
}
