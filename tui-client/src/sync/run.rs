//! Carries out a sync plan: the files through the transfer engine of
//! `put -r` and `get -r` (verified, resumable, mtimes kept), the times of
//! files found equal by content, then, only if every file made it, the
//! deletions inside the destination.

use std::path::PathBuf;

use ferry_proto::msg::RemoveMode;
use ferry_proto::RemotePath;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::plan::{Plan, Tally};
use super::{Sides, SyncError, SyncOptions};
use crate::client::Client;
use crate::transfer::{self, Conflict, Events, FileReport, TransferEvent, TransferOptions};

/// One deletion made (or tried).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// Path relative to the synced directories.
    pub rel: String,
    /// A directory, removed with its contents.
    pub dir: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// What a sync did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Each file transferred (or failed), as `put`/`get` report them.
    pub reports: Vec<FileReport>,
    /// Files the destination lacked, now there.
    pub copied: Tally,
    /// Files replaced.
    pub updated: Tally,
    /// Files that failed.
    pub failed: u64,
    /// Files whose time was set (equal contents, other times).
    pub touched: u64,
    /// Times that could not be set, and why.
    pub touch_errors: Vec<String>,
    /// Deletions made or tried.
    pub deleted: Vec<Deleted>,
    /// Why no deletion was made although some were planned.
    pub deletions_skipped: Option<String>,
}

/// Runs `plan`. Progress of the files goes to `events`.
pub async fn run(
    client: &Client,
    sides: &Sides,
    plan: &Plan,
    opts: &SyncOptions,
    events: Events,
) -> Result<Outcome, SyncError> {
    let topts = TransferOptions {
        recursive: false,
        // Updates replace the file once the new content is verified; a
        // partial left by an interrupted sync is resumed.
        on_conflict: Conflict::Overwrite,
        parallel: opts.parallel.max(1),
        follow_symlinks: false,
        rate_limit: opts.rate_limit,
        limiter: opts.limiter.clone(),
        rehash: false,
    };
    // Setting times and deleting move no bytes, and a recursive delete is
    // one long request: the job says so, and the TUI does not judge it
    // stalled meanwhile.
    let phases = events.clone();
    let root = plan.make_root.then(String::new);
    let dirs = root.iter().chain(plan.new_dirs.iter());
    let reports = if sides.up {
        let dirs = dirs
            .map(|d| sides.remote_path(d))
            .collect::<Result<Vec<RemotePath>, _>>()?;
        let files = plan
            .transfers
            .iter()
            .map(|c| Ok((sides.local_path(&c.rel), sides.remote_path(&c.rel)?, c.size)))
            .collect::<Result<Vec<_>, SyncError>>()?;
        transfer::put_listed(client, dirs, files, topts, events).await?
    } else {
        let dirs: Vec<PathBuf> = dirs.map(|d| sides.local_path(d)).collect();
        let files = plan
            .transfers
            .iter()
            .map(|c| Ok((sides.remote_path(&c.rel)?, sides.local_path(&c.rel), c.size)))
            .collect::<Result<Vec<_>, SyncError>>()?;
        transfer::get_listed(client, dirs, files, topts, events).await?
    };
    let mut out = Outcome::default();
    for r in &reports {
        let update = relative(sides, r)
            .and_then(|rel| {
                plan.transfers
                    .binary_search_by(|c| c.rel.split('/').cmp(rel.split('/')))
                    .ok()
            })
            .is_some_and(|i| plan.transfers[i].update);
        let tally = if update {
            &mut out.updated
        } else {
            &mut out.copied
        };
        match &r.status {
            transfer::Status::Done => {
                tally.files += 1;
                tally.bytes += r.size;
            }
            transfer::Status::Failed(_) => out.failed += 1,
            transfer::Status::Skipped(_) => {}
        }
    }
    out.reports = reports;
    if !plan.touches.is_empty() {
        phases.emit(TransferEvent::Phase {
            what: "setting times",
        });
    }
    let touched = touch(client, sides, plan).await?;
    out.touched = touched.iter().filter(|e| e.is_none()).count() as u64;
    out.touch_errors = touched.into_iter().flatten().collect();
    if !plan.deletions.is_empty() {
        if out.failed > 0 {
            out.deletions_skipped = Some(format!(
                "{} file(s) failed; nothing deleted (run the sync again)",
                out.failed
            ));
        } else if plan.incomplete {
            out.deletions_skipped =
                Some("some directories could not be listed; nothing deleted".into());
        } else {
            phases.emit(TransferEvent::Phase { what: "deleting" });
            out.deleted = delete(client, sides, plan).await?;
        }
    }
    Ok(out)
}

/// A report's path relative to the destination directory.
fn relative(sides: &Sides, r: &FileReport) -> Option<String> {
    if sides.up {
        let root = sides.remote.to_string();
        let root = root.trim_end_matches('/');
        r.remote
            .strip_prefix(root)
            .and_then(|s| s.strip_prefix('/'))
            .map(str::to_string)
    } else {
        r.local
            .strip_prefix(&sides.local)
            .ok()
            .and_then(|p| p.to_str())
            .map(str::to_string)
    }
}

/// Sets the times of the plan's touches in the destination: remote ones
/// several requests at once, local ones on a blocking thread. Returns
/// each one's error, if any.
async fn touch(
    client: &Client,
    sides: &Sides,
    plan: &Plan,
) -> Result<Vec<Option<String>>, SyncError> {
    if sides.up {
        let mut todo = Vec::with_capacity(plan.touches.len());
        for t in &plan.touches {
            let path = sides.remote_path(&t.rel)?;
            todo.push(async move {
                match client.set_mtime(&path, t.mtime).await {
                    Ok(()) => Ok(None),
                    Err(e) if e.is_fatal() => Err(SyncError::Client(e)),
                    Err(e) => Ok(Some(e.to_string())),
                }
            });
        }
        stream::iter(todo).buffered(16).try_collect().await
    } else {
        let list: Vec<(PathBuf, i64)> = plan
            .touches
            .iter()
            .map(|t| (sides.local_path(&t.rel), t.mtime))
            .collect();
        tokio::task::spawn_blocking(move || {
            list.into_iter()
                .map(|(path, mtime)| {
                    set_local_mtime(&path, mtime)
                        .err()
                        .map(|e| format!("{}: cannot set its time: {e}", path.display()))
                })
                .collect()
        })
        .await
        .map_err(|e| SyncError::Client(crate::client::ClientError::Protocol(e.to_string())))
    }
}

/// Sets a local file's modification time, never through a symbolic link
/// (a link found there is refused) and never waiting on a FIFO swapped in.
fn set_local_mtime(path: &std::path::Path, mtime: i64) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = std::fs::File::from(rustix::fs::open(path, flags, Mode::empty())?);
    let secs = std::time::Duration::from_secs(mtime.unsigned_abs());
    let time = if mtime >= 0 {
        std::time::UNIX_EPOCH.checked_add(secs)
    } else {
        std::time::UNIX_EPOCH.checked_sub(secs)
    };
    let time = time.ok_or_else(|| std::io::Error::other("time out of range"))?;
    file.set_modified(time)
}

/// Deletes the plan's deletions in the destination: remote ones several
/// requests at once, local ones on a blocking thread.
async fn delete(client: &Client, sides: &Sides, plan: &Plan) -> Result<Vec<Deleted>, SyncError> {
    if sides.up {
        let mut todo = Vec::with_capacity(plan.deletions.len());
        for d in &plan.deletions {
            let path = sides.remote_path(&d.rel)?.to_string();
            let mode = if d.dir {
                RemoveMode::Recursive
            } else {
                RemoveMode::File
            };
            todo.push(async move {
                let error = client
                    .remove(&path, mode)
                    .await
                    .err()
                    .map(|e| e.to_string());
                (path, mode, error)
            });
        }
        let done: Vec<_> = stream::iter(todo).buffered(16).collect().await;
        Ok(plan
            .deletions
            .iter()
            .zip(done)
            .map(|(d, (_, _, error))| Deleted {
                rel: d.rel.clone(),
                dir: d.dir,
                error,
            })
            .collect())
    } else {
        let list: Vec<(String, bool, PathBuf)> = plan
            .deletions
            .iter()
            .map(|d| (d.rel.clone(), d.dir, sides.local_path(&d.rel)))
            .collect();
        let done = tokio::task::spawn_blocking(move || {
            list.into_iter()
                .map(|(rel, dir, path)| {
                    // Never follows a link: a link in the destination is
                    // listed as a link and removed as one.
                    let r = if dir {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                    Deleted {
                        rel,
                        dir,
                        error: r.err().map(|e| format!("{}: {e}", path.display())),
                    }
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| SyncError::Client(crate::client::ClientError::Protocol(e.to_string())))?;
        Ok(done)
    }
}
