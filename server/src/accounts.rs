//! Per-user state shared by all of a user's connections: the session count,
//! the quota ledger (`ledger.rs`) and upload locks. Usage is measured from disk when a user's first
//! session starts, so it is right after restarts and after changes made
//! while nobody was logged in; while sessions run, ferryd keeps it current.
//! The state is kept for `limits.usage_kept_secs` after the last session
//! ends, so a script that runs one command after another does not make
//! ferryd walk the whole home (one stat per file) at every login.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ferry_proto::{ErrorKind, RemoteError, RemotePath};
use tokio_util::sync::CancellationToken;

use crate::budget::{Share, ShareLimits};
use crate::files::Files;
use crate::jail::Home;
use crate::ledger::{Cost, Ledger, Limits};
use crate::objects::home::ObjectHome;
use crate::objects::Bucket;
use crate::revoke::{Revoke, UserState};

/// One user's live state.
#[derive(Debug)]
pub struct Account {
    /// The user's name.
    pub name: String,
    /// Where her files live (a jailed home on disk, or object storage).
    pub home: Arc<Files>,
    /// Bytes and entries used, and their limits.
    pub ledger: Arc<Ledger>,
    sessions: Mutex<Sessions>,
    active: Mutex<HashMap<RemotePath, CancellationToken>>,
    /// The user's share of the server (places, bytes, threads), over all
    /// sessions.
    pub share: Share,
    /// With several nodes: where uploads in progress are claimed.
    cluster: Option<Cluster>,
}

/// What an account needs to claim uploads across nodes.
#[derive(Clone, Debug)]
struct Cluster {
    store: crate::store::Store,
    node: String,
    expiry: std::time::Duration,
    runtime: tokio::runtime::Handle,
}

/// A path being uploaded; dropping it lets the next writer in.
#[derive(Debug)]
pub struct PathLock {
    account: Arc<Account>,
    path: RemotePath,
    /// Cancelled when a newer upload of the same path takes over.
    pub superseded: CancellationToken,
    /// Whether this node holds the path's row in the store.
    claimed: bool,
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // A successor only inserts its entry after ours is gone, so the
        // entry under our path is ours.
        lock(&self.account.active).remove(&self.path);
        if let (true, Some(c)) = (self.claimed, &self.account.cluster) {
            let (c, user, path) = (c.clone(), self.account.name.clone(), self.path.to_string());
            c.runtime.clone().spawn(async move {
                if let Err(e) = c.store.release_upload(&user, &path, &c.node).await {
                    tracing::warn!(error = %e, "cannot release an upload's row; it goes with this node");
                }
            });
        }
    }
}

/// A user's live sessions.
#[derive(Debug)]
struct Sessions {
    /// By session number: the credential it logged in with, and how to
    /// end it.
    live: HashMap<u64, (String, Arc<Revoke>)>,
    /// When the last session ended, while none is live.
    left: Option<std::time::Instant>,
}

impl Account {
    /// What is used and the limits.
    pub fn usage(&self) -> (Cost, Limits) {
        self.ledger.usage()
    }

    /// Marks `path` as being written by this upload. An older upload of the
    /// same path (a client that reconnected after a cut the server has not
    /// noticed yet) is told to stop, and this waits for it to let go, so
    /// the new attempt resumes from its partial. Blocking: call from a
    /// blocking thread.
    pub fn lock_path(self: &Arc<Self>, path: &RemotePath) -> Result<PathLock, RemoteError> {
        self.take_path(path, true)
    }

    /// [`Account::lock_path`] on this node only, with no claim in the
    /// store: for an upload that writes a partial no other upload shares
    /// (an eager one, see [`Account::shares_home`]).
    pub fn lock_path_here(self: &Arc<Self>, path: &RemotePath) -> Result<PathLock, RemoteError> {
        self.take_path(path, false)
    }

    /// Whether other nodes' uploads may write this home at the same time
    /// (several nodes on one store).
    pub fn shares_home(&self) -> bool {
        self.cluster.is_some()
    }

    fn take_path(
        self: &Arc<Self>,
        path: &RemotePath,
        claim: bool,
    ) -> Result<PathLock, RemoteError> {
        for _ in 0..100 {
            {
                let mut active = lock(&self.active);
                match active.get(path) {
                    Some(old) => old.cancel(),
                    None => {
                        let token = CancellationToken::new();
                        active.insert(path.clone(), token.clone());
                        let mut held = PathLock {
                            account: self.clone(),
                            path: path.clone(),
                            superseded: token,
                            claimed: false,
                        };
                        drop(active);
                        if claim {
                            self.claim(&mut held)?;
                        }
                        return Ok(held);
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(RemoteError::new(
            ErrorKind::TooBusy,
            format!("{path} is already being uploaded"),
        ))
    }

    /// Gives back what a dead node reserved for `path` and did not write
    /// (its partial's length counts as written). Blocking.
    fn return_dead_reservation(&self, c: &Cluster, path: &RemotePath, reserved: u64) {
        let written = match &*self.home {
            Files::Disk(home) => home
                .partials()
                .and_then(|d| d.metadata(crate::transfer::partials::key(path)))
                .map_or(0, |m| m.len()),
            Files::Objects(home) => home
                .store
                .wait(home.store.object_upload(&self.name, &path.to_string()))
                .ok()
                .flatten()
                .map_or(0, |u| u.done),
        };
        let unwritten = reserved.saturating_sub(written);
        if unwritten == 0 {
            return;
        }
        let back = c.store.return_reserved(&self.name, unwritten);
        match c.store.wait(back) {
            Ok(()) => {
                tracing::info!(user = %crate::logfmt::q(&self.name), path = %crate::logfmt::q(path.to_string()), bytes = unwritten, "took over an upload from a dead node; its reservation given back")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot give back a dead node's reservation; ferryd check --fix corrects it")
            }
        }
    }

    /// With several nodes: claims the path in the store, asking the node
    /// that runs an older upload of it to let go, until that node lets go
    /// or misses two heartbeats (then the row is taken). Blocking, like
    /// [`Account::lock_path`].
    fn claim(&self, held: &mut PathLock) -> Result<(), RemoteError> {
        use crate::store::uploads::Claim;
        let Some(c) = &self.cluster else {
            return Ok(());
        };
        let path = held.path.to_string();
        let tries = 40 + c.expiry.as_millis() / 50;
        for _ in 0..tries {
            let asked = c.store.claim_upload(&self.name, &path, &c.node, c.expiry);
            match c.store.wait(asked) {
                Ok(Claim::Got { from_dead }) => {
                    held.claimed = true;
                    if let Some(reserved) = from_dead {
                        self.return_dead_reservation(c, &held.path, reserved);
                    }
                    return Ok(());
                }
                Ok(Claim::Asked) => std::thread::sleep(std::time::Duration::from_millis(50)),
                Err(e) => {
                    tracing::warn!(user = %crate::logfmt::q(&self.name), error = %e, "cannot claim an upload in the state store");
                    return Err(e.to_remote());
                }
            }
        }
        Err(RemoteError::new(
            ErrorKind::TooBusy,
            format!("{} is being uploaded through another node", held.path),
        ))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain numbers behind: still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One user's slot among the live accounts: filled once her home is
/// measured. Concurrent first logins of one user wait for one measurement;
/// other users never wait for it.
type Slot = Arc<tokio::sync::OnceCell<Arc<Account>>>;

/// All users with live sessions (or whose last one ended less than
/// `kept` ago).
#[derive(Debug, Default)]
pub struct Accounts {
    /// Held only to look a slot up or change the map, never across a walk.
    live: Mutex<HashMap<String, Slot>>,
    kept: std::time::Duration,
    /// Each user's share of the server.
    share: ShareLimits,
    /// Levels below a home that operations may nest names.
    max_depth: usize,
    /// Sessions begun so far; the next one's number.
    begun: std::sync::atomic::AtomicU64,
    /// Where usage is shared with other nodes (see `store/quota.rs`).
    shared: Option<SharedUsage>,
    /// Homes in object storage: the bucket, and the store holding the
    /// namespace. None: homes on the local disk.
    objects: Option<(Bucket, crate::store::Store)>,
}

/// The state store's part in the accounts.
#[derive(Clone, Debug)]
struct SharedUsage {
    store: crate::store::Store,
    /// Sessions of nodes silent this long do not count.
    node_expiry: std::time::Duration,
    /// Reservations are decided by the store (several nodes).
    exact: bool,
    /// Woken by every ledger change (see [`Accounts::sync_usage`]).
    wake: Arc<tokio::sync::Notify>,
    /// This node's id.
    node: String,
    /// An upload's node silent this long has stopped it (two missed
    /// heartbeats): shorter than a node's expiry, so a client coming
    /// back through another node after a crash does not wait for that.
    upload_owner_gone: std::time::Duration,
}

/// Holds one session open; dropping it ends the session.
#[derive(Debug)]
pub struct Session {
    /// The account.
    pub account: Arc<Account>,
    accounts: Arc<Accounts>,
    number: u64,
    /// Fires when the session is to end (user removed, password changed).
    pub revoke: Arc<Revoke>,
    /// Its row in the state store, counted on every node; removed when
    /// the session ends.
    row: Option<crate::store::nodes::SessionRow>,
}

impl Accounts {
    /// No accounts yet; each is kept for `kept` after its last session,
    /// and has `share` of the server.
    pub fn new(kept: std::time::Duration, share: ShareLimits) -> Accounts {
        Accounts {
            live: Default::default(),
            kept,
            share,
            max_depth: crate::jail::DEFAULT_MAX_DEPTH,
            begun: Default::default(),
            shared: None,
            objects: None,
        }
    }

    /// Keeps homes in object storage (`bucket`), their namespace in
    /// `store`.
    pub fn with_objects(mut self, bucket: Bucket, store: crate::store::Store) -> Accounts {
        self.objects = Some((bucket, store));
        self
    }

    /// Keeps usage in `store`, shared with other nodes: a home is walked
    /// only when no node has a session of its user (so no upload of hers
    /// is in flight anywhere), else the store's usage is taken as it is.
    /// `exact`: reservations are decided by the store (PostgreSQL).
    pub fn with_store(
        mut self,
        store: crate::store::Store,
        node: &crate::store::nodes::Node,
        exact: bool,
    ) -> Accounts {
        self.shared = Some(SharedUsage {
            store,
            node_expiry: node.expiry,
            exact,
            wake: Arc::new(tokio::sync::Notify::new()),
            node: node.id.clone(),
            upload_owner_gone: (node.heartbeat * 2).max(std::time::Duration::from_secs(1)),
        });
        self
    }

    /// Sends usage changes to the store as they happen (within
    /// milliseconds, many at once under load, so a node that dies loses
    /// next to nothing), and takes in other nodes' every `refresh`.
    pub async fn sync_usage_forever(&self, refresh: std::time::Duration) {
        let Some(sh) = &self.shared else {
            return std::future::pending().await;
        };
        let mut next = tokio::time::Instant::now() + refresh;
        loop {
            let due = tokio::select! {
                _ = sh.wake.notified() => false,
                _ = tokio::time::sleep_until(next) => true,
            };
            if due {
                next = tokio::time::Instant::now() + refresh;
                if sh.exact {
                    self.let_go_of_wanted_uploads(sh).await;
                }
            }
            self.sync_usage(due).await;
        }
    }

    /// Stops this node's uploads that another node's newer upload of the
    /// same path asks for (see `store/uploads.rs`).
    async fn let_go_of_wanted_uploads(&self, sh: &SharedUsage) {
        let wanted = match sh.store.wanted_uploads(&sh.node).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for wanted uploads in the state store");
                return;
            }
        };
        for (user, path) in wanted {
            let (Some(a), Ok(path)) = (self.get(&user), RemotePath::parse(&path)) else {
                continue;
            };
            let token = lock(&a.active).get(&path).cloned();
            if let Some(token) = token {
                token.cancel();
            }
        }
    }

    /// Sends every live user's usage changes to the store and, if
    /// `refresh`, takes in other nodes' (see [`Ledger::sync`]).
    pub async fn sync_usage(&self, refresh: bool) {
        let accounts: Vec<Arc<Account>> = lock(&self.live)
            .values()
            .filter_map(|s| s.get().cloned())
            .collect();
        for a in accounts {
            if let Err(e) = a.ledger.sync(refresh).await {
                tracing::warn!(user = %crate::logfmt::q(&a.name), error = %e, "cannot sync usage with the state store; kept for the next time");
            }
        }
    }

    /// Sets how many levels below a home operations may nest names.
    pub fn with_max_depth(mut self, max_depth: usize) -> Accounts {
        self.max_depth = max_depth;
        self
    }

    /// Starts a session for `name`, opening the home and measuring usage if
    /// this is the user's first live session. Only this user's logins wait
    /// for that measurement. `credential` is what the login was checked
    /// against (see [`crate::revoke`]).
    pub async fn open(
        self: &Arc<Self>,
        name: &str,
        home_path: PathBuf,
        limits: Limits,
        max_sessions: usize,
        credential: String,
    ) -> Result<Session, RemoteError> {
        loop {
            let slot = lock(&self.live)
                .entry(name.to_string())
                .or_default()
                .clone();
            let measured = slot
                .get_or_try_init(|| self.measure(name, home_path.clone(), limits))
                .await;
            let account = match measured {
                Ok(a) => a.clone(),
                Err(e) => {
                    let mut live = lock(&self.live);
                    if live
                        .get(name)
                        .is_some_and(|s| Arc::ptr_eq(s, &slot) && s.get().is_none())
                    {
                        live.remove(name);
                    }
                    return Err(e);
                }
            };
            // The session is counted under the map's lock, so an account
            // is never forgotten (below) while a session joins it.
            let live = lock(&self.live);
            if !live.get(name).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                continue; // forgotten meanwhile: start again
            }
            let mut l = lock(&account.sessions);
            if l.live.len() >= max_sessions {
                return Err(RemoteError::new(
                    ErrorKind::TooBusy,
                    format!("{name} already has {max_sessions} sessions"),
                ));
            }
            // Numbered and registered in one step, so a check that reads
            // `begun` finds every session numbered below it.
            let number = self.begun.fetch_add(1, Ordering::SeqCst);
            let revoke = Arc::new(Revoke::default());
            l.live.insert(number, (credential, revoke.clone()));
            l.left = None;
            drop(l);
            account.ledger.set_limits(limits);
            return Ok(Session {
                account,
                accounts: self.clone(),
                number,
                revoke,
                row: None,
            });
        }
    }

    /// Opens a home and measures its usage, on the blocking pool.
    async fn measure(
        &self,
        name: &str,
        home_path: PathBuf,
        limits: Limits,
    ) -> Result<Arc<Account>, RemoteError> {
        let max_depth = self.max_depth;
        // With other nodes' sessions live, the store's usage is the truth
        // (their uploads' reservations are in it, not on the disk yet).
        let stored = match &self.shared {
            Some(sh) => {
                let found = async {
                    if sh.store.sessions_of(name, sh.node_expiry).await? > 0 {
                        sh.store.usage(name).await
                    } else {
                        Ok(None)
                    }
                };
                match found.await {
                    Ok(u) => u.map(|u| u.0),
                    Err(e) => {
                        tracing::warn!(user = %crate::logfmt::q(name), error = %e, "cannot read usage from the state store");
                        return Err(e.to_remote());
                    }
                }
            }
            None => None,
        };
        let opened = match &self.objects {
            Some((bucket, store)) => {
                let home = ObjectHome::new(name, store.clone(), bucket.clone(), max_depth);
                let used = match stored {
                    Some(used) => Ok(used),
                    None => home.usage().await,
                };
                match used {
                    Ok(used) => Ok(Ok((Files::Objects(home), used))),
                    Err(e) => {
                        tracing::warn!(user = %crate::logfmt::q(name), error = %e, "cannot measure usage in the namespace");
                        return Err(e.to_remote());
                    }
                }
            }
            None => {
                tokio::task::spawn_blocking(move || {
                    let home = Home::open(&home_path)?.with_max_depth(max_depth);
                    let used = match stored {
                        Some(used) => used,
                        None => home.usage()?,
                    };
                    Ok::<_, std::io::Error>((Files::Disk(home), used))
                })
                .await
            }
        };
        let (home, used) = match opened {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::error!(user = %crate::logfmt::q(name), error = %e, "cannot open home");
                return Err(RemoteError::new(
                    ErrorKind::Io,
                    "cannot open your home directory",
                ));
            }
            Err(_) => return Err(RemoteError::bare(ErrorKind::Io)),
        };
        Ok(Arc::new(Account {
            name: name.to_string(),
            home: Arc::new(home),
            ledger: Arc::new(match &self.shared {
                Some(sh) => {
                    if stored.is_none() {
                        if let Err(e) = sh.store.set_usage(name, used).await {
                            tracing::warn!(user = %crate::logfmt::q(name), error = %e, "cannot record usage in the state store");
                            return Err(e.to_remote());
                        }
                    }
                    Ledger::mirrored(
                        used,
                        limits,
                        crate::ledger::Mirror::new(
                            sh.store.clone(),
                            name,
                            sh.exact,
                            sh.wake.clone(),
                            Some(sh.node.clone()),
                        ),
                    )
                }
                None => Ledger::new(used, limits),
            }),
            sessions: Mutex::new(Sessions {
                live: HashMap::new(),
                left: None,
            }),
            active: Mutex::new(HashMap::new()),
            share: Share::new(&self.share),
            cluster: self
                .shared
                .as_ref()
                .filter(|sh| sh.exact)
                .map(|sh| Cluster {
                    store: sh.store.clone(),
                    node: sh.node.clone(),
                    expiry: sh.upload_owner_gone,
                    runtime: tokio::runtime::Handle::current(),
                }),
        }))
    }

    /// A live user's account, if her home has been measured.
    fn get(&self, name: &str) -> Option<Arc<Account>> {
        lock(&self.live).get(name).and_then(|s| s.get()).cloned()
    }

    /// How many sessions have begun: every session numbered below it is
    /// registered with its account.
    pub fn begun(&self) -> u64 {
        self.begun.load(Ordering::SeqCst)
    }

    /// Applies the user store as read after `begun` sessions had begun
    /// (`state` gives each user's credential and limits, `None` for users
    /// no longer there): limits change at once; sessions numbered below
    /// `begun` whose user is gone or whose credential changed are ended.
    /// Later sessions wait for a later reading.
    pub fn apply(&self, begun: u64, state: impl Fn(&str) -> Option<UserState>) {
        let accounts: Vec<Arc<Account>> = lock(&self.live)
            .values()
            .filter_map(|s| s.get().cloned())
            .collect();
        for a in accounts {
            let now = state(&a.name);
            if let Some(now) = &now {
                a.ledger.set_limits(now.limits);
            }
            let sessions = lock(&a.sessions);
            for (number, (credential, revoke)) in &sessions.live {
                if *number >= begun {
                    continue;
                }
                let why = match &now {
                    None => "the account was removed",
                    Some(now) if now.credential != *credential => "the password was changed",
                    Some(_) => continue,
                };
                if revoke.revoke(why) {
                    tracing::info!(target: "audit", user = %crate::logfmt::q(&a.name), why, "session closed by the administrator");
                }
            }
        }
    }

    /// Credits what was removed behind the server's back (stale partials)
    /// to a live user's ledger; users without a session are measured afresh
    /// at their next login anyway.
    pub async fn credit(&self, name: &str, freed: Cost) {
        if let Some(a) = self.get(name) {
            a.ledger.give(freed);
        }
    }
}

impl Session {
    /// Keeps the session's row in the state store for as long as it lives.
    pub fn hold_row(&mut self, row: crate::store::nodes::SessionRow) {
        self.row = Some(row);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let kept = self.accounts.kept;
        let last = {
            let mut l = lock(&self.account.sessions);
            l.live.remove(&self.number);
            if l.live.is_empty() {
                l.left = Some(std::time::Instant::now());
            }
            l.live.is_empty()
        };
        if last {
            let accounts = self.accounts.clone();
            let name = self.account.name.clone();
            let forget = async move {
                tokio::time::sleep(kept).await;
                let mut live = lock(&accounts.live);
                let idle = live.get(&name).and_then(|s| s.get()).is_some_and(|a| {
                    let l = lock(&a.sessions);
                    l.live.is_empty() && l.left.is_some_and(|t| t.elapsed() >= kept)
                });
                if idle {
                    live.remove(&name);
                }
            };
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(forget);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_logins_of_one_user_share_one_account() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..200 {
            std::fs::create_dir(dir.path().join(i.to_string())).unwrap();
        }
        std::fs::write(dir.path().join("f"), [0u8; 1000]).unwrap();
        let accounts = Arc::new(Accounts::new(
            std::time::Duration::from_secs(60),
            crate::budget::ShareLimits {
                transfers: 4,
                bytes: 1 << 20,
                threads: 2,
                cpu_threads: 1,
            },
        ));
        let logins: Vec<_> = (0..8)
            .map(|_| {
                let accounts = accounts.clone();
                let home = dir.path().to_path_buf();
                tokio::spawn(async move {
                    accounts
                        .open("u", home, Limits::default(), 16, "key".into())
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut sessions = Vec::new();
        for l in logins {
            sessions.push(l.await.unwrap());
        }
        for s in &sessions {
            assert!(Arc::ptr_eq(&s.account, &sessions[0].account));
        }
        assert_eq!(
            sessions[0].account.usage().0,
            Cost {
                bytes: 1000 + 200 * crate::ledger::DIR_BYTES,
                entries: 201
            }
        );
        assert_eq!(lock(&sessions[0].account.sessions).live.len(), 8);

        // The store, read after these began, no longer has the user: all
        // end; a session begun after the reading is left for the next.
        let begun = accounts.begun();
        let later = accounts
            .open("u", dir.path().into(), Limits::default(), 16, "key".into())
            .await
            .unwrap();
        accounts.apply(begun, |_| None);
        assert!(sessions.iter().all(|s| s.revoke.is_revoked()));
        assert!(!later.revoke.is_revoked());
        let new_key = |_: &str| {
            Some(UserState {
                credential: "new".into(),
                limits: Limits {
                    bytes: Some(5),
                    entries: None,
                },
            })
        };
        accounts.apply(accounts.begun(), new_key);
        assert!(later.revoke.is_revoked());
        assert_eq!(later.account.usage().1.bytes, Some(5));
    }
}
