//! Database connection, migrations, and the deployment secrets the server
//! makes itself.

use chrono::{DateTime, Utc};
use std::time::Duration;

use idp_core::secret::{Secret, random_token};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::OnConflict;
use sea_orm::sqlx::{self, sqlite::SqliteJournalMode};
use sea_orm::{
    ActiveValue::Set, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait,
};

use crate::entities::server_secret;
use crate::storage;

/// Connects to `url` (`sqlite://path?mode=rwc`, `sqlite::memory:`,
/// `postgres://…`). For a SQLite file, creates its folder and the file
/// itself readable by its owner only (SQLite gives its `-wal` and `-shm`
/// files the same mode), and uses WAL with a 5 s busy timeout so that the
/// CLI can write while servers read.
pub async fn connect(url: &str) -> idp_core::Result<DatabaseConnection> {
    if let Some(path) = sqlite_path(url) {
        let path = std::path::Path::new(&path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| storage(format!("cannot create {}: {e}", dir.display())))?;
        }
        match crate::at_rest::private_file(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(storage(format!("cannot create {}: {e}", path.display()))),
        }
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

/// The key of the PostgreSQL advisory lock held while migrating (`idp_migr`
/// in ASCII).
const MIGRATION_LOCK: i64 = 0x6964_705f_6d69_6772;

/// Applies the pending migrations. On PostgreSQL, under an advisory lock:
/// nodes (pods) starting at once migrate one after the other, and the
/// later ones find nothing left to do. SQLite serialises writers itself.
pub async fn migrate(db: &DatabaseConnection) -> idp_core::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await.map_err(storage);
    }
    // A session-level lock on a connection of its own, held while the pool's
    // other connections migrate; closing that connection releases it even
    // when the unlock fails.
    let mut lock = db.get_postgres_connection_pool().acquire().await.map_err(storage)?;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *lock).await.map_err(storage)?;
    let migrated = Migrator::up(db, None).await.map_err(storage);
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *lock).await;
    let _ = lock.close().await;
    migrated
}

/// Writes a consistent copy of the SQLite database into `target`, a new file
/// made readable by its owner only, while servers may keep using the
/// database: `VACUUM INTO` reads it in one transaction.
pub async fn backup_sqlite(db: &DatabaseConnection, target: &std::path::Path) -> idp_core::Result<()> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Err(idp_core::Error::invalid("database_url", "a copy with VACUUM INTO is for SQLite only"));
    }
    let Some(path) = target.to_str() else {
        return Err(idp_core::Error::invalid("backup file", format!("{}: not UTF-8", target.display())));
    };
    crate::at_rest::private_file(target).map_err(|e| storage(format!("cannot create {}: {e}", target.display())))?;
    let copied = db.execute_unprepared(&format!("VACUUM INTO '{}'", path.replace('\'', "''"))).await;
    if copied.is_err() {
        let _ = std::fs::remove_file(target);
    }
    copied.map(|_| ()).map_err(storage)
}

/// Whether the database answers (readiness).
pub async fn ping(db: &DatabaseConnection) -> idp_core::Result<()> {
    db.ping().await.map_err(storage)
}

/// The deployment secret `name` (43 characters of `[A-Za-z0-9]`, 256 bits):
/// the stored one, else a new one stored now. Nodes starting at once all
/// end with the first one written, since an insert never replaces a row.
pub async fn server_secret(db: &DatabaseConnection, name: &str, now: DateTime<Utc>) -> idp_core::Result<Secret> {
    server_secret_with(db, name, now, || random_token(43)).await
}

/// The deployment secret `name`: the stored one, else the one `make`
/// gives, stored now (the first node to store wins, as above).
pub async fn server_secret_with(
    db: &DatabaseConnection,
    name: &str,
    now: DateTime<Utc>,
    make: impl FnOnce() -> idp_core::Result<String>,
) -> idp_core::Result<Secret> {
    let find = || async { server_secret::Entity::find_by_id(name.to_owned()).one(db).await.map_err(storage) };
    if let Some(row) = find().await? {
        return Ok(Secret::new(row.value));
    }
    let row = server_secret::ActiveModel { name: Set(name.to_owned()), value: Set(make()?), created_at: Set(now) };
    server_secret::Entity::insert(row)
        .on_conflict(OnConflict::column(server_secret::Column::Name).do_nothing().to_owned())
        .exec_without_returning(db)
        .await
        .map_err(storage)?;
    match find().await? {
        Some(row) => Ok(Secret::new(row.value)),
        None => Err(storage(format!("the secret '{name}' was not stored"))),
    }
}

/// The file path of a SQLite URL, if it is one.
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    // A database in memory has no file to create.
    if rest.starts_with(":memory:") || rest.split('?').nth(1).is_some_and(|q| q.split('&').any(|p| p == "mode=memory"))
    {
        return None;
    }
    Some(rest.split('?').next().unwrap_or(rest).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_secret_is_made_once_and_kept() {
        let db = connect("sqlite::memory:").await.unwrap();
        migrate(&db).await.unwrap();
        let first = server_secret(&db, "decoy_key", Utc::now()).await.unwrap();
        assert_eq!(first.expose().len(), 43);
        assert_eq!(server_secret(&db, "decoy_key", Utc::now()).await.unwrap().expose(), first.expose());
        assert_ne!(server_secret(&db, "other", Utc::now()).await.unwrap().expose(), first.expose());
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://./data/idp.db?mode=rwc").as_deref(), Some("./data/idp.db"));
        assert_eq!(sqlite_path("sqlite:/tmp/x.db").as_deref(), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("sqlite:file:shared?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
