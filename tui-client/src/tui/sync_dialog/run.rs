//! The runtime's side of the sync dialog: the plan computed by
//! `sync::plan` on a task (stoppable), and a confirmed sync run by
//! `sync::run` as one queue job, its files' progress as the job's events.

use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

use super::{How, PlanRef, SyncJob};
use crate::client::Client;
use crate::sync::{Outcome, Sides};
use crate::transfer::Events;
use crate::tui::action::Action;

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncWork {
    /// Compare the trees and report the plan.
    Plan {
        /// Which plan.
        id: u64,
        /// The directories and the direction.
        sides: Sides,
        /// The options.
        how: How,
    },
    /// Stop computing plan `id`.
    Cancel(u64),
}

/// What the runtime reports.
#[derive(Clone, Debug)]
pub enum SyncNews {
    /// The plan, or why there is none.
    Planned {
        /// Which plan.
        id: u64,
        /// It.
        result: Result<PlanRef, String>,
    },
}

/// Holds the one planning in progress.
#[derive(Default)]
pub struct Planner {
    running: Option<(u64, JoinHandle<()>)>,
}

impl Planner {
    /// Starts or stops a planning (a new one stops the one before).
    pub fn run(&mut self, work: SyncWork, client: Option<Client>, tx: UnboundedSender<Action>) {
        match work {
            SyncWork::Cancel(id) => {
                if self.running.as_ref().is_some_and(|r| r.0 == id) {
                    if let Some((_, h)) = self.running.take() {
                        h.abort();
                    }
                }
            }
            SyncWork::Plan { id, sides, how } => {
                if let Some((_, h)) = self.running.take() {
                    h.abort();
                }
                let handle = tokio::spawn(async move {
                    let result = match client {
                        None => Err("not connected".to_string()),
                        Some(c) => crate::sync::plan(&c, &sides, &how.options())
                            .await
                            .map(|p| PlanRef(Arc::new(p)))
                            .map_err(|e| e.to_string()),
                    };
                    let _ = tx.send(Action::Sync(SyncNews::Planned { id, result }));
                });
                self.running = Some((id, handle));
            }
        }
    }
}

/// Runs a confirmed sync as queue job `job`: the previewed plan if the
/// job starts right after the confirmation, else (it waited, or is a
/// retry or a resume) a plan made again now; its files through the
/// engine (progress as the job's events), then the times, then, only
/// with `--delete` and only if every file arrived, the deletions.
pub async fn run_job(
    c: &Client,
    job: u64,
    sync: &SyncJob,
    tx: &UnboundedSender<Action>,
    limiter: crate::transfer::RateLimiter,
) -> Result<(), String> {
    let (etx, mut erx) = mpsc::unbounded_channel();
    let fwd = tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(event) = erx.recv().await {
            let _ = fwd.send(Action::JobEvent { job, event });
        }
    });
    let mut opts = sync.how.options();
    opts.limiter = Some(limiter);
    let plan = match sync.plan.take() {
        Some(p) => p.0,
        None => match crate::sync::plan(c, &sync.sides, &opts).await {
            Ok(p) => Arc::new(p),
            Err(e) => {
                drop(etx);
                let _ = forward.await;
                return Err(e.to_string());
            }
        },
    };
    let result = crate::sync::run(c, &sync.sides, &plan, &opts, Events::to(etx)).await;
    let _ = forward.await;
    let out = result.map_err(|e| e.to_string())?;
    let (text, ok) = summary(&out);
    let _ = tx.send(Action::OpDone {
        message: Some(text.clone()),
        refresh: None,
    });
    if ok {
        Ok(())
    } else {
        Err(text)
    }
}

/// What a sync did, in one line, and whether all of it worked.
pub fn summary(out: &Outcome) -> (String, bool) {
    let failed_deletions = out.deleted.iter().filter(|d| d.error.is_some()).count();
    let mut s = format!(
        "sync: {} copied, {} updated, {} deleted",
        out.copied.files,
        out.updated.files,
        out.deleted.len() - failed_deletions
    );
    if out.touched > 0 {
        s.push_str(&format!(", {} times set", out.touched));
    }
    let mut ok = true;
    if out.failed > 0 {
        s.push_str(&format!("; {} files failed", out.failed));
        ok = false;
    }
    if let Some(first) = out.deleted.iter().find_map(|d| d.error.as_ref()) {
        s.push_str(&format!(
            "; {failed_deletions} deletions failed, first: {first}"
        ));
        ok = false;
    }
    if let Some(e) = out.touch_errors.first() {
        s.push_str(&format!(
            "; {} times not set, first: {e}",
            out.touch_errors.len()
        ));
        ok = false;
    }
    if let Some(why) = &out.deletions_skipped {
        s.push_str(&format!("; {why}"));
        ok = false;
    }
    (s, ok)
}
