//! Database connection and migrations.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

use crate::storage;

/// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite::memory:`,
/// `postgres://…`). For a SQLite file, creates its folder, and uses WAL with
/// a 5 s busy timeout so that the CLI can write while servers read.
pub async fn connect(url: &str) -> idp_core::Result<DatabaseConnection> {
    if let Some(path) = sqlite_path(url)
        && let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| storage(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal).busy_timeout(Duration::from_secs(5)).create_if_missing(true)
        });
    if url.starts_with("sqlite::memory:") {
        // Each connection to :memory: is a different database: keep one.
        options.max_connections(1).min_connections(1);
    }
    Database::connect(options).await.map_err(storage)
}

/// Applies the pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> idp_core::Result<()> {
    Migrator::up(db, None).await.map_err(storage)
}

/// Whether the database answers (readiness).
pub async fn ping(db: &DatabaseConnection) -> idp_core::Result<()> {
    db.ping().await.map_err(storage)
}

/// The file path of a SQLite URL, if it is one.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    if rest.starts_with(":memory:") {
        return None;
    }
    Some(rest.split('?').next().unwrap_or(rest).to_owned())
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://./data/idp.db?mode=rwc").as_deref(), Some("./data/idp.db"));
        assert_eq!(sqlite_path("sqlite:/tmp/x.db").as_deref(), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
