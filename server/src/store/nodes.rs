//! Nodes and their sessions. Each ferryd registers itself as a node and
//! beats its heart into the store; sessions are rows owned by a node, so
//! the sessions of a user are counted over every live node, and those of
//! a node that died stop counting once its heartbeat is older than the
//! expiry (any node then deletes them).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::Row;

use super::{now_ms, Engine, Store, StoreError};

/// This process as a node of the cluster.
#[derive(Clone, Debug)]
pub struct Node {
    /// Random, new at every start.
    pub id: String,
    /// After this long without a heartbeat, a node is dead.
    pub expiry: Duration,
    /// What the heartbeat puts right in the store.
    own: Arc<Mutex<Own>>,
    /// How often it beats.
    pub heartbeat: Duration,
}

/// This node's sessions, as the store should hold them.
#[derive(Debug, Default)]
struct Own {
    /// Open sessions by row id: user, client, start. Registered again if
    /// another node took this one for dead and removed them.
    open: HashMap<String, (String, String, i64)>,
    /// Rows of ended sessions not deleted yet (the store was away).
    ended: Vec<String>,
}

impl Node {
    fn own(&self) -> MutexGuard<'_, Own> {
        self.own
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a session was not registered.
#[derive(Debug, thiserror::Error)]
pub enum SessionRefused {
    /// The user has as many sessions as allowed, over all nodes.
    #[error("{0} sessions already open for this user (on all nodes)")]
    Full(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn random_id() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| StoreError::Config(format!("no system randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Registers this process as a new node.
    pub async fn register_node(
        &self,
        listen: SocketAddr,
        expiry: Duration,
        heartbeat: Duration,
    ) -> Result<Node, StoreError> {
        let node = Node {
            id: random_id()?,
            expiry,
            own: Arc::default(),
            heartbeat,
        };
        let now = now_ms();
        if self.engine() == Engine::Sqlite {
            // The embedded database serves one node: whatever an earlier
            // run left (after a crash) is over.
            sqlx::query("DELETE FROM sessions")
                .execute(self.pool())
                .await?;
            sqlx::query("DELETE FROM nodes")
                .execute(self.pool())
                .await?;
        }
        sqlx::query("INSERT INTO nodes (id, started, heartbeat, listen) VALUES ($1, $2, $3, $4)")
            .bind(&node.id)
            .bind(now)
            .bind(now)
            .bind(listen.to_string())
            .execute(self.pool())
            .await?;
        Ok(node)
    }

    /// Beats `node`'s heart and deletes dead nodes with their sessions.
    /// A node found dead itself (its row gone after a long pause) is
    /// registered again under its id with its sessions: they are still
    /// open here. Rows of sessions that ended while the store was away
    /// are deleted now.
    pub async fn heartbeat(&self, node: &Node) -> Result<(), StoreError> {
        let ended = std::mem::take(&mut node.own().ended);
        for (i, id) in ended.iter().enumerate() {
            if let Err(e) = delete_session(self, id).await {
                node.own().ended.extend_from_slice(&ended[i..]);
                return Err(e.into());
            }
        }
        let now = now_ms();
        let beat = sqlx::query("UPDATE nodes SET heartbeat = $2 WHERE id = $1")
            .bind(&node.id)
            .bind(now)
            .execute(self.pool())
            .await?;
        if beat.rows_affected() == 0 {
            tracing::warn!(node = %node.id, "this node was taken for dead (no heartbeat); registering again");
            sqlx::query(
                "INSERT INTO nodes (id, started, heartbeat, listen) VALUES ($1, $2, $2, '') ON CONFLICT (id) DO NOTHING",
            )
            .bind(&node.id)
            .bind(now)
            .execute(self.pool())
            .await?;
            let open: Vec<_> = node.own().open.clone().into_iter().collect();
            for (id, (user, client, started)) in open {
                sqlx::query(
                    "INSERT INTO sessions (id, node, user_name, client, started) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(&node.id)
                .bind(user)
                .bind(client)
                .bind(started)
                .execute(self.pool())
                .await?;
            }
        }
        let dead = now - ms(node.expiry);
        // Nodes first, then the sessions of nodes no longer there: a node
        // whose heartbeat lands between the two statements kept its row
        // and keeps its sessions; one that lands later finds its row gone
        // and registers again with them.
        let mut tx = self.write_tx().await?;
        let nodes = sqlx::query("DELETE FROM nodes WHERE heartbeat < $1")
            .bind(dead)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("DELETE FROM sessions WHERE node NOT IN (SELECT id FROM nodes)")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if nodes.rows_affected() > 0 {
            tracing::warn!(
                nodes = nodes.rows_affected(),
                sessions = gone.rows_affected(),
                "dead nodes removed with their sessions"
            );
        }
        Ok(())
    }

    /// Removes this node and its sessions (at shutdown).
    pub async fn leave(&self, node: &Node) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM sessions WHERE node = $1")
            .bind(&node.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(&node.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Registers a session of `user` on `node` if the user has fewer
    /// than `max` on all live nodes. On PostgreSQL the user's row is
    /// locked first, so two nodes cannot both take the last place; SQLite
    /// has one writer at a time anyway.
    pub async fn open_session(
        &self,
        node: &Node,
        user: &str,
        client: SocketAddr,
        max: usize,
    ) -> Result<SessionRow, SessionRefused> {
        let id = random_id()?;
        let now = now_ms();
        let live_since = now - ms(node.expiry);
        let client = client.to_string();
        let taken = if self.engine() == Engine::Sqlite {
            // One statement: it holds the write lock from its start, so
            // the count and the row are one step (and one round trip to
            // SQLite's thread on the login path).
            sqlx::query(
                "INSERT INTO sessions (id, node, user_name, client, started)
                 SELECT $1, $2, $3, $4, $5
                 WHERE (SELECT COUNT(*) FROM sessions s JOIN nodes nd ON s.node = nd.id
                        WHERE s.user_name = $3 AND nd.heartbeat >= $6) < $7",
            )
            .bind(&id)
            .bind(&node.id)
            .bind(user)
            .bind(&client)
            .bind(now)
            .bind(live_since)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .execute(self.pool())
            .await
            .map_err(StoreError::from)?
            .rows_affected()
                > 0
        } else {
            self.open_session_locked(node, &id, user, &client, now, live_since, max)
                .await?
        };
        if !taken {
            return Err(SessionRefused::Full(max));
        }
        node.own()
            .open
            .insert(id.clone(), (user.to_string(), client, now));
        Ok(SessionRow {
            store: self.clone(),
            node: node.clone(),
            id,
        })
    }

    /// [`Store::open_session`] on PostgreSQL: the user's row is locked
    /// first, so two nodes cannot both take the last place. False when
    /// the user has `max` sessions.
    #[allow(clippy::too_many_arguments)]
    async fn open_session_locked(
        &self,
        node: &Node,
        id: &str,
        user: &str,
        client: &str,
        now: i64,
        live_since: i64,
        max: usize,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("SELECT name FROM users WHERE name = $1 FOR UPDATE")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM sessions s JOIN nodes nd ON s.node = nd.id
             WHERE s.user_name = $1 AND nd.heartbeat >= $2",
        )
        .bind(user)
        .bind(live_since)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= max {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sessions (id, node, user_name, client, started) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&node.id)
        .bind(user)
        .bind(client)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Live sessions of `user` on all nodes.
    pub async fn sessions_of(&self, user: &str, expiry: Duration) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM sessions s JOIN nodes nd ON s.node = nd.id
             WHERE s.user_name = $1 AND nd.heartbeat >= $2",
        )
        .bind(user)
        .bind(now_ms() - ms(expiry))
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

async fn delete_session(store: &Store, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await
        .map(|_| ())
}

/// A session's row; dropping it removes the row (in the background: if
/// that fails, the next heartbeat that reaches the store tries again).
#[derive(Debug)]
pub struct SessionRow {
    store: Store,
    node: Node,
    id: String,
}

impl Drop for SessionRow {
    fn drop(&mut self) {
        let store = self.store.clone();
        let node = self.node.clone();
        let id = std::mem::take(&mut self.id);
        node.own().open.remove(&id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = delete_session(&store, &id).await {
                    tracing::warn!(error = %e, "cannot remove a closed session's row; the heartbeat tries again");
                    node.own().ended.push(id);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::SessionRefused;
    use crate::store::bans::tests::sqlite;

    #[tokio::test]
    async fn sessions_of_a_user_are_limited_until_one_ends() {
        let (store, _dir) = sqlite().await;
        let addr = "127.0.0.1:1".parse().unwrap();
        let node = store
            .register_node(addr, Duration::from_secs(15), Duration::from_secs(2))
            .await
            .unwrap();
        let a = store.open_session(&node, "alice", addr, 2).await.unwrap();
        let _b = store.open_session(&node, "alice", addr, 2).await.unwrap();
        let _c = store.open_session(&node, "bob", addr, 2).await.unwrap();
        let refused = store.open_session(&node, "alice", addr, 2).await;
        assert!(matches!(refused, Err(SessionRefused::Full(2))));
        assert_eq!(store.sessions_of("alice", node.expiry).await.unwrap(), 2);
        drop(a); // its row goes in the background
        for _ in 0..100 {
            if store.sessions_of("alice", node.expiry).await.unwrap() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.open_session(&node, "alice", addr, 2).await.unwrap();
    }
}
