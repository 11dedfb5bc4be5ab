//! Jobs of several files and whole trees: work out every source/target
//! pair, create directories first, then run the files `parallel` at a time
//! over the one connection (so a tree of small files is pipelined, not one
//! round trip after another).
//!
//! Symbolic links, the same rule both ways: a link you name (or mark) is
//! copied as what it points to; links met inside a tree are skipped with
//! a warning unless `follow_symlinks` (`-L`, `L` in the TUI) is on. A
//! followed link that leads back to a directory above it (a loop) is
//! skipped: locally by device and inode; on the server, where inodes are
//! not seen, no link inside a directory reached through a link is
//! followed. A link that points nowhere is skipped with a warning.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ferry_proto::msg::EntryKind;
use ferry_proto::{ErrorKind, RemotePath};
use futures::stream::{self, StreamExt};

use super::get::get_file;
use super::local::{local_err, PARTIALS_DIR};
use super::put::{put_file, read_ahead};
use super::{run_parallel, Direction, Events, FileReport, Job, TransferOptions};
use crate::client::{Client, ClientError, Result};

/// Uploads local files (and with `recursive`, trees) to `dest`, a remote
/// path resolved against the client's working directory. With one source,
/// `dest` is the target name unless it is an existing directory or ends in
/// `/`; with several, it must be a directory.
pub async fn put_paths(
    client: &Client,
    sources: &[PathBuf],
    dest: &str,
    opts: TransferOptions,
    events: Events,
) -> Result<Vec<FileReport>> {
    let job = Job::new(opts, events);
    let dest_path = client.resolve(dest)?;
    let dest_is_dir = match client.stat(dest).await {
        Ok(e) => e.kind == EntryKind::Dir,
        Err(ClientError::Remote(e)) if e.kind == ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let into = dest_is_dir || dest.ends_with('/') || sources.len() > 1;
    let mut dirs: Vec<RemotePath> = Vec::new();
    let mut files: Vec<(PathBuf, RemotePath, u64)> = Vec::new();
    for src in sources {
        // A link named here is copied as what it points to.
        let md = match std::fs::metadata(src) {
            Ok(md) => md,
            Err(err) if is_link(src) => {
                job.warn(
                    None,
                    format!("{}: broken link skipped ({err})", src.display()),
                );
                continue;
            }
            Err(err) => return Err(local_err(src, err)),
        };
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into());
        let target = if into {
            child(&dest_path, &name)?
        } else {
            dest_path.clone()
        };
        if md.is_dir() {
            if !job.opts.recursive {
                job.warn(
                    None,
                    format!("{}: is a directory (use -r to copy trees)", src.display()),
                );
                continue;
            }
            dirs.push(target.clone());
            let mut above = vec![(md.dev(), md.ino())];
            walk_local(&job, src, &target, &mut above, &mut dirs, &mut files)?;
        } else if md.is_file() {
            files.push((src.clone(), target, md.len()));
        } else {
            job.warn(
                None,
                format!("{}: not a regular file, skipped", src.display()),
            );
        }
    }
    put_job(client, &job, dirs, files).await
}

/// Uploads files already listed (local source, remote target, size),
/// after making the remote directories `dirs` (with their parents): the
/// engine `put_paths` runs once it has walked its sources, for callers that
/// chose the files themselves (`ferry sync`).
pub async fn put_listed(
    client: &Client,
    dirs: Vec<RemotePath>,
    files: Vec<(PathBuf, RemotePath, u64)>,
    opts: TransferOptions,
    events: Events,
) -> Result<Vec<FileReport>> {
    let job = Job::new(opts, events);
    put_job(client, &job, dirs, files).await
}

async fn put_job(
    client: &Client,
    job: &Job,
    dirs: Vec<RemotePath>,
    files: Vec<(PathBuf, RemotePath, u64)>,
) -> Result<Vec<FileReport>> {
    // Directories first, all requests in flight at once.
    // Futures are collected first: a lazy `map` closure over borrowed data
    // makes the job's future not `Send`, and the TUI spawns jobs.
    let mkdirs: Vec<_> = dirs.iter().map(|d| client.mkdir_path(d, true)).collect();
    let made: Vec<Result<()>> = stream::iter(mkdirs).buffer_unordered(32).collect().await;
    for r in made {
        r?;
    }
    job.announce(
        Direction::Put,
        files
            .iter()
            .map(|(s, t, n)| (s.display().to_string(), t.to_string(), *n)),
    );
    let listed: Vec<(&Path, u64)> = files.iter().map(|(s, _, n)| (s.as_path(), *n)).collect();
    let ahead = read_ahead(&listed);
    let work: Vec<_> = files
        .into_iter()
        .zip(ahead)
        .enumerate()
        .map(|(i, ((src, target, size), ahead))| {
            (size, async move {
                put_file(client, job, i as u64, &src, target, ahead).await
            })
        })
        .collect();
    let reports = run_parallel(work, job.opts.parallel).await;
    Ok(reports)
}

fn child(parent: &RemotePath, name: &str) -> Result<RemotePath> {
    parent.child(name).map_err(|source| ClientError::Path {
        path: name.to_string(),
        source,
    })
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Walks a local tree; `above` holds the device and inode of every
/// directory from the root down to `dir`, so a followed link that loops
/// back is seen.
fn walk_local(
    job: &Job,
    dir: &Path,
    target: &RemotePath,
    above: &mut Vec<(u64, u64)>,
    dirs: &mut Vec<RemotePath>,
    files: &mut Vec<(PathBuf, RemotePath, u64)>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| local_err(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| local_err(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == PARTIALS_DIR {
            continue; // downloads in progress, not the user's files
        }
        let mut md = std::fs::symlink_metadata(&path).map_err(|err| local_err(&path, err))?;
        let link = md.file_type().is_symlink();
        if link {
            if !job.opts.follow_symlinks {
                job.warn(
                    None,
                    format!(
                        "{}: symbolic link skipped (use -L to follow links)",
                        path.display()
                    ),
                );
                continue;
            }
            md = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(err) => {
                    job.warn(
                        None,
                        format!("{}: broken link skipped ({err})", path.display()),
                    );
                    continue;
                }
            };
        }
        let t = child(target, &name)?;
        if md.is_dir() {
            let id = (md.dev(), md.ino());
            if link && above.contains(&id) {
                job.warn(
                    None,
                    format!(
                        "{}: link to a directory above it (a loop) skipped",
                        path.display()
                    ),
                );
                continue;
            }
            dirs.push(t.clone());
            above.push(id);
            walk_local(job, &path, &t, above, dirs, files)?;
            above.pop();
        } else if md.is_file() {
            files.push((path, t, md.len()));
        } else {
            job.warn(
                None,
                format!(
                    "{}: special file (fifo, socket or device) skipped",
                    path.display()
                ),
            );
        }
    }
    Ok(())
}

/// Downloads remote files (and with `recursive`, trees) to `dest`. With one
/// source, `dest` is the target name unless it is an existing directory or
/// ends in `/`; with several, it must be a directory.
pub async fn get_paths(
    client: &Client,
    sources: &[String],
    dest: &Path,
    opts: TransferOptions,
    events: Events,
) -> Result<Vec<FileReport>> {
    let job = Job::new(opts, events);
    let into = dest.is_dir() || dest.to_string_lossy().ends_with('/') || sources.len() > 1;
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files: Vec<RemoteFile> = Vec::new();
    for src in sources {
        let path = client.resolve(src)?;
        let entry = client.stat(src).await?;
        let name = path.file_name().unwrap_or("home").to_string();
        let target = if into {
            dest.join(&name)
        } else {
            dest.to_path_buf()
        };
        // A link named here is copied as what it points to.
        let (kind, size) = match entry.kind {
            EntryKind::Symlink => match resolve_link(client, &path).await {
                Ok(kind) => (kind, None),
                Err(why) => {
                    job.warn(None, format!("{src}: broken link skipped ({why})"));
                    continue;
                }
            },
            kind => (kind, Some(entry.size)),
        };
        let via_link = entry.kind == EntryKind::Symlink;
        match kind {
            EntryKind::Dir if job.opts.recursive => {
                dirs.push(target.clone());
                let root = (path, target, via_link);
                walk_remote(client, &job, root, &mut dirs, &mut files).await?;
            }
            EntryKind::Dir => job.warn(
                None,
                format!("{src}: is a directory (use -r to copy trees)"),
            ),
            EntryKind::File => files.push((path, target, size)),
            _ => job.warn(None, format!("{src}: not a regular file, skipped")),
        }
    }
    get_job(client, &job, dirs, files).await
}

/// Downloads files already listed (remote source, local target, size),
/// after making the local directories `dirs` (with their parents): the
/// engine `get_paths` runs once it has walked its sources, for callers that
/// chose the files themselves (`ferry sync`).
pub async fn get_listed(
    client: &Client,
    dirs: Vec<PathBuf>,
    files: Vec<(RemotePath, PathBuf, u64)>,
    opts: TransferOptions,
    events: Events,
) -> Result<Vec<FileReport>> {
    let job = Job::new(opts, events);
    let files = files.into_iter().map(|(s, t, n)| (s, t, Some(n))).collect();
    get_job(client, &job, dirs, files).await
}

async fn get_job(
    client: &Client,
    job: &Job,
    dirs: Vec<PathBuf>,
    files: Vec<RemoteFile>,
) -> Result<Vec<FileReport>> {
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| local_err(d, e))?;
    }
    job.announce(
        Direction::Get,
        files
            .iter()
            .map(|(s, t, n)| (s.to_string(), t.display().to_string(), n.unwrap_or(0))),
    );
    let work: Vec<_> = files
        .into_iter()
        .enumerate()
        .map(|(i, (src, target, size))| {
            // Reached through a link, the size is not known until the
            // server opens the file: never taken for one chunk.
            let size = size.unwrap_or(u64::MAX);
            (size, async move {
                get_file(client, job, i as u64, src, &target, size).await
            })
        })
        .collect();
    let reports = run_parallel(work, job.opts.parallel).await;
    Ok(reports)
}

/// A remote file to fetch: source, target, and its size when the listing
/// gave it (not for a file reached through a link).
type RemoteFile = (RemotePath, PathBuf, Option<u64>);

/// A remote directory to walk: itself, where it goes, and whether it was
/// reached through a link.
type RemoteDir = (RemotePath, PathBuf, bool);

/// What a remote link points to: a file or a directory, or why neither
/// (broken, outside the home). The server follows links within the home
/// when it opens a path, and a checksum of no bytes opens it cheaply.
async fn resolve_link(
    client: &Client,
    path: &RemotePath,
) -> std::result::Result<EntryKind, String> {
    match client.checksum(path, Some(0)).await {
        Ok(_) => Ok(EntryKind::File),
        // Not a regular file: a directory, if it can be listed.
        Err(ClientError::Remote(e)) if e.kind == ErrorKind::BadRequest => Ok(EntryKind::Dir),
        Err(ClientError::Remote(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Lists a remote tree breadth-first, several directories at once. Each
/// directory carries whether it was reached through a link: links inside
/// such a one are not followed (the client cannot see a loop by inode).
async fn walk_remote(
    client: &Client,
    job: &Job,
    root: RemoteDir,
    dirs: &mut Vec<PathBuf>,
    files: &mut Vec<RemoteFile>,
) -> Result<()> {
    let mut level = vec![root];
    while !level.is_empty() {
        let listed: Vec<Result<(RemoteDir, Vec<ferry_proto::msg::Entry>)>> = stream::iter(
            level
                .drain(..)
                .map(|(r, l, via_link)| async move {
                    let entries = client.list(&r.to_string()).await?;
                    Ok(((r, l, via_link), entries))
                })
                .collect::<Vec<_>>(),
        )
        .buffer_unordered(8)
        .collect()
        .await;
        for item in listed {
            let ((r, l, via_link), entries) = item?;
            for e in entries {
                if e.name == PARTIALS_DIR {
                    let p = format!("{}/{}", r.to_string().trim_end_matches('/'), e.name);
                    job.warn(
                        None,
                        format!("{p}: name reserved for partial downloads, skipped"),
                    );
                    continue;
                }
                let rp = child(&r, &e.name)?;
                let lp = l.join(&e.name);
                match e.kind {
                    EntryKind::Dir => {
                        dirs.push(lp.clone());
                        level.push((rp, lp, via_link));
                    }
                    EntryKind::File => files.push((rp, lp, Some(e.size))),
                    EntryKind::Symlink if !job.opts.follow_symlinks => job.warn(
                        None,
                        format!("{rp}: symbolic link skipped (use -L to follow links)"),
                    ),
                    EntryKind::Symlink if via_link => job.warn(
                        None,
                        format!(
                            "{rp}: link inside a linked directory not followed (it could loop)"
                        ),
                    ),
                    EntryKind::Symlink => match resolve_link(client, &rp).await {
                        Ok(EntryKind::Dir) => {
                            dirs.push(lp.clone());
                            level.push((rp, lp, true));
                        }
                        Ok(_) => files.push((rp, lp, None)),
                        Err(why) => job.warn(None, format!("{rp}: broken link skipped ({why})")),
                    },
                    EntryKind::Other => job.warn(None, format!("{rp}: special file skipped")),
                }
            }
        }
    }
    Ok(())
}
