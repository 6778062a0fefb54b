//! Whether the database changed since a per-node cache last looked, without
//! a database round trip on the hot path.
//!
//! Every change to a cached table bumps its row of `registry_versions`
//! (`services`, `accounts`) in the same transaction, from a server or the
//! CLI. A cache keeps the version its copy was made at, and asks
//! [`Changes::version`] before serving from memory.
//!
//! On a SQLite file (WAL mode, as [`crate::db::connect`] opens it), SQLite
//! itself publishes every commit in the header of the shared-memory file
//! `<database>-shm` (the "WAL-index header": the last frame, the salts and
//! a checksum, written before the commit returns), which every connection
//! of every process reads before a transaction. [`Changes`] reads the same
//! 48 bytes with one `pread` (about a microsecond, no thread hop): while they
//! have not moved, no process committed anything and the versions read last
//! are current, so the CLI's changes are seen by the very next request. When
//! they moved (any commit, a checkpoint), the version rows are read again,
//! once. `PRAGMA data_version` would tell the same, but through sqlx's
//! worker thread, which is the round trip this module exists to avoid. The
//! header layout is SQLite's documented WAL-index format
//! (<https://sqlite.org/walformat.html>), stable since WAL exists (3.7.0).
//!
//! When the shared-memory file goes away (every connection closed, SQLite
//! removes it) or is replaced, its inode changes or the read fails: the
//! versions are read from the database, as they are on PostgreSQL and in
//! memory databases, where every [`Changes::version`] reads the version rows
//! (one primary-key read for all the caches of a lookup).

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use idp_core::Result;

use crate::entities::registry_version::{self, Entity as RegistryVersions};
use crate::memory::lock;
use crate::storage;

/// The first copy of the WAL-index header, in bytes.
const HEADER: usize = 48;

/// A file's (device, inode).
type Identity = (u64, u64);

/// The version rows as last read, and what the shared-memory header was
/// then.
#[derive(Default)]
struct Seen {
    header: Option<([u8; HEADER], Identity)>,
    versions: Vec<(String, i64)>,
}

/// The change watch of one database, shared by its caches.
pub struct Changes {
    db: DatabaseConnection,
    /// `<database>-shm`, for a SQLite file.
    shm: Option<PathBuf>,
    /// An open handle on it, with its (device, inode).
    file: Mutex<Option<Arc<(File, Identity)>>>,
    seen: Mutex<Seen>,
    /// How many times the version rows were read (for the tests).
    reads: AtomicU64,
}

impl Changes {
    /// The watch of `db`, opened from `url` (a SQLite file is watched
    /// through its shared-memory file).
    pub fn new(db: DatabaseConnection, url: &str) -> Self {
        let shm = crate::db::sqlite_path(url).map(|p| PathBuf::from(format!("{p}-shm")));
        Changes { db, shm, file: Mutex::new(None), seen: Mutex::new(Seen::default()), reads: AtomicU64::new(0) }
    }

    /// The current version of the registry `name` (0 when it has no row).
    pub async fn version(&self, name: &str) -> Result<i64> {
        let header = self.header();
        if let Some(header) = header {
            let seen = lock(&self.seen);
            if seen.header == Some(header)
                && let Some((_, v)) = seen.versions.iter().find(|(n, _)| n == name)
            {
                return Ok(*v);
            }
        }
        // Read after the header: a commit in between moves the header again,
        // so the next call reads the rows again rather than keep stale ones.
        self.reads.fetch_add(1, Ordering::Relaxed);
        let rows = RegistryVersions::find().all(&self.db).await.map_err(storage)?;
        let versions: Vec<(String, i64)> = rows.into_iter().map(|r| (r.name, r.version)).collect();
        let version = versions.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(0);
        *lock(&self.seen) = Seen { header, versions };
        Ok(version)
    }

    /// The WAL-index header and the identity of the file it was read from;
    /// `None` when there is no such file to read (then every lookup reads
    /// the version rows).
    fn header(&self) -> Option<([u8; HEADER], Identity)> {
        let path = self.shm.as_ref()?;
        // A stat and a pread of a page-cache page: a couple of microseconds,
        // fine on the runtime's threads.
        let identity = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))?;
        let opened = {
            let mut file = lock(&self.file);
            if file.as_ref().is_none_or(|open| open.1 != identity) {
                // The identity of what was opened: if the file was replaced
                // between the stat and the open, the next call opens it again.
                *file = File::open(path).ok().and_then(|f| {
                    let m = f.metadata().ok()?;
                    Some(Arc::new((f, (m.dev(), m.ino()))))
                });
            }
            file.clone()?
        };
        let mut buf = [0u8; HEADER];
        opened.0.read_exact_at(&mut buf, 0).ok()?;
        Some((buf, opened.1))
    }
}

/// Bumps the version of the registry `name`, within the transaction of the
/// change (its commit is what the watch sees).
pub(crate) async fn bump(conn: &impl ConnectionTrait, name: &str) -> Result<()> {
    RegistryVersions::update_many()
        .col_expr(registry_version::Column::Version, Expr::col(registry_version::Column::Version).add(1))
        .filter(registry_version::Column::Name.eq(name))
        .exec(conn)
        .await
        .map_err(storage)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::SqlAccounts;
    use chrono::Utc;
    use idp_core::account::{AccountState, Login, NewAccount, Profile};
    use idp_core::clock::SystemClock;
    use idp_core::ports::AccountRepository;

    /// Two processes on one SQLite file, as a server and the CLI are: two
    /// pools, two watches.
    async fn two_nodes(dir: &std::path::Path) -> ((SqlAccounts, Arc<Changes>), SqlAccounts) {
        let url = format!("sqlite://{}?mode=rwc", dir.join("idp.db").display());
        let open = || async {
            let db = crate::db::connect(&url).await.unwrap();
            crate::db::migrate(&db).await.unwrap();
            let changes = Arc::new(Changes::new(db.clone(), &url));
            (SqlAccounts::new(db, Arc::new(SystemClock), changes.clone()), changes)
        };
        let server = open().await;
        let (cli, _) = open().await;
        (server, cli)
    }

    fn new_account(login: &str) -> NewAccount {
        NewAccount {
            login: Login::parse(login).unwrap(),
            profile: Profile::Eleve,
            given_name: "Camille".into(),
            family_name: "Martin".into(),
            email: None,
            schools: Vec::new(),
            state: AccountState::Active,
            password_hash: None,
            provisional_hash: None,
            cgu_version: None,
            attributes: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_version_rows_are_read_again_only_after_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let ((server, changes), cli) = two_nodes(dir.path()).await;
        let id = cli.create(new_account("c.martin")).await.unwrap().id;
        assert_eq!(server.find_by_id(id).await.unwrap().unwrap().state, AccountState::Active);
        let reads = changes.reads.load(Ordering::Relaxed);
        for _ in 0..10 {
            assert_eq!(server.find_by_id(id).await.unwrap().unwrap().state, AccountState::Active);
        }
        assert_eq!(changes.reads.load(Ordering::Relaxed), reads, "nothing committed: served from memory");

        // The CLI disables the account: the server's next read sees it.
        let mut account = cli.find_by_id(id).await.unwrap().unwrap();
        account.disable(Utc::now());
        cli.update(&account).await.unwrap();
        assert_eq!(server.find_by_id(id).await.unwrap().unwrap().state, AccountState::Disabled);
        assert_eq!(changes.reads.load(Ordering::Relaxed), reads + 1, "one read of the versions");
        cli.delete(&account.login).await.unwrap();
        assert!(server.find_by_id(id).await.unwrap().is_none(), "deleted by the other process");
    }

    #[tokio::test]
    async fn a_database_in_memory_reads_the_versions_at_every_lookup() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let changes = Changes::new(db, "sqlite::memory:");
        assert_eq!(changes.version("accounts").await.unwrap(), 0);
        assert_eq!(changes.version("services").await.unwrap(), 0);
        assert_eq!(changes.reads.load(Ordering::Relaxed), 2);
    }
}
