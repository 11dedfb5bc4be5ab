//! Server state in a database: SQLite in the root by default
//! (`<root>/ferry.db`, WAL), PostgreSQL when several ferryd nodes share the
//! work. One API over both (sqlx's `Any` driver, runtime queries); what
//! lives where is in ARCHITECTURE.md ("State").

pub mod bans;
pub mod namespace;
pub mod nodes;
pub mod notify;
pub mod ns_put;
pub mod ns_tools;
pub mod object_uploads;
pub mod quota;
mod schema;
pub mod spacing;
pub mod uploads;
pub mod users;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

use crate::config::Config;

pub use users::Login;

/// The database engine behind a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Embedded, in the root: one node.
    Sqlite,
    /// Shared by several nodes.
    Postgres,
}

/// What went wrong with the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the work (its reason in
    /// the message, not as a source: said once).
    #[error("the database is unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The configuration names no usable database.
    #[error("{0}")]
    Config(String),
    /// The database was migrated by a newer ferryd.
    #[error("the database schema is version {found}, newer than this ferryd knows ({known}); upgrade ferryd")]
    TooNew { found: i64, known: i64 },
    /// A row that cannot be what ferryd wrote.
    #[error("the database holds a damaged record ({0}): restore the database from a backup (for usage, 'ferryd check --fix' writes it again from the disk)")]
    Damaged(String),
    /// A user named in an operation does not exist.
    #[error("no user {0}")]
    NoUser(String),
    /// A user to add exists already.
    #[error("user {0} already exists (use 'ferryd user passwd {0}' to change the password)")]
    UserExists(String),
    /// Importing the old user file failed.
    #[error("{0:#}")]
    Import(anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::Unavailable(e)
    }
}

impl StoreError {
    /// The error a client sees: the database being away is the server
    /// being busy (clients retry), never a crash or a lost write.
    pub fn to_remote(&self) -> ferry_proto::RemoteError {
        use ferry_proto::{ErrorKind, RemoteError};
        match self {
            StoreError::Unavailable(_) => RemoteError::new(
                ErrorKind::TooBusy,
                "the server's database is unavailable; try again shortly",
            ),
            other => RemoteError::new(ErrorKind::Io, format!("server state: {other}")),
        }
    }
}

/// Unix time in milliseconds (the store's clock for every timestamp).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The server's state store: a pool of connections to one database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    engine: Engine,
    /// Wake-ups for this process's watchers (`notify.rs`).
    changes: Arc<notify::Changes>,
    /// What unknown names' mock iteration counts are drawn from.
    counts: Arc<Mutex<users::IterationCounts>>,
    /// The runtime it was opened in (see [`Store::wait`]).
    runtime: tokio::runtime::Handle,
}

impl Store {
    /// Connects to the database `config` names (by default SQLite at
    /// `<root>/ferry.db`, created if missing), brings its schema up to
    /// date, and imports an old `users.toml` once.
    pub async fn open(config: &Config) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, engine) = database_url(config)?;
        let store = Store::connect(&url, engine, config.database.max_connections).await?;
        schema::migrate(&store.pool, engine).await?;
        users::import_toml(&store, &config.root).await?;
        Ok(store)
    }

    async fn connect(url: &str, engine: Engine, max: u32) -> Result<Store, StoreError> {
        let options: AnyConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))?;
        // One connection first: its error says why (refused, bad
        // password, no such database), where the pool's says only that
        // it timed out.
        {
            use sqlx::Connection;
            let first = sqlx::AnyConnection::connect_with(&options).await?;
            first.close().await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL: readers never wait for the writer; NORMAL:
                        // a commit is durable at the next checkpoint, and
                        // the database is never damaged by a crash.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store {
            pool,
            engine,
            changes: notify::Changes::new(url, engine),
            counts: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Runs `work` (a query of this store) to its end from a blocking
    /// thread, where file work runs: there this just waits; on a runtime
    /// worker, the worker's other tasks move elsewhere first. Call from
    /// within the runtime the store was opened in.
    pub fn wait<F: std::future::Future>(&self, work: F) -> F::Output {
        tokio::task::block_in_place(|| self.runtime.block_on(work))
    }

    /// Which engine holds the state.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that will write. On SQLite it takes the write lock at
    /// its start (`BEGIN IMMEDIATE`, waiting up to `busy_timeout`): a
    /// deferred one that reads first and writes after another connection
    /// wrote fails at once with SQLITE_BUSY_SNAPSHOT ("database is
    /// locked"), which no timeout covers.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
    }

    /// Closes the pool (waits for connections in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The database URL of a configuration, with the password from the
/// environment (`FERRY_DATABASE_PASSWORD`) or `[database] password_file`
/// added: never from a command line, where other users can read it.
fn database_url(config: &Config) -> Result<(String, Engine), StoreError> {
    let Some(url) = &config.database.url else {
        let path = config.root.join("ferry.db");
        crate::secrets::private_dir(&config.root)
            .map_err(|e| StoreError::Config(format!("{e:#}")))?;
        // Verifiers are an offline cracking target: the file is made
        // 0600 before SQLite opens it (its -wal and -shm files take the
        // same mode), whatever the umask.
        private_file(&path)?;
        return Ok((sqlite_url(&path), Engine::Sqlite));
    };
    if url.starts_with("sqlite:") {
        return Ok((url.clone(), Engine::Sqlite));
    }
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Config(format!(
            "database URL {:?}: use postgres://user@host:port/db or sqlite:PATH",
            redact(url)
        )));
    }
    let password = match (
        &config.database.password_file,
        std::env::var("FERRY_DATABASE_PASSWORD"),
    ) {
        (Some(file), _) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| StoreError::Config(format!("cannot read {}: {e}", file.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        (None, Ok(p)) if !p.is_empty() => Some(p),
        _ => None,
    };
    let url = match password {
        Some(p) => with_password(url, &p)?,
        None => url.clone(),
    };
    Ok((url, Engine::Postgres))
}

/// Creates `path` empty with mode 0600 if it does not exist.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| {
                StoreError::Config(format!("cannot set permissions on {}: {e}", path.display()))
            }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Config(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// `sqlite://PATH?mode=rwc`: the file is created when missing.
fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Puts `password` (percent-encoded) into a `postgres://user@host/...` URL.
fn with_password(url: &str, password: &str) -> Result<String, StoreError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| StoreError::Config("bad database URL".into()))?;
    let (user, host) = rest.split_once('@').ok_or_else(|| {
        StoreError::Config("the database URL names no user (postgres://USER@host/db)".into())
    })?;
    if user.contains(':') {
        return Err(StoreError::Config(
            "the database URL already holds a password; give it in one place only".into(),
        ));
    }
    let encoded: String = password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    Ok(format!("{scheme}://{user}:{encoded}@{host}"))
}

/// A URL fit for logs: any password replaced.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => match user.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_encoded_and_redacted() {
        let url = with_password("postgres://ferry@db:5432/ferry", "p@ss:/w").unwrap();
        assert_eq!(url, "postgres://ferry:p%40ss%3A%2Fw@db:5432/ferry");
        assert_eq!(redact(&url), "postgres://ferry:***@db:5432/ferry");
        assert_eq!(redact("postgres://ferry@db/f"), "postgres://ferry@db/f");
        assert!(with_password("postgres://ferry:x@db/ferry", "y").is_err());
        assert!(with_password("postgres://db/ferry", "y").is_err());
    }
}
