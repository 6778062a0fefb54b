//! CAS endpoints under `/cas`.

pub mod code;
pub mod login;
pub mod logout;
pub mod passkey;
pub mod proxy;
pub mod saml;
pub mod validate;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub use crate::cookies::TGC;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cas/login", get(login::show).post(login::submit))
        .route("/cas/login/cgu", post(login::accept_cgu))
        .route("/cas/login/code", post(code::submit_code))
        .route("/cas/login/enrolement", post(code::enrol))
        .route("/cas/login/codes-de-secours", post(code::after_recovery_codes))
        .route("/cas/login/cle/options", post(passkey::options))
        .route("/cas/login/cle", post(passkey::submit))
        .route("/cas/login/enrolement/cle/options", post(passkey::enrolment_options))
        .route("/cas/login/enrolement/cle", post(passkey::enrol))
        .route("/cas/logout", get(logout::logout))
        .route("/cas/validate", get(validate::cas1))
        .route("/cas/serviceValidate", get(validate::cas2))
        .route("/cas/proxyValidate", get(proxy::proxy_validate))
        .route("/cas/p3/serviceValidate", get(validate::cas3))
        .route("/cas/p3/proxyValidate", get(proxy::proxy_validate))
        .route("/cas/proxy", get(proxy::proxy))
        .route("/cas/samlValidate", post(saml::saml_validate))
}

pub use idp_protocol::cas::flag;
