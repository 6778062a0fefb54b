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
}

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
        Self { store, clock, grace, parsed: Mutex::new(HashMap::new()) }
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
        let decoded = jwt::decode_with_verifier_selector(token, |header| {
            let kid = header.key_id();
            Ok(keys.iter().find(|(k, _)| Some(k.kid.as_str()) == kid).map(|(_, l)| l.verifier.as_ref()))
        });
        Ok(decoded.ok().map(|(payload, header)| (header.token_type().map(str::to_owned), payload.claims_set().clone())))
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
}
