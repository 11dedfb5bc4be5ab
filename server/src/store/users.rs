//! Users in the store: name, SCRAM verifier (never a password) and
//! limits. Every change bumps the `users` counter in the same
//! transaction, so a node learns cheaply that it should read them again.

use std::path::Path;
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};
use crate::users::{mock_iterations, UserRecord};

/// A user's record for a login, and what an unknown name shows instead.
#[derive(Debug)]
pub struct Login {
    /// The user's record; none for an unknown name.
    pub record: Option<UserRecord>,
    /// The iteration count of the mock verifier an unknown name gets.
    pub mock_iterations: u32,
}

/// Each iteration count the users have, with how many users have it.
type Counts = Arc<Vec<(u32, u64)>>;

/// The users' iteration counts (see [`Store::for_login`]) as of one
/// generation of the users.
#[derive(Debug, Default)]
pub struct IterationCounts(Option<(i64, Counts)>);

impl IterationCounts {
    fn get(&self, generation: i64) -> Option<Counts> {
        self.0
            .as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, c)| c.clone())
    }

    fn set(&mut self, generation: i64, counts: Counts) {
        self.0 = Some((generation, counts));
    }
}

/// A version of the users: equal generations, equal users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation(i64);

const COLUMNS: &str = "name, salt, iterations, stored_key, server_key, quota, max_entries";

fn record(row: &AnyRow) -> Result<(String, UserRecord), StoreError> {
    let name: String = row.try_get("name")?;
    let count = |col: &str| -> Result<Option<u64>, StoreError> {
        let v: Option<i64> = row.try_get(col)?;
        v.map(|v| u64::try_from(v).map_err(|_| StoreError::Damaged(format!("{col} of {name}"))))
            .transpose()
    };
    let iterations: i64 = row.try_get("iterations")?;
    let rec = UserRecord {
        salt: row.try_get("salt")?,
        iterations: u32::try_from(iterations)
            .map_err(|_| StoreError::Damaged(format!("iterations of {name}")))?,
        stored_key: row.try_get("stored_key")?,
        server_key: row.try_get("server_key")?,
        quota: count("quota")?,
        max_entries: count("max_entries")?,
    };
    Ok((name, rec))
}

fn db_count(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

impl Store {
    /// Looks a user up.
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| record(&r).map(|(_, rec)| rec)).transpose()
    }

    /// All users, sorted by name.
    pub async fn users(&self) -> Result<Vec<(String, UserRecord)>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM users ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(record).collect()
    }

    /// What a login needs: `name`'s record, if any, and the iteration
    /// count a mock verifier for `name` shows. Both are worked out for
    /// every name, real or not, with the same query: one row, whatever
    /// the number of users. The users' iteration counts behind the mock
    /// are read again only when the users' generation has moved.
    pub async fn for_login(
        &self,
        name: &str,
        secret: &[u8],
        default_iterations: u32,
    ) -> Result<Login, StoreError> {
        let row = sqlx::query(
            "SELECT c.value AS generation, u.name AS name, u.salt AS salt,
                u.iterations AS iterations, u.stored_key AS stored_key,
                u.server_key AS server_key, u.quota AS quota, u.max_entries AS max_entries
             FROM counters c LEFT JOIN users u ON u.name = $1
             WHERE c.name = 'users'",
        )
        .bind(name)
        .fetch_one(self.pool())
        .await?;
        let generation: i64 = row.try_get("generation")?;
        let found: Option<String> = row.try_get("name")?;
        let record = match found {
            Some(_) => Some(record(&row)?.1),
            None => None,
        };
        let counts = self.iteration_counts(generation).await?;
        let mock = mock_iterations(&counts, name, secret).unwrap_or(default_iterations);
        Ok(Login {
            record,
            mock_iterations: mock,
        })
    }

    /// Each iteration count the users have and how many have it, as of
    /// `generation` or later: kept, and read again when it moves.
    async fn iteration_counts(&self, generation: i64) -> Result<Counts, StoreError> {
        if let Some(counts) = self.counts().get(generation) {
            return Ok(counts);
        }
        let rows = sqlx::query(
            "SELECT iterations, COUNT(*) AS n FROM users GROUP BY iterations ORDER BY iterations",
        )
        .fetch_all(self.pool())
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in &rows {
            let iterations: i64 = row.try_get("iterations")?;
            let n: i64 = row.try_get("n")?;
            if let (Ok(i), Ok(n)) = (u32::try_from(iterations), u64::try_from(n)) {
                counts.push((i, n));
            }
        }
        let counts = Arc::new(counts);
        // Read after the generation: at least as new as that. Kept under
        // it; a later generation reads them again.
        self.counts().set(generation, counts.clone());
        Ok(counts)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, IterationCounts> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes whenever a user is added, changed or removed.
    pub async fn generation(&self) -> Result<Generation, StoreError> {
        let v: i64 = sqlx::query("SELECT value FROM counters WHERE name = 'users'")
            .fetch_one(self.pool())
            .await?
            .try_get("value")?;
        Ok(Generation(v))
    }

    /// Adds a user.
    pub async fn add_user(&self, name: &str, rec: &UserRecord) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(&format!(
            "INSERT INTO users ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING"
        ))
        .bind(name)
        .bind(&rec.salt)
        .bind(i64::from(rec.iterations))
        .bind(&rec.stored_key)
        .bind(&rec.server_key)
        .bind(db_count(rec.quota))
        .bind(db_count(rec.max_entries))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UserExists(name.into()));
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a user's verifier (the limits are kept).
    pub async fn set_verifier(&self, name: &str, rec: &UserRecord) -> Result<(), StoreError> {
        self.change(
            name,
            sqlx::query(
                "UPDATE users SET salt = $2, iterations = $3, stored_key = $4, server_key = $5 WHERE name = $1",
            )
            .bind(name)
            .bind(&rec.salt)
            .bind(i64::from(rec.iterations))
            .bind(&rec.stored_key)
            .bind(&rec.server_key),
        )
        .await
    }

    /// Changes a user's quota (none: unlimited).
    pub async fn set_quota(&self, name: &str, quota: Option<u64>) -> Result<(), StoreError> {
        self.change(
            name,
            sqlx::query("UPDATE users SET quota = $2 WHERE name = $1")
                .bind(name)
                .bind(db_count(quota)),
        )
        .await
    }

    /// Changes a user's entry limit (none: the server's default).
    pub async fn set_max_entries(&self, name: &str, max: Option<u64>) -> Result<(), StoreError> {
        self.change(
            name,
            sqlx::query("UPDATE users SET max_entries = $2 WHERE name = $1")
                .bind(name)
                .bind(db_count(max)),
        )
        .await
    }

    /// Removes a user (the home is left on disk).
    pub async fn remove_user(&self, name: &str) -> Result<(), StoreError> {
        self.change(
            name,
            sqlx::query("DELETE FROM users WHERE name = $1").bind(name),
        )
        .await
    }

    /// Runs one statement on one user's row, with the counter bumped in
    /// the same transaction.
    async fn change<'q>(
        &self,
        name: &str,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            return Err(StoreError::NoUser(name.into()));
        }
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The server's secret for mock salts, made by the first node to ask
    /// and the same on every node after (so an unknown name looks the
    /// same whichever node answers).
    pub async fn server_secret(&self, made: &[u8]) -> Result<Vec<u8>, StoreError> {
        use base64::engine::general_purpose::STANDARD as B64;
        use base64::Engine;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('mock_secret', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(B64.encode(made))
        .execute(self.pool())
        .await?;
        let v: String = sqlx::query("SELECT value FROM settings WHERE name = 'mock_secret'")
            .fetch_one(self.pool())
            .await?
            .try_get("value")?;
        match B64.decode(v) {
            Ok(secret) if secret.len() >= 32 => Ok(secret),
            _ => Err(StoreError::Damaged("the mock secret".into())),
        }
    }
}

/// Counts a change of the users (the revokers' poll looks at the count)
/// and, on PostgreSQL, announces it to every node as it commits.
async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'users'")
        .execute(&mut **tx)
        .await?;
    if tx.backend_name() == "PostgreSQL" {
        super::notify::announce(&mut **tx, super::notify::Topic::Users).await?;
    }
    Ok(())
}

/// Imports `<root>/users.toml` (the store of older ferryd versions) once:
/// its users are added unless a user of that name exists, and the file is
/// renamed to `users.toml.imported` and kept as a backup.
pub async fn import_toml(store: &Store, root: &Path) -> Result<(), StoreError> {
    let file = root.join("users.toml");
    let users = match crate::users::read_toml(&file) {
        Ok(Some(users)) => users,
        Ok(None) => return Ok(()),
        Err(e) => return Err(StoreError::Import(e)),
    };
    let mut added = 0;
    for (name, rec) in &users {
        match store.add_user(name, rec).await {
            Ok(()) => added += 1,
            Err(StoreError::UserExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let backup = root.join("users.toml.imported");
    std::fs::rename(&file, &backup).map_err(|e| {
        StoreError::Import(anyhow::anyhow!(
            "imported {} but cannot rename it to {}: {e}",
            file.display(),
            backup.display()
        ))
    })?;
    tracing::warn!(
        users = users.len(),
        added,
        backup = %backup.display(),
        "imported the old user file into the database; the file is kept as a backup and no longer read"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::bans::tests::sqlite;
    use crate::users::UserRecord;

    #[tokio::test]
    async fn a_login_reads_its_user_and_the_counts_as_they_change() {
        let (store, _dir) = sqlite().await;
        let secret = [9u8; 32];
        let login = store.for_login("ghost", &secret, 7000).await.unwrap();
        assert!(login.record.is_none());
        assert_eq!(login.mock_iterations, 7000, "no users: the default");

        let alice = UserRecord::new("pw", 4096, Some(1 << 20)).unwrap();
        store.add_user("alice", &alice).await.unwrap();
        let login = store.for_login("alice", &secret, 7000).await.unwrap();
        let rec = login.record.unwrap();
        assert_eq!((rec.iterations, rec.quota), (4096, Some(1 << 20)));
        assert_eq!(rec.stored_key, alice.stored_key);
        let login = store.for_login("ghost", &secret, 7000).await.unwrap();
        assert!(login.record.is_none());
        assert_eq!(login.mock_iterations, 4096, "the only real count");

        // A change (a new user with another count) is seen by the next
        // login: unknown names then show both counts.
        let carol = UserRecord::new("pw", 5000, None).unwrap();
        store.add_user("carol", &carol).await.unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..32 {
            let name = format!("ghost{i}");
            let a = store.for_login(&name, &secret, 7000).await.unwrap();
            let b = store.for_login(&name, &secret, 7000).await.unwrap();
            assert_eq!(a.mock_iterations, b.mock_iterations);
            seen.insert(a.mock_iterations);
        }
        assert_eq!(seen, [4096, 5000].into());
        store.remove_user("carol").await.unwrap();
        let login = store.for_login("ghost1", &secret, 7000).await.unwrap();
        assert_eq!(login.mock_iterations, 4096);
    }
}
