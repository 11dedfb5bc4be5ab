//! `ferry put` and `ferry get`: runs a transfer job and shows it — progress
//! bars on a terminal, one line per file otherwise, one JSON object per
//! file with `--json`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use tokio::sync::mpsc;

use super::args::XferArgs;
use super::Failure;
use crate::client::Client;
use crate::display::{escape, sanitize};
use crate::transfer::{
    self, hex, Direction, Events, FileReport, Status, TransferEvent, TransferOptions,
};

/// Runs `put` or `get` with the user's paths.
pub async fn run(
    client: &Client,
    direction: Direction,
    paths: &[String],
    xfer: &XferArgs,
    json: bool,
) -> Result<(), Failure> {
    let opts = TransferOptions {
        recursive: xfer.recursive,
        on_conflict: xfer.on_conflict.unwrap_or_default(),
        parallel: xfer.parallel.max(1),
        follow_symlinks: xfer.follow_symlinks,
        rate_limit: xfer.limit_rate,
        limiter: None,
        rehash: xfer.rehash,
    };
    let (sources, dest) = match paths {
        [one] => (std::slice::from_ref(one), None),
        [sources @ .., last] => (sources, Some(last.as_str())),
        [] => return Err(Failure::usage("nothing to transfer")),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let bars = !json && std::io::stderr().is_terminal();
    let display = tokio::spawn(show(rx, bars, json));
    let result = match direction {
        Direction::Put => {
            let locals: Vec<PathBuf> = sources.iter().map(PathBuf::from).collect();
            transfer::put_paths(client, &locals, dest.unwrap_or("."), opts, Events::to(tx)).await
        }
        Direction::Get => {
            let dest = PathBuf::from(dest.unwrap_or("."));
            transfer::get_paths(client, sources, &dest, opts, Events::to(tx)).await
        }
    };
    let _ = display.await;
    let reports = result
        .map_err(|e| Failure::from_client(dest.or(sources.first().map(String::as_str)), &e))?;
    let failed = reports.iter().filter(|r| r.status.is_failed()).count();
    if failed > 0 {
        // Each failure has had its own line; a total helps only for several.
        let total = if reports.len() > 1 {
            format!("{failed} of {} files failed", reports.len())
        } else {
            String::new()
        };
        return Err(Failure::quiet(total));
    }
    Ok(())
}

fn verb(d: Direction) -> &'static str {
    match d {
        Direction::Put => "put",
        Direction::Get => "get",
    }
}

/// Source and target, exact (for JSON).
fn endpoints(r: &FileReport) -> (String, String) {
    let local = r.local.display().to_string();
    match r.direction {
        Direction::Put => (local, r.remote.clone()),
        Direction::Get => (r.remote.clone(), local),
    }
}

/// One line for people: names escaped (a local name made from a remote
/// one is as untrusted as the remote one), reasons sanitized (they may
/// quote names already escaped).
fn summary(r: &FileReport) -> String {
    let (from, to) = endpoints(r);
    let (from, to) = (escape(&from), escape(&to));
    let sha = r
        .sha256
        .map(|h| format!(", sha256 {}", hex(&h)))
        .unwrap_or_default();
    let resumed = if r.resumed_from > 0 {
        format!(", resumed from byte {}", r.resumed_from)
    } else {
        String::new()
    };
    match &r.status {
        Status::Done => format!(
            "{} {from} -> {to} ({} bytes{sha}{resumed})",
            verb(r.direction),
            r.size
        ),
        Status::Skipped(why) => format!(
            "{} {from} -> {to} skipped: {}",
            verb(r.direction),
            sanitize(why)
        ),
        Status::Failed(why) if why.ends_with("already exists") => format!(
            "{} {from} -> {to} failed: {} (use --on-conflict overwrite, skip, rename or resume)",
            verb(r.direction),
            sanitize(why)
        ),
        Status::Failed(why) => format!(
            "{} {from} -> {to} failed: {}",
            verb(r.direction),
            sanitize(why)
        ),
    }
}

fn report_json(r: &FileReport) -> serde_json::Value {
    let (from, to) = endpoints(r);
    let mut v = json!({
        "direction": verb(r.direction),
        "path": from,
        "target": to,
        "size": r.size,
        "sha256": r.sha256.map(|h| hex(&h)),
        "resumed_from": r.resumed_from,
        "status": r.status.word(),
    });
    if let Status::Skipped(why) | Status::Failed(why) = &r.status {
        v["reason"] = json!(why);
    }
    v
}

pub(super) async fn show(rx: mpsc::UnboundedReceiver<TransferEvent>, bars: bool, json: bool) {
    if bars {
        show_bars(rx, json).await
    } else {
        show_lines(rx, json).await
    }
}

/// The line (or JSON object) printed on stdout for a finished file, and
/// the failure line for stderr.
fn finished_lines(report: &FileReport, json: bool) -> (Option<String>, Option<String>) {
    let out = if json {
        Some(super::output::json_line(&report_json(report)))
    } else if !report.status.is_failed() {
        Some(summary(report))
    } else {
        None
    };
    let err = report
        .status
        .is_failed()
        .then(|| format!("ferry: {}", summary(report)));
    (out, err)
}

/// Without a terminal: one line per file, and nothing else. Lines of files
/// that finish together are written at once (a tree of small files made
/// one write per file).
async fn show_lines(mut rx: mpsc::UnboundedReceiver<TransferEvent>, json: bool) {
    use std::io::Write;
    while let Some(first) = rx.recv().await {
        let mut lines = String::new();
        let mut next = Some(first);
        while let Some(ev) = next {
            match ev {
                TransferEvent::Finished { report, .. } => {
                    let (out, err) = finished_lines(&report, json);
                    if let Some(line) = out {
                        lines.push_str(&line);
                        lines.push('\n');
                    }
                    if let Some(line) = err {
                        eprintln!("{line}");
                    }
                }
                TransferEvent::Warning { message, .. } => {
                    eprintln!("ferry: warning: {}", sanitize(&message))
                }
                _ => {}
            }
            next = rx.try_recv().ok();
        }
        if !lines.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(lines.as_bytes());
            let _ = stdout.flush();
        }
    }
}

/// On a terminal: a bar per file in flight and one for the whole job.
async fn show_bars(mut rx: mpsc::UnboundedReceiver<TransferEvent>, json: bool) {
    let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let file_style = ProgressStyle::with_template("{msg:30!} [{bar:25}] {percent:>3}% {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let all_style = ProgressStyle::with_template("{msg:30!} [{bar:25}] {percent:>3}% {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("## ");
    let overall = mp.add(
        ProgressBar::new(0)
            .with_style(all_style)
            .with_message("total"),
    );
    overall.enable_steady_tick(Duration::from_millis(250));
    let mut files: std::collections::HashMap<u64, (ProgressBar, u64)> = Default::default();
    let mut names: std::collections::HashMap<u64, String> = Default::default();
    let (mut count, mut finished) = (0u64, 0u64);
    while let Some(ev) = rx.recv().await {
        match ev {
            TransferEvent::Queued {
                id, size, source, ..
            } => {
                names.insert(id, escape(&source).into_owned());
                count += 1;
                overall.inc_length(size.unwrap_or(0));
                overall.set_message(format!("total ({finished}/{count} files)"));
            }
            TransferEvent::Started {
                id,
                size,
                resumed_from,
            } => {
                let name = names.remove(&id).unwrap_or_default();
                overall.set_message(format!("total ({finished}/{count} files)"));
                let bar = mp.insert_before(
                    &overall,
                    ProgressBar::new(size)
                        .with_style(file_style.clone())
                        .with_message(name),
                );
                bar.set_position(resumed_from);
                overall.inc(resumed_from);
                files.insert(id, (bar, resumed_from));
            }
            TransferEvent::Phase { what } => overall.set_message(what),
            TransferEvent::Checking { id, bytes } => {
                if let Some(name) = names.get(&id) {
                    let bytes = ferry_proto::size::format_size(bytes);
                    overall.set_message(format!("checking {bytes} already there: {name}"));
                }
            }
            TransferEvent::Progress { id, done } => {
                if let Some((bar, last)) = files.get_mut(&id) {
                    bar.set_position(done);
                    overall.inc(done.saturating_sub(*last));
                    *last = done;
                }
            }
            TransferEvent::Warning { message, .. } => {
                mp.suspend(|| eprintln!("ferry: warning: {}", sanitize(&message)));
            }
            TransferEvent::Finished { report, id } => {
                finished += 1;
                overall.set_message(format!("total ({finished}/{count} files)"));
                if let Some((bar, last)) = files.remove(&id) {
                    overall.inc(report.size.saturating_sub(last));
                    bar.finish_and_clear();
                    mp.remove(&bar);
                } else {
                    overall.inc(report.size);
                }
                let (out, err) = finished_lines(&report, json);
                mp.suspend(|| {
                    if let Some(line) = out {
                        println!("{line}");
                    }
                    if let Some(line) = err {
                        eprintln!("{line}");
                    }
                });
            }
        }
    }
    overall.finish_and_clear();
}
