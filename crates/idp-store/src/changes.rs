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
//! versions are read from the database, as they are in memory databases,
//! where every [`Changes::version`] reads the version rows (one primary-key
//! read for all the caches of a lookup).
//!
//! On PostgreSQL, every bump also sends `NOTIFY idp_registry_versions` in its
//! transaction (PostgreSQL delivers it at the commit, to every node's
//! listening connection). A task of each node holds one connection in
//! `LISTEN` and counts the notifications in a generation number: while the
//! generation has not moved, nothing was committed and the versions read
//! last are current; the next request after a commit reads them once. The
//! window in which a node can serve a copy older than a commit is the
//! notification's trip (a fraction of a millisecond on a local network),
//! where polling the rows every few milliseconds would be several. While
//! the listening connection is down (PostgreSQL restarted, network), the
//! rows are read at every lookup, and the generation moves when it is back,
//! since notifications sent in between are lost.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, Statement};
use tokio::sync::Notify;

use idp_core::Result;

use crate::entities::registry_version::{self, Entity as RegistryVersions};
use crate::memory::lock;
use crate::storage;

/// The first copy of the WAL-index header, in bytes.
const HEADER: usize = 48;

/// A file's (device, inode).
type Identity = (u64, u64);

/// The PostgreSQL channel every bump notifies.
const CHANNEL: &str = "idp_registry_versions";

/// How long the listening task waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);

/// What says that nothing was committed since the versions were read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// SQLite's WAL-index header, with the identity of its file.
    Header([u8; HEADER], Identity),
    /// The count of PostgreSQL notifications (and reconnections).
    Generation(u64),
}

/// The version rows as last read, and the mark of that moment.
#[derive(Default)]
struct Seen {
    mark: Option<Mark>,
    versions: Vec<(String, i64)>,
}

/// What the listening task shares with the watch.
#[derive(Default)]
struct Listening {
    /// Moves on every notification and every (re)connection.
    generation: AtomicU64,
    /// The connection is in `LISTEN`: the generation can be trusted.
    live: AtomicBool,
    /// Tells the task to end (the watch was dropped).
    stop: Notify,
}

/// The change watch of one database, shared by its caches.
pub struct Changes {
    db: DatabaseConnection,
    /// `<database>-shm`, for a SQLite file.
    shm: Option<PathBuf>,
    /// An open handle on it, with its (device, inode).
    file: Mutex<Option<Arc<(File, Identity)>>>,
    seen: Mutex<Seen>,
    /// The notifications of a PostgreSQL database.
    listening: Option<Arc<Listening>>,
    /// How many times the version rows were read (for the tests).
    reads: AtomicU64,
}

impl Changes {
    /// The watch of `db`, opened from `url` (a SQLite file is watched
    /// through its shared-memory file).
    /// A PostgreSQL database is listened to by a task of the current tokio
    /// runtime (without one, its version rows are read at every lookup).
    pub fn new(db: DatabaseConnection, url: &str) -> Self {
        let shm = crate::db::sqlite_path(url).map(|p| PathBuf::from(format!("{p}-shm")));
        let listening = (db.get_database_backend() == DbBackend::Postgres)
            .then(|| tokio::runtime::Handle::try_current().ok())
            .flatten()
            .map(|runtime| {
                let listening = Arc::new(Listening::default());
                runtime.spawn(listen(db.get_postgres_connection_pool().clone(), listening.clone()));
                listening
            });
        Changes {
            db,
            shm,
            file: Mutex::new(None),
            seen: Mutex::new(Seen::default()),
            listening,
            reads: AtomicU64::new(0),
        }
    }

    /// The current version of the registry `name` (0 when it has no row).
    pub async fn version(&self, name: &str) -> Result<i64> {
        let mark = self.mark();
        if let Some(mark) = mark {
            let seen = lock(&self.seen);
            if seen.mark == Some(mark)
                && let Some((_, v)) = seen.versions.iter().find(|(n, _)| n == name)
            {
                return Ok(*v);
            }
        }
        // Read after the mark: a commit in between moves the mark again, so
        // the next call reads the rows again rather than keep stale ones.
        self.reads.fetch_add(1, Ordering::Relaxed);
        let rows = RegistryVersions::find().all(&self.db).await.map_err(storage)?;
        let versions: Vec<(String, i64)> = rows.into_iter().map(|r| (r.name, r.version)).collect();
        let version = versions.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(0);
        *lock(&self.seen) = Seen { mark, versions };
        Ok(version)
    }

    /// Whether a PostgreSQL database's notifications are being received.
    pub fn listening(&self) -> bool {
        self.listening.as_ref().is_some_and(|l| l.live.load(Ordering::Acquire))
    }

    /// What says, now, whether anything was committed since `Seen::mark`;
    /// `None` when nothing can (then every lookup reads the version rows).
    fn mark(&self) -> Option<Mark> {
        if let Some(listening) = &self.listening {
            // The generation is read before `live`: a disconnection moves
            // the generation after clearing `live`.
            let generation = listening.generation.load(Ordering::Acquire);
            return listening.live.load(Ordering::Acquire).then_some(Mark::Generation(generation));
        }
        self.header().map(|(header, identity)| Mark::Header(header, identity))
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
    if conn.get_database_backend() == DbBackend::Postgres {
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), name.into()],
        );
        conn.query_one_raw(notify).await.map_err(storage)?;
    }
    Ok(())
}

impl Drop for Changes {
    fn drop(&mut self) {
        if let Some(listening) = &self.listening {
            listening.stop.notify_one();
        }
    }
}

/// The listening task of a PostgreSQL database: one connection of `pool`
/// in `LISTEN`, connected again after a loss, until the watch is dropped.
async fn listen(pool: PgPool, listening: Arc<Listening>) {
    loop {
        tokio::select! {
            () = listening.stop.notified() => return,
            () = listen_once(&pool, &listening) => {}
        }
        tokio::select! {
            () = listening.stop.notified() => return,
            () = tokio::time::sleep(RECONNECT) => {}
        }
    }
}

/// One listening connection, until it is lost.
async fn listen_once(pool: &PgPool, listening: &Listening) {
    let listener = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok::<_, sea_orm::sqlx::Error>(listener)
    };
    let mut listener = match listener.await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen to the registry versions");
            return;
        }
    };
    // Notifications sent while no connection listened are lost: the rows
    // are read again.
    listening.generation.fetch_add(1, Ordering::AcqRel);
    listening.live.store(true, Ordering::Release);
    // `None` or an error: the connection was lost.
    while let Ok(Some(_)) = listener.try_recv().await {
        listening.generation.fetch_add(1, Ordering::AcqRel);
    }
    listening.live.store(false, Ordering::Release);
    listening.generation.fetch_add(1, Ordering::AcqRel);
    tracing::warn!("the connection listening to the registry versions was lost; reading them at every lookup");
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

    /// `IDP_TEST_DATABASE_URL`, or `None` (and why) when it is not set.
    fn postgres_url() -> Option<String> {
        let url = std::env::var("IDP_TEST_DATABASE_URL").ok().filter(|v| !v.trim().is_empty());
        if url.is_none() {
            assert_ne!(std::env::var("IDP_TEST_REQUIRE_SERVICES").as_deref(), Ok("1"), "IDP_TEST_DATABASE_URL not set");
            eprintln!("skipped: IDP_TEST_DATABASE_URL not set (PostgreSQL tests need it)");
        }
        url
    }

    /// Waits (at most five seconds) for `done`, which another process's
    /// commit makes true through PostgreSQL's notification.
    async fn eventually<F: std::future::Future<Output = bool>>(mut done: impl FnMut() -> F) -> bool {
        for _ in 0..500 {
            if done().await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_postgresql_the_version_rows_are_read_again_only_after_a_notification() {
        let Some(admin_url) = postgres_url() else { return };
        let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
        let name = format!("idp_changes_{}", idp_core::secret::random_token(10).unwrap().to_lowercase());
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        let open = || async {
            let db = crate::db::connect(&url).await.unwrap();
            crate::db::migrate(&db).await.unwrap();
            let changes = Arc::new(Changes::new(db.clone(), &url));
            (SqlAccounts::new(db, Arc::new(SystemClock), changes.clone()), changes)
        };
        let (server, changes) = open().await;
        let (cli, _) = open().await;
        assert!(eventually(|| async { changes.listening() }).await, "the server listens");

        let id = cli.create(new_account("c.martin")).await.unwrap().id;
        assert!(eventually(|| async { server.find_by_id(id).await.unwrap().is_some() }).await);
        let reads = changes.reads.load(Ordering::Relaxed);
        for _ in 0..10 {
            assert_eq!(server.find_by_id(id).await.unwrap().unwrap().state, AccountState::Active);
        }
        assert_eq!(changes.reads.load(Ordering::Relaxed), reads, "nothing committed: served from memory");

        // The CLI disables the account: its commit's notification makes the
        // server read the versions again.
        let mut account = cli.find_by_id(id).await.unwrap().unwrap();
        account.disable(Utc::now());
        cli.update(&account).await.unwrap();
        let disabled = || async { server.find_by_id(id).await.unwrap().unwrap().state == AccountState::Disabled };
        assert!(eventually(disabled).await, "the server sees the change");
        assert!(changes.reads.load(Ordering::Relaxed) > reads);

        drop((server, changes, cli));
        let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
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
