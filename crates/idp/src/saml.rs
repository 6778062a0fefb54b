//! The SAML upstreams' service providers, built at start: the identity
//! provider's metadata (a file, or an `https://` URL fetched now) and our
//! key pair (the configured PEM files, or one generated at the first start
//! and kept in the database, so every node signs and decrypts with it,
//! sealed under the key-encryption key as the OIDC signing keys are).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use idp_core::clock::Clock;
use idp_core::ports::Outbound;
use idp_core::secret::Secret;
use idp_core::upstream::{UpstreamConfig, UpstreamKind};
use idp_saml::keys::KeyPair;
use idp_saml::metadata::IdpMetadata;
use idp_saml::sp::ServiceProvider;
use idp_store::at_rest::KeyCipher;
use sea_orm::DatabaseConnection;

/// One service provider per `kind = "saml"` upstream, by upstream id.
pub async fn service_providers(
    upstreams: &[UpstreamConfig],
    db: &DatabaseConnection,
    cipher: &KeyCipher,
    outbound: &dyn Outbound,
    clock: &dyn Clock,
    public_base: &str,
) -> anyhow::Result<BTreeMap<String, ServiceProvider>> {
    let mut sps = BTreeMap::new();
    for u in upstreams.iter().filter(|u| u.kind == UpstreamKind::Saml) {
        let xml = idp_metadata(u, outbound).await?;
        let idp = IdpMetadata::parse(&xml, None, clock.now())
            .with_context(|| format!("upstream '{}': idp_metadata", u.id))?;
        let keys = key_pair(u, db, cipher, clock).await?;
        let mut sp = ServiceProvider::new(public_base, &u.id, vec![keys], idp)?;
        sp.service_name = u.label.clone();
        if u.link_from != "NameID" {
            sp.requested_attributes = vec![u.link_from.clone()];
        }
        sps.insert(u.id.clone(), sp);
    }
    Ok(sps)
}

async fn idp_metadata(u: &UpstreamConfig, outbound: &dyn Outbound) -> anyhow::Result<String> {
    let source = u.idp_metadata.as_deref().unwrap_or_default();
    if !source.contains("://") {
        return std::fs::read_to_string(source).with_context(|| format!("upstream '{}': cannot read {source}", u.id));
    }
    match outbound.get_text(source).await {
        Ok((200, body)) => Ok(body),
        Ok((status, _)) => bail!("upstream '{}': {source} answered HTTP {status}", u.id),
        Err(e) => bail!("upstream '{}': {source} does not answer: {e}", u.id),
    }
}

async fn key_pair(
    u: &UpstreamConfig,
    db: &DatabaseConnection,
    cipher: &KeyCipher,
    clock: &dyn Clock,
) -> anyhow::Result<KeyPair> {
    if let (Some(key), Some(cert)) = (&u.sp_key_file, &u.sp_cert_file) {
        let key = std::fs::read(key).with_context(|| format!("upstream '{}': cannot read {key}", u.id))?;
        let cert = std::fs::read(cert).with_context(|| format!("upstream '{}': cannot read {cert}", u.id))?;
        return Ok(KeyPair::from_pem(&key, &cert)?);
    }
    let now = clock.now();
    let row = format!("saml-sp:{}", u.id);
    let make = || {
        let pair = KeyPair::generate(&format!("idp SAML SP {}", u.id), now)
            .map_err(|e| idp_core::Error::invalid("upstreams (saml)", e.to_string()))?;
        let (key, cert) = pair.to_pem().map_err(|e| idp_core::Error::invalid("upstreams (saml)", e.to_string()))?;
        let pem = format!("{}{}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&cert));
        cipher.seal(&row, &Secret::new(pem))
    };
    let stored = idp_store::db::server_secret_with(db, &row, now, make).await?;
    let (pem, _) = cipher.open(&row, stored.expose())?;
    let pem = pem.expose().as_bytes();
    Ok(KeyPair::from_pem(pem, pem)?)
}
