//! Carries out effects: file system and network work on background tasks,
//! each reporting back as actions. The UI never waits on any of it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ferry_proto::msg::{Entry, EntryKind, RemoveMode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::action::{Action, Effect};
use super::listing::Listing;
use super::pane::Side;
use crate::client::{connect, Client, ClientError, ConnectOptions, Security};

/// How often an open session asks the server something cheap (the quota),
/// well inside the server's idle timeout (600 s by default), so an idle
/// TUI stays connected. `FERRY_KEEPALIVE` (seconds) overrides it.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// How often the local pane's directory is checked for changes on disk.
const WATCH: Duration = Duration::from_secs(2);
/// A keepalive not answered in this time means the link is dead.
const KEEPALIVE_ANSWER: Duration = Duration::from_secs(30);

/// The effect runner.
pub struct Runtime {
    tx: mpsc::UnboundedSender<Action>,
    client: Arc<Mutex<Option<Client>>>,
    last: Option<ConnectOptions>,
    /// The jobs started (the queue decides which, and how many at once).
    jobs: HashMap<u64, JoinHandle<()>>,
    /// The speed limit of all transfers.
    limiter: crate::transfer::RateLimiter,
    /// Remembers the queue's settings in the config, off this thread.
    queue_settings: super::queue::saver::Latest<(usize, u64)>,
    /// The local pane's directory and its mtime when last listed.
    watched: Arc<Mutex<Option<Watched>>>,
    /// The newest listing asked for, per pane: an older one still being
    /// read or sorted stops there (the pane would drop it anyway).
    local_latest: Arc<AtomicU64>,
    remote_latest: Arc<AtomicU64>,
    /// Local listings run one after another on one thread of their own,
    /// so the re-listing every 2 s reuses one malloc arena instead of
    /// spreading 100,000 names over the blocking pool's threads' arenas.
    lister: Option<std::sync::mpsc::Sender<Work>>,
    /// The viewer's reads and its one search.
    viewer: super::viewer::fetch::Fetcher,
    /// The comparison's hashing.
    hasher: super::compare_run::Hasher,
    /// The sync dialog's planning.
    planner: super::sync_dialog::run::Planner,
}

/// Work for the listing thread.
type Work = Box<dyn FnOnce() + Send>;

/// Starts the listing thread; `None` if it cannot start (listings then
/// use the blocking pool).
fn start_lister() -> Option<std::sync::mpsc::Sender<Work>> {
    let (tx, rx) = std::sync::mpsc::channel::<Work>();
    std::thread::Builder::new()
        .name("ferry-list".into())
        .spawn(move || rx.into_iter().for_each(|work| work()))
        .ok()
        .map(|_| tx)
}

/// A directory and its mtime when last listed.
type Watched = (PathBuf, Option<SystemTime>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads a local directory into entries (symlinks shown as links, not
/// followed).
pub fn read_local(dir: &Path) -> Result<Vec<Entry>, String> {
    use std::os::unix::fs::MetadataExt;
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for item in rd.flatten() {
        let Ok(md) = std::fs::symlink_metadata(item.path()) else {
            continue;
        };
        let ft = md.file_type();
        // A link shows as one (`@`) with its own size, as on the server's
        // side and in `ls -l`; Enter opens it when it leads to a directory.
        let kind = EntryKind::classify(ft.is_symlink(), ft.is_dir(), ft.is_file());
        out.push(Entry {
            name: item.file_name().to_string_lossy().into_owned(),
            kind,
            size: md.len(),
            mtime: md.mtime(),
            mode: md.mode() & 0o7777,
        });
    }
    Ok(out)
}

impl Runtime {
    /// A runtime reporting on `tx`.
    pub fn new(tx: mpsc::UnboundedSender<Action>) -> Runtime {
        let rt = Runtime {
            tx,
            client: Arc::new(Mutex::new(None)),
            last: None,
            jobs: HashMap::new(),
            limiter: crate::transfer::RateLimiter::new(0),
            queue_settings: super::queue::saver::Latest::new(|(parallel, rate)| {
                super::config::remember_queue(parallel, rate)
            }),
            watched: Arc::new(Mutex::new(None)),
            local_latest: Arc::new(AtomicU64::new(0)),
            remote_latest: Arc::new(AtomicU64::new(0)),
            lister: start_lister(),
            viewer: Default::default(),
            hasher: Default::default(),
            planner: Default::default(),
        };
        rt.watch_local();
        rt
    }

    /// Watches the local pane's directory: when its mtime moves (an entry
    /// was added, removed or renamed by anyone), says so, at most once per
    /// [`WATCH`], so a download of thousands of files re-lists it every
    /// two seconds, not once per file.
    fn watch_local(&self) {
        let watched = self.watched.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH).await;
                let Some((dir, seen)) = lock(&watched).clone() else {
                    continue;
                };
                let d = dir.clone();
                let now = tokio::task::spawn_blocking(move || mtime(&d))
                    .await
                    .unwrap_or(None);
                if now != seen {
                    if let Some(w) = lock(&watched).as_mut() {
                        if w.0 == dir {
                            w.1 = now;
                        }
                    }
                    if tx.send(Action::LocalChanged(dir)).is_err() {
                        return;
                    }
                }
            }
        });
    }

    fn client(&self) -> Option<Client> {
        lock(&self.client).clone()
    }

    /// Ends the session cleanly (on quit).
    pub async fn close(&self) {
        if let Some(c) = self.client() {
            c.close().await;
        }
    }

    fn send(&self, a: Action) {
        let _ = self.tx.send(a);
    }

    /// Runs one effect.
    pub fn run(&mut self, effect: Effect) {
        let tx = self.tx.clone();
        match effect {
            Effect::Quit => {
                for (_, h) in self.jobs.drain() {
                    h.abort();
                }
            }
            Effect::Within(work) => super::within::run::spawn(work, self.client(), tx),
            Effect::Find(work) => super::find::run::spawn(work, self.client(), tx),
            Effect::Compare(work) => self.hasher.run(work, self.client(), tx),
            Effect::Sync(work) => self.planner.run(work, self.client(), tx),
            Effect::View(work) => {
                let c = self.client();
                self.viewer.run(work, c, tx);
            }
            Effect::Edit(work) => super::edit_run::run(work, self.client(), tx),
            Effect::SaveBookmarks(list) => super::bookmarks::save(list, tx),
            Effect::ListLocal {
                path,
                generation,
                order,
            } => {
                // Read and sorted off the UI thread: 100,000 entries take
                // ~0.5 s to read and ~0.1 s to sort.
                let watched = self.watched.clone();
                let latest = self.local_latest.clone();
                latest.store(generation, Ordering::Relaxed);
                self.on_lister(move || {
                    let current = || latest.load(Ordering::Relaxed) == generation;
                    if !current() {
                        return;
                    }
                    // The mtime before reading: a change during the read
                    // shows as a change on the next check.
                    *lock(&watched) = Some((path.clone(), mtime(&path)));
                    let result = read_local(&path);
                    if !current() {
                        return;
                    }
                    let result = result.map(|entries| Listing::sorted(entries, order));
                    if current() {
                        let _ = tx.send(Action::LocalListed { generation, result });
                    }
                });
            }
            Effect::ListRemote {
                path,
                generation,
                order,
            } => {
                let Some(c) = self.client() else { return };
                let latest = self.remote_latest.clone();
                latest.store(generation, Ordering::Relaxed);
                tokio::spawn(async move {
                    let current = || latest.load(Ordering::Relaxed) == generation;
                    // Batches show as they come; the whole listing, sorted
                    // off the UI thread, replaces them at the end.
                    let mut all = Vec::new();
                    let t = tx.clone();
                    let r = c
                        .list_with(&path.to_string(), |entries| {
                            if current() {
                                all.extend(entries.iter().cloned());
                                let _ = t.send(Action::RemoteBatch {
                                    generation,
                                    entries,
                                    done: false,
                                });
                            }
                        })
                        .await;
                    if !current() {
                        return;
                    }
                    let _ = match r {
                        Ok(()) => {
                            match tokio::task::spawn_blocking(move || Listing::sorted(all, order))
                                .await
                            {
                                Ok(listing) if current() => tx.send(Action::RemoteListed {
                                    generation,
                                    listing,
                                }),
                                Ok(_) => return,
                                Err(e) => tx.send(Action::RemoteListFailed {
                                    generation,
                                    error: format!("{path}: {e}"),
                                }),
                            }
                        }
                        Err(e) => tx.send(Action::RemoteListFailed {
                            generation,
                            error: format!("{path}: {e}"),
                        }),
                    };
                });
            }
            Effect::Quota => {
                let Some(c) = self.client() else { return };
                tokio::spawn(async move {
                    if let Ok((used, limit)) = c.quota().await {
                        let _ = tx.send(Action::Quota { used, limit });
                    }
                });
            }
            Effect::Mkdir(side, path) => self.op(side, move |c| async move {
                match c {
                    Some(c) => c
                        .mkdir(&path, false)
                        .await
                        .map(|_| format!("created {path}"))
                        .map_err(|e| format!("{path}: {e}")),
                    None => {
                        local(move || {
                            std::fs::create_dir(&path)
                                .map(|_| format!("created {path}"))
                                .map_err(|e| format!("{path}: {e}"))
                        })
                        .await
                    }
                }
            }),
            Effect::Rename(side, from, to) => self.op(side, move |c| async move {
                match c {
                    Some(c) => c
                        .rename(&from, &to, false)
                        .await
                        .map(|_| format!("renamed to {to}"))
                        .map_err(|e| format!("cannot move {from} to {to}: {e}")),
                    None => {
                        local(move || {
                            if Path::new(&to).exists() {
                                return Err(format!("{to}: already exists"));
                            }
                            std::fs::rename(&from, &to)
                                .map(|_| format!("renamed to {to}"))
                                .map_err(|e| format!("cannot move {from} to {to}: {e}"))
                        })
                        .await
                    }
                }
            }),
            Effect::Move { side, from, to_dir } => self.op(side, move |c| async move {
                let n = from.len();
                match c {
                    Some(c) => {
                        for p in &from {
                            let to = into_dir(&to_dir, p);
                            c.rename(p, &to, false)
                                .await
                                .map_err(|e| format!("cannot move {p} to {to}: {e}"))?;
                        }
                    }
                    None => {
                        let to_dir = to_dir.clone();
                        local(move || {
                            if !Path::new(&to_dir).is_dir() {
                                return Err(format!("{to_dir}: no such directory"));
                            }
                            for p in &from {
                                let to = into_dir(&to_dir, p);
                                if Path::new(&to).exists() {
                                    return Err(format!("{to}: already exists"));
                                }
                                std::fs::rename(p, &to)
                                    .map_err(|e| format!("cannot move {p} to {to}: {e}"))?;
                            }
                            Ok(String::new())
                        })
                        .await?;
                    }
                }
                Ok(format!(
                    "moved {n} entr{} to {to_dir}",
                    if n == 1 { "y" } else { "ies" }
                ))
            }),
            Effect::Chmod { side, paths, mode } => {
                self.op(side, move |c| super::chmod::apply(c, paths, mode))
            }
            Effect::Delete(side, paths) => self.op(side, move |c| async move {
                let n = paths.len();
                match c {
                    Some(c) => {
                        for p in &paths {
                            c.remove(p, RemoveMode::Recursive)
                                .await
                                .map_err(|e| format!("{p}: {e}"))?;
                        }
                        Ok(format!(
                            "deleted {n} entr{}",
                            if n == 1 { "y" } else { "ies" }
                        ))
                    }
                    None => {
                        local(move || {
                            for p in &paths {
                                let md = std::fs::symlink_metadata(p)
                                    .map_err(|e| format!("{p}: {e}"))?;
                                let r = if md.is_dir() {
                                    std::fs::remove_dir_all(p)
                                } else {
                                    std::fs::remove_file(p)
                                };
                                r.map_err(|e| format!("{p}: {e}"))?;
                            }
                            Ok(format!(
                                "deleted {n} entr{}",
                                if n == 1 { "y" } else { "ies" }
                            ))
                        })
                        .await
                    }
                }
            }),
            Effect::StartJob { job, spec } => {
                // The client of now: the queue starts a job only while its
                // login is the one connected.
                let client = self.client();
                let limiter = self.limiter.clone();
                let handle = tokio::spawn(async move {
                    let Some(c) = client else {
                        let _ = tx.send(Action::JobEnded {
                            job,
                            result: Err("connection lost: not connected".into()),
                        });
                        return;
                    };
                    let what = spec.label();
                    tracing::info!(job, direction = ?spec.direction, %what, dest = %spec.dest, "job started");
                    let result = super::jobs::run(&c, job, &spec, &tx, limiter).await;
                    match &result {
                        Ok(()) => tracing::info!(job, %what, "job ended"),
                        Err(e) => tracing::warn!(job, %what, "job failed: {e}"),
                    }
                    let _ = tx.send(Action::JobEnded { job, result });
                });
                self.jobs.retain(|_, h| !h.is_finished());
                self.jobs.insert(job, handle);
            }
            Effect::CancelJob(job) => {
                // Dropping the job's futures cancels its transfers on the
                // server; partial files stay for a resume.
                // It is reported once its future is gone, so no file of
                // it lands after the queue says "cancelled".
                let ended = Action::JobEnded {
                    job,
                    result: Err("cancelled".into()),
                };
                match self.jobs.remove(&job) {
                    Some(h) => {
                        h.abort();
                        let tx = self.tx.clone();
                        tokio::spawn(async move {
                            let _ = h.await;
                            let _ = tx.send(ended);
                        });
                    }
                    None => self.send(ended),
                }
            }
            Effect::QueueSettings { parallel, rate } => {
                self.limiter.set_rate(rate);
                self.queue_settings.save((parallel, rate));
            }
            Effect::Connect(opts) => {
                self.last = Some(*opts.clone());
                self.connect(*opts, false);
            }
            Effect::Reconnect => {
                if let Some(opts) = self.last.clone() {
                    self.connect(opts, false);
                }
            }
            Effect::TrustAndConnect(fp) => {
                if let Some(mut opts) = self.last.clone() {
                    if let Security::Tls(t) = &mut opts.security {
                        t.fingerprint = Some(fp);
                    }
                    self.connect(opts, true);
                }
            }
        }
    }

    /// Runs `work` on the listing thread (or the blocking pool).
    fn on_lister(&self, work: impl FnOnce() + Send + 'static) {
        let work: Work = Box::new(work);
        let unsent = match &self.lister {
            Some(l) => l.send(work).err().map(|e| e.0),
            None => Some(work),
        };
        if let Some(work) = unsent {
            tokio::task::spawn_blocking(work);
        }
    }

    /// Runs a file operation on one side, then refreshes that side.
    fn op<F, Fut>(&self, side: Side, work: F)
    where
        F: FnOnce(Option<Client>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<String, String>> + Send,
    {
        let c = if side == Side::Remote {
            self.client()
        } else {
            None
        };
        if side == Side::Remote && c.is_none() {
            self.send(Action::OpFailed("not connected".into()));
            return;
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _ = match work(c).await {
                Ok(m) => tx.send(Action::OpDone {
                    message: Some(m),
                    refresh: Some(side),
                }),
                Err(e) => {
                    tracing::warn!("{e}");
                    tx.send(Action::OpFailed(e))
                }
            };
        });
    }

    fn connect(&mut self, opts: ConnectOptions, remember: bool) {
        let tx = self.tx.clone();
        let slot = self.client.clone();
        tokio::spawn(async move {
            match connect(&opts).await {
                Ok(c) => {
                    if remember {
                        if let (Security::Tls(t), Some(fp)) =
                            (&opts.security, &c.identity().fingerprint)
                        {
                            if let Some(file) = &t.known_servers {
                                let _ = crate::client::tls::remember(file, &opts.server, fp);
                            }
                        }
                    }
                    tracing::info!(server = %opts.server, user = %opts.user, "connected");
                    // A session without a trust store (the demo, on a
                    // random port) leaves no trace in the recent list.
                    let traceless = matches!(
                        &opts.security,
                        Security::Tls(t) if t.known_servers.is_none()
                    );
                    if !traceless {
                        super::config::remember_recent(&opts.server, &opts.user);
                    }
                    let identity = c.identity().clone();
                    *lock(&slot) = Some(c.clone());
                    let _ = tx.send(Action::Connected {
                        label: format!("{}@{}", opts.user, opts.server),
                        identity,
                    });
                    // Watch for the connection dropping; keep it alive.
                    let every = super::env_secs("FERRY_KEEPALIVE").unwrap_or(KEEPALIVE);
                    let mut last_ping = tokio::time::Instant::now();
                    loop {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        if c.closed_reason().is_none() && last_ping.elapsed() >= every {
                            last_ping = tokio::time::Instant::now();
                            match tokio::time::timeout(KEEPALIVE_ANSWER, c.quota()).await {
                                Ok(Ok((used, limit))) => {
                                    let _ = tx.send(Action::Quota { used, limit });
                                }
                                // A dropped link shows in closed_reason below.
                                Ok(Err(_)) => {}
                                Err(_) => {
                                    let reason = format!(
                                        "the server did not answer for {} s",
                                        KEEPALIVE_ANSWER.as_secs()
                                    );
                                    tracing::warn!(server = %opts.server, "{reason}");
                                    forget(&slot, &c);
                                    let _ = tx.send(Action::Disconnected(reason));
                                    return;
                                }
                            }
                        }
                        if let Some(reason) = c.closed_reason() {
                            tracing::warn!(server = %opts.server, "connection lost: {reason}");
                            forget(&slot, &c);
                            let _ = tx.send(Action::Disconnected(reason));
                            return;
                        }
                        if !lock(&slot).as_ref().is_some_and(|cur| cur.same_as(&c)) {
                            return; // replaced by a newer connection
                        }
                    }
                }
                Err(ClientError::UnknownServer {
                    server,
                    fingerprint,
                }) => {
                    let _ = tx.send(Action::UnknownServer {
                        server,
                        fingerprint,
                    });
                }
                Err(e) => {
                    tracing::warn!(server = %opts.server, user = %opts.user, "connect failed: {e}");
                    let _ = tx.send(Action::ConnectFailed(e.to_string()));
                }
            }
        });
    }
}

fn mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

/// `dir/name` for the entry at path `p`.
fn into_dir(dir: &str, p: &str) -> String {
    let name = p.rsplit('/').next().unwrap_or(p);
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Drops `c` from the slot unless a newer connection took its place.
fn forget(slot: &Mutex<Option<Client>>, c: &Client) {
    let mut s = lock(slot);
    if s.as_ref().is_some_and(|cur| cur.same_as(c)) {
        *s = None;
    }
}

async fn local<F>(work: F) -> Result<String, String>
where
    F: FnOnce() -> Result<String, String> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}
