//! The SAML upstreams' service providers and our SAML identity provider's
//! keys, built at start. For the upstreams: the identity
//! provider's metadata (a file, or an `https://` URL fetched now) and our
//! key pair (the configured PEM files, or one generated at the first start
//! and kept in the database, so every node signs and decrypts with it,
//! sealed under the key-encryption key as the OIDC signing keys are).
//!
//! The identity providers' metadata is read again every hour while the
//! server runs ([`spawn_metadata_refresh`]): an IdP that rolls its keys or
//! moves its endpoints is followed without a restart. A refresh that fails
//! (unreachable, unreadable, invalid, already expired) keeps the metadata
//! in use, and says so in the log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use idp_core::clock::Clock;
use idp_core::ports::Outbound;
use idp_core::secret::Secret;
use idp_core::upstream::{UpstreamConfig, UpstreamKind};
use idp_protocol::upstream::SamlUpstreams;
use idp_saml::idp::IdentityProvider;
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
        let idp = read_idp_metadata(u, outbound, clock).await?;
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

/// The identity provider's metadata of `u`, read and parsed (valid now).
async fn read_idp_metadata(
    u: &UpstreamConfig,
    outbound: &dyn Outbound,
    clock: &dyn Clock,
) -> anyhow::Result<IdpMetadata> {
    let xml = idp_metadata(u, outbound).await?;
    IdpMetadata::parse(&xml, None, clock.now()).with_context(|| format!("upstream '{}': idp_metadata", u.id))
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
    generated_pair(db, cipher, clock, &format!("saml-sp:{}", u.id), &format!("idp SAML SP {}", u.id)).await
}

/// The row of `server_secrets` holding the generated identity provider key.
const IDP_KEY_ROW: &str = "saml-idp";

/// Our SAML identity provider under `public_base`: the configured key pair
/// (`[saml_idp] key_file, cert_file`, with the `next_*` pair published
/// ahead of a rollover), or the one generated at the first start and kept
/// sealed in the database, the same on every node.
pub async fn identity_provider(
    settings: &crate::settings::SamlIdpSettings,
    db: &DatabaseConnection,
    cipher: &KeyCipher,
    clock: &dyn Clock,
    public_base: &str,
) -> anyhow::Result<IdentityProvider> {
    let read = |key: &std::path::Path, cert: &std::path::Path| -> anyhow::Result<KeyPair> {
        let k = std::fs::read(key).with_context(|| format!("saml_idp: cannot read {}", key.display()))?;
        let c = std::fs::read(cert).with_context(|| format!("saml_idp: cannot read {}", cert.display()))?;
        KeyPair::from_pem(&k, &c).with_context(|| format!("saml_idp: {} and {}", key.display(), cert.display()))
    };
    let key = match (&settings.key_file, &settings.cert_file) {
        (Some(k), Some(c)) => read(k, c)?,
        (None, None) => generated_pair(db, cipher, clock, IDP_KEY_ROW, "idp SAML IdP").await?,
        _ => bail!("saml_idp: key_file and cert_file go together"),
    };
    let next = match (&settings.next_key_file, &settings.next_cert_file) {
        (Some(k), Some(c)) => Some(read(k, c)?),
        (None, None) => None,
        _ => bail!("saml_idp: next_key_file and next_cert_file go together"),
    };
    Ok(IdentityProvider::new(public_base, key, next))
}

/// A key pair made once and kept in `server_secrets` under `row`, sealed.
async fn generated_pair(
    db: &DatabaseConnection,
    cipher: &KeyCipher,
    clock: &dyn Clock,
    row: &str,
    common_name: &str,
) -> anyhow::Result<KeyPair> {
    let now = clock.now();
    let make = || {
        let pair = KeyPair::generate(common_name, now)
            .map_err(|e| idp_core::Error::invalid("saml key pair", e.to_string()))?;
        let (key, cert) = pair.to_pem().map_err(|e| idp_core::Error::invalid("saml key pair", e.to_string()))?;
        let pem = format!("{}{}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&cert));
        cipher.seal(row, &Secret::new(pem))
    };
    let stored = idp_store::db::server_secret_with(db, row, now, make).await?;
    let (pem, _) = cipher.open(row, stored.expose())?;
    let pem = pem.expose().as_bytes();
    Ok(KeyPair::from_pem(pem, pem)?)
}

/// How often the identity providers' metadata is read again.
const METADATA_REFRESH: Duration = Duration::from_secs(3600);

/// Reads every SAML upstream's metadata again and puts what parses and is
/// still valid in place; the upstreams whose metadata could not be
/// refreshed are returned (and logged), theirs stays as it was.
pub async fn refresh_metadata(
    upstreams: &[UpstreamConfig],
    outbound: &dyn Outbound,
    clock: &dyn Clock,
    saml: &SamlUpstreams,
) -> Vec<String> {
    let mut failed = Vec::new();
    for u in upstreams.iter().filter(|u| u.kind == UpstreamKind::Saml) {
        match read_idp_metadata(u, outbound, clock).await {
            Ok(idp) => {
                saml.replace_idp_metadata(&u.id, idp);
            }
            Err(e) => {
                tracing::warn!(upstream = %u.id, error = %format!("{e:#}"), "SAML metadata not refreshed: the previous one stays in use");
                failed.push(u.id.clone());
            }
        }
    }
    failed
}

/// Refreshes the metadata every hour in the background (nothing to do
/// without SAML upstreams).
pub fn spawn_metadata_refresh(
    upstreams: Vec<UpstreamConfig>,
    outbound: Arc<dyn Outbound>,
    clock: Arc<dyn Clock>,
    saml: Arc<SamlUpstreams>,
) {
    if !upstreams.iter().any(|u| u.kind == UpstreamKind::Saml) {
        return;
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(METADATA_REFRESH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            refresh_metadata(&upstreams, outbound.as_ref(), clock.as_ref(), &saml).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use idp_core::clock::SystemClock;
    use idp_core::ports::{HttpAnswer, HttpCall};
    use idp_store::ephemeral::MemoryEphemeral;

    /// Metadata files only: no HTTP is made.
    struct NoHttp;

    #[async_trait::async_trait]
    impl Outbound for NoHttp {
        fn post_form_in_background(&self, _: String, _: Vec<(String, String)>) {}
        async fn get_status(&self, _: &str) -> idp_core::Result<u16> {
            Err(idp_core::Error::invalid("url", "no HTTP in this test"))
        }
        async fn get_text(&self, _: &str) -> idp_core::Result<(u16, String)> {
            Err(idp_core::Error::invalid("url", "no HTTP in this test"))
        }
        async fn call(&self, _: HttpCall) -> idp_core::Result<HttpAnswer> {
            Err(idp_core::Error::invalid("url", "no HTTP in this test"))
        }
    }

    fn metadata(idp: &KeyPair, valid_until: Option<chrono::DateTime<chrono::Utc>>) -> String {
        let valid = valid_until.map(|t| format!(r#" validUntil="{}""#, idp_saml::format_time(t))).unwrap_or_default();
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.test"{valid}><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
            idp.cert_base64().unwrap()
        )
    }

    fn signing_cert(saml: &SamlUpstreams) -> Vec<u8> {
        saml.idp_metadata("educonnect").unwrap().signing_certs[0].to_der().unwrap()
    }

    #[tokio::test]
    async fn metadata_read_again_replaces_the_keys_and_a_bad_one_keeps_the_previous() {
        let now = chrono::Utc::now();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("idp.xml");
        let (old, new) = (KeyPair::generate("idp", now).unwrap(), KeyPair::generate("idp-next", now).unwrap());
        std::fs::write(&file, metadata(&old, None)).unwrap();
        let upstreams = vec![UpstreamConfig::saml(
            "educonnect",
            "ÉduConnect",
            file.to_str().unwrap(),
            ("FrEduCtRefId", "ENTPersonJointure"),
        )];
        let idp = IdpMetadata::parse(&metadata(&old, None), None, now).unwrap();
        let sp = ServiceProvider::new(
            "https://ent.example.fr",
            "educonnect",
            vec![KeyPair::generate("sp", now).unwrap()],
            idp,
        )
        .unwrap();
        let saml = SamlUpstreams::new(
            BTreeMap::from([("educonnect".to_owned(), sp)]),
            Arc::new(MemoryEphemeral::default()),
            Arc::new(SystemClock),
        );
        let before = signing_cert(&saml);

        // The IdP rolled its key: the new certificate is used from now on.
        std::fs::write(&file, metadata(&new, None)).unwrap();
        assert!(refresh_metadata(&upstreams, &NoHttp, &SystemClock, &saml).await.is_empty());
        let rolled = signing_cert(&saml);
        assert_ne!(rolled, before);

        // Unreadable, then already expired: refused, the rolled one stays.
        std::fs::write(&file, "<md:EntityDescriptor").unwrap();
        assert_eq!(refresh_metadata(&upstreams, &NoHttp, &SystemClock, &saml).await, ["educonnect"]);
        std::fs::write(&file, metadata(&old, Some(now - chrono::TimeDelta::hours(1)))).unwrap();
        assert_eq!(refresh_metadata(&upstreams, &NoHttp, &SystemClock, &saml).await, ["educonnect"]);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(refresh_metadata(&upstreams, &NoHttp, &SystemClock, &saml).await, ["educonnect"]);
        assert_eq!(signing_cert(&saml), rolled);
    }
}
