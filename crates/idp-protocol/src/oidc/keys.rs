//! Signing keys (ES256 and RS256): generated on first start, kept in the
//! [`KeyStore`] shared by every node, rotated by `idp keys rotate`. A
//! retired key is still published in the JWKS (and still verifies) until
//! the tokens it signed have expired; then it is dropped.

use chrono::{DateTime, Utc};
use josekit::jwk::Jwk;
use josekit::jwk::alg::ec::EcCurve;
use josekit::jws::{ES256, JwsHeader, JwsSigner, JwsVerifier, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use idp_core::clock::Clock;
use idp_core::oidc::{KeyStore, StoredKey};
use idp_core::secret::{Secret, random_token};

/// The algorithms the provider signs with.
pub const ALGORITHMS: [&str; 2] = ["RS256", "ES256"];

/// A key ready to use.
struct Loaded {
    signer: Box<dyn JwsSigner>,
    verifier: Box<dyn JwsVerifier>,
    public: Jwk,
}

/// The keys, read from the store at each use (so that a rotation by the CLI
/// is seen at once by every node) and parsed once per process.
pub struct Keys {
    store: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    /// How long a retired key stays published.
    grace: chrono::Duration,
    parsed: Mutex<HashMap<String, Arc<Loaded>>>,
    /// Tokens whose signature was checked, by the SHA-256 of the token:
    /// the key id that verified it, its `typ` and claims. A token is
    /// presented many times (introspection, userinfo); its signature need
    /// be checked once, and the entry counts only while that key is still
    /// published. Bounded: emptied when full.
    verified: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
}

/// A token whose signature a published key verified.
struct Verified {
    kid: String,
    typ: Option<String>,
    claims: Map<String, Value>,
}

/// How many verified tokens are remembered at most.
const VERIFIED_CAPACITY: usize = 10_000;

fn jose(e: josekit::JoseError) -> idp_core::Error {
    idp_core::Error::SigningKey(e.into())
}

/// Generates a new private key of `alg` (`ES256` or `RS256`).
pub fn generate(alg: &str, now: DateTime<Utc>) -> idp_core::Result<StoredKey> {
    let pem = match alg {
        "ES256" => josekit::jwk::alg::ec::EcKeyPair::generate(EcCurve::P256).map_err(jose)?.to_pem_private_key(),
        "RS256" => josekit::jwk::alg::rsa::RsaKeyPair::generate(2048).map_err(jose)?.to_pem_private_key(),
        other => return Err(idp_core::Error::invalid("algorithm", format!("'{other}': ES256 or RS256 expected"))),
    };
    let pem = String::from_utf8(pem).map_err(|e| idp_core::Error::SigningKey(e.into()))?;
    Ok(StoredKey {
        kid: format!("{}-{}", alg.to_ascii_lowercase(), random_token(16)?),
        alg: alg.to_owned(),
        private_pem: Secret::new(pem),
        created_at: now,
        retired_at: None,
    })
}

fn load(key: &StoredKey) -> idp_core::Result<Loaded> {
    use josekit::jwk::KeyPair;
    let pem = key.private_pem.expose().as_bytes();
    let (signer, verifier, mut public): (Box<dyn JwsSigner>, Box<dyn JwsVerifier>, Jwk) = match key.alg.as_str() {
        "ES256" => {
            let pair = ES256.key_pair_from_pem(pem).map_err(jose)?;
            let public = pair.to_jwk_public_key();
            (
                Box::new(ES256.signer_from_pem(pem).map_err(jose)?),
                Box::new(ES256.verifier_from_jwk(&public).map_err(jose)?),
                public,
            )
        }
        "RS256" => {
            let pair = RS256.key_pair_from_pem(pem).map_err(jose)?;
            let public = pair.to_jwk_public_key();
            (
                Box::new(RS256.signer_from_pem(pem).map_err(jose)?),
                Box::new(RS256.verifier_from_jwk(&public).map_err(jose)?),
                public,
            )
        }
        other => return Err(idp_core::Error::SigningKey(format!("unknown key algorithm {other}").into())),
    };
    public.set_key_id(key.kid.clone());
    public.set_algorithm(key.alg.clone());
    public.set_key_use("sig");
    Ok(Loaded { signer, verifier, public })
}

impl Keys {
    pub fn new(store: Arc<dyn KeyStore>, clock: Arc<dyn Clock>, grace: chrono::Duration) -> Self {
        Self { store, clock, grace, parsed: Mutex::new(HashMap::new()), verified: Mutex::new(HashMap::new()) }
    }

    /// Generates a key of each algorithm that has none in use (first start).
    pub async fn ensure(&self) -> idp_core::Result<()> {
        let keys = self.store.list().await?;
        for alg in ALGORITHMS {
            if !keys.iter().any(|k| k.alg == alg && k.retired_at.is_none()) {
                self.store.add(generate(alg, self.clock.now())?).await?;
            }
        }
        Ok(())
    }

    /// Retires the keys in use, adds new ones, and forgets the retired keys
    /// whose tokens have all expired. Returns the new key ids.
    pub async fn rotate(&self) -> idp_core::Result<Vec<String>> {
        let now = self.clock.now();
        let mut new = Vec::new();
        for alg in ALGORITHMS {
            let key = generate(alg, now)?;
            self.store.retire_all(alg, now).await?;
            new.push(key.kid.clone());
            self.store.add(key).await?;
        }
        for key in self.store.list().await? {
            if key.retired_at.is_some_and(|at| at + self.grace < now) {
                self.store.remove(&key.kid).await?;
            }
        }
        Ok(new)
    }

    /// The keys that are published: in use, or retired less than the
    /// longest token lifetime ago.
    async fn published(&self) -> idp_core::Result<Vec<(StoredKey, Arc<Loaded>)>> {
        let now = self.clock.now();
        let keys = self.store.list().await?;
        let mut out = Vec::new();
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys.into_iter().filter(|k| k.retired_at.is_none_or(|at| at + self.grace >= now)) {
            let loaded = match parsed.get(&key.kid) {
                Some(l) => l.clone(),
                None => {
                    let l = Arc::new(load(&key)?);
                    parsed.insert(key.kid.clone(), l.clone());
                    l
                }
            };
            out.push((key, loaded));
        }
        Ok(out)
    }

    /// The JSON Web Key Set (public keys only).
    pub async fn jwks(&self) -> idp_core::Result<Value> {
        let keys: Vec<Value> =
            self.published().await?.iter().map(|(_, l)| Value::Object(l.public.as_ref().clone())).collect();
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Signs `claims` with the newest key of `alg` in use, with header
    /// `typ` (`JWT`, `at+jwt`, `logout+jwt`).
    pub async fn sign(&self, alg: &str, typ: &str, claims: Map<String, Value>) -> idp_core::Result<String> {
        let keys = self.published().await?;
        let Some((key, loaded)) = keys
            .iter()
            .filter(|(k, _)| k.alg == alg && k.retired_at.is_none())
            .max_by(|(a, _), (b, _)| a.created_at.cmp(&b.created_at).then_with(|| a.kid.cmp(&b.kid)))
        else {
            return Err(idp_core::Error::SigningKey(format!("no {alg} signing key").into()));
        };
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(key.kid.clone());
        let payload = JwtPayload::from_map(claims).map_err(jose)?;
        jwt::encode_with_signer(&payload, &header, loaded.signer.as_ref()).map_err(jose)
    }

    /// Checks the signature of `token` with a published key and returns its
    /// header `typ` and claims. Expiry is the caller's business.
    pub async fn verify(&self, token: &str) -> idp_core::Result<Option<(Option<String>, Map<String, Value>)>> {
        let keys = self.published().await?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(&digest).cloned();
        if let Some(v) = known.filter(|v| keys.iter().any(|(k, _)| k.kid == v.kid)) {
            return Ok(Some((v.typ.clone(), v.claims.clone())));
        }
        let decoded = jwt::decode_with_verifier_selector(token, |header| {
            let kid = header.key_id();
            Ok(keys.iter().find(|(k, _)| Some(k.kid.as_str()) == kid).map(|(_, l)| l.verifier.as_ref()))
        });
        let Ok((payload, header)) = decoded else { return Ok(None) };
        let typ = header.token_type().map(str::to_owned);
        let claims = payload.claims_set().clone();
        if let Some(kid) = header.key_id().map(str::to_owned) {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
            verified.insert(digest, Arc::new(Verified { kid, typ: typ.clone(), claims: claims.clone() }));
        }
        Ok(Some((typ, claims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_sign_and_verify() {
        let now = Utc::now();
        for alg in ALGORITHMS {
            let key = generate(alg, now).unwrap();
            let loaded = load(&key).unwrap();
            assert_eq!(loaded.public.algorithm(), Some(alg));
            assert!(loaded.public.parameter("d").is_none(), "the public JWK has no private part");
            let mut header = JwsHeader::new();
            header.set_key_id(key.kid.clone());
            let payload = JwtPayload::from_map(Map::from_iter([("sub".to_owned(), Value::from("x"))])).unwrap();
            let token = jwt::encode_with_signer(&payload, &header, loaded.signer.as_ref()).unwrap();
            let (p, _) = jwt::decode_with_verifier(&token, loaded.verifier.as_ref()).unwrap();
            assert_eq!(p.subject(), Some("x"));
        }
    }

    /// Keys in memory (the SQL store is tested with the store).
    #[derive(Default)]
    struct MemoryKeys(Mutex<Vec<StoredKey>>);

    #[async_trait::async_trait]
    impl KeyStore for MemoryKeys {
        async fn list(&self) -> idp_core::Result<Vec<StoredKey>> {
            Ok(self.0.lock().unwrap().clone())
        }
        async fn add(&self, key: StoredKey) -> idp_core::Result<()> {
            self.0.lock().unwrap().push(key);
            Ok(())
        }
        async fn retire_all(&self, alg: &str, at: DateTime<Utc>) -> idp_core::Result<()> {
            let mut keys = self.0.lock().unwrap();
            keys.iter_mut().filter(|k| k.alg == alg && k.retired_at.is_none()).for_each(|k| k.retired_at = Some(at));
            Ok(())
        }
        async fn remove(&self, kid: &str) -> idp_core::Result<()> {
            self.0.lock().unwrap().retain(|k| k.kid != kid);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_remembered_token_stops_verifying_once_its_key_is_dropped() {
        let clock = Arc::new(idp_core::clock::FixedClock::new(Utc::now()));
        let keys = Keys::new(Arc::new(MemoryKeys::default()), clock.clone(), chrono::Duration::hours(1));
        keys.ensure().await.unwrap();
        let claims = Map::from_iter([("sub".to_owned(), Value::from("x"))]);
        let token = keys.sign("ES256", "at+jwt", claims).await.unwrap();
        for _ in 0..2 {
            let (typ, claims) = keys.verify(&token).await.unwrap().unwrap();
            assert_eq!((typ.as_deref(), claims.get("sub")), (Some("at+jwt"), Some(&Value::from("x"))));
        }
        assert!(keys.verify(&format!("{token}x")).await.unwrap().is_none(), "an altered token is not remembered");
        // Rotated: the retired key still verifies during the grace period…
        keys.rotate().await.unwrap();
        assert!(keys.verify(&token).await.unwrap().is_some());
        // …and once it is dropped, the remembered token no longer does.
        clock.advance(chrono::Duration::hours(2));
        keys.rotate().await.unwrap();
        assert!(keys.verify(&token).await.unwrap().is_none());
    }
}
