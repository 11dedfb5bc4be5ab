//! Running a search off the UI thread: on the server by `Find` (its
//! batches passed on as they come), locally by a bounded walk on the
//! blocking pool. One search runs at a time; a newer one, or a stop,
//! ends the one before.

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::msg::{Entry, EntryKind};
use tokio::sync::mpsc::UnboundedSender;

use super::{glob, keeps, Event, MAX_RESULTS};
use crate::client::{Client, FindQuery};
use crate::tui::action::{Action, Effect};
use crate::tui::pane::Side;

/// Entries a local search looks at, at most (the server's default).
pub const MAX_VISITED: u64 = 1_000_000;
/// Matches a local search sends at once, at most.
const BATCH: usize = 256;
/// A local batch goes at least this often while matches come.
const BATCH_EVERY: Duration = Duration::from_millis(200);

/// The search running now (0: none); others stop at their next look.
static CURRENT: AtomicU64 = AtomicU64::new(0);

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// Start search `id` under `dir` on `side`.
    Start {
        /// Its number.
        id: u64,
        /// Which pane.
        side: Side,
        /// The top directory.
        dir: String,
        /// What to look for.
        query: FindQuery,
    },
    /// Stop search `id`.
    Stop(u64),
}

impl From<Work> for Effect {
    fn from(w: Work) -> Effect {
        Effect::Find(w)
    }
}

/// News of search `id`.
#[derive(Clone, Debug)]
pub struct News {
    /// Which search.
    pub id: u64,
    /// What happened.
    pub event: Event,
}

fn current(id: u64) -> bool {
    CURRENT.load(Ordering::Relaxed) == id
}

/// Starts or stops a search; news come back as [`Action::Find`].
pub fn spawn(work: Work, client: Option<Client>, tx: UnboundedSender<Action>) {
    let (id, side, dir, query) = match work {
        Work::Stop(id) => {
            let _ = CURRENT.compare_exchange(id, 0, Ordering::Relaxed, Ordering::Relaxed);
            return;
        }
        Work::Start {
            id,
            side,
            dir,
            query,
        } => (id, side, dir, query),
    };
    CURRENT.store(id, Ordering::Relaxed);
    let send = move |event| {
        let _ = tx.send(Action::Find(News { id, event }));
    };
    match (side, client) {
        (Side::Local, _) => {
            tokio::task::spawn_blocking(move || walk(id, PathBuf::from(dir), &query, send));
        }
        (Side::Remote, Some(c)) => {
            tokio::spawn(remote(id, c, dir, query, send));
        }
        (Side::Remote, None) => send(Event::Failed("not connected".into())),
    }
}

/// A search on the server; stops (dropping the request) when stopped or
/// when [`MAX_RESULTS`] matches came.
async fn remote(
    id: u64,
    c: Client,
    dir: String,
    query: FindQuery,
    send: impl Fn(Event) + Send + Sync + 'static,
) {
    let got = Arc::new(AtomicUsize::new(0));
    let send = Arc::new(send);
    let (g, s) = (got.clone(), send.clone());
    let search = c.find_with(&dir, &query, move |batch| {
        if current(id) {
            g.fetch_add(batch.len(), Ordering::Relaxed);
            s(Event::Batch(batch));
        }
    });
    let enough = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if !current(id) || got.load(Ordering::Relaxed) >= MAX_RESULTS {
                return;
            }
        }
    };
    tokio::select! {
        r = search => {
            if current(id) {
                send(match r {
                    Ok(true) => Event::Done(None),
                    Ok(false) => Event::Done(Some(
                        "the server stopped at its limits (entries looked at, or time); search a smaller directory".into(),
                    )),
                    Err(e) => Event::Failed(e.to_string()),
                });
            }
        }
        () = enough => {
            if current(id) {
                send(Event::Done(Some(format!("more than {MAX_RESULTS} matches"))));
            }
        }
    }
}

/// A local search: directories breadth first, links never followed,
/// at most [`MAX_VISITED`] entries looked at and [`MAX_RESULTS`] kept.
/// Each match goes with its real path; its entry's name is that path
/// made readable, for showing.
pub fn walk(id: u64, root: PathBuf, query: &FindQuery, send: impl Fn(Event)) {
    let matcher = match glob(&query.pattern) {
        Ok(m) => m,
        Err(e) => return send(Event::Failed(e)),
    };
    if let Err(e) = std::fs::read_dir(&root) {
        return send(Event::Failed(format!("{}: {e}", root.display())));
    }
    let mut dirs = VecDeque::from([root]);
    let (mut visited, mut found) = (0u64, 0usize);
    let mut batch = Vec::new();
    let mut sent = Instant::now();
    let mut end = None;
    'walk: while let Some(dir) = dirs.pop_front() {
        // A directory gone or unreadable meanwhile: the rest is searched.
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in rd.flatten() {
            visited += 1;
            if visited % 1024 == 0 && !current(id) {
                return;
            }
            if visited > MAX_VISITED {
                end = Some(format!(
                    "looked at {MAX_VISITED} entries, the most one search does; search a smaller directory"
                ));
                break 'walk;
            }
            let Ok(ft) = item.file_type() else { continue };
            if ft.is_dir() {
                dirs.push_back(item.path());
            }
            let name = item.file_name();
            if !matcher.is_match(&*name.to_string_lossy()) {
                continue;
            }
            let Ok(md) = item.metadata() else { continue };
            let e = Entry {
                name: item.path().display().to_string(),
                kind: EntryKind::classify(ft.is_symlink(), ft.is_dir(), ft.is_file()),
                size: md.len(),
                mtime: md.mtime(),
                mode: md.mode() & 0o7777,
            };
            if !keeps(query, &e) {
                continue;
            }
            if found == MAX_RESULTS {
                end = Some(format!("more than {MAX_RESULTS} matches"));
                break 'walk;
            }
            found += 1;
            batch.push((e, item.path()));
            if batch.len() >= BATCH || sent.elapsed() >= BATCH_EVERY {
                if !current(id) {
                    return;
                }
                send(Event::Local(std::mem::take(&mut batch)));
                sent = Instant::now();
            }
        }
    }
    if !current(id) {
        return;
    }
    if !batch.is_empty() {
        send(Event::Local(batch));
    }
    send(Event::Done(end));
}
