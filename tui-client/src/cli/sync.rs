//! `ferry sync`: which side is remote, the plan (text or a JSON line),
//! then the files as `put`/`get` show them, the deletions and a result.

use std::io::IsTerminal;
use std::path::PathBuf;

use ferry_proto::size::format_size;
use serde_json::json;
use tokio::sync::mpsc;

use super::args::SyncArgs;
use super::{print_json, Failure};
use crate::client::Client;
use crate::display::{escape, sanitize};
use crate::sync::{self, Outcome, Plan, Sides, SyncError, SyncOptions, Tally};
use crate::transfer::Events;

/// Which way a sync goes: `(up, local, remote)`. Exactly one side must
/// be remote (a leading `:`).
pub fn split_sides(a: &SyncArgs) -> Result<(bool, PathBuf, String), Failure> {
    let remote = |s: &str| s.strip_prefix(':').map(str::to_string);
    match (remote(&a.src), remote(&a.dst)) {
        (None, Some(r)) => Ok((true, PathBuf::from(&a.src), r)),
        (Some(r), None) => Ok((false, PathBuf::from(&a.dst), r)),
        (Some(_), Some(_)) => Err(Failure::usage(
            "sync: both SRC and DST are remote; one must be local (write the remote one as :path)",
        )),
        (None, None) => Err(Failure::usage(
            "sync: neither SRC nor DST is remote; write the remote one with a leading colon (:path)",
        )),
    }
}

fn failure(e: SyncError) -> Failure {
    match e {
        SyncError::Client(e) => Failure::from_client(None, &e),
        SyncError::Rules(e) => Failure::usage(&format!("sync: {e}")),
        e => Failure::message(sanitize(&e.to_string()).into_owned()),
    }
}

/// Runs `ferry sync`.
pub async fn run(client: &Client, a: &SyncArgs, json: bool) -> Result<(), Failure> {
    let (up, local, remote) = split_sides(a)?;
    let remote = client
        .resolve(&remote)
        .map_err(|e| Failure::from_client(Some(&format!(":{remote}")), &e))?;
    let sides = Sides { up, local, remote };
    let opts = SyncOptions {
        delete: a.delete,
        checksum: a.checksum,
        rules: a.rules(),
        parallel: a.parallel.max(1),
        rate_limit: a.limit_rate,
        limiter: None,
    };
    let plan = sync::plan(client, &sides, &opts).await.map_err(failure)?;
    for w in &plan.warnings {
        eprintln!("ferry: warning: {}", escape(w));
    }
    show_plan(&sides, &plan, a.dry_run, json);
    if a.dry_run {
        show_changes(&plan, json);
        return Ok(());
    }
    if plan.is_empty() {
        show_result(&Outcome::default(), json);
        return Ok(());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let bars = !json && std::io::stderr().is_terminal();
    let display = tokio::spawn(super::transfer::show(rx, bars, json));
    let outcome = sync::run(client, &sides, &plan, &opts, Events::to(tx)).await;
    let _ = display.await;
    let outcome = outcome.map_err(failure)?;
    show_deletions(&sides, &outcome, json);
    show_result(&outcome, json);
    let failed_deletes = outcome.deleted.iter().filter(|d| d.error.is_some()).count();
    if let Some(why) = &outcome.deletions_skipped {
        eprintln!("ferry: sync: {why}");
    }
    for e in &outcome.touch_errors {
        eprintln!("ferry: sync: {}", sanitize(e));
    }
    let failed_times = outcome.touch_errors.len();
    if outcome.failed > 0 || failed_deletes > 0 || failed_times > 0 {
        return Err(Failure::quiet(format!(
            "sync: {} file(s), {failed_deletes} deletion(s) and {failed_times} time(s) failed",
            outcome.failed
        )));
    }
    Ok(())
}

fn tally_json(t: Tally) -> serde_json::Value {
    json!({ "files": t.files, "bytes": t.bytes })
}

fn tally_text(t: Tally) -> String {
    let s = if t.files == 1 { "" } else { "s" };
    format!("{} file{s}, {}", t.files, format_size(t.bytes))
}

fn show_plan(sides: &Sides, plan: &Plan, dry_run: bool, json: bool) {
    if json {
        let mut delete = tally_json(plan.delete);
        delete["dirs"] = json!(plan.delete_dirs);
        print_json(json!({ "plan": {
            "direction": if sides.up { "put" } else { "get" },
            "source": sides.source_name(),
            "destination": sides.destination_name(),
            "copy": tally_json(plan.copy),
            "update": tally_json(plan.update),
            "delete": delete,
            "unchanged": tally_json(plan.unchanged),
            "times_to_set": plan.touches.len(),
            "new_dirs": plan.new_dirs.len() + usize::from(plan.make_root),
            "dry_run": dry_run,
            "complete": !plan.incomplete,
        }}));
        return;
    }
    let dirs = if plan.delete_dirs > 0 {
        let s = if plan.delete_dirs == 1 { "y" } else { "ies" };
        format!(" (and {} director{s})", plan.delete_dirs)
    } else {
        String::new()
    };
    println!(
        "sync {} -> {}",
        escape(&sides.source_name()),
        escape(&sides.destination_name())
    );
    println!("  to copy:   {}", tally_text(plan.copy));
    println!("  to update: {}", tally_text(plan.update));
    println!("  to delete: {}{dirs}", tally_text(plan.delete));
    let times = match plan.touches.len() {
        0 => String::new(),
        n => format!(" ({n} with only the time to set)"),
    };
    println!("  unchanged: {}{times}", tally_text(plan.unchanged));
}

/// With `--dry-run`: each change.
fn show_changes(plan: &Plan, json: bool) {
    for c in &plan.transfers {
        let action = if c.update { "update" } else { "copy" };
        if json {
            print_json(json!({ "action": action, "path": c.rel, "size": c.size }));
        } else {
            println!("{action} {} ({} bytes)", escape(&c.rel), c.size);
        }
    }
    for t in &plan.touches {
        if json {
            print_json(json!({ "action": "set_mtime", "path": t.rel, "mtime": t.mtime }));
        } else {
            println!("set time {} ({})", escape(&t.rel), t.mtime);
        }
    }
    for d in &plan.deletions {
        if json {
            print_json(json!({ "action": "delete", "path": d.rel, "dir": d.dir }));
        } else {
            let slash = if d.dir { "/" } else { "" };
            println!("delete {}{slash}", escape(&d.rel));
        }
    }
}

fn show_deletions(sides: &Sides, outcome: &Outcome, json: bool) {
    for d in &outcome.deleted {
        let path = if sides.up {
            sides
                .remote_path(&d.rel)
                .map(|p| format!(":{p}"))
                .unwrap_or_else(|_| d.rel.clone())
        } else {
            sides.local_path(&d.rel).display().to_string()
        };
        if json {
            let mut v = json!({
                "action": "delete",
                "path": path,
                "dir": d.dir,
                "status": if d.error.is_some() { "failed" } else { "done" },
            });
            if let Some(e) = &d.error {
                v["reason"] = json!(e);
            }
            print_json(v);
        } else if let Some(e) = &d.error {
            eprintln!("ferry: delete {} failed: {}", escape(&path), sanitize(e));
        } else {
            println!("deleted {}", escape(&path));
        }
    }
}

fn show_result(o: &Outcome, json: bool) {
    let deleted = o.deleted.iter().filter(|d| d.error.is_none()).count();
    let failed_deletes = o.deleted.len() - deleted;
    if json {
        print_json(json!({ "result": {
            "copied": tally_json(o.copied),
            "updated": tally_json(o.updated),
            "deleted": deleted,
            "times_set": o.touched,
            "failed": o.failed,
            "failed_times": o.touch_errors.len(),
            "failed_deletions": failed_deletes,
            "deletions_skipped": o.deletions_skipped,
        }}));
    } else {
        let times = match o.touched {
            0 => String::new(),
            n => format!("; times set {n}"),
        };
        println!(
            "copied {}; updated {}; deleted {deleted}{times}; failed {}",
            tally_text(o.copied),
            tally_text(o.updated),
            o.failed + (failed_deletes + o.touch_errors.len()) as u64
        );
    }
}
