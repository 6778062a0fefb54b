//! `idp`: single sign-on for school digital workspaces.
//!
//! `idp serve` runs the server (with no configuration: http://127.0.0.1:8080,
//! SQLite in ./data); `idp --help` lists the administration commands.

use clap::Parser;
use std::process::ExitCode;

use idp::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain of causes, on standard error only.
            eprintln!("idp: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
