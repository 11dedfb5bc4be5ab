//! Comparing the two panes' directories (`=` by size and time, `#` by
//! contents): a verdict per name, found by the sync plan's comparison.

use std::collections::HashMap;
use std::path::PathBuf;

use ferry_proto::msg::{Entry, EntryKind, PARTIALS_DIR};
use ferry_proto::RemotePath;

use super::pane::Side;
use crate::sync::plan::{compare_dir, Compare, Item, Kind, Step};
use crate::sync::Rules;

/// Bytes `#` hashes on this machine at most per comparison; files past
/// it are shown as not hashed.
pub const HASH_CAP: u64 = 4 << 30;

/// How one name differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diff {
    /// Only in the local pane.
    OnlyLocal,
    /// Only in the remote pane.
    OnlyRemote,
    /// Files on both sides that differ; which side is newer (by time)
    /// and which is larger, where they differ.
    Changed {
        /// The side with the later modification time.
        newer: Option<Side>,
        /// The side with more bytes.
        larger: Option<Side>,
    },
    /// A file on one side, a directory (or link) on the other.
    Kind,
    /// Files of equal size being hashed (`#`).
    Hashing,
    /// Could not be hashed (the cap, or an error).
    Unknown,
}

/// What the hashing of one name needs to be remembered by.
type Stamp = (u64, i64);

/// Hashing work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareWork {
    /// Hash these files (name, size) on both sides and report each.
    Hash {
        /// Tag of this run.
        job: u64,
        /// The local directory.
        local_dir: PathBuf,
        /// The remote directory.
        remote_dir: RemotePath,
        /// Names and sizes.
        files: Vec<(String, u64)>,
    },
    /// Stop a run (its results would be dropped anyway).
    Cancel(u64),
}

/// What the runtime reports about hashing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareNews {
    /// One file hashed on both sides: the same contents or not, or why
    /// it could not be hashed.
    Hashed {
        /// Tag of the run.
        job: u64,
        /// The name.
        name: String,
        /// Same contents?
        same: Result<bool, String>,
    },
    /// The run ended (after its last `Hashed`).
    Done {
        /// Tag of the run.
        job: u64,
    },
}

/// A comparison of the two panes' directories.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// The local pane's directory it is for.
    pub local_dir: String,
    /// The remote pane's directory it is for.
    pub remote_dir: String,
    /// By contents (`#`) rather than size and time.
    pub by_hash: bool,
    /// The names that differ (or are being hashed).
    pub diffs: HashMap<String, Diff>,
    /// Contents compared so far, kept while both files stay as they were.
    hashed: HashMap<String, (Stamp, Stamp, Result<bool, String>)>,
    /// Names being hashed, with the stamps they were listed with.
    pending: HashMap<String, (Stamp, Stamp)>,
    /// The hashing run going on, if any.
    pub job: Option<u64>,
    /// Names with a badge on the local and the remote pane.
    shown: [usize; 2],
}

fn items(entries: &[Entry]) -> Vec<Item> {
    let mut items: Vec<Item> = entries
        .iter()
        .filter(|e| e.name != PARTIALS_DIR)
        .map(|e| {
            let kind = match e.kind {
                EntryKind::File => Kind::File,
                EntryKind::Dir => Kind::Dir,
                EntryKind::Symlink | EntryKind::Other => Kind::Other,
            };
            Item {
                name: e.name.clone(),
                kind,
                size: if kind == Kind::File { e.size } else { 0 },
                mtime: e.mtime,
            }
        })
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name));
    items
}

fn find<'a>(items: &'a [Item], name: &str) -> Option<&'a Item> {
    items
        .binary_search_by(|i| i.name.as_str().cmp(name))
        .ok()
        .map(|k| &items[k])
}

fn which<T: Ord>(local: T, remote: T) -> Option<Side> {
    match local.cmp(&remote) {
        std::cmp::Ordering::Greater => Some(Side::Local),
        std::cmp::Ordering::Less => Some(Side::Remote),
        std::cmp::Ordering::Equal => None,
    }
}

fn changed(l: Stamp, r: Stamp) -> Diff {
    Diff::Changed {
        newer: which(l.1, r.1),
        larger: which(l.0, r.0),
    }
}

impl Comparison {
    /// A new comparison of these directories.
    pub fn new(local_dir: String, remote_dir: String, by_hash: bool) -> Comparison {
        Comparison {
            local_dir,
            remote_dir,
            by_hash,
            ..Default::default()
        }
    }

    /// Compares the listings (local as the sync's source, remote as its
    /// destination, so the plan's rules decide what is the same: equal
    /// size and equal whole-second time, or equal contents by hash).
    /// Returns the files to hash (name, size), at most `cap` bytes of
    /// them; those past it are `Unknown`.
    pub fn compute(&mut self, local: &[Entry], remote: &[Entry], cap: u64) -> Vec<(String, u64)> {
        let (l, r) = (items(local), items(remote));
        let how = Compare {
            checksum: self.by_hash,
            delete: true,
        };
        let steps = compare_dir("", &l, &r, &Rules::default(), how);
        self.diffs.clear();
        self.pending.clear();
        let mut todo = Vec::new();
        let mut budget = cap;
        let stamps = |name: &str| {
            let s = |i: Option<&Item>| i.map_or((0, 0), |i| (i.size, i.mtime));
            (s(find(&l, name)), s(find(&r, name)))
        };
        for step in steps {
            let (name, diff) = match step {
                Step::Copy { name, .. } | Step::NewDir { name } => (name, Diff::OnlyLocal),
                Step::DeleteFile { name, .. } | Step::DeleteDir { name } => {
                    (name, Diff::OnlyRemote)
                }
                Step::Update { name, .. } => {
                    let (ls, rs) = stamps(&name);
                    (name, changed(ls, rs))
                }
                Step::Hash { name, size, .. } => {
                    let (ls, rs) = stamps(&name);
                    let diff = match self.hashed.get(&name) {
                        Some((a, b, same)) if *a == ls && *b == rs => match same {
                            Ok(true) => continue,
                            Ok(false) => changed(ls, rs),
                            Err(_) => Diff::Unknown,
                        },
                        _ if size > budget => Diff::Unknown,
                        _ => {
                            budget -= size;
                            todo.push((name.clone(), size));
                            self.pending.insert(name.clone(), (ls, rs));
                            Diff::Hashing
                        }
                    };
                    (name, diff)
                }
                Step::Skip { name, .. } => {
                    let (a, b) = (find(&l, &name), find(&r, &name));
                    let diff = match (a, b) {
                        (Some(_), None) => Diff::OnlyLocal,
                        (None, Some(_)) => Diff::OnlyRemote,
                        // Links on both sides say nothing comparable.
                        (Some(a), Some(b)) if a.kind == Kind::Other && b.kind == Kind::Other => {
                            continue
                        }
                        _ => Diff::Kind,
                    };
                    (name, diff)
                }
                Step::Same { .. }
                | Step::Touch { .. }
                | Step::BothDirs { .. }
                | Step::Excluded { .. } => continue,
            };
            self.diffs.insert(name, diff);
        }
        self.hashed
            .retain(|n, _| find(&l, n).is_some() && find(&r, n).is_some());
        self.count();
        todo
    }

    /// A file's contents were compared.
    pub fn hashed(&mut self, name: String, same: Result<bool, String>) {
        let Some((ls, rs)) = self.pending.remove(&name) else {
            return;
        };
        match &same {
            Ok(true) => {
                self.diffs.remove(&name);
            }
            Ok(false) => {
                self.diffs.insert(name.clone(), changed(ls, rs));
            }
            Err(_) => {
                self.diffs.insert(name.clone(), Diff::Unknown);
            }
        }
        self.hashed.insert(name, (ls, rs, same));
        self.count();
    }

    /// Counts the badges each pane shows (kept, so a frame costs nothing).
    fn count(&mut self) {
        let mut shown = [0; 2];
        for (i, side) in [Side::Local, Side::Remote].into_iter().enumerate() {
            shown[i] = self
                .diffs
                .values()
                .filter(|d| match d {
                    Diff::OnlyLocal => side == Side::Local,
                    Diff::OnlyRemote => side == Side::Remote,
                    Diff::Hashing => false,
                    _ => true,
                })
                .count();
        }
        self.shown = shown;
    }

    /// How many entries differ on `side` (as badges show, hashing aside).
    pub fn shown_on(&self, side: Side) -> usize {
        self.shown[usize::from(side == Side::Remote)]
    }

    /// The mark shown before a name on `side`, if it differs.
    pub fn badge(&self, side: Side, name: &str) -> Option<char> {
        Some(match self.diffs.get(name)? {
            Diff::OnlyLocal | Diff::OnlyRemote => '+',
            Diff::Changed { newer, larger } => match newer.or(*larger) {
                Some(s) if s == side => '>',
                Some(_) => '<',
                None => '≠',
            },
            Diff::Kind => '!',
            Diff::Hashing | Diff::Unknown => '?',
        })
    }

    /// Whether `M` marks `name` on `side`: an entry only here, or a file
    /// whose copy here is the newer one (the larger when the times are
    /// equal), so F5 on each pane copies every name one way only and an
    /// older file never overwrites a newer one. Files that differ by
    /// contents only (same size and time) and a file against a directory
    /// are marked on neither side: which should win is not known.
    pub fn differs_on(&self, side: Side, name: &str) -> bool {
        match self.diffs.get(name) {
            Some(Diff::OnlyLocal) => side == Side::Local,
            Some(Diff::OnlyRemote) => side == Side::Remote,
            Some(Diff::Changed { newer, larger }) => newer.or(*larger) == Some(side),
            _ => false,
        }
    }

    /// The legend: "12 differ: 5 only local, 3 only remote, 4 changed".
    pub fn summary(&self) -> String {
        let (mut only_l, mut only_r, mut changed, mut hashing, mut unknown) = (0, 0, 0, 0, 0);
        for d in self.diffs.values() {
            match d {
                Diff::OnlyLocal => only_l += 1,
                Diff::OnlyRemote => only_r += 1,
                Diff::Changed { .. } | Diff::Kind => changed += 1,
                Diff::Hashing => hashing += 1,
                Diff::Unknown => unknown += 1,
            }
        }
        let how = if self.by_hash {
            "by contents"
        } else {
            "by size and time"
        };
        let differ = only_l + only_r + changed;
        let mut s = if differ == 0 && hashing == 0 && unknown == 0 {
            format!("the directories are the same ({how})")
        } else {
            format!(
                "{differ} differ ({how}): {only_l} only local, {only_r} only remote, {changed} changed"
            )
        };
        if hashing > 0 {
            s.push_str(&format!("; hashing {hashing}…"));
        }
        if unknown > 0 {
            s.push_str(&format!("; {unknown} not hashed"));
        }
        if differ > 0 {
            s.push_str(" · M marks them");
        }
        s
    }
}

/// The app's comparison state.
#[derive(Clone, Debug)]
pub struct Comparing {
    /// The comparison shown (while both panes stay in its directories).
    pub shown: Option<Comparison>,
    /// Hashing runs started so far (the next one's tag).
    pub jobs: u64,
    /// Bytes hashed locally per comparison at most.
    pub cap: u64,
}

impl Default for Comparing {
    fn default() -> Self {
        Comparing {
            shown: None,
            jobs: 0,
            cap: HASH_CAP,
        }
    }
}
