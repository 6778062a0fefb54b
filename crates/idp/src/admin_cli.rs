//! `idp admin …`: the school help desk's roles and the export of its audit
//! trail (docs/accounts.md).

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;
use std::sync::Arc;

use idp_core::account::{Login, parse_uai};
use idp_core::admin::{AuditEntry, Scope};
use idp_core::clock::Clock;

use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make an active account an administrator of schools (--school) or of every school (--global).
    Grant {
        login: String,
        /// UAI of a school the account administers (repeat for several).
        #[arg(long = "school", value_name = "UAI", required_unless_present = "global")]
        schools: Vec<String>,
        /// Administer every school (an operator).
        #[arg(long, conflicts_with = "schools")]
        global: bool,
    },
    /// Remove the account's administrator role.
    Revoke { login: String },
    /// List the administrators: login, schools (`*` for every school), date of the grant.
    List,
    /// Print the help desk's audit trail (CSV with a header, or JSON lines).
    Audit {
        /// Only entries from this instant on (RFC 3339, or a date YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// `csv` (default) or `json` (one object per line).
        #[arg(long, default_value = "csv")]
        format: String,
    },
}

/// Runs an `idp admin` command.
pub async fn admin(cmd: AdminCommand, stores: &Stores, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let console = stores.console(clock);
    match cmd {
        AdminCommand::Grant { login, schools, global } => {
            let scope = match global {
                true => Scope::Global,
                false => Scope::Schools(schools.iter().map(|s| parse_uai(s)).collect::<Result<_, _>>()?),
            };
            let described = match &scope {
                Scope::Global => "every school".to_owned(),
                Scope::Schools(uais) => uais.join(", "),
            };
            let account = console.grant(&Login::parse(&login)?, scope).await?;
            eprintln!("'{}' administers {described}", account.login);
            Ok(())
        }
        AdminCommand::Revoke { login } => {
            if !console.revoke(&Login::parse(&login)?).await? {
                bail!("'{login}' is not an administrator");
            }
            eprintln!("'{login}' is no longer an administrator");
            Ok(())
        }
        AdminCommand::List => {
            for grant in stores.admins.list().await? {
                println!("{}\t{}\t{}", grant.login, grant.scope.describe(), grant.granted_at.to_rfc3339());
            }
            Ok(())
        }
        AdminCommand::Audit { since, format } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let entries = stores.admins.audit_since(since).await?;
            match format.as_str() {
                "csv" => print_csv(&entries),
                "json" => {
                    for e in &entries {
                        println!("{}", serde_json::to_string(e)?);
                    }
                    Ok(())
                }
                other => bail!("unknown format '{other}': csv or json"),
            }
        }
    }
}

fn parse_since(value: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .with_context(|| format!("--since '{value}': an RFC 3339 instant or a date YYYY-MM-DD expected"))?;
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

fn print_csv(entries: &[AuditEntry]) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_writer(std::io::stdout());
    out.write_record(["at", "actor", "action", "target", "source", "detail"])?;
    for e in entries {
        out.write_record([&e.at.to_rfc3339(), &e.actor, &e.action, &e.target, &e.source, &e.detail])?;
    }
    out.flush()?;
    Ok(())
}
