//! The token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3), UserInfo,
//! introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Tokens of one authorization form a family, the [`Grant`]: the code is
//! single use and a replayed code revokes the family (RFC 6749 §10.5); the
//! refresh token is rotated at each use and a reused old one revokes the
//! family, whereas a token the family never issued is only refused (the
//! grant id in a refresh token is no secret); only the newest access token
//! of a family is active. An access token's `jti` is random: the grant is
//! found through the store, so a token does not name its family.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use idp_core::account::{Account, AccountState};
use idp_core::oidc::{ClientId, Grant, OFFLINE_ACCESS, OidcClient, Rotation};
use idp_core::ports::AuditEvent;
use idp_core::secret::{constant_time_eq, random_token};
use idp_core::session::SessionService;

use super::authorize::seconds;
use super::claims;
use super::{ErrorCode, Failure, Oidc, fail, session_sid, sha256_b64, sha256_hex, split_scopes};

/// The form of a token, introspection or revocation request.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Introspection and revocation.
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
}

/// `client_secret_basic` credentials, already decoded by the web layer.
#[derive(Clone, Debug)]
pub struct BasicCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// A successful token response (the JSON body).
pub type TokenResponse = Map<String, Value>;

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn invalid_client() -> Failure {
    Failure::Protocol(super::OidcError::new(ErrorCode::InvalidClient, "client authentication failed"))
}

impl Oidc {
    /// Authenticates the client of a token, introspection or revocation
    /// request: `client_secret_basic`, `client_secret_post`, or a public
    /// client naming itself (`allow_public`).
    pub async fn authenticate_client(
        &self,
        basic: Option<BasicCredentials>,
        form: &TokenForm,
        allow_public: bool,
    ) -> Result<OidcClient, Failure> {
        let (id, secret) = match (basic, &form.client_secret) {
            (Some(_), Some(_)) => return fail(ErrorCode::InvalidRequest, "more than one client authentication"),
            (Some(b), None) => {
                if form.client_id.as_deref().is_some_and(|c| c != b.client_id) {
                    return fail(ErrorCode::InvalidRequest, "client_id does not match the credentials");
                }
                (b.client_id, Some(b.client_secret))
            }
            (None, secret) => match &form.client_id {
                Some(id) => (id.clone(), secret.clone()),
                None => return Err(invalid_client()),
            },
        };
        let client = match ClientId::parse(&id) {
            Ok(id) => self.clients.get(&id).await?,
            Err(_) => None,
        };
        let Some(client) = client else { return Err(invalid_client()) };
        match (&client.secret_hash, secret) {
            (Some(hash), Some(secret)) if constant_time_eq(hash, &sha256_hex(&secret)) => Ok(client),
            (None, None) if allow_public => Ok(client),
            _ => Err(invalid_client()),
        }
    }

    /// `POST /token`.
    pub async fn token(&self, client: &OidcClient, form: &TokenForm) -> Result<TokenResponse, Failure> {
        let outcome = self.token_for_grant(client, form).await;
        if let Err(Failure::Protocol(e)) = &outcome {
            self.cas.audit.record(AuditEvent::TokenRefused {
                client: client.id.as_str().to_owned(),
                grant: form.grant_type.clone().unwrap_or_default(),
                code: e.code.as_str(),
            });
        }
        outcome
    }

    async fn token_for_grant(&self, client: &OidcClient, form: &TokenForm) -> Result<TokenResponse, Failure> {
        match form.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(client, form).await,
            Some("refresh_token") => self.refresh(client, form).await,
            None => fail(ErrorCode::InvalidRequest, "grant_type is required"),
            Some("client_credentials" | "password" | "urn:ietf:params:oauth:grant-type:device_code") => {
                fail(ErrorCode::UnauthorizedClient, "this grant type is not allowed for the client")
            }
            Some(_) => fail(ErrorCode::UnsupportedGrantType, "unsupported grant_type"),
        }
    }

    async fn exchange_code(&self, client: &OidcClient, form: &TokenForm) -> Result<TokenResponse, Failure> {
        let Some(code) = form.code.as_deref().filter(|c| !c.is_empty()) else {
            return fail(ErrorCode::InvalidRequest, "code is required");
        };
        let Some(stored) = self.store.take_code(code).await? else {
            if let Some(grant_id) = self.store.used_code(code).await? {
                // RFC 6749 §10.5: a code used twice revokes what it gave.
                self.store.remove_grant(&grant_id).await?;
                tracing::warn!(client = %client.id, "authorization code replayed: its tokens are revoked");
            }
            return fail(ErrorCode::InvalidGrant, "invalid or expired code");
        };
        let now = self.cas.clock.now();
        if stored.client_id != client.id.as_str() || stored.expires_at < now {
            return fail(ErrorCode::InvalidGrant, "invalid or expired code");
        }
        if form.redirect_uri.as_deref() != Some(stored.redirect_uri.as_str()) {
            return fail(ErrorCode::InvalidGrant, "redirect_uri does not match the authorization request");
        }
        match (&stored.code_challenge, form.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier))
                if (43..=128).contains(&verifier.len())
                    && constant_time_eq(challenge, &sha256_b64(verifier.as_bytes())) => {}
            (None, None) => {}
            _ => return fail(ErrorCode::InvalidGrant, "PKCE verification failed"),
        }
        // The session must still be alive (no logout in between) and the
        // account still active.
        if self.cas.sessions.get(stored.session_id.expose()).await?.is_none() {
            return fail(ErrorCode::InvalidGrant, "the session has ended");
        }
        let account = self.active_account(stored.account_id, stored.auth_time).await?;
        // The client may have lost offline_access since the code was issued.
        let allowed = client.scopes.iter().any(|s| s == OFFLINE_ACCESS);
        let scopes: Vec<String> = stored.scopes.iter().filter(|s| *s != OFFLINE_ACCESS || allowed).cloned().collect();
        let offline = scopes.iter().any(|s| s == OFFLINE_ACCESS);
        let refresh = offline || !client.is_public();
        let lifetime = if offline { self.lifetimes.offline_seconds } else { self.lifetimes.refresh_token_seconds };
        let grant_id = random_token(32)?;
        let refresh_token = format!("{grant_id}.{}", random_token(43)?);
        let jti = self.new_access_jti(&grant_id).await?;
        let grant = Grant {
            id: grant_id.clone(),
            client_id: client.id.as_str().to_owned(),
            account_id: account.id,
            login: stored.login.clone(),
            scopes,
            session_id: stored.session_id.clone(),
            auth_time: stored.auth_time,
            refresh_hash: refresh.then(|| sha256_hex(&refresh_token)),
            access_jti: Some(jti.clone()),
            rotated_out: Vec::new(),
            offline,
            expires_at: now + chrono::Duration::seconds(lifetime),
            amr: stored.amr.clone(),
        };
        self.store.put_grant(&grant, seconds(lifetime)).await?;
        self.store.remember_used_code(code, &grant_id, seconds(lifetime)).await?;
        let entry = SessionService::oidc(client.id.as_str(), &grant_id);
        self.cas.sessions.add_service(stored.session_id.expose(), entry).await?;
        let refresh_token = refresh.then_some(refresh_token);
        self.tokens(
            "authorization_code",
            client,
            &grant,
            &account,
            &grant.scopes,
            &jti,
            refresh_token,
            stored.nonce.as_deref(),
        )
        .await
    }

    async fn refresh(&self, client: &OidcClient, form: &TokenForm) -> Result<TokenResponse, Failure> {
        let Some(presented) = form.refresh_token.as_deref() else {
            return fail(ErrorCode::InvalidRequest, "refresh_token is required");
        };
        let Some((grant_id, _)) = presented.split_once('.') else {
            return fail(ErrorCode::InvalidGrant, "invalid refresh token");
        };
        let Some(grant) = self.store.get_grant(grant_id).await? else {
            return fail(ErrorCode::InvalidGrant, "invalid refresh token");
        };
        let now = self.cas.clock.now();
        if grant.client_id != client.id.as_str() || grant.expires_at < now || grant.refresh_hash.is_none() {
            return fail(ErrorCode::InvalidGrant, "invalid refresh token");
        }
        let offline = grant.offline && client.scopes.iter().any(|s| s == OFFLINE_ACCESS);
        if !offline && !self.session_alive(&grant).await? {
            // Without offline_access, the tokens live as long as the SSO
            // session, even when nobody noticed it had timed out.
            self.store.remove_grant(grant_id).await?;
            return fail(ErrorCode::InvalidGrant, "the session has ended");
        }
        let scopes = match form.scope.as_deref() {
            None => grant.scopes.clone(),
            Some(raw) => {
                let asked = split_scopes(raw);
                if asked.iter().any(|s| !grant.scopes.contains(s)) {
                    return fail(ErrorCode::InvalidScope, "scope exceeds the original grant");
                }
                asked
            }
        };
        let new_token = format!("{grant_id}.{}", random_token(43)?);
        let jti = random_token(32)?;
        let outcome =
            self.store.rotate_refresh(grant_id, &sha256_hex(presented), &sha256_hex(&new_token), &jti).await?;
        match outcome {
            Rotation::Rotated => {}
            Rotation::Reused => {
                // A rotated-out refresh token came back: it was copied, or
                // the client is broken. Either way the family goes.
                self.store.remove_grant(grant_id).await?;
                tracing::warn!(client = %client.id, "refresh token reused: its grant is revoked");
                return fail(ErrorCode::InvalidGrant, "invalid refresh token");
            }
            // A token this family never issued: anyone may write a grant id
            // followed by anything, so it revokes nothing.
            Rotation::Mismatch | Rotation::Missing => return fail(ErrorCode::InvalidGrant, "invalid refresh token"),
        }
        self.store.put_access(&jti, grant_id, seconds(self.lifetimes.access_token_seconds)).await?;
        let account = match self.active_account(grant.account_id, grant.auth_time).await {
            Ok(a) => a,
            Err(e) => {
                self.store.remove_grant(grant_id).await?;
                return Err(e);
            }
        };
        let refresh_token = Some(new_token);
        self.tokens("refresh_token", client, &grant, &account, &scopes, &jti, refresh_token, None).await
    }

    /// A random `jti` for a new access token of the grant `grant_id`, and
    /// the record that leads from it to the grant.
    async fn new_access_jti(&self, grant_id: &str) -> crate::Result<String> {
        let jti = random_token(32)?;
        self.store.put_access(&jti, grant_id, seconds(self.lifetimes.access_token_seconds)).await?;
        Ok(jti)
    }

    /// Whether the SSO session of `grant` is still alive (without touching
    /// it: a refresh by a back end does not keep the person logged in).
    async fn session_alive(&self, grant: &Grant) -> crate::Result<bool> {
        let Some(session) = self.cas.sessions.get(grant.session_id.expose()).await? else { return Ok(false) };
        let Some(account) = self.cas.accounts.find_by_id(grant.account_id).await? else { return Ok(false) };
        Ok(session.is_alive(self.cas.clock.now(), &self.cas.policy, account.sessions_valid_after))
    }

    /// The account behind a grant, if it may still get tokens.
    async fn active_account(&self, id: i64, auth_time: DateTime<Utc>) -> Result<Account, Failure> {
        match self.cas.accounts.find_by_id(id).await? {
            Some(a) if a.state == AccountState::Active && a.sessions_valid_after <= auth_time => Ok(a),
            _ => fail(ErrorCode::InvalidGrant, "the account can no longer sign in"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn tokens(
        &self,
        grant_type: &'static str,
        client: &OidcClient,
        grant: &Grant,
        account: &Account,
        scopes: &[String],
        jti: &str,
        refresh_token: Option<String>,
        nonce: Option<&str>,
    ) -> Result<TokenResponse, Failure> {
        let now = self.cas.clock.now();
        self.cas.audit.record(AuditEvent::TokensIssued {
            login: account.login.as_str().to_owned(),
            client: grant.client_id.clone(),
            grant: grant_type,
        });
        let access_exp = now + chrono::Duration::seconds(self.lifetimes.access_token_seconds);
        let sub = claims::subject(self.cas.pseudonyms.as_ref(), client, account.id).await?;
        // RFC 9068: a JWT access token, typ at+jwt.
        let access = json!({
            "iss": self.issuer, "sub": sub, "aud": grant.client_id, "client_id": grant.client_id,
            "exp": ts(access_exp), "iat": ts(now), "jti": jti, "scope": scopes.join(" "),
            "auth_time": ts(grant.auth_time), "sid": session_sid(grant.session_id.expose()),
        });
        let access_token = self.keys.sign("ES256", "at+jwt", into_map(access)).await?;
        let mut out = Map::new();
        if scopes.iter().any(|s| s == "openid") {
            let mut id = into_map(json!({
                "iss": self.issuer, "sub": sub, "aud": grant.client_id, "azp": grant.client_id,
                "exp": ts(now + chrono::Duration::seconds(self.lifetimes.id_token_seconds)), "iat": ts(now),
                "auth_time": ts(grant.auth_time), "sid": session_sid(grant.session_id.expose()),
                "at_hash": at_hash(&access_token),
            }));
            if !grant.amr.is_empty() {
                id.insert("amr".into(), json!(grant.amr));
            }
            id.insert("acr".into(), json!(idp_core::second_factor::acr(&grant.amr)));
            if let Some(n) = nonce {
                id.insert("nonce".into(), json!(n));
            }
            id.extend(claims::for_scopes(account, scopes, self.email_verified(account, scopes).await?));
            out.insert("id_token".into(), json!(self.keys.sign("RS256", "JWT", id).await?));
        }
        out.insert("access_token".into(), json!(access_token));
        out.insert("token_type".into(), json!("Bearer"));
        out.insert("expires_in".into(), json!(self.lifetimes.access_token_seconds));
        out.insert("scope".into(), json!(scopes.join(" ")));
        if let Some(r) = refresh_token {
            out.insert("refresh_token".into(), json!(r));
        }
        Ok(out)
    }

    /// The claims of an active access token: signed by us, typ `at+jwt`,
    /// not expired, still the current token of a live grant, of an account
    /// that may still sign in.
    pub async fn active_access_token(&self, token: &str) -> crate::Result<Option<(Map<String, Value>, Grant)>> {
        let Some((typ, claims)) = self.keys.verify(token).await? else { return Ok(None) };
        if typ.as_deref() != Some("at+jwt") || claims.get("iss").and_then(Value::as_str) != Some(&self.issuer) {
            return Ok(None);
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if exp < self.cas.clock.now().timestamp() {
            return Ok(None);
        }
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else { return Ok(None) };
        let Some(grant_id) = self.store.access_grant(jti).await? else { return Ok(None) };
        let Some(grant) = self.store.get_grant(&grant_id).await? else { return Ok(None) };
        if grant.access_jti.as_deref() != Some(jti) {
            return Ok(None);
        }
        // A reset, disabled or deleted account ends its tokens at once, as
        // it ends its sessions.
        let live = match self.cas.accounts.find_by_id(grant.account_id).await? {
            Some(a) => a.state == AccountState::Active && a.sessions_valid_after <= grant.auth_time,
            None => false,
        };
        Ok(live.then_some((claims, grant)))
    }

    /// UserInfo: the claims of the token's scopes, or `invalid_token`.
    pub async fn userinfo(&self, token: &str) -> Result<Map<String, Value>, Failure> {
        let Some((claims, grant)) = self.active_access_token(token).await? else {
            return fail(ErrorCode::InvalidToken, "the access token is invalid, expired or revoked");
        };
        let scopes = split_scopes(claims.get("scope").and_then(Value::as_str).unwrap_or(""));
        if !scopes.iter().any(|s| s == "openid") {
            return fail(ErrorCode::InvalidToken, "the access token has no openid scope");
        }
        let Some(account) = self.cas.accounts.find_by_id(grant.account_id).await? else {
            return fail(ErrorCode::InvalidToken, "the account no longer exists");
        };
        let Some(client) = self.client_of(&grant).await? else {
            return fail(ErrorCode::InvalidToken, "the client no longer exists");
        };
        let sub = claims::subject(self.cas.pseudonyms.as_ref(), &client, account.id).await?;
        let mut out = into_map(json!({ "sub": sub }));
        out.extend(claims::for_scopes(&account, &scopes, self.email_verified(&account, &scopes).await?));
        Ok(out)
    }

    /// Whether the account's address was validated by link (read only when
    /// the `email` scope releases it).
    async fn email_verified(&self, account: &Account, scopes: &[String]) -> crate::Result<bool> {
        if !scopes.iter().any(|s| s == "email") || account.email.is_none() {
            return Ok(false);
        }
        Ok(self.security.get(account.id).await?.email_is_verified(account))
    }

    /// Introspection (RFC 7662) of an access or refresh token. `sub` is
    /// the subject the token's client gets; `username` (the login) only
    /// for a token with the `profile` scope, which releases it anyway.
    pub async fn introspect(&self, token: &str) -> crate::Result<Map<String, Value>> {
        if let Some((claims, grant)) = self.active_access_token(token).await? {
            let mut out = into_map(json!({ "active": true, "token_type": "Bearer" }));
            for key in ["scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti", "auth_time"] {
                if let Some(v) = claims.get(key) {
                    out.insert(key.into(), v.clone());
                }
            }
            let scopes = split_scopes(claims.get("scope").and_then(Value::as_str).unwrap_or(""));
            if scopes.iter().any(|s| s == "profile") {
                out.insert("username".into(), json!(grant.login));
            }
            return Ok(out);
        }
        if let Some(grant) = self.current_refresh(token).await?
            && let Some(client) = self.client_of(&grant).await?
        {
            let sub = claims::subject(self.cas.pseudonyms.as_ref(), &client, grant.account_id).await?;
            let mut out = into_map(json!({
                "active": true, "token_type": "refresh_token", "scope": grant.scopes.join(" "),
                "client_id": grant.client_id, "sub": sub, "exp": ts(grant.expires_at), "iss": self.issuer,
            }));
            if grant.scopes.iter().any(|s| s == "profile") {
                out.insert("username".into(), json!(grant.login));
            }
            return Ok(out);
        }
        Ok(into_map(json!({ "active": false })))
    }

    /// The registered client of `grant`, unless it was removed.
    async fn client_of(&self, grant: &Grant) -> crate::Result<Option<OidcClient>> {
        match ClientId::parse(&grant.client_id) {
            Ok(id) => Ok(self.clients.get(&id).await?),
            Err(_) => Ok(None),
        }
    }

    /// The live grant whose current refresh token is `token`.
    async fn current_refresh(&self, token: &str) -> crate::Result<Option<Grant>> {
        let Some((grant_id, _)) = token.split_once('.') else { return Ok(None) };
        let Some(grant) = self.store.get_grant(grant_id).await? else { return Ok(None) };
        let current = grant.refresh_hash.as_deref().is_some_and(|h| constant_time_eq(h, &sha256_hex(token)));
        Ok((current && grant.expires_at >= self.cas.clock.now()).then_some(grant))
    }

    /// Revocation (RFC 7009): a refresh token revokes its whole grant; an
    /// access token stops being active. Unknown tokens are not an error.
    pub async fn revoke(&self, client: &OidcClient, token: &str) -> crate::Result<()> {
        if let Some(grant) = self.current_refresh(token).await?
            && grant.client_id == client.id.as_str()
        {
            self.store.remove_grant(&grant.id).await?;
            return Ok(());
        }
        if let Some((_, mut grant)) = self.active_access_token(token).await?
            && grant.client_id == client.id.as_str()
        {
            grant.access_jti = None;
            let left = (grant.expires_at - self.cas.clock.now()).num_seconds().max(1);
            self.store.put_grant(&grant, seconds(left)).await?;
        }
        Ok(())
    }
}

/// OIDC Core §3.1.3.6: the left half of SHA-256 of the access token.
fn at_hash(access_token: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.get(..16).unwrap_or_default())
}

pub(crate) fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
