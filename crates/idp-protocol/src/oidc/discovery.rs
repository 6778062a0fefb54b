//! Discovery metadata (OpenID Connect Discovery 1.0, RFC 8414).

use serde_json::{Value, json};

use super::claims::SCOPE_CLAIMS;
use super::keys::ALGORITHMS;

/// The endpoint paths, under the issuer.
pub mod paths {
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    pub const AUTHORIZE: &str = super::super::internal::AUTHORIZE_PATH;
    pub const TOKEN: &str = "/oidc/token";
    pub const USERINFO: &str = "/oidc/userinfo";
    pub const JWKS: &str = "/oidc/jwks";
    pub const INTROSPECT: &str = "/oidc/introspect";
    pub const REVOKE: &str = "/oidc/revoke";
    pub const END_SESSION: &str = "/oidc/logout";
}

/// The provider metadata of the issuer `issuer` (no trailing slash).
pub fn metadata(issuer: &str) -> Value {
    let claims: Vec<&str> = {
        let mut all: Vec<&str> = SCOPE_CLAIMS.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        all.extend(["iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "azp", "at_hash", "amr", "acr"]);
        all
    };
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}{}", paths::AUTHORIZE),
        "token_endpoint": format!("{issuer}{}", paths::TOKEN),
        "userinfo_endpoint": format!("{issuer}{}", paths::USERINFO),
        "jwks_uri": format!("{issuer}{}", paths::JWKS),
        "introspection_endpoint": format!("{issuer}{}", paths::INTROSPECT),
        "revocation_endpoint": format!("{issuer}{}", paths::REVOKE),
        "end_session_endpoint": format!("{issuer}{}", paths::END_SESSION),
        "scopes_supported": idp_core::oidc::KNOWN_SCOPES,
        "claims_supported": claims,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ALGORITHMS,
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "ui_locales_supported": ["fr"],
        "acr_values_supported": [idp_core::second_factor::ACR_PASSWORD, idp_core::second_factor::ACR_MFA],
    })
}
