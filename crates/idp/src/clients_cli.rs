//! `idp client ...` (OIDC clients) and `idp keys ...` (signing keys).
//! `client add` prints the secret alone on standard output (the output rule
//! of the CLI: a secret alone on stdout, messages on stderr).

use anyhow::bail;
use clap::{Args, Subcommand};
use std::sync::Arc;

use idp_core::account::parse_name;
use idp_core::clock::Clock;
use idp_core::oidc::{ClientId, DEFAULT_SCOPES, OidcClient, SubjectType, parse_redirect_uri, parse_scope};
use idp_protocol::oidc::keys::Keys;
use idp_protocol::oidc::new_client_secret;

use crate::settings::Settings;
use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its secret (nothing for a public client).
    Add(ClientArgs),
    /// Change a client: options given replace the old values; --new-secret
    /// prints a new secret (the old one stops working at once).
    Update(ClientUpdate),
    /// List the registered clients.
    List,
    /// Remove a client.
    Remove { id: String },
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    pub id: String,
    /// A redirect URI, matched exactly (repeat for several).
    #[arg(long = "redirect-uri", value_name = "URI", required = true)]
    pub redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE S256 required).
    #[arg(long)]
    pub public: bool,
    #[command(flatten)]
    pub shown: ClientShown,
    /// Where the back-channel logout token is POSTed.
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// Ask the person's consent (third-party applications).
    #[arg(long)]
    pub require_consent: bool,
    /// The `sub` the client gets: `public` (one opaque value per account,
    /// shared by the public clients) or `pairwise` (its own per account).
    #[arg(long, value_name = "public|pairwise", default_value = "public")]
    pub subject: String,
}

/// The options of `client add` that `client update` replaces when given.
#[derive(Debug, Args)]
pub struct ClientShown {
    /// The name shown to people (consent page); the id when not given.
    #[arg(long)]
    pub name: Option<String>,
    /// An allowed scope (repeat); default: openid profile email ent. On
    /// update, the scopes given replace the current ones.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Where RP-initiated logout may return (repeat for several). On
    /// update, they replace the current ones.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ClientUpdate {
    pub id: String,
    /// Replace the redirect URIs (repeat for several).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    #[command(flatten)]
    pub shown: ClientShown,
    #[arg(long, value_name = "URI", conflicts_with = "no_backchannel_logout_uri")]
    pub backchannel_logout_uri: Option<String>,
    /// Stop sending back-channel logout tokens.
    #[arg(long)]
    pub no_backchannel_logout_uri: bool,
    /// Ask (true) or stop asking (false) the person's consent.
    #[arg(long, value_name = "BOOL")]
    pub require_consent: Option<bool>,
    /// Change the `sub` the client gets (`public` or `pairwise`): the
    /// client's existing users will come with a new `sub`.
    #[arg(long, value_name = "public|pairwise")]
    pub subject: Option<String>,
    /// Generate a new secret and print it (confidential clients).
    #[arg(long)]
    pub new_secret: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate new signing keys; the old ones stay published until their tokens expire.
    Rotate,
    /// List the signing keys.
    List,
}

pub async fn client(cmd: ClientCommand, stores: &Stores, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Add(args) => {
            let id = ClientId::parse(&args.id)?;
            let uris = |v: &[String]| v.iter().map(|u| parse_redirect_uri(u)).collect::<Result<Vec<_>, _>>();
            let mut scopes: Vec<String> = Vec::new();
            for s in &args.shown.scopes {
                let s = parse_scope(s)?;
                if !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
            if scopes.is_empty() {
                scopes = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
            }
            let (secret, hash) = if args.public {
                (None, None)
            } else {
                let (secret, hash) = new_client_secret()?;
                (Some(secret), Some(hash))
            };
            let client = OidcClient {
                name: parse_name("name", args.shown.name.as_deref().unwrap_or(id.as_str()))?,
                id,
                secret_hash: hash,
                redirect_uris: uris(&args.redirect_uris)?,
                post_logout_redirect_uris: uris(&args.shown.post_logout_redirect_uris)?,
                backchannel_logout_uri: args.backchannel_logout_uri.as_deref().map(parse_redirect_uri).transpose()?,
                scopes,
                require_consent: args.require_consent,
                subject_type: SubjectType::parse(&args.subject)?,
                created_at: clock.now(),
            };
            stores.clients.add(client).await?;
            match secret {
                Some(secret) => {
                    println!("{secret}");
                    eprintln!("client '{}' registered (confidential); its secret is printed once", args.id);
                }
                None => eprintln!("client '{}' registered (public, PKCE required)", args.id),
            }
        }
        ClientCommand::Update(args) => {
            let id = ClientId::parse(&args.id)?;
            let Some(mut c) = stores.clients.get(&id).await? else { bail!("no client '{}'", args.id) };
            let uris = |v: &[String]| v.iter().map(|u| parse_redirect_uri(u)).collect::<Result<Vec<_>, _>>();
            if !args.redirect_uris.is_empty() {
                c.redirect_uris = uris(&args.redirect_uris)?;
            }
            if !args.shown.post_logout_redirect_uris.is_empty() {
                c.post_logout_redirect_uris = uris(&args.shown.post_logout_redirect_uris)?;
            }
            if let Some(name) = &args.shown.name {
                c.name = parse_name("name", name)?;
            }
            if !args.shown.scopes.is_empty() {
                c.scopes.clear();
                for s in &args.shown.scopes {
                    let s = parse_scope(s)?;
                    if !c.scopes.contains(&s) {
                        c.scopes.push(s);
                    }
                }
            }
            if let Some(uri) = &args.backchannel_logout_uri {
                c.backchannel_logout_uri = Some(parse_redirect_uri(uri)?);
            }
            if args.no_backchannel_logout_uri {
                c.backchannel_logout_uri = None;
            }
            if let Some(subject) = args.subject.as_deref() {
                c.subject_type = SubjectType::parse(subject)?;
            }
            if let Some(consent) = args.require_consent {
                c.require_consent = consent;
            }
            let secret = if args.new_secret {
                if c.is_public() {
                    bail!("client '{}' is public: it has no secret", args.id);
                }
                let (secret, hash) = new_client_secret()?;
                c.secret_hash = Some(hash);
                Some(secret)
            } else {
                None
            };
            stores.clients.update(c).await?;
            if let Some(secret) = secret {
                println!("{secret}");
            }
            eprintln!("client '{}' updated", args.id);
        }
        ClientCommand::List => {
            for c in stores.clients.list().await? {
                println!(
                    "{}\t{}\t{}\tredirect={}\tscopes={}\tconsent={}\tsubject={}",
                    c.id,
                    c.name,
                    if c.is_public() { "public" } else { "confidential" },
                    c.redirect_uris.join(","),
                    c.scopes.join(","),
                    c.require_consent,
                    c.subject_type.as_str()
                );
            }
        }
        ClientCommand::Remove { id } => {
            if !stores.clients.remove(&ClientId::parse(&id)?).await? {
                bail!("no client '{id}'");
            }
            eprintln!("client '{id}' removed");
        }
    }
    Ok(())
}

pub async fn keys(cmd: KeysCommand, stores: &Stores, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let keys = Keys::new(stores.keys.clone(), clock, settings.oidc.longest_signed());
    match cmd {
        KeysCommand::Rotate => {
            for kid in keys.rotate().await? {
                eprintln!("new signing key {kid}");
            }
        }
        KeysCommand::List => {
            for k in stores.keys.list().await? {
                let retired = k.retired_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into());
                println!("{}\t{}\tcreated={}\tretired={}", k.kid, k.alg, k.created_at.to_rfc3339(), retired);
            }
        }
    }
    Ok(())
}
