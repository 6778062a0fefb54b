//! The OpenID Connect kind, with the `openidconnect` crate: discovery,
//! the authorization code flow with PKCE (S256) and a `nonce`, the ID
//! token's checks (signature, issuer, audience, expiry, nonce), userinfo
//! when the ID token lacks a claim we need, and RP-initiated logout.
//!
//! This crate does no I/O: the crate's HTTP requests go through the
//! [`Outbound`] port (certificate verified, no redirect, a size cap and the
//! timeout of every outbound call), adapted in [`send`].
//!
//! Each provider's discovery document (with its keys) is cached for an
//! hour, per process; an ID token signed with a key we do not know yet
//! makes us fetch the keys again, once, before it is refused (the provider
//! rolled its keys).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IdToken, IdTokenFields, IssuerUrl, JsonWebKeySet, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse, StandardTokenResponse,
    SubjectIdentifier, TokenResponse, UserInfoClaims, UserInfoError,
};
use serde::{Deserialize, Serialize};

use idp_core::clock::Clock;
use idp_core::ports::{HttpCall, HttpMethod, Outbound};
use idp_core::secret::random_token;
use idp_core::upstream::{TokenAuth, UpstreamConfig, check_scheme};

use super::{Asserted, Callback, Returned};
use crate::Result;

/// How long a discovery document (and its keys) is used before it is
/// fetched again.
fn discovery_ttl() -> chrono::Duration {
    chrono::Duration::hours(1)
}

/// The provider's own claims (beyond the standard ones), as JSON values.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: BTreeMap<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type Token = IdToken<OtherClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type Tokens = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
type Client = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;
type Metadata = ProviderMetadataWithLogout;
type Checked = std::result::Result<Asserted, Returned>;

/// The standard claims we read, by name, from ID token claims or userinfo
/// claims: the crate gives both the same getters but no common trait.
macro_rules! standard_claims {
    ($claims:expr) => {
        [
            ("email", $claims.email().map(|e| e.as_str())),
            ("given_name", $claims.given_name().and_then(|n| n.get(None)).map(|n| n.as_str())),
            ("family_name", $claims.family_name().and_then(|n| n.get(None)).map(|n| n.as_str())),
            ("preferred_username", $claims.preferred_username().map(|u| u.as_str())),
        ]
    };
}

/// What a login waiting at the provider must remember: its `nonce` and its
/// PKCE verifier (the challenge went to the provider).
#[derive(Serialize, Deserialize)]
pub(super) struct PendingOidc {
    nonce: String,
    pkce_verifier: String,
}

/// The OpenID providers: their cached discovery documents and keys.
pub(super) struct Providers {
    outbound: Arc<dyn Outbound>,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<String, (Metadata, DateTime<Utc>)>>,
}

/// Why a request to the provider got no usable answer (the crate's HTTP
/// client error type).
#[derive(Debug, thiserror::Error)]
#[error("the OpenID provider did not answer: {0}")]
pub(super) struct Unanswered(String);

/// One request of the `openidconnect` crate, sent through the port.
async fn send(outbound: Arc<dyn Outbound>, request: HttpRequest) -> std::result::Result<HttpResponse, Unanswered> {
    let method = match *request.method() {
        openidconnect::http::Method::GET => HttpMethod::Get,
        openidconnect::http::Method::POST => HttpMethod::Post,
        ref other => return Err(Unanswered(format!("method {other} is not used"))),
    };
    let headers = request
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let url = request.uri().to_string();
    let call = HttpCall { method, url, headers, body: request.into_body() };
    let answer = outbound.call(call).await.map_err(|e| Unanswered(e.to_string()))?;
    let mut response = openidconnect::http::Response::builder().status(answer.status);
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response.body(answer.body).map_err(|e| Unanswered(e.to_string()))
}

impl Providers {
    pub(super) fn new(outbound: Arc<dyn Outbound>, clock: Arc<dyn Clock>) -> Self {
        Self { outbound, clock, cache: Mutex::new(HashMap::new()) }
    }

    /// The provider's authorization URL for a new login under `state`, and
    /// what the login must remember; None when the provider does not answer.
    pub(super) async fn authorize_url(
        &self,
        upstream: &UpstreamConfig,
        redirect: &str,
        state: &str,
        renew: bool,
    ) -> Result<Option<(String, PendingOidc)>> {
        let Some(metadata) = self.metadata(upstream).await? else { return Ok(None) };
        let client = new_client(upstream, metadata, redirect)?;
        // Our own CSPRNG tokens: 64 characters of [A-Za-z0-9] is a valid
        // PKCE verifier (RFC 7636 §4.1).
        let pkce_verifier = random_token(64)?;
        let nonce = random_token(32)?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(pkce_verifier.clone()));
        let (state, nonce_value) = (state.to_owned(), nonce.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce_value),
            )
            .set_pkce_challenge(challenge);
        for scope in upstream.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if renew {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        for acr in &upstream.acr_values {
            request = request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
        }
        let (url, _, _) = request.url();
        Ok(Some((url.to_string(), PendingOidc { nonce, pkce_verifier })))
    }

    /// The callback: the provider's error, or the code exchanged for
    /// tokens, the ID token checked, and userinfo read when the ID token
    /// lacks what linking (or `create_missing`) needs.
    pub(super) async fn finish(
        &self,
        upstream: &UpstreamConfig,
        redirect: &str,
        callback: &Callback,
        pending: &PendingOidc,
    ) -> Result<Checked> {
        if let Some(error) = &callback.error {
            // What the provider sent, cut and without control characters:
            // it cannot forge a log line.
            let error: String = error.chars().filter(char::is_ascii_graphic).take(64).collect();
            tracing::info!(upstream = %upstream.id, %error, "the OpenID provider refused the login");
            return Ok(Err(if error == "access_denied" { Returned::Cancelled } else { Returned::Refused }));
        }
        let Some(code) = callback.code.as_deref().filter(|c| !c.is_empty()) else { return Ok(Err(Returned::Refused)) };
        let Some(metadata) = self.metadata(upstream).await? else { return Ok(Err(Returned::Unreachable)) };
        let client = new_client(upstream, metadata.clone(), redirect)?;
        let tokens = match self.exchange(&client, code, pending).await {
            Ok(tokens) => tokens,
            Err(failure) => return Ok(Err(failure)),
        };
        let Some(id_token) = tokens.id_token() else { return Ok(Err(Returned::Refused)) };
        let nonce = Nonce::new(pending.nonce.clone());
        let expected = (&nonce, upstream.acr_values.as_slice());
        let claims = match self.verify(&client, id_token, expected) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                let Some(metadata) = self.refresh_keys(upstream, metadata).await else {
                    return Ok(Err(Returned::Unreachable));
                };
                self.verify(&new_client(upstream, metadata, redirect)?, id_token, expected)
            }
            other => other,
        };
        let mut attributes = match claims {
            Ok(attributes) => attributes,
            Err(e) => {
                tracing::warn!(upstream = %upstream.id, error = %e, "ID token refused");
                return Ok(Err(Returned::Refused));
            }
        };
        let user = attributes.get("sub").and_then(|v| v.first()).cloned().unwrap_or_default();
        if lacks_claims(upstream, &attributes) {
            match self.user_info(&client, &tokens, &user).await {
                Ok(more) => more.into_iter().for_each(|(k, v)| {
                    attributes.entry(k).or_insert(v);
                }),
                Err(failure) => return Ok(Err(failure)),
            }
        }
        Ok(Ok(Asserted { user, attributes, id_token: Some(id_token.to_string()) }))
    }

    async fn exchange(
        &self,
        client: &Client,
        code: &str,
        pending: &PendingOidc,
    ) -> std::result::Result<Tokens, Returned> {
        let http = |request| send(self.outbound.clone(), request);
        let request = client.exchange_code(AuthorizationCode::new(code.to_owned())).map_err(|_| Returned::Refused)?;
        let verifier = PkceCodeVerifier::new(pending.pkce_verifier.clone());
        match request.set_pkce_verifier(verifier).request_async(&http).await {
            Ok(tokens) => Ok(tokens),
            Err(RequestTokenError::Request(_)) => Err(Returned::Unreachable),
            Err(e) => {
                tracing::warn!(error = %e, "the OpenID provider refused the code");
                Err(Returned::Refused)
            }
        }
    }

    /// The ID token's checks, with the time of our clock; its claims.
    fn verify(
        &self,
        client: &Client,
        id_token: &Token,
        (nonce, acr_values): (&Nonce, &[String]),
    ) -> std::result::Result<BTreeMap<String, Vec<String>>, ClaimsVerificationError> {
        let now = self.clock.now();
        let verifier = client.id_token_verifier().set_time_fn(move || now);
        let c = id_token.claims(&verifier, nonce)?;
        if !acr_ok(acr_values, c.auth_context_ref().map(|a| a.as_str())) {
            return Err(ClaimsVerificationError::Other("acr is not one of the acr_values asked for".to_owned()));
        }
        let mut claims = other_claims(c.additional_claims());
        put_standard(&mut claims, [("sub", Some(c.subject().as_str()))]);
        put_standard(&mut claims, standard_claims!(c));
        Ok(claims)
    }

    async fn user_info(
        &self,
        client: &Client,
        tokens: &Tokens,
        subject: &str,
    ) -> std::result::Result<BTreeMap<String, Vec<String>>, Returned> {
        let http = |request| send(self.outbound.clone(), request);
        let subject = SubjectIdentifier::new(subject.to_owned());
        let Ok(request) = client.user_info(tokens.access_token().clone(), Some(subject)) else {
            return Ok(BTreeMap::new());
        };
        let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = match request.request_async(&http).await {
            Ok(info) => info,
            Err(UserInfoError::Request(_)) => return Err(Returned::Unreachable),
            Err(e) => {
                tracing::warn!(error = %e, "userinfo refused");
                return Err(Returned::Refused);
            }
        };
        let mut claims = other_claims(info.additional_claims());
        put_standard(&mut claims, standard_claims!(info));
        Ok(claims)
    }

    /// The end-session URL with `id_token_hint` (when kept) and
    /// `post_logout_redirect_uri`; None when the provider has none.
    pub(super) async fn logout_url(
        &self,
        upstream: &UpstreamConfig,
        id_token: Option<&str>,
        back: &str,
    ) -> Option<String> {
        let metadata = self.metadata(upstream).await.ok()??;
        let endpoint = metadata.additional_metadata().end_session_endpoint.clone()?;
        let back = PostLogoutRedirectUrl::new(back.to_owned()).ok()?;
        let client_id = ClientId::new(upstream.client_id.clone().unwrap_or_default());
        let mut request = LogoutRequest::from(endpoint).set_client_id(client_id).set_post_logout_redirect_uri(back);
        if let Some(token) = id_token.and_then(|t| Token::from_str(t).ok()) {
            request = request.set_id_token_hint(&token);
        }
        Some(request.http_get_url().to_string())
    }

    /// Whether the discovery document answers (`idp upstream list`).
    pub(super) async fn probe(&self, upstream: &UpstreamConfig) -> std::result::Result<String, String> {
        match self.metadata(upstream).await {
            Ok(Some(_)) => Ok("answers (discovery)".to_owned()),
            Ok(None) => Err("does not answer (discovery)".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The provider's discovery document and keys, from the cache or
    /// fetched; None when it does not answer or names an unsafe URL.
    async fn metadata(&self, upstream: &UpstreamConfig) -> Result<Option<Metadata>> {
        let now = self.clock.now();
        if let Some((metadata, at)) = self.cached(&upstream.id)
            && now - at < discovery_ttl()
        {
            return Ok(Some(metadata));
        }
        upstream.issuer_url()?;
        let issuer = IssuerUrl::new(upstream.issuer.clone().unwrap_or_default())
            .map_err(|e| idp_core::Error::invalid("upstreams.issuer", e.to_string()))?;
        let http = |request| send(self.outbound.clone(), request);
        match Metadata::discover_async(issuer, &http).await {
            Ok(metadata) if safe(&metadata) => {
                self.keep(&upstream.id, &metadata, now);
                Ok(Some(metadata))
            }
            Ok(_) => {
                tracing::warn!(upstream = %upstream.id, "the discovery document names an http:// URL off loopback");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(upstream = %upstream.id, error = %e, "OpenID discovery failed");
                Ok(None)
            }
        }
    }

    /// The provider's keys fetched again.
    async fn refresh_keys(&self, upstream: &UpstreamConfig, metadata: Metadata) -> Option<Metadata> {
        let http = |request| send(self.outbound.clone(), request);
        let keys = match JsonWebKeySet::fetch_async(metadata.jwks_uri(), &http).await {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(upstream = %upstream.id, error = %e, "cannot fetch the OpenID provider's keys");
                return None;
            }
        };
        let metadata = metadata.set_jwks(keys);
        self.keep(&upstream.id, &metadata, self.clock.now());
        Some(metadata)
    }

    fn cached(&self, id: &str) -> Option<(Metadata, DateTime<Utc>)> {
        self.cache.lock().ok().and_then(|cache| cache.get(id).cloned())
    }

    fn keep(&self, id: &str, metadata: &Metadata, at: DateTime<Utc>) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id.to_owned(), (metadata.clone(), at));
        }
    }
}

/// The crate's client for `upstream`, with our redirect URI and its token
/// endpoint authentication.
fn new_client(upstream: &UpstreamConfig, metadata: Metadata, redirect: &str) -> Result<Client> {
    let secret = upstream.client_secret.as_ref().map(|s| ClientSecret::new(s.expose().to_owned()));
    let client_id = ClientId::new(upstream.client_id.clone().unwrap_or_default());
    let redirect =
        RedirectUrl::new(redirect.to_owned()).map_err(|e| idp_core::Error::invalid("public_url", e.to_string()))?;
    let auth = match upstream.token_auth {
        TokenAuth::ClientSecretBasic => AuthType::BasicAuth,
        TokenAuth::ClientSecretPost => AuthType::RequestBody,
    };
    Ok(Client::from_provider_metadata(metadata, client_id, secret).set_redirect_uri(redirect).set_auth_type(auth))
}

/// Every URL the discovery document names follows the issuer's rule:
/// `https://`, or `http://` on loopback.
fn safe(metadata: &Metadata) -> bool {
    let mut urls = vec![metadata.authorization_endpoint().url(), metadata.jwks_uri().url()];
    urls.extend(metadata.token_endpoint().map(|u| u.url()));
    urls.extend(metadata.userinfo_endpoint().map(|u| u.url()));
    urls.extend(metadata.additional_metadata().end_session_endpoint.as_ref().map(|u| u.url()));
    urls.into_iter().all(|u| check_scheme("upstreams.issuer", u).is_ok())
}

/// Whether the ID token's `acr` is one of the `acr_values` asked for (any,
/// when none were asked).
fn acr_ok(acr_values: &[String], acr: Option<&str>) -> bool {
    acr_values.is_empty() || acr.is_some_and(|acr| acr_values.iter().any(|v| v == acr))
}

/// Whether the ID token lacks `link_from`, or the names `create_missing`
/// needs.
fn lacks_claims(upstream: &UpstreamConfig, claims: &BTreeMap<String, Vec<String>>) -> bool {
    !claims.contains_key(&upstream.link_from)
        || (upstream.create_missing && !(claims.contains_key("given_name") && claims.contains_key("family_name")))
}

/// The provider's own claims as lists of strings (strings, numbers,
/// booleans, and arrays of them; objects are left out).
fn other_claims(others: &OtherClaims) -> BTreeMap<String, Vec<String>> {
    let scalar = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    others
        .claims
        .iter()
        .filter_map(|(name, value)| {
            let values: Vec<String> = match value {
                serde_json::Value::Array(items) => items.iter().filter_map(scalar).collect(),
                other => scalar(other).into_iter().collect(),
            };
            (!values.is_empty()).then(|| (name.clone(), values))
        })
        .collect()
}

fn put_standard<const N: usize>(claims: &mut BTreeMap<String, Vec<String>>, standard: [(&str, Option<&str>); N]) {
    for (name, value) in standard {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            claims.insert(name.to_owned(), vec![value.to_owned()]);
        }
    }
}
