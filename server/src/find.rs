//! Searches by name (`Find`): the tree under a directory walked in steps
//! on the user's share of threads, matches sent in batches as a listing's
//! are (each waiting for the client's reading in async, holding no
//! thread), and the whole search bounded by entries looked at
//! (`limits.find_max_visited`) and time (`limits.find_max_secs`); at a
//! bound the last batch says the answer is incomplete.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_proto::msg::{Entry, EntryKind, FIND_PATTERN_MAX};
use ferry_proto::{ErrorKind, RemoteError, RemotePath, Reply};

use crate::accounts::Account;
use crate::jail::io_error;
use crate::outbox::Outbox;
use crate::threads::Threads;

/// Entries one step looks at, at most.
pub const STEP_VISITS: u64 = 4096;

/// Bytes of paths one batch carries at most (plus one path), so a batch
/// of long paths stays far below the largest frame.
pub const BATCH_BYTES: usize = 256 << 10;

/// Matches gathered for the next batch.
#[derive(Debug, Default)]
struct Batch {
    entries: Vec<Entry>,
    bytes: usize,
    want: usize,
}

impl Batch {
    fn push(&mut self, e: Entry) {
        self.bytes += e.name.len() + 32;
        self.entries.push(e);
    }

    fn full(&self) -> bool {
        self.entries.len() >= self.want || self.bytes >= BATCH_BYTES
    }

    fn take(&mut self) -> Vec<Entry> {
        self.bytes = 0;
        std::mem::take(&mut self.entries)
    }
}

/// What a search looks for.
#[derive(Clone, Debug)]
pub struct Query {
    /// Matched against names.
    pub glob: globset::GlobMatcher,
    /// Regular files of at least this size.
    pub min_size: Option<u64>,
    /// Regular files of at most this size.
    pub max_size: Option<u64>,
    /// Modified after (Unix seconds).
    pub newer: Option<i64>,
    /// Modified before (Unix seconds).
    pub older: Option<i64>,
}

impl Query {
    /// Compiles a pattern; a bad or too long one is `BadRequest`.
    pub fn new(pattern: &str) -> Result<Query, RemoteError> {
        if pattern.len() > FIND_PATTERN_MAX || pattern.is_empty() {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("a pattern has 1 to {FIND_PATTERN_MAX} bytes"),
            ));
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| RemoteError::new(ErrorKind::BadRequest, format!("pattern: {e}")))?
            .compile_matcher();
        Ok(Query {
            glob,
            min_size: None,
            max_size: None,
            newer: None,
            older: None,
        })
    }

    /// Whether the name alone may match (looked at before any stat).
    fn name_matches(&self, name: &str) -> bool {
        self.glob.is_match(name)
    }

    /// Whether an entry (its name matching) passes the filters.
    fn keeps(&self, e: &Entry) -> bool {
        let sized = self.min_size.is_some() || self.max_size.is_some();
        if sized
            && (e.kind != EntryKind::File
                || self.min_size.is_some_and(|m| e.size < m)
                || self.max_size.is_some_and(|m| e.size > m))
        {
            return false;
        }
        !(self.newer.is_some_and(|t| e.mtime <= t) || self.older.is_some_and(|t| e.mtime >= t))
    }
}

/// The limits of one search.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Matches per batch.
    pub batch: usize,
    /// Entries looked at, at most.
    pub max_visited: u64,
    /// Time, at most.
    pub max_time: Duration,
}

/// A search in progress over either kind of home.
enum Search {
    Disk(DiskSearch),
    Objects(ObjectSearch),
}

/// Runs a search, answering with `Found` batches.
pub async fn find(
    id: u32,
    root: Result<RemotePath, RemoteError>,
    query: Result<Query, RemoteError>,
    account: Arc<Account>,
    bounds: Bounds,
    out: Outbox,
    threads: Threads,
) {
    let internal = || RemoteError::new(ErrorKind::Io, "internal error");
    let started = Instant::now();
    let (root, query) = match (root, query) {
        (Ok(r), Ok(q)) => (r, q),
        (Err(e), _) | (_, Err(e)) => {
            out.reply(id, Err(e)).await;
            return;
        }
    };
    let a = account.clone();
    let opened = threads.run(move || Search::open(&a, root, query)).await;
    let mut search = match opened {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            out.reply(id, Err(e)).await;
            return;
        }
        None => {
            out.reply(id, Err(internal())).await;
            return;
        }
    };
    let mut found = Batch {
        want: bounds.batch.max(1),
        ..Batch::default()
    };
    let mut visited = 0u64;
    loop {
        let over = visited >= bounds.max_visited || started.elapsed() >= bounds.max_time;
        let budget = STEP_VISITS.min(bounds.max_visited.saturating_sub(visited));
        let (done, step) = if over {
            (true, Ok(0))
        } else {
            let a = account.clone();
            let Some((back, batch, r)) = threads
                .run(move || {
                    let r = search.step(&a, budget, &mut found);
                    (search, found, r)
                })
                .await
            else {
                out.reply(id, Err(internal())).await;
                return;
            };
            search = back;
            found = batch;
            match r {
                Ok((n, finished)) => (finished, Ok(n)),
                Err(e) => (true, Err(e)),
            }
        };
        let n = match step {
            Ok(n) => n,
            Err(e) => {
                out.reply(id, Err(e)).await;
                return;
            }
        };
        visited += n;
        if done || found.full() {
            let entries = found.take();
            let reply = Reply::Found {
                entries,
                more: !done,
                complete: !over,
            };
            let sent = out.reply(id, Ok(reply)).await;
            if !sent || done {
                return;
            }
        }
    }
}

impl Search {
    fn open(account: &Account, root: RemotePath, query: Query) -> Result<Search, RemoteError> {
        if let Some(home) = account.home.objects() {
            match home.node(&root)? {
                Some(n) if n.is_dir => {}
                Some(_) => {
                    return Err(RemoteError::new(ErrorKind::NotADirectory, root.to_string()))
                }
                None => return Err(RemoteError::new(ErrorKind::NotFound, root.to_string())),
            }
            return Ok(Search::Objects(ObjectSearch {
                home: home.clone(),
                root: root.to_string(),
                after: root.to_string(),
                query,
            }));
        }
        let home = account.home.disk()?;
        let md = home
            .dir()
            .symlink_metadata(root.to_relative())
            .map_err(|e| io_error(&root, e))?;
        if !md.is_dir() {
            return Err(RemoteError::new(ErrorKind::NotADirectory, root.to_string()));
        }
        Ok(Search::Disk(DiskSearch {
            dirs: VecDeque::from([root]),
            current: None,
            query,
        }))
    }

    /// Looks at up to `visits` entries, adding matches to `found` until
    /// it is full; returns how many were looked at and whether the tree
    /// is done.
    fn step(
        &mut self,
        account: &Account,
        visits: u64,
        found: &mut Batch,
    ) -> Result<(u64, bool), RemoteError> {
        match self {
            Search::Disk(s) => s.step(account.home.disk()?, visits, found),
            Search::Objects(s) => s.step(visits, found),
        }
    }
}

/// A search of a home on disk: directories still to read, and the one
/// being read (one directory open at a time).
struct DiskSearch {
    dirs: VecDeque<RemotePath>,
    current: Option<(RemotePath, cap_std::fs::ReadDir)>,
    query: Query,
}

impl DiskSearch {
    fn step(
        &mut self,
        home: &crate::jail::Home,
        visits: u64,
        found: &mut Batch,
    ) -> Result<(u64, bool), RemoteError> {
        let mut n = 0;
        while n < visits && !found.full() {
            let Some((dir, rd)) = &mut self.current else {
                let Some(next) = self.dirs.pop_front() else {
                    return Ok((n, true));
                };
                match home.dir().read_dir(next.to_relative()) {
                    Ok(rd) => self.current = Some((next, rd)),
                    // Gone or changed meanwhile: what is left is searched.
                    Err(e)
                        if !next.is_root() && e.kind() != std::io::ErrorKind::PermissionDenied =>
                    {
                        tracing::debug!(path = %crate::logfmt::q(&next), error = %e, "find: a directory went");
                    }
                    Err(e) => return Err(io_error(&next, e)),
                }
                continue;
            };
            let Some(item) = rd.next() else {
                self.current = None;
                continue;
            };
            n += 1;
            let Ok(item) = item else { continue };
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            // Names no path may hold (the partial area) are not searched.
            let Ok(path) = dir.child(name) else { continue };
            let Ok(ft) = item.file_type() else { continue };
            if ft.is_dir() {
                self.dirs.push_back(path.clone());
            }
            if !self.query.name_matches(name) {
                continue;
            }
            let Ok(md) = item.metadata() else { continue };
            let e = crate::jail::entry(path.to_string(), &md);
            if self.query.keeps(&e) {
                found.push(e);
            }
        }
        Ok((n, false))
    }
}

/// A search of a home in object storage: the subtree's rows in path
/// order, read a step at a time after the last path seen.
struct ObjectSearch {
    home: crate::objects::home::ObjectHome,
    root: String,
    after: String,
    query: Query,
}

impl ObjectSearch {
    fn step(&mut self, visits: u64, found: &mut Batch) -> Result<(u64, bool), RemoteError> {
        let (store, user) = (&self.home.store, &self.home.user);
        let n = usize::try_from(visits).unwrap_or(usize::MAX).max(1);
        let rows = store
            .wait(store.ns_subtree_after(user, &self.root, &self.after, n))
            .map_err(|e| crate::objects::home::store_error(&e))?;
        let mut seen = 0;
        for (path, node) in &rows {
            if found.full() {
                // The rest is read again by the next step.
                return Ok((seen, false));
            }
            seen += 1;
            self.after.clone_from(path);
            if !self.query.name_matches(&node.name) {
                continue;
            }
            let mut e = crate::objects::home::entry(node);
            e.name.clone_from(path);
            if self.query.keeps(&e) {
                found.push(e);
            }
        }
        Ok((seen, rows.len() < n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: EntryKind, size: u64, mtime: i64) -> Entry {
        Entry {
            name: "x".into(),
            kind,
            size,
            mtime,
            mode: 0o644,
        }
    }

    #[test]
    fn globs_match_names_and_filters_hold() {
        let q = Query::new("*.txt").unwrap();
        assert!(q.name_matches("a.txt") && !q.name_matches("a.txt.gz"));
        let q = Query::new("[ab]?c").unwrap();
        assert!(q.name_matches("axc") && !q.name_matches("cxc"));
        assert!(Query::new("").is_err());
        assert!(Query::new(&"*".repeat(FIND_PATTERN_MAX + 1)).is_err());
        assert!(Query::new("[unclosed").is_err());
        let mut q = Query::new("*").unwrap();
        q.min_size = Some(10);
        assert!(q.keeps(&e(EntryKind::File, 10, 0)));
        assert!(!q.keeps(&e(EntryKind::File, 9, 0)));
        assert!(!q.keeps(&e(EntryKind::Dir, 4096, 0)), "sizes select files");
        let mut q = Query::new("*").unwrap();
        q.newer = Some(100);
        q.older = Some(200);
        assert!(q.keeps(&e(EntryKind::Dir, 0, 150)));
        assert!(!q.keeps(&e(EntryKind::File, 0, 100)));
        assert!(!q.keeps(&e(EntryKind::File, 0, 200)));
    }
}
