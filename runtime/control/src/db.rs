//! The control plane's database: SQLite by default, PostgreSQL for a `postgres://` URL, through
//! sqlx's `Any` driver so that one set of queries (written with `$N` parameters, which both
//! accept) serves both. Migrations are embedded and applied at start under a lock, so two
//! processes starting together apply each migration once.

use crate::ControlError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// A write transaction ([`Db::begin`]).
pub type Tx = Transaction<'static, Any>;

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A file, WAL mode, foreign keys on, `synchronous=FULL`.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Embedded migrations: version, description, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../migrations/0001_init.sql"),
    ),
    (
        2,
        "experiments and runs",
        include_str!("../migrations/0002_experiments_runs.sql"),
    ),
    (
        3,
        "manifests",
        include_str!("../migrations/0003_manifests.sql"),
    ),
    (
        4,
        "environments and execution targets",
        include_str!("../migrations/0004_environments_targets.sql"),
    ),
    (
        5,
        "run execution and tracking",
        include_str!("../migrations/0005_run_execution_tracking.sql"),
    ),
    (
        6,
        "drift monitoring",
        include_str!("../migrations/0006_monitoring.sql"),
    ),
    (
        7,
        "endpoints",
        include_str!("../migrations/0007_endpoints.sql"),
    ),
    (
        8,
        "disabled users, runtime users, image claims, quotas",
        include_str!("../migrations/0008_security.sql"),
    ),
    (
        9,
        "token parents",
        include_str!("../migrations/0009_token_parents.sql"),
    ),
    (
        10,
        "web sessions",
        include_str!("../migrations/0010_web_sessions.sql"),
    ),
];

/// An advisory lock key for migrations on PostgreSQL ("kiln" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b69_6c6e;

/// A connection pool and the backend it talks to.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects (creating a SQLite file if needed) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Db, ControlError> {
        Db::open(url, 0).await
    }

    /// [`Db::connect`] with at most `connections` connections (0: the backend's default).
    async fn open(url: &str, connections: u32) -> Result<Db, ControlError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(ControlError::Invalid(format!(
                "database URL '{}' is neither sqlite: nor postgres://",
                redact(url)
            )));
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| ControlError::Invalid(format!("database URL: {e}")))?;
        let mut pool = AnyPoolOptions::new();
        if connections == 1 {
            // A memory database lives as long as its one connection.
            pool = pool
                .idle_timeout(None)
                .max_lifetime(None)
                .min_connections(1);
        }
        let pool = pool
            // PostgreSQL allows 100 connections by default, shared by every process using it.
            .max_connections(match (connections, backend) {
                (0, Backend::Sqlite) => 8,
                (0, Backend::Postgres) => 10,
                (n, _) => n,
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // busy_timeout first: the others may wait for a lock.
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| {
                ControlError::Unavailable(format!("cannot open database {}: {e}", redact(url)))
            })?;
        let db = Db { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    /// A fresh SQLite database in memory, on one connection kept for the pool's life (a
    /// memory database is its connection's): the store's unit tests run on it.
    pub async fn memory() -> Result<Db, ControlError> {
        Db::open("sqlite::memory:", 1).await
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for reads and single-statement writes.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so concurrent writers wait for each other instead of failing with
    /// "database is locked" when a read turns into a write.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, ControlError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        };
        tx.map_err(ControlError::from)
    }

    async fn migrate(&self) -> Result<(), ControlError> {
        let mut conn = self.pool.acquire().await?;
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        conn.execute(begin).await?;
        let applied = async {
            if self.backend == Backend::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *conn)
                    .await?;
            }
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kiln_migrations (version BIGINT PRIMARY KEY, \
                 description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await?;
            let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM kiln_migrations")
                .fetch_all(&mut *conn)
                .await?;
            let mut applied = Vec::new();
            for (version, description, sql) in MIGRATIONS {
                if done.contains(version) {
                    continue;
                }
                sqlx::raw_sql(*sql).execute(&mut *conn).await?;
                sqlx::query(
                    "INSERT INTO kiln_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
                )
                .bind(*version)
                .bind(*description)
                .bind(now_ms())
                .execute(&mut *conn)
                .await?;
                applied.push(*version);
            }
            Ok::<_, sqlx::Error>(applied)
        }
        .await;
        match applied {
            Ok(applied) => {
                conn.execute("COMMIT").await?;
                if !applied.is_empty() {
                    tracing::info!(?applied, backend = ?self.backend, "database migrated");
                }
                Ok(())
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(ControlError::Internal(format!("migration failed: {e}")))
            }
        }
    }

    /// `PRAGMA integrity_check` on SQLite ("ok" when sound); PostgreSQL checks itself.
    pub async fn integrity_check(&self) -> Result<String, ControlError> {
        match self.backend {
            Backend::Sqlite => Ok(sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&self.pool)
                .await?),
            Backend::Postgres => Ok("ok".into()),
        }
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new random identifier (128 bits, hex).
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    hex::encode(bytes)
}

/// Fills `bytes` from the operating system's random source.
pub fn fill_random(bytes: &mut [u8]) {
    // The OS source failing means no secret can be made safely: stop rather than go on weakly.
    #[allow(clippy::expect_used)]
    getrandom::fill(bytes).expect("the operating system's random source failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://kiln:secret@127.0.0.1/kiln"),
            "postgres://kiln:***@127.0.0.1/kiln"
        );
        assert_eq!(redact("sqlite://data/kiln.db"), "sqlite://data/kiln.db");
    }
}
