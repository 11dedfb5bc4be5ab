//! Walks both trees of a sync directory by directory (a few listings in
//! flight, each directory's two sorted listings merged by
//! [`compare_dir`]), so memory holds the directories being compared and
//! the plan's changes, never the two whole trees.

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ferry_proto::msg::{EntryKind, PARTIALS_DIR};
use ferry_proto::{ErrorKind, RemotePath};
use futures::stream::{FuturesUnordered, StreamExt};

use super::plan::{compare_dir, join, Compare, Item, Kind, Plan, Step};
use super::rules::Rules;
use super::{Sides, SyncError};
use crate::client::{Client, ClientError};
use crate::transfer::local::hash_file;

/// Directories listed at once.
const LISTINGS_IN_FLIGHT: usize = 8;

/// Files hashed at once per directory under `--checksum`.
const HASHES_IN_FLIGHT: usize = 8;

/// A directory to compare.
struct DirJob {
    /// Path relative to the synced directories.
    rel: String,
    /// The source has it (else only the destination: deletions).
    src: bool,
    /// The destination has it (else everything in it is new).
    dst: bool,
}

/// One directory compared.
struct Compared {
    job: DirJob,
    steps: Vec<Step>,
    warning: Option<String>,
}

/// Walks both sides and returns the plan.
pub(super) async fn walk(
    client: &Client,
    sides: &Sides,
    rules: &Rules,
    how: Compare,
) -> Result<Plan, SyncError> {
    let mut plan = Plan::default();
    check_source(client, sides).await?;
    let dst_exists = destination_exists(client, sides).await?;
    plan.make_root = !dst_exists;
    let mut queue = VecDeque::from([DirJob {
        rel: String::new(),
        src: true,
        dst: dst_exists,
    }]);
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < LISTINGS_IN_FLIGHT {
            let Some(job) = queue.pop_front() else { break };
            running.push(compare(client, sides, rules, how, job));
        }
        let Some(done) = running.next().await else {
            break;
        };
        let Compared {
            job,
            steps,
            warning,
        } = done?;
        if let Some(w) = warning {
            plan.warnings.push(w);
            plan.incomplete = true;
            if !job.src {
                // Not known to be empty: keep it (and what is above it).
                plan.keep(&job.rel);
            }
            continue;
        }
        for step in &steps {
            plan.take(&job.rel, !job.src, step);
            let sub = |name: &str, src, dst| DirJob {
                rel: join(&job.rel, name),
                src,
                dst,
            };
            match step {
                Step::NewDir { name } => queue.push_back(sub(name, true, false)),
                Step::BothDirs { name } => queue.push_back(sub(name, true, true)),
                Step::DeleteDir { name } => queue.push_back(sub(name, false, true)),
                _ => {}
            }
        }
    }
    plan.finish();
    Ok(plan)
}

/// The source must be a directory.
async fn check_source(client: &Client, sides: &Sides) -> Result<(), SyncError> {
    let is_dir = if sides.up {
        std::fs::metadata(&sides.local)
            .map_err(|e| SyncError::Source(format!("{}: {e}", sides.local.display())))?
            .is_dir()
    } else {
        let e = client
            .stat(&sides.remote.to_string())
            .await
            .map_err(|e| remote_source_error(&sides.remote, e))?;
        e.kind == EntryKind::Dir
            || (e.kind == EntryKind::Symlink && lists(client, &sides.remote).await)
    };
    if !is_dir {
        return Err(SyncError::Source(format!(
            "{}: not a directory (sync copies a directory's contents)",
            sides.source_name()
        )));
    }
    Ok(())
}

fn remote_source_error(path: &RemotePath, e: ClientError) -> SyncError {
    match e {
        ClientError::Remote(r) => SyncError::Source(format!(":{path}: {}", r.kind.phrase())),
        e => SyncError::Client(e),
    }
}

async fn lists(client: &Client, path: &RemotePath) -> bool {
    client.list_with(&path.to_string(), |_| {}).await.is_ok()
}

/// Whether the destination directory exists; an error when something
/// else is in its place.
async fn destination_exists(client: &Client, sides: &Sides) -> Result<bool, SyncError> {
    let not_dir = || {
        SyncError::Destination(format!(
            "{}: exists and is not a directory",
            sides.destination_name()
        ))
    };
    if sides.up {
        match client.stat(&sides.remote.to_string()).await {
            Ok(e) if e.kind == EntryKind::Dir => Ok(true),
            Ok(e) if e.kind == EntryKind::Symlink && lists(client, &sides.remote).await => Ok(true),
            Ok(_) => Err(not_dir()),
            Err(ClientError::Remote(r)) if r.kind == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SyncError::Client(e)),
        }
    } else {
        match std::fs::metadata(&sides.local) {
            Ok(md) if md.is_dir() => Ok(true),
            Ok(_) => Err(not_dir()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SyncError::Destination(format!(
                "{}: {e}",
                sides.local.display()
            ))),
        }
    }
}

/// Lists a directory on both sides (where it exists), compares, and
/// hashes what `--checksum` must decide. A directory that cannot be
/// listed becomes a warning; a lost connection ends the walk.
async fn compare(
    client: &Client,
    sides: &Sides,
    rules: &Rules,
    how: Compare,
    job: DirJob,
) -> Result<Compared, SyncError> {
    let local_wanted = if sides.up { job.src } else { job.dst };
    let remote_wanted = if sides.up { job.dst } else { job.src };
    let local_dir = sides.local_path(&job.rel);
    let local = async {
        if local_wanted {
            list_local(local_dir).await
        } else {
            Ok((Vec::new(), Vec::new()))
        }
    };
    let remote = async {
        if remote_wanted {
            list_remote(client, sides, &job.rel).await
        } else {
            Ok((Vec::new(), Vec::new()))
        }
    };
    let (local, remote) = futures::join!(local, remote);
    let listed = match (local, remote) {
        (Ok(l), Ok(r)) => Ok((l, r)),
        (Err(Listing::Lost(e)), _) | (_, Err(Listing::Lost(e))) => {
            return Err(SyncError::Client(e))
        }
        (Err(Listing::Failed(w)), _) | (_, Err(Listing::Failed(w))) => Err(w),
    };
    let ((local, local_odd), (remote, remote_odd)) = match listed {
        Ok(l) => l,
        Err(w) => {
            return Ok(Compared {
                job,
                steps: Vec::new(),
                warning: Some(w),
            })
        }
    };
    let (src, dst) = if sides.up {
        (local, remote)
    } else {
        (remote, local)
    };
    let mut steps = compare_dir(&job.rel, &src, &dst, rules, how);
    drop((src, dst));
    if how.checksum {
        hash_steps(client, sides, &job.rel, &mut steps).await?;
    }
    let mut odd = local_odd;
    odd.extend(remote_odd);
    for w in odd {
        steps.push(Step::Skip {
            name: w.0,
            why: w.1,
        });
    }
    Ok(Compared {
        job,
        steps,
        warning: None,
    })
}

/// Turns every [`Step::Hash`] into `Same` (or `Touch` if only the times
/// differ) or `Update` by hashing the file on both sides (the server
/// hashes its own).
async fn hash_steps(
    client: &Client,
    sides: &Sides,
    dir: &str,
    steps: &mut [Step],
) -> Result<(), SyncError> {
    let todo: Vec<(usize, String)> = steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Step::Hash { name, .. } => Some((i, join(dir, name))),
            _ => None,
        })
        .collect();
    let hashes: Vec<_> = todo
        .into_iter()
        .map(|(i, rel)| async move {
            let path = sides.local_path(&rel);
            let local = tokio::task::spawn_blocking(move || hash_file(&path));
            let remote_path = sides.remote_path(&rel)?;
            let (local, remote) = futures::join!(local, client.checksum(&remote_path, None));
            let local = local
                .map_err(|e| SyncError::Client(ClientError::Protocol(e.to_string())))?
                .map_err(|e| {
                    SyncError::Client(crate::transfer::local::local_err(
                        &sides.local_path(&rel),
                        e,
                    ))
                });
            let same = match (local, remote) {
                (Ok((_, ours)), Ok((_, theirs))) => Ok(ours == theirs),
                (Err(e), _) => Err(e.to_string()),
                (_, Err(e)) if e.is_fatal() || matches!(e, ClientError::Disconnected(_)) => {
                    return Err(SyncError::Client(e))
                }
                (_, Err(e)) => Err(e.to_string()),
            };
            Ok::<_, SyncError>((i, rel, same))
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(hashes)
        .buffer_unordered(HASHES_IN_FLIGHT)
        .collect()
        .await;
    for r in results {
        let (i, _rel, same) = r?;
        let (name, size, mtime) = match &steps[i] {
            Step::Hash { name, size, mtime } => (name.clone(), *size, *mtime),
            _ => continue,
        };
        steps[i] = match same {
            Ok(true) => match mtime {
                Some(mtime) => Step::Touch { name, size, mtime },
                None => Step::Same { name, size },
            },
            Ok(false) => Step::Update { name, size },
            Err(why) => Step::Skip {
                name,
                why: format!("cannot hash: {why}"),
            },
        };
    }
    Ok(())
}

/// Why a directory's listing failed.
enum Listing {
    /// The connection is gone: the walk ends.
    Lost(ClientError),
    /// This directory only: a warning, and it is left alone.
    Failed(String),
}

/// A listing sorted by name, and the names left out with why.
type Listed = (Vec<Item>, Vec<(String, String)>);

async fn list_local(dir: PathBuf) -> Result<Listed, Listing> {
    let shown = dir.display().to_string();
    tokio::task::spawn_blocking(move || read_local(&dir))
        .await
        .map_err(|e| Listing::Failed(format!("{shown}: {e}")))?
        .map_err(|e| Listing::Failed(format!("{shown}: cannot list: {e}")))
}

/// Reads a local directory: kinds without following links; the partials
/// directory of downloads in progress is not the user's.
fn read_local(dir: &Path) -> std::io::Result<Listed> {
    let mut items = Vec::new();
    let mut odd = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let Ok(name) = e.file_name().into_string() else {
            odd.push((
                e.file_name().to_string_lossy().into_owned(),
                "not UTF-8; skipped".into(),
            ));
            continue;
        };
        if name == PARTIALS_DIR {
            continue;
        }
        let md = std::fs::symlink_metadata(e.path())?;
        let kind = if md.is_dir() {
            Kind::Dir
        } else if md.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        items.push(Item {
            name,
            kind,
            size: if kind == Kind::File { md.len() } else { 0 },
            mtime: md.mtime(),
        });
    }
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((items, odd))
}

async fn list_remote(client: &Client, sides: &Sides, rel: &str) -> Result<Listed, Listing> {
    let path = sides
        .remote_path(rel)
        .map_err(|e| Listing::Failed(e.to_string()))?;
    let entries = match client.list(&path.to_string()).await {
        Ok(e) => e,
        Err(ClientError::Remote(r)) => {
            return Err(Listing::Failed(format!(
                ":{path}: cannot list: {}",
                r.kind.phrase()
            )))
        }
        Err(e) => return Err(Listing::Lost(e)),
    };
    let mut items = Vec::with_capacity(entries.len());
    let mut odd = Vec::new();
    for e in entries {
        // Names come from the server: one plain component each, or the
        // entry is left out (nothing outside the synced tree is touched).
        if e.name.is_empty()
            || e.name == "."
            || e.name == ".."
            || e.name.contains('/')
            || e.name.contains('\0')
        {
            odd.push((e.name, "not a plain name; skipped".into()));
            continue;
        }
        if e.name == PARTIALS_DIR {
            continue;
        }
        let kind = match e.kind {
            EntryKind::File => Kind::File,
            EntryKind::Dir => Kind::Dir,
            EntryKind::Symlink | EntryKind::Other => Kind::Other,
        };
        items.push(Item {
            name: e.name,
            kind,
            size: if kind == Kind::File { e.size } else { 0 },
            mtime: e.mtime,
        });
    }
    // `Client::list` sorts already; the merge needs it, so say so here.
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((items, odd))
}
