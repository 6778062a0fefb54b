//! A key pair with its certificate: read from PEM files, or generated
//! (RSA 3072, self-signed, SHA-256) when an operator configured none.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509NameBuilder};

use crate::{Error, Result};

/// How long a generated certificate is valid. Peers of SAML metadata trust
/// the key, not the validity dates, but some refuse expired certificates.
const GENERATED_VALIDITY_DAYS: i64 = 10 * 365;

/// A private key and the certificate that carries its public half.
#[derive(Clone)]
pub struct KeyPair {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("cert", &self.cert.subject_name()).finish_non_exhaustive()
    }
}

fn key_err(e: openssl::error::ErrorStack) -> Error {
    Error::Key(e.to_string())
}

impl KeyPair {
    /// Reads a PEM private key and a PEM certificate, and checks they match.
    pub fn from_pem(key: &[u8], cert: &[u8]) -> Result<KeyPair> {
        let key = PKey::private_key_from_pem(key).map_err(key_err)?;
        let cert = X509::from_pem(cert).map_err(key_err)?;
        let public = cert.public_key().map_err(key_err)?;
        if !key.public_eq(&public) {
            return Err(Error::Key("the certificate is not the key's".into()));
        }
        if key.rsa().is_err() {
            return Err(Error::Key("an RSA key is needed".into()));
        }
        Ok(KeyPair { key, cert })
    }

    /// A new RSA key and a self-signed certificate for `common_name`,
    /// valid from `now`.
    pub fn generate(common_name: &str, now: chrono::DateTime<chrono::Utc>) -> Result<KeyPair> {
        let key = PKey::from_rsa(Rsa::generate(3072).map_err(key_err)?).map_err(key_err)?;
        let mut name = X509NameBuilder::new().map_err(key_err)?;
        // A CN is at most 64 characters.
        let cn: String = common_name.chars().take(64).collect();
        name.append_entry_by_text("CN", &cn).map_err(key_err)?;
        let name = name.build();
        let mut serial = BigNum::new().map_err(key_err)?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false).map_err(key_err)?;
        let mut b = X509::builder().map_err(key_err)?;
        b.set_version(2).map_err(key_err)?;
        let serial = serial.to_asn1_integer().map_err(key_err)?;
        b.set_serial_number(&serial).map_err(key_err)?;
        b.set_subject_name(&name).map_err(key_err)?;
        b.set_issuer_name(&name).map_err(key_err)?;
        b.set_pubkey(&key).map_err(key_err)?;
        let start = now.timestamp();
        let not_before = Asn1Time::from_unix(start).map_err(key_err)?;
        let not_after = Asn1Time::from_unix(start + GENERATED_VALIDITY_DAYS * 86_400).map_err(key_err)?;
        b.set_not_before(&not_before).map_err(key_err)?;
        b.set_not_after(&not_after).map_err(key_err)?;
        b.sign(&key, MessageDigest::sha256()).map_err(key_err)?;
        Ok(KeyPair { key, cert: b.build() })
    }

    /// The key as PKCS#8 PEM and the certificate as PEM (to keep them).
    pub fn to_pem(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        Ok((self.key.private_key_to_pem_pkcs8().map_err(key_err)?, self.cert.to_pem().map_err(key_err)?))
    }

    /// The certificate's DER in base64, as metadata carries it.
    pub fn cert_base64(&self) -> Result<String> {
        use base64::Engine;
        Ok(base64::engine::general_purpose::STANDARD.encode(self.cert.to_der().map_err(key_err)?))
    }
}
