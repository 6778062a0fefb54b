//! The command line (docs/operations.md). Where a command prints a secret
//! (provisional password), standard output is exactly that value on one
//! line; every other message goes to standard error.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use idp_core::account::{Account, AccountState, Login, NewAccount, Profile, parse_email, parse_name, parse_uai};
use idp_core::clock::{Clock, SystemClock};
use idp_core::release::ReleaseRule;
use idp_core::secret::{Secret, provisional_password};
use idp_core::service::{Service, ServiceId, UrlPattern};
use idp_core::upstream::UpstreamKind;

use crate::app::Application;
use crate::settings::Settings;
use crate::stores::Stores;

#[derive(Debug, Parser)]
#[command(name = "idp", version, about = "Single sign-on (CAS) for school digital workspaces")]
pub struct Cli {
    /// Configuration file (TOML); IDP_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "IDP_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to FILE (a new file), even while serving.
    Backup {
        /// Where the copy goes; it must not exist.
        file: PathBuf,
    },
    /// Exit 0 when the server answers 200 on /readyz (URL, or /readyz on the bind address).
    Healthcheck {
        /// http://host:port[/path] of the node itself; /readyz when no path is given.
        url: Option<String>,
    },
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage the registered CAS services.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Manage the SAML service providers of the identity provider (the GAR...).
    #[command(subcommand, name = "saml-sp")]
    SamlSp(crate::saml_sp_cli::SamlSpCommand),
    /// Manage the registered OpenID Connect clients.
    #[command(subcommand)]
    Client(crate::clients_cli::ClientCommand),
    /// Manage the OpenID Connect signing keys.
    #[command(subcommand)]
    Keys(crate::clients_cli::KeysCommand),
    /// The upstream identity providers of the configuration.
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// The school help desk: administrators of schools and the audit trail of the console.
    #[command(subcommand)]
    Admin(crate::admin_cli::AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// List the upstreams (one line each, tab-separated) and whether each answers.
    List,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its provisional password (or nothing with --active).
    Create(CreateAccount),
    /// Create or update accounts from a CSV file; prints `login,provisional_password` of the created ones.
    Import {
        /// CSV file: login,profile,given_name,family_name[,email,provisional_password,school] and
        /// optional SDET columns (ENTPersonJointure, ENTPersonProfils, ENTEleveClasses, …; several
        /// values separated by |)
        file: PathBuf,
    },
    /// Put the account back to `reset`, end its sessions, print a new provisional password.
    Reset { login: String },
    /// Unlock a locked account.
    Unlock { login: String },
    /// Disable the account and end its sessions.
    Disable { login: String },
    /// Enable a disabled account.
    Enable { login: String },
    /// Delete the account.
    Delete { login: String },
    /// Show the account (never its passwords).
    Show { login: String },
    /// Remove the account's second factors (TOTP, recovery codes, passkeys)
    /// after checking the person's identity; they are told by e-mail.
    MfaReset { login: String },
}

#[derive(Debug, Args)]
pub struct CreateAccount {
    pub login: String,
    /// eleve, parent, personnel or autre.
    #[arg(long)]
    pub profile: String,
    #[arg(long)]
    pub given_name: String,
    #[arg(long)]
    pub family_name: String,
    #[arg(long)]
    pub email: Option<String>,
    /// UAI of a school (repeat for several).
    #[arg(long = "school", value_name = "UAI")]
    pub schools: Vec<String>,
    /// An ENT directory attribute, `NAME=VALUE` (repeat; several values of
    /// one attribute separated by `|`), e.g. `--ent ENTEleveClasses='0370001A$3A'`.
    /// The names and formats are those of `account import` (docs/services.md).
    #[arg(long = "ent", value_name = "NAME=VALUE")]
    pub ent: Vec<String>,
    /// The provisional password (generated when not given). Other users of
    /// the machine can read a command line: prefer --provisional-password-stdin.
    #[arg(long, conflicts_with = "active")]
    pub provisional_password: Option<String>,
    /// Read the provisional password from standard input (one line).
    #[arg(long, conflicts_with_all = ["active", "provisional_password"])]
    pub provisional_password_stdin: bool,
    /// Create an active account (password read from standard input).
    #[arg(long, requires = "password_stdin")]
    pub active: bool,
    /// Read the password from standard input (with --active).
    #[arg(long, requires = "active")]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register a service.
    Add(ServiceArgs),
    /// Change a registered service (options given replace the old values).
    Update(ServiceUpdate),
    /// List the registered services.
    List,
    /// Remove a service.
    Remove { id: String },
    /// Register the services of Apereo CAS JSON definitions (a file, or a
    /// folder of `*.json`); all or nothing, existing ids are updated.
    Import { path: std::path::PathBuf },
    /// Write every service as an Apereo CAS JSON definition into a folder.
    Export { folder: std::path::PathBuf },
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    pub id: String,
    #[arg(long)]
    pub name: String,
    /// Regular expression the whole service URL must match.
    #[arg(long)]
    pub url_pattern: String,
    /// An attribute released to the service (repeat for several): NAME, or
    /// RELEASED=SOURCE to rename (nom=family_name), with :first (one value)
    /// or :numeric (National_1..4) after the source.
    #[arg(long = "attribute", value_name = "RULE")]
    pub attributes: Vec<String>,
    /// Where single logout messages are POSTed.
    #[arg(long)]
    pub logout_url: Option<String>,
    /// Lower values are matched first.
    #[arg(long, default_value_t = 0)]
    pub order: i32,
    /// Access rules, single sign-on, user identifier, proxy rights.
    #[command(flatten)]
    pub policy: crate::service_rules::PolicyArgs,
}

#[derive(Debug, Args)]
pub struct ServiceUpdate {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub url_pattern: Option<String>,
    /// Replace the released attributes (repeat for several).
    #[arg(long = "attribute", value_name = "NAME")]
    pub attributes: Vec<String>,
    /// Release no attribute at all.
    #[arg(long, conflicts_with = "attributes")]
    pub no_attributes: bool,
    #[arg(long)]
    pub logout_url: Option<String>,
    /// Remove the logout URL.
    #[arg(long, conflicts_with = "logout_url")]
    pub no_logout_url: bool,
    #[arg(long)]
    pub order: Option<i32>,
    #[command(flatten)]
    pub policy: crate::service_rules::PolicyUpdateArgs,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref()).map_err(anyhow::Error::msg)?;
    init_logging(&settings, matches!(cli.command, Command::Serve));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Serve => serve(&settings, clock).await,
        Command::Backup { file } => backup(&settings, &file).await,
        Command::Healthcheck { url } => {
            crate::healthcheck::check(&crate::healthcheck::target(url.as_deref(), &settings)?).await
        }
        Command::Migrate => {
            Stores::open(&settings, clock).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Account(cmd) => account(cmd, &Stores::open(&settings, clock.clone()).await?, &settings, clock).await,
        Command::Service(cmd) => service(cmd, &Stores::open(&settings, clock).await?).await,
        Command::SamlSp(cmd) => {
            let stores = Stores::open(&settings, clock.clone()).await?;
            crate::saml_sp_cli::saml_sp(cmd, &stores, &settings, clock).await
        }
        Command::Client(cmd) => {
            crate::clients_cli::client(cmd, &Stores::open(&settings, clock.clone()).await?, clock).await
        }
        Command::Keys(cmd) => {
            crate::clients_cli::keys(cmd, &Stores::open(&settings, clock.clone()).await?, &settings, clock).await
        }
        Command::Upstream(UpstreamCommand::List) => upstream_list(&settings, clock).await,
        Command::Admin(cmd) => {
            crate::admin_cli::admin(cmd, &Stores::open(&settings, clock.clone()).await?, clock).await
        }
    }
}

fn init_logging(settings: &Settings, serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IDP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours for a terminal only: not in a log file, journald or a container log.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if settings.log_format == "json" { builder.json().try_init() } else { builder.try_init() };
}

async fn serve(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let app = Application::build(settings, clock).await?;
    // Plain lines for a person at a terminal; structured events for a log
    // shipper (log_format = "json").
    for line in app.report() {
        if settings.log_format == "json" {
            tracing::info!("{line}");
        } else {
            eprintln!("idp: {line}");
        }
    }
    let drain = settings.server.shutdown_drain_secs;
    app.run_until(async move {
        let signal = stop_signal().await;
        tracing::info!("{signal}: shutting down (drain: {drain} s at most)");
    })
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// `idp backup FILE`: SQLite only (PostgreSQL has pg_dump).
async fn backup(settings: &Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let url = settings.database_url();
    let Some(source) = idp_store::db::sqlite_path(&url) else {
        bail!("idp backup copies a SQLite database; for PostgreSQL use pg_dump (see docs/operations.md)")
    };
    if !std::path::Path::new(&source).is_file() {
        bail!("no SQLite database at {source}");
    }
    let db = idp_store::db::connect(&url).await.with_context(|| format!("cannot open the database {source}"))?;
    idp_store::db::backup_sqlite(&db, file)
        .await
        .with_context(|| format!("cannot copy the database to {}", file.display()))?;
    let (key, _) = settings.key_encryption_key_file();
    eprintln!(
        "database {source} copied to {}; keep the key-encryption key {} too, apart from it",
        file.display(),
        key.display()
    );
    Ok(())
}

/// Waits for SIGTERM (a container runtime, systemd) or SIGINT (Ctrl-C) and
/// names it.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

async fn account(
    cmd: AccountCommand,
    stores: &Stores,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let find = |login: String| async move {
        let parsed = Login::parse(&login)?;
        match stores.accounts.find_by_login(&parsed).await? {
            Some(a) => Ok(a),
            None => bail!("no account '{login}'"),
        }
    };
    match cmd {
        AccountCommand::Create(args) => create_account(args, stores, settings).await,
        AccountCommand::Import { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let report = crate::import::import(&bytes, stores).await?;
            print!("{}", report.csv);
            eprintln!(
                "{} account(s) created, {} updated, {} unchanged",
                report.created, report.updated, report.unchanged
            );
            Ok(())
        }
        AccountCommand::Reset { login } => {
            let password = provisional_password()?;
            let hash = stores.hashing.hash(Secret::new(password.clone())).await?;
            let a = change_account(stores, &login, |a| a.reset(hash.clone(), clock.now())).await?;
            println!("{password}");
            eprintln!("account '{}' reset; {}", a.login, end_sessions(settings, stores, clock, a.id).await?);
            Ok(())
        }
        AccountCommand::MfaReset { login } => {
            let a = find(login).await?;
            let mfa = crate::app::cli_second_factor(settings, stores, clock)?;
            if mfa.remove(&a, idp_core::second_factor::Remover::HelpDesk("idp".into())).await? {
                eprintln!("second factor of '{}' removed", a.login);
            } else {
                eprintln!("account '{}' has no second factor", a.login);
            }
            Ok(())
        }
        AccountCommand::Unlock { login } => {
            let a = change_account(stores, &login, |a| a.unlock(clock.now())).await?;
            idp_core::throttle::Throttle::new(stores.limiter.clone(), settings.throttle)
                .forget_login(idp_core::throttle::ThrottleKind::Password, a.login.as_str())
                .await?;
            eprintln!("account '{}' is {}", a.login, a.state.as_str());
            Ok(())
        }
        AccountCommand::Disable { login } => {
            let a = change_account(stores, &login, |a| a.disable(clock.now())).await?;
            eprintln!("account '{}' disabled; {}", a.login, end_sessions(settings, stores, clock, a.id).await?);
            Ok(())
        }
        AccountCommand::Enable { login } => {
            let a = change_account(stores, &login, |a| a.enable(clock.now())).await?;
            eprintln!("account '{}' is {}", a.login, a.state.as_str());
            Ok(())
        }
        AccountCommand::Delete { login } => {
            let parsed = Login::parse(&login)?;
            if !stores.accounts.delete(&parsed).await? {
                bail!("no account '{login}'");
            }
            eprintln!("account '{login}' deleted");
            Ok(())
        }
        AccountCommand::Show { login } => {
            let a = find(login).await?;
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            println!("login: {}", a.login);
            println!("state: {}", a.state.as_str());
            println!("profile: {} ({})", a.profile.as_str(), idp_core::ent::profiles_of(&a).join(" "));
            println!("given_name: {}", a.given_name);
            println!("family_name: {}", a.family_name);
            println!("email: {}", opt(a.email.clone()));
            println!("schools: {}", a.schools.join(" "));
            println!("cgu_version: {}", opt(a.cgu_version.clone()));
            let extras = stores.security.get(a.id).await?;
            println!("email_validated: {}", if extras.email_is_verified(&a) { "yes" } else { "no" });
            println!("secret_questions: {}", if extras.questions.is_some() { "yes" } else { "no" });
            for (name, values) in &a.attributes {
                println!("{name}: {}", values.join(" | "));
            }
            println!("created_at: {}", a.created_at.to_rfc3339());
            println!("last_login_at: {}", opt(a.last_login_at.map(|t| t.to_rfc3339())));
            Ok(())
        }
    }
}

/// Reads the account, applies `change` and writes it. When the row changed
/// between the read and the write (the person logged in or changed their
/// password meanwhile), the write is refused: read it again and apply the
/// change once more, so that the operator's change lands on the latest row.
async fn change_account(stores: &Stores, login: &str, change: impl Fn(&mut Account)) -> anyhow::Result<Account> {
    let parsed = Login::parse(login)?;
    let mut attempts = 0;
    loop {
        let Some(mut account) = stores.accounts.find_by_login(&parsed).await? else { bail!("no account '{login}'") };
        change(&mut account);
        match stores.accounts.update(&account).await {
            Err(idp_core::Error::Conflict(_)) if attempts == 0 => attempts += 1,
            written => return written.map(|()| account).map_err(Into::into),
        }
    }
}

/// Ends the sessions of an account after a reset or a disable. The account's
/// `sessions_valid_after` already makes every node refuse them; with Redis,
/// the CLI also reaches them and ends them now, with single logout to the
/// services (CAS and OIDC back-channel), waiting for those messages to leave.
async fn end_sessions(
    settings: &Settings,
    stores: &Stores,
    clock: Arc<dyn Clock>,
    account_id: i64,
) -> anyhow::Result<String> {
    if settings.redis_url.is_none() {
        return Ok("its sessions are refused from now on (in-memory sessions get no single logout from the CLI)".into());
    }
    let outbound = Arc::new(crate::app::outbound(settings)?);
    let (cas, _, _, _) = crate::app::build_cas(settings, stores, clock, outbound.clone()).await?;
    let ended = cas.end_sessions_of(account_id, None).await?;
    let timeout = std::time::Duration::from_secs(settings.outbound_timeout_seconds);
    outbound.drain(idp_store::outbound::longest_send(timeout) + std::time::Duration::from_secs(1)).await;
    Ok(format!("{ended} session(s) ended, with single logout to their services"))
}

async fn create_account(args: CreateAccount, stores: &Stores, settings: &Settings) -> anyhow::Result<()> {
    let mut new = NewAccount {
        login: Login::parse(&args.login)?,
        profile: Profile::parse(&args.profile)?,
        given_name: parse_name("given name", &args.given_name)?,
        family_name: parse_name("family name", &args.family_name)?,
        email: args.email.as_deref().map(parse_email).transpose()?,
        schools: args.schools.iter().map(|s| parse_uai(s)).collect::<Result<_, _>>()?,
        state: AccountState::Provisioned,
        password_hash: None,
        provisional_hash: None,
        cgu_version: None,
        attributes: parse_ent(&args.ent)?,
    };
    if args.active {
        let password = stdin_line("the password")?;
        if password.chars().count() < 8 {
            bail!("the password must have at least 8 characters");
        }
        new.state = AccountState::Active;
        new.password_hash = Some(stores.hashing.hash(Secret::new(password)).await?);
        // An operator-made account has accepted the current terms of use.
        new.cgu_version = Some(settings.cgu_version.clone());
        let a = stores.accounts.create(new).await?;
        eprintln!("account '{}' created, active", a.login);
    } else {
        let given = match args.provisional_password_stdin {
            true => Some(stdin_line("the provisional password")?),
            false => args.provisional_password,
        };
        if given.as_ref().is_some_and(|p| p.chars().count() < 8) {
            bail!("the provisional password must have at least 8 characters");
        }
        let (a, password) =
            idp_core::lifecycle::provision(stores.accounts.as_ref(), stores.hashing.as_ref(), new, given).await?;
        println!("{password}");
        eprintln!("account '{}' created, to be activated", a.login);
    }
    Ok(())
}

/// A secret given on standard input, without its line ending.
fn stdin_line(what: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).with_context(|| format!("cannot read {what} from standard input"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// `--ent NAME=VALUE` options as directory attributes, checked as the
/// import checks its SDET columns.
fn parse_ent(options: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, Vec<String>>> {
    let mut out = std::collections::BTreeMap::new();
    for option in options {
        let Some((name, value)) = option.split_once('=') else { bail!("--ent '{option}': NAME=VALUE expected") };
        let Some(name) = idp_core::ent::canonical_name(name.trim()) else {
            bail!("--ent: unknown attribute '{name}' (known: {})", idp_core::ent::KNOWN.join(", "))
        };
        let values = idp_core::ent::parse_values(name, value)?;
        out.entry(name.to_owned()).or_insert_with(Vec::new).extend(values);
    }
    Ok(out)
}

/// Parses a URL pattern, warning on standard error when its host part is
/// not spelled out.
fn parse_pattern(source: &str) -> anyhow::Result<UrlPattern> {
    let pattern = UrlPattern::parse(source)?;
    if let Some(why) = pattern.host_warning() {
        eprintln!("warning: the URL pattern '{source}' may match other hosts: {why}");
    }
    Ok(pattern)
}

fn parse_logout_url(raw: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(raw).with_context(|| format!("invalid logout URL '{raw}'"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("the logout URL must be http or https");
    }
    Ok(url)
}

/// Checks release rules and keeps their canonical text, without repeats.
pub(crate) fn parse_attributes(rules: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for r in rules {
        let rule = ReleaseRule::parse(r)?;
        if !idp_core::attributes::is_known_source(&rule.source) {
            bail!(
                "--attribute {r}: unknown attribute '{}' (known: {}, or an ENT directory attribute such as {})",
                rule.source,
                idp_core::attributes::BUILT_IN.join(", "),
                idp_core::ent::KNOWN.join(", ")
            );
        }
        let r = rule.spec();
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// `upstream list`: id, kind, URL, label, and whether the upstream answers
/// (a CAS login page with any HTTP status but a 5xx, an OpenID discovery
/// document), one line each; the ones that do not answer are named again
/// on standard error.
async fn upstream_list(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let outbound: Arc<dyn idp_core::ports::Outbound> = Arc::new(crate::app::outbound(settings)?);
    let mut silent = Vec::new();
    for u in &settings.upstreams {
        let url = match u.kind {
            UpstreamKind::Cas => u.cas_base().map(|b| b.to_string()).unwrap_or_default(),
            _ => u.issuer.clone().unwrap_or_default(),
        };
        let answer = match idp_protocol::upstream::probe(u, outbound.clone(), clock.clone()).await {
            Ok(answer) => answer,
            Err(answer) => {
                silent.push(u.id.clone());
                answer
            }
        };
        let kind = format!("{:?}", u.kind).to_lowercase();
        println!("{}\t{kind}\t{url}\t{}\t{answer}", u.id, u.label);
    }
    if !silent.is_empty() {
        eprintln!("not answering: {}", silent.join(", "));
    }
    Ok(())
}

/// `service import`: every file read and checked before anything is written.
async fn import_apereo(path: &std::path::Path, stores: &Stores) -> anyhow::Result<()> {
    let files = crate::apereo::files(path)?;
    if files.is_empty() {
        bail!("no *.json file in {}", path.display());
    }
    let services =
        files.iter().map(|f| crate::apereo::read(f, parse_attributes)).collect::<anyhow::Result<Vec<Service>>>()?;
    for service in services {
        let id = service.id.as_str().to_owned();
        if let Some(w) = service.url_pattern.host_warning() {
            eprintln!("warning: the URL pattern of '{id}': {w}");
        }
        if stores.services.get(&service.id).await?.is_some() {
            stores.services.update(service).await?;
            eprintln!("service '{id}' updated");
        } else {
            stores.services.add(service).await?;
            eprintln!("service '{id}' registered");
        }
    }
    Ok(())
}

/// `service export`: one `<id>.json` per service.
async fn export_apereo(folder: &std::path::Path, stores: &Stores) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    for (position, service) in stores.services.list().await?.iter().enumerate() {
        let number = crate::apereo::number(service, position);
        let file = folder.join(format!("{}.json", service.id.as_str()));
        let json = serde_json::to_string_pretty(&crate::apereo::write(service, number))?;
        std::fs::write(&file, json).with_context(|| format!("cannot write {}", file.display()))?;
        eprintln!("{}", file.display());
    }
    Ok(())
}

async fn service(cmd: ServiceCommand, stores: &Stores) -> anyhow::Result<()> {
    match cmd {
        ServiceCommand::Import { path } => import_apereo(&path, stores).await?,
        ServiceCommand::Export { folder } => export_apereo(&folder, stores).await?,
        ServiceCommand::Add(args) => {
            let service = Service {
                id: ServiceId::parse(&args.id)?,
                name: parse_name("name", &args.name)?,
                url_pattern: parse_pattern(&args.url_pattern)?,
                attributes: parse_attributes(&args.attributes)?,
                logout_url: args.logout_url.as_deref().map(parse_logout_url).transpose()?,
                evaluation_order: args.order,
                policy: args.policy.policy()?,
            };
            stores.services.add(service).await?;
            eprintln!("service '{}' registered", args.id);
        }
        ServiceCommand::Update(args) => {
            let id = ServiceId::parse(&args.id)?;
            let Some(mut s) = stores.services.get(&id).await? else { bail!("no service '{}'", args.id) };
            if let Some(name) = &args.name {
                s.name = parse_name("name", name)?;
            }
            if let Some(p) = &args.url_pattern {
                s.url_pattern = parse_pattern(p)?;
            }
            if !args.attributes.is_empty() {
                s.attributes = parse_attributes(&args.attributes)?;
            }
            if args.no_attributes {
                s.attributes.clear();
            }
            if let Some(u) = &args.logout_url {
                s.logout_url = Some(parse_logout_url(u)?);
            }
            if args.no_logout_url {
                s.logout_url = None;
            }
            if let Some(o) = args.order {
                s.evaluation_order = o;
            }
            s.policy = args.policy.apply(s.policy)?;
            stores.services.update(s).await?;
            eprintln!("service '{}' updated", args.id);
        }
        ServiceCommand::List => {
            for s in stores.services.list().await? {
                println!(
                    "{}\t{}\t{}\torder={}\tattributes={}\tlogout={}\t{}",
                    s.id,
                    s.name,
                    s.url_pattern.as_str(),
                    s.evaluation_order,
                    s.attributes.join(","),
                    s.logout_url.as_ref().map(|u| u.to_string()).unwrap_or_else(|| "-".into()),
                    crate::service_rules::describe(&s.policy)
                );
            }
        }
        ServiceCommand::Remove { id } => {
            if !stores.services.remove(&ServiceId::parse(&id)?).await? {
                bail!("no service '{id}'");
            }
            eprintln!("service '{id}' removed");
        }
    }
    Ok(())
}
