//! Changes announced to every node as they commit: PostgreSQL's
//! LISTEN/NOTIFY wakes the node's watchers at once; their polls stay, as
//! the fallback for a lost listener and as the only way on SQLite (one
//! node: nothing to announce to).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use super::{Engine, Store};

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// The users (added, removed, password, limits): the revoker reads
    /// them again.
    Users,
    /// A ban was written: each node takes the store's bans into its table.
    Bans,
}

impl Topic {
    const ALL: [Topic; 2] = [Topic::Users, Topic::Bans];

    fn channel(self) -> &'static str {
        match self {
            Topic::Users => "ferry_users",
            Topic::Bans => "ferry_bans",
        }
    }

    fn of(channel: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.channel() == channel)
    }
}

/// The wake-ups of one process's watchers, one per topic. A wake-up that
/// comes while its watcher is busy is kept for its next wait.
#[derive(Default)]
pub(crate) struct Changes {
    users: Notify,
    bans: Notify,
    /// The URL to listen on (PostgreSQL only; it may hold the password,
    /// so it is never printed).
    url: Option<String>,
}

impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

impl Changes {
    pub(crate) fn new(url: &str, engine: Engine) -> Arc<Changes> {
        Arc::new(Changes {
            url: (engine == Engine::Postgres).then(|| url.to_string()),
            ..Changes::default()
        })
    }

    fn of(&self, topic: Topic) -> &Notify {
        match topic {
            Topic::Users => &self.users,
            Topic::Bans => &self.bans,
        }
    }
}

/// Announces `topic` from inside a transaction (delivered when it
/// commits) or on its own; nothing on SQLite.
pub(crate) async fn announce<'c, E>(conn: E, topic: Topic) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let sql = match topic {
        Topic::Users => "NOTIFY ferry_users",
        Topic::Bans => "NOTIFY ferry_bans",
    };
    sqlx::query(sql).execute(conn).await.map(drop)
}

impl Store {
    /// Announces `topic` to every node (PostgreSQL; nothing on SQLite).
    pub(crate) async fn announce(&self, topic: Topic) -> Result<(), sqlx::Error> {
        match self.engine {
            Engine::Postgres => announce(self.pool(), topic).await,
            Engine::Sqlite => Ok(()),
        }
    }

    /// Waits until another node (or `ferryd user`) announces `topic`;
    /// never returns on SQLite or before [`Store::listen`] runs.
    pub async fn changed(&self, topic: Topic) {
        self.changes.of(topic).notified().await;
    }

    /// Listens for the announcements of every node until dropped, waking
    /// [`Store::changed`]; on SQLite it returns at once. A lost connection
    /// is made again (every watcher is woken then: announcements may have
    /// been missed meanwhile).
    pub async fn listen(&self) {
        let Some(url) = self.changes.url.as_deref() else {
            return;
        };
        loop {
            match listen_once(url, &self.changes).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for the other nodes' changes; polling meanwhile")
                }
            }
            for topic in Topic::ALL {
                self.changes.of(topic).notify_one();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// One listening connection, until it is lost (Ok) or cannot be made.
async fn listen_once(url: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener
        .listen_all(Topic::ALL.into_iter().map(Topic::channel))
        .await?;
    // Changes made before the listener was in place.
    for topic in Topic::ALL {
        changes.of(topic).notify_one();
    }
    loop {
        match listener.try_recv().await? {
            Some(n) => {
                if let Some(topic) = Topic::of(n.channel()) {
                    changes.of(topic).notify_one();
                }
            }
            // The connection was lost (sqlx makes it again on the next
            // call, without what was announced meanwhile).
            None => return Ok(()),
        }
    }
}
