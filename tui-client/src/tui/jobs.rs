//! Runs one transfer job of any number of sources: the engine plans and
//! copies a batch of sources at a time, so a job of 100,000 entries starts
//! at once, holds a bounded plan in memory, and stops, scan included, the
//! moment it is cancelled (its future is simply dropped).

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::action::Action;
use super::queue::JobSpec;
use crate::client::Client;
use crate::transfer::{self, Direction, Events, RateLimiter, TransferEvent, TransferOptions};

/// Sources handed to the engine at once.
const BATCH: usize = 256;

/// Copies everything `spec` names, reporting as `JobEvent`s of `job` with
/// file ids unique across batches.
pub async fn run(
    c: &Client,
    job: u64,
    spec: &JobSpec,
    tx: &mpsc::UnboundedSender<Action>,
    limiter: RateLimiter,
) -> Result<(), String> {
    if let Some(sync) = &spec.sync {
        return super::sync_dialog::run::run_job(c, job, sync, tx, limiter).await;
    }
    let opts = TransferOptions {
        recursive: true,
        on_conflict: spec.conflict,
        parallel: 4,
        follow_symlinks: spec.follow_links,
        limiter: Some(limiter),
        ..Default::default()
    };
    let mut base = 0;
    for batch in spec.sources.chunks(BATCH) {
        let (etx, mut erx) = mpsc::unbounded_channel();
        let fwd = tx.clone();
        let forward = tokio::spawn(async move {
            let mut files = 0;
            while let Some(event) = erx.recv().await {
                let event = renumber(event, base, &mut files);
                let _ = fwd.send(Action::JobEvent { job, event });
            }
            files
        });
        let events = Events::to(etx);
        let result = match spec.direction {
            Direction::Put => {
                let dest = match &spec.name {
                    Some(n) => format!("{}/{n}", spec.dest.trim_end_matches('/')),
                    None => format!("{}/", spec.dest.trim_end_matches('/')),
                };
                let paths: Vec<PathBuf> = batch.iter().map(PathBuf::from).collect();
                transfer::put_paths(c, &paths, &dest, opts.clone(), events).await
            }
            Direction::Get => {
                let dest = match &spec.name {
                    Some(n) => Path::new(&spec.dest).join(n),
                    None => PathBuf::from(&spec.dest),
                };
                transfer::get_paths(c, batch, &dest, opts.clone(), events).await
            }
        };
        base += forward.await.unwrap_or(0);
        result.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Moves a batch's file ids (0, 1, …) past the earlier batches' files;
/// counts the batch's files.
fn renumber(event: TransferEvent, base: u64, files: &mut u64) -> TransferEvent {
    match event {
        TransferEvent::Queued {
            id,
            direction,
            source,
            target,
            size,
        } => {
            *files += 1;
            TransferEvent::Queued {
                id: id + base,
                direction,
                source,
                target,
                size,
            }
        }
        TransferEvent::Started {
            id,
            size,
            resumed_from,
        } => TransferEvent::Started {
            id: id + base,
            size,
            resumed_from,
        },
        TransferEvent::Checking { id, bytes } => TransferEvent::Checking {
            id: id + base,
            bytes,
        },
        TransferEvent::Progress { id, done } => TransferEvent::Progress {
            id: id + base,
            done,
        },
        TransferEvent::Warning { id, message } => TransferEvent::Warning {
            id: id.map(|i| i + base),
            message,
        },
        TransferEvent::Phase { what } => TransferEvent::Phase { what },
        TransferEvent::Finished { id, report } => TransferEvent::Finished {
            id: id + base,
            report,
        },
    }
}
