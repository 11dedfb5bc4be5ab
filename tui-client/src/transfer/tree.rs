//! Jobs of several files and whole trees: work out every source/target
//! pair, create directories first, then run the files `parallel` at a time
//! over the one connection (so a tree of small files is pipelined, not one
//! round trip after another).

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
        let md = std::fs::metadata(src).map_err(|e| local_err(src, e))?;
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
            walk_local(&job, src, &target, &mut dirs, &mut files)?;
        } else if md.is_file() {
            files.push((src.clone(), target, md.len()));
        } else {
            job.warn(
                None,
                format!("{}: not a regular file, skipped", src.display()),
            );
        }
    }
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
    let job = &job;
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

fn walk_local(
    job: &Job,
    dir: &Path,
    target: &RemotePath,
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
        if md.file_type().is_symlink() {
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
            dirs.push(t.clone());
            walk_local(job, &path, &t, dirs, files)?;
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
    let mut files: Vec<(RemotePath, PathBuf, u64)> = Vec::new();
    for src in sources {
        let path = client.resolve(src)?;
        let entry = client.stat(src).await?;
        let name = path.file_name().unwrap_or("home").to_string();
        let target = if into {
            dest.join(&name)
        } else {
            dest.to_path_buf()
        };
        match entry.kind {
            EntryKind::Dir if job.opts.recursive => {
                dirs.push(target.clone());
                walk_remote(client, &job, &path, &target, &mut dirs, &mut files).await?;
            }
            EntryKind::Dir => job.warn(
                None,
                format!("{src}: is a directory (use -r to copy trees)"),
            ),
            EntryKind::File => files.push((path, target, entry.size)),
            _ => job.warn(None, format!("{src}: not a regular file, skipped")),
        }
    }
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| local_err(d, e))?;
    }
    job.announce(
        Direction::Get,
        files
            .iter()
            .map(|(s, t, n)| (s.to_string(), t.display().to_string(), *n)),
    );
    let job = &job;
    let work: Vec<_> = files
        .into_iter()
        .enumerate()
        .map(|(i, (src, target, size))| {
            (size, async move {
                get_file(client, job, i as u64, src, &target, size).await
            })
        })
        .collect();
    let reports = run_parallel(work, job.opts.parallel).await;
    Ok(reports)
}

/// Lists a remote tree breadth-first, several directories at once.
async fn walk_remote(
    client: &Client,
    job: &Job,
    root: &RemotePath,
    target: &Path,
    dirs: &mut Vec<PathBuf>,
    files: &mut Vec<(RemotePath, PathBuf, u64)>,
) -> Result<()> {
    let mut level = vec![(root.clone(), target.to_path_buf())];
    while !level.is_empty() {
        let listed: Vec<Result<(RemotePath, PathBuf, Vec<ferry_proto::msg::Entry>)>> =
            stream::iter(
                level
                    .drain(..)
                    .map(|(r, l)| async move {
                        let entries = client.list(&r.to_string()).await?;
                        Ok((r, l, entries))
                    })
                    .collect::<Vec<_>>(),
            )
            .buffer_unordered(8)
            .collect()
            .await;
        for item in listed {
            let (r, l, entries) = item?;
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
                        level.push((rp, lp));
                    }
                    EntryKind::File => files.push((rp, lp, e.size)),
                    EntryKind::Symlink => {
                        job.warn(None, format!("{rp}: symbolic link on the server skipped"))
                    }
                    EntryKind::Other => job.warn(None, format!("{rp}: special file skipped")),
                }
            }
        }
    }
    Ok(())
}
