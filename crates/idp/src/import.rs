//! `idp account import FILE.csv`: creates new accounts and updates existing
//! ones from a school export, all or nothing. The format, the checks and
//! the transaction are [`idp_core::import`]'s (the help desk console's
//! import shares them); this module writes the created accounts'
//! provisional passwords as CSV.
//!
//! The output cells that a spreadsheet would take for a formula get a
//! leading `'` (see `as_text`).

use anyhow::Context;

use idp_core::admin::Scope;
use idp_core::import;

use crate::stores::Stores;

/// What an import did.
pub struct ImportReport {
    /// `login,provisional_password` of the created accounts, with a header.
    pub csv: String,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Checks every row, then writes them all in one transaction.
pub async fn import(bytes: &[u8], stores: &Stores) -> anyhow::Result<ImportReport> {
    let line = |e: import::ImportError| anyhow::anyhow!("line {}: {}", e.line, e.problem);
    let rows = import::parse(bytes).map_err(line)?;
    let existing = import::existing(stores.accounts.as_ref(), &rows).await?;
    let plan = import::plan(rows, &existing, &Scope::Global).map_err(line)?;
    let applied = import::apply(&plan, stores.accounts.as_ref(), stores.hashing.as_ref())
        .await
        .context("nothing was imported")?;
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["login", "provisional_password"])?;
    for c in &applied.created {
        out.write_record([as_text(c.login.as_str()).as_bytes(), as_text(&c.provisional_password).as_bytes()])?;
    }
    let csv = String::from_utf8(out.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
    Ok(ImportReport { csv, created: applied.created.len(), updated: applied.updated, unchanged: applied.unchanged })
}

/// A cell of the output as a spreadsheet must read it: text. A cell
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return would be
/// taken for a formula (which can run commands or leak the sheet), so it
/// gets a leading `'`, the spreadsheets' mark of a text cell.
fn as_text(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}").into() } else { cell.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_written_as_text() {
        for cell in ["=1+1", "+33", "-2", "@SUM(A1)", "\t=x"] {
            assert_eq!(as_text(cell), format!("'{cell}"));
        }
        assert_eq!(as_text("Provisoire-42"), "Provisoire-42");
        assert_eq!(as_text(""), "");
    }
}
