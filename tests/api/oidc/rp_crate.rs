//! The `openidconnect` crate as a relying party against the server:
//! discovery, the authorization URL it builds (PKCE, nonce, state), the
//! code exchange, the ID token signature and claims checked by the crate
//! against the JWKS, the access token hash, UserInfo and refresh.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use super::*;

/// The error of [`http_client`].
#[derive(Debug)]
struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// A minimal `AsyncHttpClient` over reqwest 0.13 (the crate's own adapter
/// would pull reqwest 0.12). Redirects are not followed, as the crate asks.
async fn http_client(request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let err = |e: &dyn std::fmt::Display| HttpError(e.to_string());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| err(&e))?;
    let (parts, body) = request.into_parts();
    let mut builder = client.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await.map_err(|e| err(&e))?;
    let mut out = HttpResponse::new(Vec::new());
    *out.status_mut() = response.status();
    *out.headers_mut() = response.headers().clone();
    *out.body_mut() = response.bytes().await.map_err(|e| err(&e))?.to_vec();
    Ok(out)
}

#[tokio::test]
async fn the_openidconnect_crate_logs_in_verifies_the_id_token_and_refreshes() {
    let app = oidc_app().await;
    let issuer = IssuerUrl::new(app.address.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http_client).await.expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("vie-scolaire".into()),
        Some(ClientSecret::new(SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("ent".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pairs: Vec<(String, String)> = auth_url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let params: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let location = app.authorize_with_login(&params, "c.martin").await;
    assert_eq!(param(&location, "state").as_deref(), Some(state.secret().as_str()));
    let code = param(&location, "code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("a valid ID token");
    assert_ne!(claims.subject().as_str(), "c.martin", "an opaque subject");
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("c.martin"));
    assert_eq!(claims.given_name().and_then(|n| n.get(None)).map(|n| n.as_str()), Some("Camille"));
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("c.martin@example.fr"));

    let refresh = tokens.refresh_token().expect("a refresh token");
    let refreshed = client.exchange_refresh_token(refresh).unwrap().request_async(&http_client).await.expect("refresh");
    assert_ne!(refreshed.refresh_token().unwrap().secret(), refresh.secret());
    // The old refresh token is refused by the crate as invalid_grant.
    let reused = client.exchange_refresh_token(refresh).unwrap().request_async(&http_client).await;
    assert!(reused.is_err());
}
