//! Progress of transfers as typed events, and a board that folds them into
//! per-file and overall figures (bytes, rate, ETA) for the CLI and the TUI.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{FileReport, Status};

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Local to remote.
    Put,
    /// Remote to local.
    Get,
}

/// What the transfer engine reports. `id` numbers files within one job.
#[derive(Clone, Debug)]
pub enum TransferEvent {
    /// A file is known and waiting for a slot.
    Queued {
        /// File id.
        id: u64,
        /// Direction.
        direction: Direction,
        /// Source path for display.
        source: String,
        /// Target path for display.
        target: String,
        /// Size when known up front.
        size: Option<u64>,
    },
    /// A partial from an earlier attempt holds `bytes`: they are being
    /// hashed to prove they match (before `Started`, which says how many
    /// were kept).
    Checking {
        /// File id.
        id: u64,
        /// Bytes already there, being checked.
        bytes: u64,
    },
    /// Bytes started to move; `resumed_from` were already there.
    Started {
        /// File id.
        id: u64,
        /// Total size.
        size: u64,
        /// Bytes kept from an earlier attempt.
        resumed_from: u64,
    },
    /// Bytes done so far (resumed bytes included).
    Progress {
        /// File id.
        id: u64,
        /// Bytes done.
        done: u64,
    },
    /// Something the user should know that does not stop the job.
    Warning {
        /// File id, when it concerns one file.
        id: Option<u64>,
        /// The message.
        message: String,
    },
    /// The files are done; the job goes on with steps that move no bytes
    /// and may take long (a sync setting times, deleting a tree): no
    /// figures change meanwhile, and that is no stall.
    Phase {
        /// What it does, for display ("setting times", "deleting").
        what: &'static str,
    },
    /// A file ended (done, skipped or failed).
    Finished {
        /// File id.
        id: u64,
        /// The outcome.
        report: FileReport,
    },
}

/// Where the engine sends events; `None` discards them.
#[derive(Clone, Debug, Default)]
pub struct Events(Option<mpsc::UnboundedSender<TransferEvent>>);

impl Events {
    /// Events sent to `tx`.
    pub fn to(tx: mpsc::UnboundedSender<TransferEvent>) -> Events {
        Events(Some(tx))
    }

    /// Discard events.
    pub fn none() -> Events {
        Events(None)
    }

    /// Emits one event.
    pub fn emit(&self, ev: TransferEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(ev);
        }
    }
}

/// One file's figures.
#[derive(Clone, Debug)]
pub struct FileProgress {
    /// Direction.
    pub direction: Direction,
    /// Source for display.
    pub source: String,
    /// Target for display.
    pub target: String,
    /// Total bytes (0 until known).
    pub size: u64,
    /// Bytes done (resumed included).
    pub done: u64,
    /// Bytes that were already there.
    pub resumed_from: u64,
    /// When bytes started to move.
    pub started: Option<Instant>,
    /// Bytes already there being hashed (a resume), until it starts.
    pub checking: Option<u64>,
    /// Set when finished.
    pub report: Option<FileReport>,
    rate: Rate,
}

impl FileProgress {
    /// Smoothed bytes per second.
    pub fn rate(&self) -> f64 {
        self.rate.value()
    }

    /// Estimated time left.
    pub fn eta(&self) -> Option<Duration> {
        eta(self.size.saturating_sub(self.done), self.rate())
    }

    /// Running: started and not finished.
    pub fn is_running(&self) -> bool {
        self.started.is_some() && self.report.is_none()
    }
}

/// Exponentially smoothed rate over samples.
#[derive(Clone, Debug, Default)]
struct Rate {
    last: Option<(Instant, u64)>,
    value: f64,
}

impl Rate {
    fn sample(&mut self, now: Instant, total: u64) {
        match self.last {
            None => self.last = Some((now, total)),
            Some((t, b)) => {
                let dt = now.duration_since(t).as_secs_f64();
                if dt >= 0.2 {
                    let inst = total.saturating_sub(b) as f64 / dt;
                    self.value = if self.value == 0.0 {
                        inst
                    } else {
                        0.7 * self.value + 0.3 * inst
                    };
                    self.last = Some((now, total));
                }
            }
        }
    }

    fn value(&self) -> f64 {
        self.value
    }
}

fn eta(left: u64, rate: f64) -> Option<Duration> {
    (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
}

/// Folds events into figures. Totals are kept as running sums and a
/// finished file is folded into them and forgotten, so every event costs
/// O(1) and memory holds only the files not yet finished, however many
/// files the job has (100,000 or more).
#[derive(Debug, Default)]
pub struct ProgressBoard {
    /// Files queued or running, by id.
    files: HashMap<u64, FileProgress>,
    rate: Rate,
    warnings: Vec<String>,
    changed: Option<Instant>,
    known: usize,
    finished: usize,
    failed: usize,
    total: u64,
    done: u64,
    moved: u64,
    resumed: u64,
    first_failure: Option<String>,
    phase: Option<&'static str>,
}

/// Warnings kept per job (the count goes on).
const MAX_WARNINGS: usize = 100;

/// Figures for the whole job.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overall {
    /// Files known.
    pub files: usize,
    /// Files finished (any outcome).
    pub finished: usize,
    /// Files failed.
    pub failed: usize,
    /// Bytes of all known files.
    pub total: u64,
    /// Bytes done.
    pub done: u64,
    /// Smoothed bytes per second.
    pub rate: f64,
    /// Estimated time left.
    pub eta: Option<Duration>,
}

impl ProgressBoard {
    /// An empty board.
    pub fn new() -> ProgressBoard {
        ProgressBoard::default()
    }

    /// Applies one event.
    pub fn apply(&mut self, ev: &TransferEvent) {
        let now = Instant::now();
        if !matches!(ev, TransferEvent::Warning { .. }) {
            self.changed = Some(now);
        }
        match ev {
            TransferEvent::Queued {
                id,
                direction,
                source,
                target,
                size,
            } => {
                let size = size.unwrap_or(0);
                self.known += 1;
                self.total += size;
                let old = self.files.insert(
                    *id,
                    FileProgress {
                        direction: *direction,
                        source: source.clone(),
                        target: target.clone(),
                        size,
                        done: 0,
                        resumed_from: 0,
                        started: None,
                        checking: None,
                        report: None,
                        rate: Rate::default(),
                    },
                );
                if let Some(old) = old {
                    // The same id again: the old one no longer counts.
                    self.known -= 1;
                    self.total -= old.size;
                    self.done -= old.done;
                }
            }
            TransferEvent::Checking { id, bytes } => {
                if let Some(f) = self.files.get_mut(id) {
                    f.checking = Some(*bytes);
                }
            }
            TransferEvent::Started {
                id,
                size,
                resumed_from,
            } => {
                if let Some(f) = self.files.get_mut(id) {
                    f.checking = None;
                    self.total = self.total - f.size + size;
                    self.done = self.done - f.done + resumed_from;
                    self.resumed = self.resumed - f.resumed_from + resumed_from;
                    f.size = *size;
                    f.done = *resumed_from;
                    f.resumed_from = *resumed_from;
                    f.started = Some(now);
                    f.rate.sample(now, *resumed_from);
                }
            }
            TransferEvent::Progress { id, done } => {
                if let Some(f) = self.files.get_mut(id) {
                    self.done = self.done - f.done + done;
                    self.moved += done.saturating_sub(f.done.max(f.resumed_from));
                    f.done = *done;
                    f.rate.sample(now, *done);
                }
            }
            TransferEvent::Phase { what } => self.phase = Some(what),
            TransferEvent::Warning { message, .. } => {
                if self.warnings.len() < MAX_WARNINGS {
                    self.warnings.push(message.clone());
                }
            }
            TransferEvent::Finished { id, report } => {
                if let Some(f) = self.files.remove(id) {
                    let end = if report.status.is_done() {
                        f.size.max(report.size)
                    } else {
                        f.done
                    };
                    // A skipped file leaves the totals; a failed one keeps
                    // its size, so its job shows what is missing.
                    let counted = match report.status {
                        Status::Skipped(_) => end,
                        _ => f.size.max(end),
                    };
                    self.total = self.total - f.size + counted;
                    self.done = self.done - f.done + end;
                    self.moved += end.saturating_sub(f.done.max(f.resumed_from));
                    self.finished += 1;
                    if let Status::Failed(why) = &report.status {
                        self.failed += 1;
                        self.first_failure.get_or_insert_with(|| why.clone());
                    }
                }
            }
        }
        self.rate.sample(now, self.moved);
    }

    /// A file's figures, while it is queued or running.
    pub fn file(&self, id: u64) -> Option<&FileProgress> {
        self.files.get(&id)
    }

    /// The running file with the lowest id, for display.
    pub fn current(&self) -> Option<&FileProgress> {
        self.files
            .iter()
            .filter(|(_, f)| f.is_running())
            .min_by_key(|(id, _)| **id)
            .map(|(_, f)| f)
    }

    /// Bytes already there being checked (files resuming, not yet
    /// started), if any: hashing a large partial takes a while, and its
    /// gauge would stand at 0%.
    pub fn checking(&self) -> Option<u64> {
        let bytes: u64 = self.files.values().filter_map(|f| f.checking).sum();
        (bytes > 0).then_some(bytes)
    }

    /// The step without figures the job is in, once its files are done
    /// (see [`TransferEvent::Phase`]).
    pub fn phase(&self) -> Option<&'static str> {
        self.phase
    }

    /// Bytes the started files found already there (resumed partials).
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    /// Why the first file that failed failed.
    pub fn first_failure(&self) -> Option<&str> {
        self.first_failure.as_deref()
    }

    /// When a file was last queued, started, moved bytes or finished: a
    /// running job whose figures stand still is stalled.
    pub fn last_change(&self) -> Option<Instant> {
        self.changed
    }

    /// Warnings so far (the first [`MAX_WARNINGS`]).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The whole job.
    pub fn overall(&self) -> Overall {
        let rate = self.rate.value();
        Overall {
            files: self.known,
            finished: self.finished,
            failed: self.failed,
            total: self.total,
            done: self.done,
            rate,
            eta: eta(self.total.saturating_sub(self.done), rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Status, size: u64) -> FileReport {
        FileReport {
            direction: Direction::Get,
            local: "x".into(),
            remote: "/x".into(),
            size,
            sha256: None,
            resumed_from: 0,
            status,
        }
    }

    #[test]
    fn totals_follow_every_event_and_finished_files_are_forgotten() {
        let mut b = ProgressBoard::new();
        for id in 0..100_000u64 {
            b.apply(&TransferEvent::Queued {
                id,
                direction: Direction::Get,
                source: format!("/f{id}"),
                target: format!("f{id}"),
                size: Some(10),
            });
        }
        b.apply(&TransferEvent::Started {
            id: 0,
            size: 10,
            resumed_from: 4,
        });
        b.apply(&TransferEvent::Progress { id: 0, done: 7 });
        let o = b.overall();
        assert_eq!((o.files, o.total, o.done), (100_000, 1_000_000, 7));
        assert_eq!(b.resumed(), 4, "the bytes found already there");
        for id in 0..100_000u64 {
            let status = if id == 5 {
                Status::Failed("disk full".into())
            } else {
                Status::Done
            };
            b.apply(&TransferEvent::Finished {
                id,
                report: report(status, 10),
            });
        }
        let o = b.overall();
        assert_eq!((o.finished, o.failed), (100_000, 1));
        assert_eq!(o.done, 1_000_000 - 10, "the failed file moved nothing");
        assert_eq!(b.first_failure(), Some("disk full"));
        assert!(b.files.is_empty(), "finished files are forgotten");
        assert_eq!(b.moved, 1_000_000 - 10 - 4, "resumed bytes did not move");
    }
}
