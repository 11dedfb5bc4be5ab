//! Progress of transfers as typed events, and a board that folds them into
//! per-file and overall figures (bytes, rate, ETA) for the CLI and the TUI.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::FileReport;

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

/// Folds events into figures.
#[derive(Debug, Default)]
pub struct ProgressBoard {
    files: HashMap<u64, FileProgress>,
    order: Vec<u64>,
    rate: Rate,
    warnings: Vec<String>,
    changed: Option<Instant>,
}

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
                self.order.push(*id);
                self.files.insert(
                    *id,
                    FileProgress {
                        direction: *direction,
                        source: source.clone(),
                        target: target.clone(),
                        size: size.unwrap_or(0),
                        done: 0,
                        resumed_from: 0,
                        started: None,
                        report: None,
                        rate: Rate::default(),
                    },
                );
            }
            TransferEvent::Started {
                id,
                size,
                resumed_from,
            } => {
                if let Some(f) = self.files.get_mut(id) {
                    f.size = *size;
                    f.done = *resumed_from;
                    f.resumed_from = *resumed_from;
                    f.started = Some(now);
                    f.rate.sample(now, *resumed_from);
                }
            }
            TransferEvent::Progress { id, done } => {
                if let Some(f) = self.files.get_mut(id) {
                    f.done = *done;
                    f.rate.sample(now, *done);
                }
            }
            TransferEvent::Warning { message, .. } => self.warnings.push(message.clone()),
            TransferEvent::Finished { id, report } => {
                if let Some(f) = self.files.get_mut(id) {
                    if report.status.is_done() {
                        f.done = f.size.max(report.size);
                    }
                    f.report = Some(report.clone());
                }
            }
        }
        let moved: u64 = self
            .files
            .values()
            .map(|f| f.done - f.resumed_from.min(f.done))
            .sum();
        self.rate.sample(now, moved);
    }

    /// A file's figures.
    pub fn file(&self, id: u64) -> Option<&FileProgress> {
        self.files.get(&id)
    }

    /// Files in the order they were queued.
    pub fn files(&self) -> impl Iterator<Item = (u64, &FileProgress)> {
        self.order
            .iter()
            .filter_map(|id| self.files.get(id).map(|f| (*id, f)))
    }

    /// When a file was last queued, started, moved bytes or finished: a
    /// running job whose figures stand still is stalled.
    pub fn last_change(&self) -> Option<Instant> {
        self.changed
    }

    /// Warnings so far.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The whole job.
    pub fn overall(&self) -> Overall {
        let total: u64 = self.files.values().map(|f| f.size).sum();
        let done: u64 = self.files.values().map(|f| f.done).sum();
        let rate = self.rate.value();
        Overall {
            files: self.files.len(),
            finished: self.files.values().filter(|f| f.report.is_some()).count(),
            failed: self
                .files
                .values()
                .filter(|f| f.report.as_ref().is_some_and(|r| r.status.is_failed()))
                .count(),
            total,
            done,
            rate,
            eta: eta(total.saturating_sub(done), rate),
        }
    }
}
