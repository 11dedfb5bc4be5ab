//! The database schema and its migrations, shipped inside ferryd and run
//! at start under a lock, so two nodes starting together do not race.
//!
//! The SQL is written once for both engines: only types both read alike
//! (TEXT, BIGINT), `$n` parameters, no engine-specific functions. Times
//! are Unix milliseconds.

use sqlx::{AnyPool, Row};

use super::{Engine, StoreError};

/// One step of the schema; applied in order, each in its own transaction,
/// never edited once released (add a new step instead).
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, counters, settings",
        sql: "
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            salt TEXT NOT NULL,
            iterations BIGINT NOT NULL,
            stored_key TEXT NOT NULL,
            server_key TEXT NOT NULL,
            quota BIGINT,
            max_entries BIGINT
        );
        CREATE TABLE counters (
            name TEXT PRIMARY KEY,
            value BIGINT NOT NULL
        );
        INSERT INTO counters (name, value) VALUES ('users', 0);
        CREATE TABLE settings (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )
    ",
    },
    Migration {
        version: 2,
        description: "nodes and their sessions",
        sql: "
        CREATE TABLE nodes (
            id TEXT PRIMARY KEY,
            started BIGINT NOT NULL,
            heartbeat BIGINT NOT NULL,
            listen TEXT NOT NULL
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            node TEXT NOT NULL,
            user_name TEXT NOT NULL,
            client TEXT NOT NULL,
            started BIGINT NOT NULL
        );
        CREATE INDEX sessions_user ON sessions (user_name);
        CREATE INDEX sessions_node ON sessions (node)
    ",
    },
    Migration {
        version: 3,
        description: "login failures, proofs being checked, bans",
        sql: "
        CREATE TABLE login_failures (
            source TEXT NOT NULL,
            name TEXT NOT NULL,
            failures BIGINT NOT NULL,
            last_failure BIGINT NOT NULL,
            PRIMARY KEY (source, name)
        );
        CREATE TABLE login_attempts (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            started BIGINT NOT NULL
        );
        CREATE INDEX login_attempts_source ON login_attempts (source);
        CREATE TABLE login_bans (
            source TEXT PRIMARY KEY,
            banned_until BIGINT NOT NULL
        )
    ",
    },
    Migration {
        version: 4,
        description: "usage per user",
        sql: "
        CREATE TABLE usage (
            user_name TEXT PRIMARY KEY,
            bytes BIGINT NOT NULL,
            entries BIGINT NOT NULL,
            measured_at BIGINT NOT NULL
        )
    ",
    },
    Migration {
        version: 5,
        description: "uploads in progress",
        sql: "
        CREATE TABLE uploads (
            user_name TEXT NOT NULL,
            path TEXT NOT NULL,
            node TEXT NOT NULL,
            wanted_by TEXT,
            started BIGINT NOT NULL,
            PRIMARY KEY (user_name, path)
        );
        CREATE INDEX uploads_node ON uploads (node)
    ",
    },
    Migration {
        version: 6,
        description: "bytes reserved by each upload in progress",
        sql: "ALTER TABLE uploads ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0",
    },
    Migration {
        version: 7,
        description: "the network of each proof being checked",
        sql: "
        ALTER TABLE login_attempts ADD COLUMN network TEXT NOT NULL DEFAULT '';
        CREATE INDEX login_attempts_network ON login_attempts (network)
    ",
    },
    Migration {
        version: 8,
        description: "failed logins per user name, and the sources users logged in from",
        sql: "
        CREATE TABLE login_users (
            name TEXT PRIMARY KEY,
            failures BIGINT NOT NULL,
            last_failure BIGINT NOT NULL,
            next_slot BIGINT NOT NULL
        );
        CREATE TABLE login_known (
            name TEXT NOT NULL,
            source TEXT NOT NULL,
            at BIGINT NOT NULL,
            PRIMARY KEY (name, source)
        )
    ",
    },
    Migration {
        version: 9,
        description: "the namespace of homes in object storage, its uploads and trash",
        sql: "
        CREATE TABLE entries (
            owner TEXT NOT NULL,
            path TEXT NOT NULL,
            parent TEXT NOT NULL,
            name TEXT NOT NULL,
            is_dir BIGINT NOT NULL,
            size BIGINT NOT NULL,
            blob TEXT,
            sha256 TEXT,
            mtime BIGINT NOT NULL,
            mode BIGINT NOT NULL,
            PRIMARY KEY (owner, path)
        );
        CREATE INDEX entries_parent ON entries (owner, parent, name);
        CREATE INDEX entries_blob ON entries (blob);
        CREATE TABLE blob_trash (
            blob TEXT PRIMARY KEY,
            since BIGINT NOT NULL
        );
        CREATE TABLE object_uploads (
            owner TEXT NOT NULL,
            path TEXT NOT NULL,
            blob TEXT NOT NULL,
            upload_id TEXT NOT NULL,
            size BIGINT NOT NULL,
            part_size BIGINT NOT NULL,
            parts TEXT NOT NULL,
            done BIGINT NOT NULL,
            state TEXT NOT NULL,
            updated BIGINT NOT NULL,
            PRIMARY KEY (owner, path)
        )
    ",
    },
];

/// The newest schema version this ferryd knows.
pub fn newest() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Brings the schema up to date. On PostgreSQL the steps run under an
/// advisory lock held by their transaction; on SQLite the first write
/// takes the database's own lock.
pub async fn migrate(pool: &AnyPool, engine: Engine) -> Result<(), StoreError> {
    let mut tx = match engine {
        // The write lock first: two processes starting together wait for
        // each other instead of failing (see `Store::write_tx`).
        Engine::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Engine::Postgres => pool.begin().await?,
    };
    if engine == Engine::Postgres {
        // Any number chosen once: "ferry" in ASCII.
        sqlx::query("SELECT pg_advisory_xact_lock(439788070777)")
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?;
    let mut applied = std::collections::BTreeSet::new();
    for row in &rows {
        applied.insert(row.try_get::<i64, _>("version")?);
    }
    if let Some(&found) = applied.last().filter(|&&v| v > newest()) {
        return Err(StoreError::TooNew {
            found,
            known: newest(),
        });
    }
    // Every step not applied yet, in order (one that landed after a
    // higher-numbered one is applied too).
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        for statement in m.sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(super::now_ms())
        .execute(&mut *tx)
        .await?;
        tracing::info!(
            version = m.version,
            what = m.description,
            "database schema migrated"
        );
    }
    tx.commit().await?;
    Ok(())
}
