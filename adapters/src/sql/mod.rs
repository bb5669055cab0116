//! SQL storage on diesel-async: PostgreSQL (pooled) or embedded SQLite (bundled library).
//!
//! Both backends share one `table!` schema and one body per query: [`with_conn!`] expands a
//! body once per backend, so each copy is type-checked against its own connection type.
//! SQLite gets a single-connection write pool (writes serialize in-process, so no
//! `database is locked` between our own statements) and a small read pool (WAL lets reads
//! run beside the writer).

mod chat_chains;
mod conversations;
mod idempotency;
mod mailbox;
mod notifications;
mod presets;
mod rows;
mod schema;
mod sessions;
mod tls;

#[cfg(feature = "testing")]
pub(crate) use tls::establish as establish_tls;
pub use tls::{PgTls, SslMode};

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bb8::ErrorSink;

use diesel::{SqliteConnection, result::DatabaseErrorKind};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, bb8::Pool},
    sync_connection_wrapper::SyncConnectionWrapper,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures::FutureExt;
use ports::StorageError;

type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

/// Applied to every SQLite connection: WAL for concurrent readers, a busy timeout instead
/// of immediate `database is locked`, and enforced foreign keys.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// PostgreSQL connections as the URL's `sslmode` asks: plain TCP by diesel-async itself,
/// TLS through rustls.
fn pg_manager(url: &str) -> Result<AsyncDieselConnectionManager<AsyncPgConnection>, StorageError> {
    let tls = PgTls::parse(url).map_err(|e| StorageError::Unavailable(e.into()))?;
    let Some(connector) = tls
        .connector()
        .map_err(|e| StorageError::Unavailable(e.into()))?
    else {
        return Ok(AsyncDieselConnectionManager::new(url));
    };
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.custom_setup = Box::new(move |url| tls::establish(url.to_owned(), connector.clone()));
    Ok(AsyncDieselConnectionManager::new_with_config(
        tls.url, config,
    ))
}

/// Which SQL backend a `DATABASE_URL` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlTarget {
    Postgres { url: String },
    Sqlite { path: String },
}

/// Pool sizes and timeouts.
#[derive(Debug, Clone)]
pub struct SqlSettings {
    /// PostgreSQL pool size.
    pub pg_pool_size: u32,
    /// SQLite read pool size (the write pool is always one connection).
    pub sqlite_read_pool_size: u32,
    /// How long a request waits for a connection while the database cannot be reached
    /// (a connection attempt failed recently) before failing as unavailable.
    pub connection_timeout: Duration,
    /// How long a request waits for a connection while the database answers but every
    /// connection is busy (a burst of runs), before failing as unavailable.
    pub busy_timeout: Duration,
}

impl Default for SqlSettings {
    fn default() -> Self {
        Self {
            pg_pool_size: 16,
            sqlite_read_pool_size: 4,
            connection_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(30),
        }
    }
}

/// When the pools last failed to open a connection, and why. Under load a request should
/// queue for a connection; in an outage it should fail fast: this tells the two apart. The
/// reason goes into the timeout's error, so an operator reads "certificate not trusted"
/// instead of only "timed out".
#[derive(Debug, Clone, Default)]
struct Reachability(Arc<Mutex<Option<(Instant, String)>>>);

impl Reachability {
    /// Why the last attempt within `window` failed, if one did.
    fn failure_within(&self, window: Duration) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < window)
            .map(|(_, why)| why.clone())
    }
}

impl<E: std::fmt::Display> ErrorSink<E> for Reachability {
    fn sink(&self, error: E) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), error.to_string()));
    }

    fn boxed_clone(&self) -> Box<dyn ErrorSink<E>> {
        Box::new(self.clone())
    }
}

/// Counts a request as waiting for a connection until it has one or gave up (or its
/// future was dropped).
struct Waiting<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Waiting<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicU64) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

pub(crate) enum Pools {
    Pg(Pool<AsyncPgConnection>),
    Sqlite(SqlitePools),
}

/// SQLite pools by use; `with_conn!` picks one by field name (`read` or `write`).
pub(crate) struct SqlitePools {
    pub(crate) write: Pool<SqliteConn>,
    pub(crate) read: Pool<SqliteConn>,
}

/// The storage adapter: implements every storage port on one set of pools.
pub struct SqlStorage {
    pools: Pools,
    /// Requests waiting for a connection now (the `sql_pool_waiting` gauge).
    waiting: Arc<std::sync::atomic::AtomicU64>,
    reachability: Reachability,
    /// The wait for a connection while the database is unreachable.
    outage_wait: Duration,
}

/// Runs `$body` with `$c` bound to a connection of the right backend (`read` or `write`).
macro_rules! with_conn {
    ($db:expr, $mode:ident, |$c:ident| $body:expr) => {{
        match &$db.pools {
            $crate::sql::Pools::Pg(pool) => {
                let mut guard = $db.connection(pool).await?;
                let $c = &mut *guard;
                $body
            }
            $crate::sql::Pools::Sqlite(pools) => {
                let pool = &pools.$mode;
                let mut guard = $db.connection(pool).await?;
                let $c = &mut *guard;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;

impl SqlStorage {
    /// Builds the pools. Connections are opened lazily, so this succeeds while the server
    /// is down; [`SqlStorage::migrate`] is the first real contact. For SQLite the parent
    /// directory of the file is created.
    pub async fn connect(target: &SqlTarget, settings: &SqlSettings) -> Result<Self, StorageError> {
        let reachability = Reachability::default();
        let pools = match target {
            SqlTarget::Postgres { url } => {
                let manager = pg_manager(url)?;
                Pools::Pg(
                    Pool::builder()
                        .max_size(settings.pg_pool_size)
                        .connection_timeout(settings.busy_timeout)
                        .error_sink(Box::new(reachability.clone()))
                        .build_unchecked(manager),
                )
            }
            SqlTarget::Sqlite { path } => {
                if let Some(dir) = Path::new(path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| StorageError::Unavailable(Box::new(e)))?;
                }
                let pool = |size| {
                    let mut config = ManagerConfig::<SqliteConn>::default();
                    config.custom_setup = Box::new(|url| sqlite_setup(url.to_owned()).boxed());
                    // A connection to a local file does not go stale, and the check would
                    // cost every query an extra trip to the blocking pool.
                    Pool::builder()
                        .test_on_check_out(false)
                        .max_size(size)
                        .connection_timeout(settings.busy_timeout)
                        .error_sink(Box::new(reachability.clone()))
                        .build_unchecked(AsyncDieselConnectionManager::new_with_config(
                            path.clone(),
                            config,
                        ))
                };
                Pools::Sqlite(SqlitePools {
                    write: pool(1),
                    read: pool(settings.sqlite_read_pool_size.max(1)),
                })
            }
        };
        Ok(Self {
            pools,
            waiting: Arc::default(),
            reachability,
            outage_wait: settings.connection_timeout,
        })
    }

    /// A connection of `pool`: waited for as long as the busy timeout allows while the
    /// database answers, only the short connection timeout while it recently did not.
    pub(crate) async fn connection<'a, M: bb8::ManageConnection>(
        &self,
        pool: &'a bb8::Pool<M>,
    ) -> Result<bb8::PooledConnection<'a, M>, StorageError>
    where
        M::Error: std::error::Error + Send + Sync + 'static,
    {
        let waiting = Waiting::enter(&self.waiting);
        let got = if self
            .reachability
            .failure_within(self.outage_wait * 2)
            .is_some()
        {
            tokio::time::timeout(self.outage_wait, pool.get())
                .await
                .unwrap_or(Err(bb8::RunError::TimedOut))
        } else {
            pool.get().await
        };
        drop(waiting);
        got.map_err(|e| match (e, self.reachability.failure_within(self.outage_wait * 2)) {
            (bb8::RunError::TimedOut, Some(why)) => StorageError::Unavailable(
                format!("timed out waiting for a database connection; the last attempt failed: {why}")
                    .into(),
            ),
            (e, _) => pool_err(e),
        })
    }

    /// Connections handed out and requests waiting for one, now.
    pub fn pool_use(&self) -> crate::metrics::PoolUse {
        let in_use =
            |state: bb8::State| u64::from(state.connections.saturating_sub(state.idle_connections));
        crate::metrics::PoolUse {
            in_use: match &self.pools {
                Pools::Pg(pool) => in_use(pool.state()),
                Pools::Sqlite(pools) => in_use(pools.write.state()) + in_use(pools.read.state()),
            },
            waiting: std::sync::atomic::AtomicU64::load(
                &self.waiting,
                std::sync::atomic::Ordering::Relaxed,
            ),
        }
    }

    /// Applies the embedded migrations of this backend; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StorageError> {
        match &self.pools {
            Pools::Pg(pool) => {
                let conn = pool.dedicated_connection().await.map_err(unavailable)?;
                run_migrations(conn, PG_MIGRATIONS).await
            }
            Pools::Sqlite(pools) => {
                let conn = pools
                    .write
                    .dedicated_connection()
                    .await
                    .map_err(unavailable)?;
                run_migrations(conn, SQLITE_MIGRATIONS).await
            }
        }
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), StorageError> {
        with_conn!(self, read, |c| {
            diesel::sql_query("SELECT 1")
                .execute(c)
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }
}

#[async_trait::async_trait]
impl ports::Database for SqlStorage {
    async fn health(&self) -> Result<(), StorageError> {
        self.ping().await
    }
}

async fn sqlite_setup(url: String) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&url).await?;
    conn.batch_execute(SQLITE_PRAGMAS)
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

async fn run_migrations<C>(conn: C, migrations: EmbeddedMigrations) -> Result<usize, StorageError>
where
    C: AsyncConnection + Send + 'static,
    AsyncMigrationHarness<C>: MigrationHarness<C::Backend>,
{
    // The harness is synchronous and blocks on the runtime internally: keep it off the
    // async workers.
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        harness
            .run_pending_migrations(migrations)
            .map(|done| done.len())
            .map_err(StorageError::Other)
    })
    .await
    .map_err(|e| StorageError::Other(Box::new(e)))?
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StorageError {
    StorageError::Unavailable(Box::new(e))
}

pub(crate) fn pool_err<E: std::error::Error + Send + Sync + 'static>(
    e: bb8::RunError<E>,
) -> StorageError {
    match e {
        bb8::RunError::User(e) => unavailable(e),
        bb8::RunError::TimedOut => {
            StorageError::Unavailable("timed out waiting for a database connection".into())
        }
    }
}

/// Translates a diesel error; unique violations are left to the caller's context.
pub(crate) fn db_err(e: diesel::result::Error) -> StorageError {
    use diesel::result::Error;
    match e {
        Error::NotFound => StorageError::NotFound,
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => unavailable(e),
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StorageError::AlreadyExists,
        Error::DatabaseError(_, ref info) if is_busy(info.message()) => unavailable(e),
        Error::BrokenTransactionManager => unavailable(e),
        other => StorageError::Other(Box::new(other)),
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("connection closed")
}

/// Error type inside transactions: diesel errors and domain outcomes both abort (roll back).
pub(crate) struct TxError(pub StorageError);

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        Self(db_err(e))
    }
}

impl From<StorageError> for TxError {
    fn from(e: StorageError) -> Self {
        Self(e)
    }
}

/// Backend-specific statements used inside otherwise shared query bodies.
pub(crate) trait BackendExt {
    /// Serializes changes of the default preset: PostgreSQL takes a transaction-scoped
    /// advisory lock; SQLite needs nothing (its write pool is one connection).
    async fn lock_default_preset(&mut self) -> Result<(), diesel::result::Error>;

    /// Inserts one notification row per body in one statement; returns their ids (in no
    /// particular order: a statement's rows take ascending ids in the order of its values).
    async fn insert_notifications(
        &mut self,
        bodies: &[String],
    ) -> Result<Vec<i64>, diesel::result::Error>;
}

/// An id returned by a raw `RETURNING id`.
#[derive(diesel::QueryableByName)]
struct ReturnedId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

impl BackendExt for AsyncPgConnection {
    async fn lock_default_preset(&mut self) -> Result<(), diesel::result::Error> {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7243001)")
            .execute(self)
            .await
            .map(|_| ())
    }

    async fn insert_notifications(
        &mut self,
        bodies: &[String],
    ) -> Result<Vec<i64>, diesel::result::Error> {
        use diesel::ExpressionMethods;
        use schema::notifications;
        let rows: Vec<_> = bodies.iter().map(|b| notifications::body.eq(b)).collect();
        diesel::insert_into(notifications::table)
            .values(&rows)
            .returning(notifications::id)
            .get_results(self)
            .await
    }
}

impl BackendExt for SqliteConn {
    async fn lock_default_preset(&mut self) -> Result<(), diesel::result::Error> {
        Ok(())
    }

    /// Diesel's SQLite batch insert has no `RETURNING`, so the statement is written out.
    async fn insert_notifications(
        &mut self,
        bodies: &[String],
    ) -> Result<Vec<i64>, diesel::result::Error> {
        let values = vec!["(?)"; bodies.len()].join(", ");
        let mut query = diesel::sql_query(format!(
            "INSERT INTO notifications (body) VALUES {values} RETURNING id"
        ))
        .into_boxed::<diesel::sqlite::Sqlite>();
        for body in bodies {
            query = query.bind::<diesel::sql_types::Text, _>(body.as_str());
        }
        let ids: Vec<ReturnedId> = query.load(self).await?;
        Ok(ids.into_iter().map(|r| r.id).collect())
    }
}

#[cfg(test)]
mod tests {
    /// The two migration sets must describe the same schema; the only allowed difference is
    /// how each backend spells a boolean default.
    #[test]
    fn migration_sets_stay_in_step() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let list = |backend: &str| {
            let mut dirs: Vec<_> = std::fs::read_dir(root.join(backend))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            dirs.sort();
            dirs
        };
        let (pg, sqlite) = (list("postgres"), list("sqlite"));
        assert_eq!(pg, sqlite, "same migrations, same names");
        for dir in &pg {
            for file in ["up.sql", "down.sql"] {
                let read = |backend: &str| {
                    std::fs::read_to_string(root.join(backend).join(dir).join(file))
                        .unwrap()
                        .replace("DEFAULT FALSE", "DEFAULT 0")
                        // Each dialect's spelling of an id that only grows.
                        .replace("BIGSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")
                };
                assert_eq!(read("postgres"), read("sqlite"), "{dir}/{file}");
            }
        }
    }

    /// Async subagent sessions stored before their name had a column get it from their
    /// mailbox message (or a placeholder when they never posted one); agent sessions get
    /// none.
    #[test]
    fn the_subagent_name_migration_fills_in_existing_sessions() {
        use diesel::{Connection, QueryDsl, RunQueryDsl, SqliteConnection};
        use diesel_migrations::MigrationHarness;

        use super::schema::sessions;

        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.run_next_migration(super::SQLITE_MIGRATIONS).unwrap();
        for statement in [
            "INSERT INTO conversations (conversation_id, status, created_at, updated_at) \
             VALUES ('c', 'active', 1, 1)",
            "INSERT INTO sessions (session_id, conversation_id, session_type, transport, \
               spawned_by, status, created_at, updated_at) VALUES \
             ('boss', 'c', 'agent', 'sse', NULL, 'committed', 1, 1), \
             ('posted', 'c', 'async_subagent', 'stream', 'boss', 'committed', 2, 2), \
             ('silent', 'c', 'async_subagent', 'stream', 'boss', 'created', 3, 3)",
            "INSERT INTO mailbox (message_id, conversation_id, source_session_id, \
               source_type, subagent_name, created_at) \
             VALUES ('m', 'c', 'posted', 'subagent_result', 'scout', 4)",
        ] {
            diesel::sql_query(statement).execute(&mut conn).unwrap();
        }
        conn.run_pending_migrations(super::SQLITE_MIGRATIONS)
            .unwrap();
        let names: Vec<(String, Option<String>)> = sessions::table
            .select((sessions::session_id, sessions::subagent_name))
            .order(sessions::created_at)
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            names,
            [
                ("boss".to_owned(), None),
                ("posted".to_owned(), Some("scout".to_owned())),
                ("silent".to_owned(), Some("subagent".to_owned())),
            ]
        );
    }
}
