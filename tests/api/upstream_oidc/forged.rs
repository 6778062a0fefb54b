//! The refusals of an OpenID upstream, against a small provider written
//! here (axum + josekit): it signs the ID tokens a real provider would not
//! (wrong nonce, wrong audience, an unknown key, expired), rolls its keys,
//! and stops answering on demand. It checks what the ENT sends: PKCE S256,
//! the client's authentication (Basic, or in the form).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jws::{JwsHeader, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use idp_core::account::{AccountState, Login, Profile};
use idp_core::upstream::TokenAuth;

use super::{CLIENT_ID, CLIENT_SECRET, SERVICE, ent, free_port, local, param};
use crate::helpers::{LoginResult, TestApp, result, unescape};

/// What the provider puts in its next ID token.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Forgery {
    None,
    WrongNonce,
    WrongAudience,
    /// Signed with a key the provider does not publish.
    UnknownKey,
    Expired,
}

struct Keys {
    published: Vec<(String, RsaKeyPair)>,
    unpublished: RsaKeyPair,
}

struct OpState {
    issuer: String,
    forgery: Forgery,
    keys: Keys,
    /// The nonce and PKCE challenge of the last authorization request.
    nonce: String,
    challenge: String,
    /// The ENT must send the client secret in the form, not Basic.
    expect_post_auth: bool,
    /// How many times the keys were fetched.
    jwks_fetches: usize,
    /// The `acr_values` of the last authorization request, and the `acr`
    /// the ID token carries.
    acr_values: Option<String>,
    acr: Option<String>,
}

#[derive(Clone)]
struct Op(Arc<Mutex<OpState>>);

impl Op {
    fn with<T>(&self, f: impl FnOnce(&mut OpState) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

fn key() -> RsaKeyPair {
    RsaKeyPair::generate(2048).unwrap()
}

/// Starts the provider; its issuer URL, its handle and its server task.
async fn start_op() -> (String, Op, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let op = Op(Arc::new(Mutex::new(OpState {
        issuer: issuer.clone(),
        forgery: Forgery::None,
        keys: Keys { published: vec![("cle-1".into(), key())], unpublished: key() },
        nonce: String::new(),
        challenge: String::new(),
        expect_post_auth: false,
        jwks_fetches: 0,
        acr_values: None,
        acr: None,
    })));
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo))
        // No kept-alive connection: a stopped provider is silent at once.
        .layer(axum::middleware::map_response(|mut r: Response| async move {
            r.headers_mut().insert("connection", axum::http::HeaderValue::from_static("close"));
            r
        }))
        .with_state(op.clone());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (issuer, op, task)
}

async fn discovery(State(op): State<Op>) -> Json<Value> {
    let issuer = op.with(|s| s.issuer.clone());
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(op): State<Op>) -> Json<Value> {
    let keys: Vec<Value> = op.with(|s| {
        s.jwks_fetches += 1;
        s.keys.published.iter().map(|(kid, pair)| public_jwk(kid, pair)).collect()
    });
    Json(json!({ "keys": keys }))
}

fn public_jwk(kid: &str, pair: &RsaKeyPair) -> Value {
    let mut jwk: Jwk = pair.to_jwk_public_key();
    jwk.set_key_id(kid);
    jwk.set_algorithm("RS256");
    jwk.set_key_use("sig");
    serde_json::to_value(jwk.as_ref()).unwrap()
}

/// Remembers the nonce and challenge and sends the browser straight back
/// with a code (no login page: the person is known here).
async fn authorize(State(op): State<Op>, Query(q): Query<std::collections::HashMap<String, String>>) -> Redirect {
    assert_eq!(q.get("code_challenge_method").map(String::as_str), Some("S256"), "PKCE S256 always");
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    op.with(|s| {
        s.nonce = q["nonce"].clone();
        s.challenge = q["code_challenge"].clone();
        s.acr_values = q.get("acr_values").cloned();
    });
    let back = url::Url::parse_with_params(&q["redirect_uri"], &[("code", "code-1"), ("state", &q["state"])]).unwrap();
    Redirect::to(back.as_str())
}

async fn token(
    State(op): State<Op>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let basic =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    let by_basic = headers.get("authorization").is_some_and(|h| h == basic.as_str());
    let by_post = form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    let expect_post = op.with(|s| s.expect_post_auth);
    if (expect_post && !by_post) || (!expect_post && !by_basic) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if challenge != op.with(|s| s.challenge.clone()) || form.get("code").map(String::as_str) != Some("code-1") {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant" }))).into_response();
    }
    let id_token = op.with(id_token);
    Json(json!({ "access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": id_token }))
        .into_response()
}

/// The ID token of the pupil `4242`, forged as asked.
fn id_token(s: &mut OpState) -> String {
    let now = SystemTime::now();
    let mut payload = JwtPayload::new();
    payload.set_issuer(&s.issuer);
    payload.set_subject("4242");
    let audience = if s.forgery == Forgery::WrongAudience { "un-autre-client" } else { CLIENT_ID };
    payload.set_audience(vec![audience]);
    payload.set_issued_at(&now);
    let expiry =
        if s.forgery == Forgery::Expired { now - Duration::from_secs(600) } else { now + Duration::from_secs(300) };
    payload.set_expires_at(&expiry);
    let nonce = if s.forgery == Forgery::WrongNonce { "un-autre-nonce".to_owned() } else { s.nonce.clone() };
    payload.set_claim("nonce", Some(json!(nonce))).unwrap();
    payload.set_claim("given_name", Some(json!("Zoé"))).unwrap();
    payload.set_claim("family_name", Some(json!("Martin"))).unwrap();
    if let Some(acr) = &s.acr {
        payload.set_claim("acr", Some(json!(acr))).unwrap();
    }
    let (kid, pair) = match s.forgery {
        Forgery::UnknownKey => ("cle-inconnue".to_owned(), &s.keys.unpublished),
        _ => {
            let (kid, pair) = s.keys.published.last().unwrap();
            (kid.clone(), pair)
        }
    };
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let signer = RS256.signer_from_der(pair.to_der_private_key()).unwrap();
    jwt::encode_with_signer(&payload, &header, &signer).unwrap()
}

async fn userinfo(headers: HeaderMap) -> Response {
    if headers.get("authorization").is_none_or(|h| h != "Bearer at-1") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({ "sub": "4242", "fr_edu_id": "4242", "email": "zoe.martin@example.test" })).into_response()
}

/// From the profile choice, through the provider (straight back), to the
/// ENT's answer to the callback.
async fn log_in(ent: &TestApp) -> (LoginResult, bool) {
    let r = ent.get_login(&[("profile", "eleve-parent"), ("service", SERVICE)]).await;
    let r = result(ent.client.get(ent.url(&r.location.unwrap())).send().await.unwrap()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(r.location.unwrap())
        .send()
        .await
        .unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let r = ent.client.get(ent.url(&local(&back))).send().await.unwrap();
    let session = r.headers().get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("TGC="));
    (result(r).await, session)
}

async fn pupil_ent(issuer: &str, tweak: impl FnOnce(&mut idp_core::upstream::UpstreamConfig)) -> TestApp {
    let ent = ent(free_port(), issuer, tweak).await;
    let jointure = [("ENTPersonJointure".to_owned(), vec!["AC-ORLEANS-TOURS$4242".to_owned()])].into();
    ent.active_account_with("z.martin", "Local-Inutile-1", Profile::Eleve, jointure).await;
    ent
}

#[tokio::test]
async fn forged_id_tokens_are_refused_with_a_french_page_and_no_session() {
    let (issuer, op, _task) = start_op().await;
    let ent = pupil_ent(&issuer, |_| {}).await;
    for forgery in [Forgery::WrongNonce, Forgery::WrongAudience, Forgery::UnknownKey, Forgery::Expired] {
        op.with(|s| s.forgery = forgery);
        let (r, session) = log_in(&ent.another_browser()).await;
        assert_eq!(r.status, 401, "{forgery:?}: {}", r.body);
        assert!(!session, "{forgery:?}: no session");
        let text = unescape(&r.body);
        assert!(text.contains("n'a pas abouti") && text.contains("ÉduConnect"), "{forgery:?}: {text}");
        assert!(text.contains("/cas/login?profile=choose"), "a way back to the profile choice: {text}");
    }
    // The unknown key made the ENT fetch the keys again, once.
    op.with(|s| s.forgery = Forgery::None);
    let (r, session) = log_in(&ent.another_browser()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(session && r.location.unwrap().starts_with(SERVICE));
}

#[tokio::test]
async fn rolled_keys_are_fetched_again_once_and_userinfo_gives_the_missing_claim() {
    let (issuer, op, _task) = start_op().await;
    let ent = pupil_ent(&issuer, |_| {}).await;
    let (r, _) = log_in(&ent.another_browser()).await;
    assert_eq!(r.status, 302, "linked by fr_edu_id, a userinfo claim: {}", r.body);
    assert_eq!(op.with(|s| s.jwks_fetches), 1, "discovery and keys are cached");
    let (r, _) = log_in(&ent.another_browser()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(op.with(|s| s.jwks_fetches), 1, "discovery and keys are cached");
    // The provider rolls its keys: the new kid is unknown, fetched once.
    op.with(|s| s.keys.published = vec![("cle-2".into(), key())]);
    let (r, _) = log_in(&ent.another_browser()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(op.with(|s| s.jwks_fetches), 2);
}

#[tokio::test]
async fn acr_values_are_asked_for_and_an_id_token_of_another_level_is_refused() {
    let (issuer, op, _task) = start_op().await;
    let ent = pupil_ent(&issuer, |u| u.acr_values = vec!["eidas1".into()]).await;
    // No acr in the ID token: refused.
    let (r, session) = log_in(&ent.another_browser()).await;
    assert_eq!(op.with(|s| s.acr_values.clone()).as_deref(), Some("eidas1"), "acr_values sent");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(!session);
    op.with(|s| s.acr = Some("eidas2".into()));
    let (r, session) = log_in(&ent.another_browser()).await;
    assert_eq!(r.status, 401, "another level: {}", r.body);
    assert!(!session);
    op.with(|s| s.acr = Some("eidas1".into()));
    let (r, session) = log_in(&ent.another_browser()).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(session);
    // Without acr_values in the configuration, none is sent.
    let plain = pupil_ent(&issuer, |_| {}).await;
    let (r, _) = log_in(&plain).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(op.with(|s| s.acr_values.clone()), None);
}

#[tokio::test]
async fn the_client_secret_goes_in_the_form_with_token_auth_client_secret_post() {
    let (issuer, op, _task) = start_op().await;
    op.with(|s| s.expect_post_auth = true);
    let ent = pupil_ent(&issuer, |u| u.token_auth = TokenAuth::ClientSecretPost).await;
    let (r, session) = log_in(&ent).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(session);
    // The provider refuses Basic now: the default client_secret_basic fails.
    let basic = pupil_ent(&issuer, |_| {}).await;
    let (r, session) = log_in(&basic).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(!session);
}

#[tokio::test]
async fn a_bad_state_a_silent_provider_and_a_disabled_account_get_french_pages() {
    let (issuer, _op, task) = start_op().await;
    let ent = pupil_ent(&issuer, |_| {}).await;
    let r = result(ent.client.get(ent.url("/upstream/educonnect/callback?state=invente&code=x")).send().await.unwrap())
        .await;
    assert_eq!(r.status, 400);
    assert!(unescape(&r.body).contains("Cette connexion a expiré ou a déjà été utilisée"), "{}", r.body);

    // A disabled account stays refused.
    let login = Login::parse("z.martin").unwrap();
    let mut account = ent.stores.accounts.find_by_login(&login).await.unwrap().unwrap();
    account.state = AccountState::Disabled;
    ent.stores.accounts.update(&account).await.unwrap();
    let (r, session) = log_in(&ent.another_browser()).await;
    assert_eq!(r.status, 403);
    assert!(!session);
    assert!(unescape(&r.body).contains("Votre compte est désactivé"), "{}", r.body);

    // The provider stops answering between the redirect and the callback.
    let other = ent.another_browser();
    let r = other.get_login(&[("profile", "eleve-parent"), ("service", SERVICE)]).await;
    let r = result(other.client.get(other.url(&r.location.unwrap())).send().await.unwrap()).await;
    let authorize = r.location.unwrap();
    let state = param(&authorize, "state").unwrap();
    task.abort();
    let _ = task.await;
    let callback = format!("/upstream/educonnect/callback?code=code-1&state={state}");
    let r = result(other.client.get(other.url(&callback)).send().await.unwrap()).await;
    assert_eq!(r.status, 502, "{}", r.body);
    let text = unescape(&r.body);
    assert!(text.contains("ne répond pas") && text.contains("/cas/login"), "{text}");

    // Nothing listens at the issuer: the start itself says so.
    let down = pupil_ent("http://127.0.0.1:9", |_| {}).await;
    let r = down.get_login(&[("profile", "eleve-parent")]).await;
    let r = result(down.client.get(down.url(&r.location.unwrap())).send().await.unwrap()).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(unescape(&r.body).contains("ne répond pas"), "{}", r.body);
}
