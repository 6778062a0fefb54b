//! `idp saml-sp add|list|remove`: the SAML service providers of our
//! identity provider. An SP is registered from its metadata (a file, or an
//! `https://` URL read now): its entity id and assertion consumers come
//! from there, never from a request.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::sync::Arc;

use idp_core::access::{AccessRule, ServicePolicy};
use idp_core::account::parse_name;
use idp_core::clock::Clock;
use idp_core::ports::Outbound;
use idp_core::saml_sp::{NameIdKind, SamlSp};
use idp_core::service::ServiceId;
use idp_saml::metadata::SpDescriptor;

use crate::settings::Settings;
use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum SamlSpCommand {
    /// Register a service provider from its metadata.
    Add(SamlSpArgs),
    /// List the registered service providers (one line each, tab-separated).
    List,
    /// Remove a service provider.
    Remove { id: String },
}

#[derive(Debug, Args)]
pub struct SamlSpArgs {
    /// The operator's name for the SP (letters, digits, . _ -).
    pub id: String,
    /// The SP's metadata: a file, or an https:// URL.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub metadata: String,
    /// The name shown on pages; the id when not given.
    #[arg(long)]
    pub name: Option<String>,
    /// An attribute released to the SP (repeat), as for `service add`:
    /// IDO=pseudonym, UAI=school, PRO=ENTPersonProfils.
    #[arg(long = "attribute", value_name = "RULE")]
    pub attributes: Vec<String>,
    /// The NameID the SP gets.
    #[arg(long, value_name = "transient|persistent|unspecified", default_value = "transient")]
    pub name_id: String,
    /// Encrypt assertions to the SP's certificate.
    #[arg(long)]
    pub encrypt: bool,
    /// Refuse unsigned AuthnRequests, even when the metadata does not ask.
    #[arg(long)]
    pub require_signed_requests: bool,
    /// Allow logins started by us (/saml/idp/sso?sp=ID).
    #[arg(long)]
    pub idp_initiated: bool,
    /// Only these profiles get assertions (repeat). Default: all.
    #[arg(long = "allow-profile", value_name = "PROFILE")]
    pub allow_profiles: Vec<String>,
    /// Only people of these schools get assertions (repeat). Default: all.
    #[arg(long = "allow-school", value_name = "UAI")]
    pub allow_schools: Vec<String>,
}

pub async fn saml_sp(
    cmd: SamlSpCommand,
    stores: &Stores,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    match cmd {
        SamlSpCommand::Add(args) => {
            let metadata = read_metadata(&args.metadata, settings).await?;
            let descriptor = SpDescriptor::parse(&metadata, None, clock.now())
                .with_context(|| format!("--metadata {}: not usable SP metadata", args.metadata))?;
            let sp = SamlSp {
                id: ServiceId::parse(&args.id)?,
                name: parse_name("name", args.name.as_deref().unwrap_or(&args.id))?,
                entity_id: descriptor.entity_id.clone(),
                metadata,
                name_id: NameIdKind::parse(&args.name_id)?,
                encrypt: args.encrypt,
                require_signed_requests: args.require_signed_requests,
                idp_initiated: args.idp_initiated,
                attributes: crate::cli::parse_attributes(&args.attributes)?,
                policy: ServicePolicy {
                    access: AccessRule::parse(&args.allow_profiles, &args.allow_schools)?,
                    ..ServicePolicy::default()
                },
            };
            // The login service's id must be valid too (`saml.<id>`).
            sp.login_service("https://check.invalid")?;
            if sp.encrypt && descriptor.encryption_certs.is_empty() && descriptor.signing_certs.is_empty() {
                bail!("--encrypt: the metadata of '{}' has no certificate to encrypt to", args.id);
            }
            stores.saml_sps.add(sp).await?;
            eprintln!("SAML SP '{}' registered (entity id {})", args.id, descriptor.entity_id);
        }
        SamlSpCommand::List => {
            for sp in stores.saml_sps.list().await? {
                println!(
                    "{}\t{}\t{}\tname-id={}\tencrypt={}\tattributes={}\t{}",
                    sp.id,
                    sp.name,
                    sp.entity_id,
                    sp.name_id.as_str(),
                    sp.encrypt,
                    sp.attributes.join(","),
                    crate::service_rules::describe(&sp.policy)
                );
            }
        }
        SamlSpCommand::Remove { id } => {
            if !stores.saml_sps.remove(&ServiceId::parse(&id)?).await? {
                bail!("no SAML SP '{id}'");
            }
            eprintln!("SAML SP '{id}' removed");
        }
    }
    Ok(())
}

async fn read_metadata(source: &str, settings: &Settings) -> anyhow::Result<String> {
    if !source.contains("://") {
        return std::fs::read_to_string(source).with_context(|| format!("cannot read {source}"));
    }
    if !source.starts_with("https://") {
        bail!("--metadata {source}: a file or an https:// URL");
    }
    let outbound = crate::app::outbound(settings)?;
    match outbound.get_text(source).await {
        Ok((200, body)) => Ok(body),
        Ok((status, _)) => bail!("{source} answered HTTP {status}"),
        Err(e) => bail!("{source} does not answer: {e}"),
    }
}
