//! Carrying out a copy or move within one side, off the UI thread: the
//! target resolved (one listing of the target directory finds every
//! conflict and a free name for each), then each entry copied or moved:
//! on the server by `Copy` and `Rename`, locally by the file system.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use ferry_proto::msg::{Entry, EntryKind, RemoveMode};
use ferry_proto::{ErrorKind, RemotePath};
use tokio::sync::mpsc::UnboundedSender;

use super::{check_into_itself, join, plain_name, Choice, Item, Op, Plan, Request};
use crate::client::{Client, ClientError};
use crate::tui::action::{Action, Effect};
use crate::tui::pane::Side;

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    /// Resolve the target and find the conflicts.
    Plan(Request),
    /// Carry out a plan whose conflicts are decided.
    Run(Plan),
}

/// What the runtime found.
#[derive(Clone, Debug)]
pub enum News {
    /// The plan, or why there is none.
    Planned(Result<Plan, String>),
}

impl From<Work> for Effect {
    fn from(w: Work) -> Effect {
        Effect::Within(w)
    }
}

/// One side's file system.
#[derive(Clone)]
enum Fs {
    Local,
    Remote(Client),
}

/// Starts `work` on a task of its own; it reports as actions.
pub fn spawn(work: Work, client: Option<Client>, tx: UnboundedSender<Action>) {
    let side = match &work {
        Work::Plan(r) => r.side,
        Work::Run(p) => p.side,
    };
    let fs = match (side, client) {
        (Side::Local, _) => Fs::Local,
        (Side::Remote, Some(c)) => Fs::Remote(c),
        (Side::Remote, None) => {
            let _ = tx.send(Action::OpFailed("not connected".into()));
            return;
        }
    };
    tokio::spawn(async move {
        match work {
            Work::Plan(req) => {
                let r = plan(&fs, req).await;
                let _ = tx.send(Action::Within(News::Planned(r)));
            }
            Work::Run(p) => {
                let (done, r) = execute(&fs, &p).await;
                let what = format!(
                    "{} {done} entr{}",
                    if p.op == Op::Copy { "copied" } else { "moved" },
                    if done == 1 { "y" } else { "ies" }
                );
                let _ = match r {
                    Ok(()) => tx.send(Action::OpDone {
                        message: Some(format!("{what} to {}", p.to_dir)),
                        refresh: Some(side),
                    }),
                    Err(e) => {
                        tracing::warn!("{e}");
                        let _ = tx.send(Action::OpDone {
                            message: None,
                            refresh: Some(side),
                        });
                        tx.send(Action::OpFailed(format!("{what}, then: {e}")))
                    }
                };
            }
        }
    });
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
}

/// `path` without `.` and `..` (lexically; `..` at the top stays there).
fn clean(path: &str) -> String {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// Whether two local paths name the same directory.
fn same_dir(a: &str, b: &str) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

impl Fs {
    /// The target: Some(true) an existing directory (links followed
    /// locally, as cp does), Some(false) something else, None nothing.
    async fn kind(&self, path: &str) -> Result<Option<bool>, String> {
        match self {
            Fs::Local => {
                let p = path.to_string();
                blocking(move || match std::fs::metadata(&p) {
                    Ok(m) => Ok(Some(m.is_dir())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(format!("{p}: {e}")),
                })
                .await
            }
            Fs::Remote(c) => match c.stat(path).await {
                Ok(e) => Ok(Some(e.kind == EntryKind::Dir)),
                Err(ClientError::Remote(e)) if e.kind == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{path}: {e}")),
            },
        }
    }

    /// The entries of a directory.
    async fn list(&self, dir: &str) -> Result<Vec<Entry>, String> {
        match self {
            Fs::Local => {
                let d = PathBuf::from(dir);
                blocking(move || crate::tui::runtime::read_local(&d)).await
            }
            Fs::Remote(c) => c.list(dir).await.map_err(|e| format!("{dir}: {e}")),
        }
    }
}

/// Resolves a request: the target directory (the target itself when it
/// is one; its parent, with a new name, for a single entry), each
/// entry's conflict, and a free name for each conflict.
async fn plan(fs: &Fs, req: Request) -> Result<Plan, String> {
    let target = match fs {
        Fs::Local => clean(&req.target),
        Fs::Remote(_) => RemotePath::parse(&req.target)
            .map_err(|e| format!("{}: {e}", req.target))?
            .to_string(),
    };
    // A directory given as its own target is a copy beside it (a new
    // name is then asked for), not one into itself.
    let itself = match req.sources.as_slice() {
        [one] => {
            let own = join(&req.dir, &one.name);
            match fs {
                Fs::Local => clean(&own) == target,
                Fs::Remote(_) => own == target,
            }
        }
        _ => false,
    };
    let (mut to_dir, new_name) = match fs.kind(&target).await? {
        Some(true) if !itself => (target, None),
        _ if req.sources.len() == 1 => {
            let (parent, name) = match target.rsplit_once('/') {
                Some(("", n)) => ("/".to_string(), n.to_string()),
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => (req.dir.clone(), target.clone()),
            };
            if !plain_name(&name) {
                return Err(format!("{target}: not a name to {} to", req.op.verb()));
            }
            if fs.kind(&parent).await? != Some(true) {
                return Err(format!("{parent}: no such directory"));
            }
            (parent, Some(name))
        }
        Some(_) => {
            return Err(format!(
                "{target} is not a directory (several entries go into one)"
            ))
        }
        None => return Err(format!("{target}: no such directory")),
    };
    let sources: Vec<(String, EntryKind)> = req
        .sources
        .iter()
        .map(|e| (join(&req.dir, &e.name), e.kind))
        .collect();
    if let Fs::Local = fs {
        // The pane's own directory, however it was written: entries over
        // themselves are then seen as such.
        let (a, b) = (to_dir.clone(), req.dir.clone());
        if blocking(move || Ok(same_dir(&a, &b))).await? {
            to_dir.clone_from(&req.dir);
        }
        // Into itself, through links too: compared by device and inode.
        let (dirs, t) = (sources.clone(), to_dir.clone());
        blocking(move || {
            for (p, k) in &dirs {
                let mut at = Some(Path::new(&t));
                while let Some(d) = at {
                    if *k == EntryKind::Dir && same_dir(&d.display().to_string(), p) {
                        return Err(format!("cannot put {p} into itself ({t})"));
                    }
                    at = d.parent();
                }
            }
            Ok(())
        })
        .await?;
    }
    check_into_itself(&sources, &to_dir)?;
    let there: HashMap<String, Entry> = fs
        .list(&to_dir)
        .await?
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut items = Vec::with_capacity(req.sources.len());
    for (entry, (source, _)) in req.sources.into_iter().zip(sources) {
        let name = new_name.clone().unwrap_or_else(|| entry.name.clone());
        let existing = there.get(&name).cloned();
        let suggestion = if existing.is_some() {
            super::suggest(&name, |n| there.contains_key(n) || used.contains(n))
                .ok_or_else(|| format!("no free name like {name} (1) in {to_dir}"))?
        } else {
            String::new()
        };
        used.insert(suggestion.clone());
        used.insert(name.clone());
        items.push(Item {
            entry,
            source,
            name,
            existing,
            suggestion,
            choice: Choice::Undecided,
        });
    }
    Ok(Plan {
        side: req.side,
        op: req.op,
        to_dir,
        items,
        asking: 0,
        apply_all: false,
        renaming: None,
        refusal: None,
    })
}

/// Carries a plan out, entry after entry, stopping at the first error;
/// returns how many entries were done.
async fn execute(fs: &Fs, plan: &Plan) -> (usize, Result<(), String>) {
    let mut done = 0;
    for item in &plan.items {
        let Some(name) = item.final_name() else {
            continue;
        };
        let dest = join(&plan.to_dir, name);
        if dest == item.source {
            continue;
        }
        let overwrite = item.choice == Choice::Overwrite && item.may_overwrite(&plan.to_dir);
        let dir = item.entry.kind == EntryKind::Dir;
        let r = match (plan.op, fs) {
            (Op::Copy, Fs::Remote(c)) => remote_copy(c, &item.source, &dest, dir, overwrite).await,
            (Op::Move, Fs::Remote(c)) => c
                .rename(&item.source, &dest, overwrite)
                .await
                .map_err(|e| e.to_string()),
            (op, Fs::Local) => {
                let (from, to) = (PathBuf::from(&item.source), PathBuf::from(&dest));
                blocking(move || {
                    match op {
                        Op::Copy => copy_local(&from, &to, overwrite),
                        Op::Move => move_local(&from, &to, overwrite),
                    }
                    .map_err(|e| e.to_string())
                })
                .await
            }
        };
        if let Err(e) = r {
            return (
                done,
                Err(format!(
                    "cannot {} {} to {dest}: {e}",
                    plan.op.verb(),
                    item.source
                )),
            );
        }
        done += 1;
    }
    (done, Ok(()))
}

/// A server-side copy; over an existing file, to a name beside it first
/// and renamed over it once complete, so the file is replaced whole or
/// not at all.
async fn remote_copy(
    c: &Client,
    from: &str,
    to: &str,
    recursive: bool,
    overwrite: bool,
) -> Result<(), String> {
    if !overwrite {
        return c
            .copy(from, to, recursive)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let tmp = beside(to);
    c.copy(from, &tmp, recursive)
        .await
        .map_err(|e| e.to_string())?;
    if let Err(e) = c.rename(&tmp, to, true).await {
        let _ = c.remove(&tmp, RemoveMode::Recursive).await;
        return Err(e.to_string());
    }
    Ok(())
}

/// A hidden name beside `path` for a copy in progress.
fn beside(path: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    format!("{dir}/.{name}.ferry-{}", std::process::id())
}

/// Copies a local file, link or tree (links copied as links, never
/// followed; fifos and devices left out), keeping modes and mtimes.
/// `overwrite` replaces a file at `to` once the copy is complete; a tree
/// goes only where nothing is, and a tree copy that fails removes what
/// it made.
pub fn copy_local(from: &Path, to: &Path, overwrite: bool) -> io::Result<()> {
    let md = std::fs::symlink_metadata(from)?;
    if md.is_dir() {
        std::fs::create_dir(to)?;
        return copy_tree(from, to, &md).map_err(|e| remove_partial(to, e));
    }
    if !overwrite {
        return copy_one(from, to, &md);
    }
    let tmp = PathBuf::from(beside(&to.display().to_string()));
    let _ = std::fs::remove_file(&tmp);
    copy_one(from, &tmp, &md)?;
    std::fs::rename(&tmp, to).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Removes `to`, the partial copy of a failed tree copy (`e`): its
/// directories first get write permission back (filled ones took the
/// source's modes, maybe read-only), links never followed; what is left
/// behind, if the removal fails too, is added to `e`.
fn remove_partial(to: &Path, e: io::Error) -> io::Error {
    let mut dirs = vec![to.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
        for item in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if item.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(item.path());
            }
        }
    }
    match std::fs::remove_dir_all(to) {
        Ok(()) => e,
        Err(left) => io::Error::new(
            e.kind(),
            format!(
                "{e}; the partial copy {} is left behind ({left})",
                crate::display::escape(&to.display().to_string())
            ),
        ),
    }
}

/// One file or link to a new name.
fn copy_one(from: &Path, to: &Path, md: &std::fs::Metadata) -> io::Result<()> {
    if md.file_type().is_symlink() {
        return std::os::unix::fs::symlink(std::fs::read_link(from)?, to);
    }
    if !md.is_file() {
        return Ok(()); // fifos, sockets, devices: not copied
    }
    let mut src = std::fs::File::open(from)?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    let r = io::copy(&mut src, &mut dst).and_then(|_| {
        dst.set_permissions(std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        dst.set_modified(mtime_of(md))
    });
    if r.is_err() {
        let _ = std::fs::remove_file(to);
    }
    r
}

fn mtime_of(md: &std::fs::Metadata) -> std::time::SystemTime {
    md.modified().unwrap_or_else(|_| {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(md.mtime()).unwrap_or(0))
    })
}

/// The tree below `from` into the new directory `to`, one open directory
/// per level (no recursion); each directory gets its mode and mtime once
/// filled.
fn copy_tree(from: &Path, to: &Path, md: &std::fs::Metadata) -> io::Result<()> {
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    let mut stack = vec![(std::fs::read_dir(from)?, to.to_path_buf(), md.clone())];
    while let Some((rd, dest, _)) = stack.last_mut() {
        let Some(item) = rd.next() else {
            if let Some((_, d, m)) = stack.pop() {
                dir_attrs(&d, &m)?;
            }
            continue;
        };
        let item = item?;
        let (s, d) = (item.path(), dest.join(item.file_name()));
        let m = std::fs::symlink_metadata(&s)?;
        if m.is_dir() {
            std::fs::create_dir(&d)?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
            stack.push((std::fs::read_dir(&s)?, d, m));
        } else {
            copy_one(&s, &d, &m)?;
        }
    }
    Ok(())
}

fn dir_attrs(dir: &Path, md: &std::fs::Metadata) -> io::Result<()> {
    std::fs::File::open(dir)?.set_modified(mtime_of(md))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(md.mode() & 0o7777))
}

/// Moves a local entry by renaming it; across file systems, by copying
/// it and deleting the source only once the copy is complete.
/// Without `overwrite` nothing at `to` is ever replaced, even an entry
/// made there meanwhile.
pub fn move_local(from: &Path, to: &Path, overwrite: bool) -> io::Result<()> {
    #[cfg(test)]
    if let Some(hook) = BEFORE_RENAME.get() {
        hook(to);
    }
    let r = if overwrite {
        std::fs::rename(from, to)
    } else {
        rename_new(from, to)
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
        r => return r,
    }
    let md = std::fs::symlink_metadata(from)?;
    copy_local(from, to, overwrite)?;
    if md.is_dir() {
        std::fs::remove_dir_all(from)
    } else {
        std::fs::remove_file(from)
    }
}

/// Renames `from` to `to` only where nothing is at `to`, in one step
/// (`RENAME_NOREPLACE`); only where the file system refuses the flag, by
/// a check and a rename.
fn rename_new(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => {}
        r => return r.map_err(io::Error::from),
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "already exists",
        ));
    }
    std::fs::rename(from, to)
}

#[cfg(test)]
thread_local! {
    /// Runs just before a local move renames: a test makes the target
    /// there, as another program might at that moment.
    pub(super) static BEFORE_RENAME: std::cell::Cell<Option<fn(&Path)>> =
        const { std::cell::Cell::new(None) };
}
