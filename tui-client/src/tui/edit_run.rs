//! F4 on the runtime: fetching a remote file into a private temporary
//! directory, running the editor with the screen suspended, and checking
//! the copy and the remote afterwards (see `edit.rs` for the decision).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, EventStream};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ferry_proto::ErrorKind;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc::UnboundedSender;

use super::action::Action;
use super::edit::{
    decide, spare_name, EditNews, EditSession, EditTarget, EditWork, RemoteNow, Seen, Verdict,
    EDIT_LIMIT,
};
use crate::client::{Client, ClientError};
use crate::transfer::{self, Conflict, Events, TransferOptions};

/// Runs edit work other than the editor itself.
pub fn run(work: EditWork, client: Option<Client>, tx: UnboundedSender<Action>) {
    match work {
        EditWork::Fetch { remote, dir, name } => {
            tokio::spawn(async move {
                let result = match client {
                    Some(c) => fetch(&c, remote, dir, name).await,
                    None => Err("not connected".into()),
                };
                match &result {
                    Ok(s) => {
                        tracing::info!(remote = %s.remote, copy = %s.file.display(), "fetched to edit")
                    }
                    Err(e) => tracing::warn!("fetching to edit: {e}"),
                }
                let _ = tx.send(Action::Edit(EditNews::Fetched(result)));
            });
        }
        EditWork::Check { session, failed } => {
            tokio::spawn(async move {
                let checked = check(client.as_ref(), &session, failed.is_some()).await;
                // The upload follows the check at once, not behind the
                // queue's jobs: nothing can change the remote unnoticed
                // between the two.
                let news = match (checked, client) {
                    (Ok((Verdict::Upload, _, mode)), Some(c)) if failed.is_none() => {
                        let to = session.remote.clone();
                        let result = put(&c, &session, &to, Conflict::Overwrite, mode).await;
                        EditNews::Uploaded {
                            session,
                            to,
                            result,
                        }
                    }
                    (checked, _) => EditNews::Checked {
                        session,
                        failed,
                        result: checked.map(|(v, spare, _)| (v, spare)),
                    },
                };
                let _ = tx.send(Action::Edit(news));
            });
        }
        EditWork::Upload { session, spare } => {
            tokio::spawn(async move {
                let (name, conflict) = match spare {
                    Some(n) => (n, Conflict::Fail),
                    None => (session.name.clone(), Conflict::Overwrite),
                };
                let to = format!("{}/{name}", session.dir.trim_end_matches('/'));
                let result = match client {
                    Some(c) => {
                        // The mode the file has now (a chmod meanwhile
                        // counts), else the one it had.
                        let mode = match c.stat(&session.remote).await {
                            Ok(e) => e.mode,
                            Err(_) => session.seen.mode,
                        };
                        put(&c, &session, &to, conflict, mode).await
                    }
                    None => Err("not connected".into()),
                };
                let _ = tx.send(Action::Edit(EditNews::Uploaded {
                    session,
                    to,
                    result,
                }));
            });
        }
        EditWork::Discard(session) => {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&session.temp_dir) {
                    tracing::warn!("{}: {e}", session.temp_dir.display());
                }
            });
        }
        EditWork::Run(_) => tracing::warn!("the editor runs from the event loop only"),
    }
}

/// Downloads `remote` (verified) into a new private directory; the
/// remote's size and mtime must be the same before and after.
async fn fetch(
    c: &Client,
    remote: String,
    dir: String,
    name: String,
) -> Result<EditSession, String> {
    let at = |e: ClientError| format!("{remote}: {e}");
    let before = c.stat(&remote).await.map_err(at)?;
    if before.kind != ferry_proto::msg::EntryKind::File {
        return Err(format!("{remote}: F4 edits regular files only"));
    }
    if before.size > EDIT_LIMIT {
        return Err(too_big(&remote, before.size));
    }
    // A random name, made 0700 by the mkdir itself: no one else may look
    // in, even for a moment.
    let temp_dir = tempfile::Builder::new()
        .prefix("ferry-edit-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?
        .keep();
    let file = temp_dir.join(local_name(&name));
    let fetched = download(c, &remote, &file).await;
    let after = c.stat(&remote).await.map_err(at);
    let result = match (fetched, after) {
        (Ok(sha256), Ok(after)) if (after.size, after.mtime) == (before.size, before.mtime) => {
            Ok(EditSession {
                remote: remote.clone(),
                dir,
                name,
                temp_dir: temp_dir.clone(),
                file,
                seen: Seen {
                    size: before.size,
                    mtime: before.mtime,
                    sha256,
                    mode: before.mode,
                },
            })
        }
        (Ok(_), Ok(_)) => Err(format!(
            "{remote} changed while it was fetched; F4 again tries again"
        )),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&temp_dir);
    }
    result
}

/// A name for the copy: the remote's, unless it could leave the directory.
fn local_name(name: &str) -> &str {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        "file"
    } else {
        name
    }
}

fn too_big(remote: &str, size: u64) -> String {
    format!(
        "{remote} is {} MiB: F4 edits files up to {} MiB (F5 copies it to edit it locally)",
        size >> 20,
        EDIT_LIMIT >> 20
    )
}

/// The verified download of one file; its SHA-256. The copy is 0600.
async fn download(c: &Client, remote: &str, file: &Path) -> Result<[u8; 32], String> {
    let opts = TransferOptions {
        on_conflict: Conflict::Overwrite,
        parallel: 1,
        ..Default::default()
    };
    let reports = transfer::get_paths(c, &[remote.to_string()], file, opts, Events::none())
        .await
        .map_err(|e| format!("{remote}: {e}"))?;
    let report = reports
        .into_iter()
        .next()
        .ok_or_else(|| format!("{remote}: nothing was fetched"))?;
    let sha = match (&report.status, report.sha256) {
        (transfer::Status::Done, Some(sha)) => sha,
        (transfer::Status::Failed(e) | transfer::Status::Skipped(e), _) => {
            return Err(format!("{remote}: {e}"))
        }
        _ => return Err(format!("{remote}: the download was not verified")),
    };
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(sha)
}

/// Hashes the copy and decides; with `only_local` (the editor failed)
/// only whether the copy changed (`Unchanged` or `Upload`). Also the
/// remote file's mode now (the one fetched when it is gone).
async fn check(
    c: Option<&Client>,
    s: &EditSession,
    only_local: bool,
) -> Result<(Verdict, String, u32), String> {
    let file = s.file.clone();
    let (_, edited) = tokio::task::spawn_blocking(move || transfer::local::hash_file(&file))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", s.file.display()))?;
    if edited == s.seen.sha256 {
        return Ok((Verdict::Unchanged, String::new(), s.seen.mode));
    }
    if only_local {
        return Ok((Verdict::Upload, String::new(), s.seen.mode));
    }
    let c = c.ok_or("not connected")?;
    let at = |e: ClientError| format!("{}: {e}", s.remote);
    let mut mode = s.seen.mode;
    let mut now = match c.stat(&s.remote).await {
        Ok(e) => {
            mode = e.mode;
            Some(RemoteNow {
                size: e.size,
                mtime: e.mtime,
                sha256: None,
            })
        }
        Err(e) if e.kind() == Some(ErrorKind::NotFound) => None,
        Err(e) => return Err(at(e)),
    };
    let mut verdict = decide(&s.seen, &edited, now.as_ref());
    if verdict == Verdict::NeedHash {
        let path = c.resolve(&s.remote).map_err(at)?;
        let (_, sha) = c.checksum(&path, None).await.map_err(at)?;
        if let Some(n) = now.as_mut() {
            n.sha256 = Some(sha);
        }
        verdict = decide(&s.seen, &edited, now.as_ref());
    }
    let spare = match verdict {
        Verdict::RemoteChanged(_) => free_name(c, s).await?,
        _ => String::new(),
    };
    Ok((verdict, spare, mode))
}

/// Uploads the copy (verified, atomically) to `to` with the remote
/// file's `mode`: the server keeps the mode an upload carries, and the
/// copy's own 0600 is only for privacy (its directory stays 0700).
async fn put(
    c: &Client,
    s: &EditSession,
    to: &str,
    conflict: Conflict,
    mode: u32,
) -> Result<(), String> {
    let file = s.file.clone();
    let perm = std::fs::Permissions::from_mode((mode & 0o777) | 0o600);
    std::fs::set_permissions(&file, perm).map_err(|e| format!("{}: {e}", file.display()))?;
    let opts = TransferOptions {
        on_conflict: conflict,
        parallel: 1,
        ..Default::default()
    };
    let reports = transfer::put_paths(c, &[file], to, opts, Events::none())
        .await
        .map_err(|e| format!("{to}: {e}"))?;
    match reports.into_iter().next().map(|r| r.status) {
        Some(transfer::Status::Done) => Ok(()),
        Some(transfer::Status::Failed(e) | transfer::Status::Skipped(e)) => Err(e),
        _ => Err(format!("{to}: nothing was uploaded")),
    }
}

/// The first `NAME.edited-N` not on the server.
async fn free_name(c: &Client, s: &EditSession) -> Result<String, String> {
    for n in 1..1000 {
        let name = spare_name(&s.name, n);
        let path = format!("{}/{name}", s.dir.trim_end_matches('/'));
        match c.stat(&path).await {
            Err(e) if e.kind() == Some(ErrorKind::NotFound) => return Ok(name),
            Err(e) => return Err(format!("{path}: {e}")),
            Ok(_) => {}
        }
    }
    Err(format!("{}: no free name for a copy beside it", s.remote))
}

/// The editor: `$VISUAL`, else `$EDITOR`, else `vi` (run by `sh`, so
/// one with arguments works).
pub fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "vi".into())
}

/// Runs the editor on the target with the screen handed over to it: the
/// key reader stops (it would steal the editor's keys), raw mode, the
/// alternate screen and mouse capture are left, and all come back after,
/// with the whole screen drawn again. Reports `EditNews::Exited`; returns
/// the new key reader.
pub async fn run_editor(
    terminal: &mut Terminal<CrosstermBackend<std::io::Stdout>>,
    events: EventStream,
    target: EditTarget,
    tx: &UnboundedSender<Action>,
) -> std::io::Result<EventStream> {
    // Dropped first: its thread holds crossterm's reader while it waits,
    // so a new stream could not even be made before.
    drop(events);
    suspend();
    let editor = editor();
    tracing::info!(%editor, file = %target.path().display(), "editor started");
    let path: PathBuf = target.path().to_path_buf();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .await;
    resume(terminal)?;
    tracing::info!(?status, "editor ended");
    let result = match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("the editor ({editor}) ended with {s}")),
        Err(e) => Err(format!("cannot run the editor ({editor}): {e}")),
    };
    let _ = tx.send(Action::Edit(EditNews::Exited { target, result }));
    Ok(EventStream::new())
}

fn suspend() {
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(
        out,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

fn resume(terminal: &mut Terminal<CrosstermBackend<std::io::Stdout>>) -> std::io::Result<()> {
    enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    terminal.clear()
}
