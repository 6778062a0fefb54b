//! OpenID Connect provider: black-box tests over HTTP. `mod.rs` has the
//! helpers (a server whose public URL is its real address, registered
//! clients, a browser that walks the authorization code flow through the
//! real CAS login form).

mod cli;
mod cluster;
mod flows;
mod generated;
mod interop;
mod logout;
mod rp_crate;
mod tokens;

use base64::Engine;
use serde_json::Value;

use idp_core::account::Profile;
use idp_core::oidc::{ClientId, DEFAULT_SCOPES, OidcClient};
use idp_protocol::oidc::{sha256_b64, sha256_hex};

use crate::helpers::{LoginResult, TestApp, result, spawn_app_with};

pub const PASSWORD: &str = "Bonjour-2026!";
pub const SECRET: &str = "un-secret-de-test-assez-long-pour-un-client-0123";
pub const REDIRECT: &str = "https://vie-scolaire.example.test/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The PKCE S256 challenge of `verifier`.
pub fn s256(verifier: &str) -> String {
    sha256_b64(verifier.as_bytes())
}

/// A server whose public URL (the issuer) is its real address, with the
/// account `c.martin` and a confidential client `vie-scolaire`.
pub async fn oidc_app() -> TestApp {
    oidc_app_with(|_| {}).await
}

/// [`oidc_app`] after `tweak` has changed the settings.
pub async fn oidc_app_with(tweak: impl FnOnce(&mut idp::settings::Settings)) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(|s| {
        s.bind = format!("127.0.0.1:{port}");
        s.public_url = Some(format!("http://127.0.0.1:{port}"));
        tweak(s);
    })
    .await;
    app.active_account("c.martin", PASSWORD, Profile::Eleve).await;
    add_client(&app, "vie-scolaire", Some(SECRET), &[REDIRECT], |_| {}).await;
    app
}

/// Registers a client directly in the store.
pub async fn add_client(
    app: &TestApp,
    id: &str,
    secret: Option<&str>,
    redirect_uris: &[&str],
    tweak: impl FnOnce(&mut OidcClient),
) {
    let mut client = OidcClient {
        id: ClientId::parse(id).unwrap(),
        name: format!("Application {id}"),
        secret_hash: secret.map(sha256_hex),
        redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        require_consent: false,
        subject_type: Default::default(),
        created_at: chrono::Utc::now(),
    };
    tweak(&mut client);
    app.stores.clients.add(client).await.unwrap();
}

/// The parameters of an authorization request of `vie-scolaire` with PKCE.
pub fn auth_params(state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "vie-scolaire".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid profile email ent".into()),
        ("state", state.into()),
        ("nonce", format!("nonce-{state}")),
        ("code_challenge", s256(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ]
}

/// The value of `name` in the query of `url` (absolute or relative).
pub fn param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).or_else(|_| url::Url::parse(&format!("http://x{url}"))).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl TestApp {
    /// `GET /oidc/authorize` with `params`, as the browser.
    pub async fn authorize(&self, params: &[(&str, String)]) -> LoginResult {
        result(self.client.get(self.url("/oidc/authorize")).query(params).send().await.unwrap()).await
    }

    /// Follows a redirect of the provider to itself (the path of `location`).
    pub async fn follow(&self, location: &str) -> LoginResult {
        let url = url::Url::parse(location).unwrap();
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        result(self.client.get(self.url(&path)).send().await.unwrap()).await
    }

    /// Walks the whole flow from a fresh browser: authorize, CAS login form,
    /// back to authorize; returns the final redirect to the client.
    pub async fn authorize_with_login(&self, params: &[(&str, String)], login: &str) -> String {
        let first = self.authorize(params).await;
        assert_eq!(first.status, 302, "{}", first.body);
        let to_login = first.location.unwrap();
        if !to_login.starts_with("/cas/login?") {
            // Already logged in: single sign-on.
            return to_login;
        }
        let service = param(&to_login, "service").unwrap();
        let renew = param(&to_login, "renew");
        let extra: Vec<(&str, &str)> = renew.as_deref().map(|r| vec![("renew", r)]).unwrap_or_default();
        let logged = self.login_with(Some(&service), login, PASSWORD, &extra).await;
        assert_eq!(logged.status, 303, "{}", logged.body);
        let back = logged.location.unwrap();
        assert!(back.starts_with(&format!("{}/oidc/authorize?", self.address)), "{back}");
        let done = self.follow(&back).await;
        assert_eq!(done.status, 302, "{}", done.body);
        done.location.unwrap()
    }

    /// The code of a successful flow for `vie-scolaire`.
    pub async fn code(&self, state: &str) -> String {
        let location = self.authorize_with_login(&auth_params(state), "c.martin").await;
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(param(&location, "state").as_deref(), Some(state));
        param(&location, "code").unwrap_or_else(|| panic!("no code: {location}"))
    }

    /// `POST /oidc/token` with Basic credentials of `vie-scolaire`.
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(self.url("/oidc/token"))
            .basic_auth("vie-scolaire", Some(SECRET))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// Exchanges a code of `vie-scolaire`.
    pub async fn exchange(&self, code: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    /// Tokens of a full successful flow.
    pub async fn tokens(&self) -> Value {
        let code = self.code("s1").await;
        let (status, body) = self.exchange(&code).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `POST /oidc/introspect` as `vie-scolaire`.
    pub async fn introspect(&self, token: &str) -> Value {
        let r = reqwest::Client::new()
            .post(self.url("/oidc/introspect"))
            .basic_auth("vie-scolaire", Some(SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// `GET /oidc/userinfo` with a bearer token.
    pub async fn userinfo(&self, token: &str) -> (u16, Value, String) {
        let r = reqwest::Client::new().get(self.url("/oidc/userinfo")).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = r.text().await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null), challenge)
    }
}

/// The claims of a JWT, without checking the signature (the `openidconnect`
/// test checks signatures).
pub fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
