//! The transfer queue as the TUI shows it: one job per entry the user sent
//! (a file, or a whole tree), each folding the engine's progress events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::transfer::{Conflict, Direction, Overall, ProgressBoard, TransferEvent};

pub mod saver;
mod schedule;
pub use schedule::{DEFAULT_PARALLEL, MAX_PARALLEL};

/// No progress for this long shows as "stalled".
pub const STALL_SHOWN: Duration = Duration::from_secs(3);

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a free slot.
    Queued,
    /// Moving bytes.
    Running,
    /// Every file arrived and verified (or was skipped).
    Done,
    /// Something failed; retry resumes.
    Failed(String),
    /// Stopped by the user; retry resumes.
    Cancelled,
    /// Held by the user, partial files kept; `p` resumes it.
    Paused,
}

/// What a job copies and where: everything needed to start it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// Up or down.
    pub direction: Direction,
    /// Source paths (local or remote), any number: one job copies them all
    /// (shared: the queue and the running job hold the same list).
    pub sources: Arc<[String]>,
    /// Target directory.
    pub dest: String,
    /// A new name for the one source (a renamed folder), if any.
    pub name: Option<String>,
    /// Conflict policy.
    pub conflict: Conflict,
    /// Follow symbolic links met inside trees (`L`; the CLI's `-L`).
    pub follow_links: bool,
    /// A sync confirmed in the sync dialog (then the rest says what and
    /// where, for display).
    pub sync: Option<Box<super::sync_dialog::SyncJob>>,
}

impl JobSpec {
    /// The job as a short label: its one source, or how many.
    pub fn label(&self) -> String {
        let base = |p: &str| {
            p.rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or(p)
                .to_string()
        };
        match (&self.sources[..], &self.name) {
            ([one], Some(name)) => format!("{} as {name}", base(one)),
            ([one], None) => base(one),
            (many, _) => {
                let first = many.first().map_or("", |s| s.as_str());
                let dir = first.rsplit_once('/').map_or("", |(d, _)| d);
                format!("{} entries from {}/", many.len(), base(dir))
            }
        }
    }

    /// The same job, restarted: partial files are resumed, files it already
    /// finished (complete targets of the same size and SHA-256) are skipped,
    /// a different target still fails; an explicit overwrite or rename is
    /// kept.
    pub fn resumed(&self) -> JobSpec {
        let conflict = match self.conflict {
            Conflict::Auto | Conflict::Fail => Conflict::Resume,
            other => other,
        };
        JobSpec {
            conflict,
            ..self.clone()
        }
    }
}

/// One job: a copy of one or many entries and where it goes.
#[derive(Debug)]
pub struct Job {
    /// Id, unique in the session.
    pub id: u64,
    /// Its run's id, as the runtime knows it: the job's id at first, a new
    /// one each time it starts again after a pause or cancel.
    pub run: u64,
    /// What and where.
    pub spec: JobSpec,
    /// For display: the source, or how many.
    pub source: String,
    /// State.
    pub state: JobState,
    /// The engine's figures.
    pub board: ProgressBoard,
    /// Handed to the runtime (it holds one of the parallel slots).
    pub launched: bool,
    /// The spec to start with, when not `spec` (a retry or resume).
    run_spec: Option<JobSpec>,
    /// The login (`user@server`) the job was made under: it runs only
    /// while connected as that login (`None`: under any).
    pub owner: Option<String>,
}

impl Job {
    /// Figures of the whole job.
    pub fn overall(&self) -> Overall {
        self.board.overall()
    }

    /// The file being moved right now, for display.
    pub fn current_file(&self) -> Option<String> {
        self.board.current().map(|f| f.source.clone())
    }

    /// How long a running job has made no progress, once that is long
    /// enough to say so (a few seconds: between files and chunks, the
    /// figures never stand still that long).
    pub fn stalled(&self, now: Instant) -> Option<Duration> {
        // Hashing a partial, setting times or deleting is progress the
        // figures do not show (a dead link ends such a step anyway).
        if self.state != JobState::Running
            || self.board.checking().is_some()
            || self.board.phase().is_some()
        {
            return None;
        }
        let idle = now.saturating_duration_since(self.board.last_change()?);
        (idle >= STALL_SHOWN).then_some(idle)
    }

    /// The login a queued job waits for, when another one (or none) is
    /// connected now.
    pub fn waits_for<'a>(&'a self, login: Option<&str>) -> Option<&'a str> {
        let owner = self.owner.as_deref()?;
        (self.state == JobState::Queued && !self.launched && Some(owner) != login).then_some(owner)
    }

    /// Can be retried (or resumed).
    pub fn retryable(&self) -> bool {
        matches!(self.state, JobState::Failed(_) | JobState::Cancelled)
    }

    /// Still to finish (paused included).
    pub fn active(&self) -> bool {
        matches!(
            self.state,
            JobState::Queued | JobState::Running | JobState::Paused
        )
    }
}

/// All jobs of the session.
#[derive(Debug)]
pub struct Queue {
    /// Jobs, in the order queued ones start.
    pub jobs: Vec<Job>,
    /// Selected row.
    pub selected: usize,
    next_id: u64,
    /// Jobs running at once, at most.
    pub parallel: usize,
    /// The speed limit of all transfers, bytes per second (0: none).
    pub rate: u64,
    /// Runs being stopped (of paused or cancelled jobs): their slots are
    /// free once the runtime says they ended.
    stopping: Vec<u64>,
    /// The login connected now (`user@server`), `None` while offline: a
    /// new job belongs to it, and only its jobs start.
    pub login: Option<String>,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            jobs: Vec::new(),
            selected: 0,
            next_id: 0,
            parallel: DEFAULT_PARALLEL,
            rate: 0,
            stopping: Vec::new(),
            login: None,
        }
    }
}

impl Queue {
    /// Adds a job; returns its id.
    pub fn push(&mut self, spec: JobSpec) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.jobs.push(Job {
            id,
            run: id,
            source: spec.label(),
            spec,
            state: JobState::Queued,
            board: ProgressBoard::new(),
            launched: false,
            run_spec: None,
            owner: self.login.clone(),
        });
        id
    }

    /// A job by id.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// Applies an engine event to its job.
    pub fn apply(&mut self, id: u64, ev: &TransferEvent) {
        if let Some(job) = self.get_mut(id) {
            if job.state == JobState::Queued {
                job.state = JobState::Running;
            }
            job.board.apply(ev);
        }
    }

    /// Records a job's end.
    pub fn finish(&mut self, id: u64, result: Result<(), String>) {
        if let Some(job) = self.get_mut(id) {
            job.launched = false;
            if !matches!(job.state, JobState::Queued | JobState::Running) {
                return; // cancelled, paused or failed already (a stall)
            }
            let failed = job.overall().failed;
            // Say why, in the first failed file's words (a lost connection
            // must be recognisable so the job resumes after a reconnect).
            let first = job.board.first_failure().map(str::to_string);
            job.state = match (result, first) {
                (Err(e), _) => JobState::Failed(e),
                (Ok(()), Some(why)) if failed == 1 => JobState::Failed(why),
                (Ok(()), Some(why)) => {
                    JobState::Failed(format!("{failed} files failed, first: {why}"))
                }
                (Ok(()), None) if failed > 0 => {
                    JobState::Failed(format!("{failed} file(s) failed"))
                }
                (Ok(()), None) => JobState::Done,
            };
        }
    }

    /// Jobs queued or running.
    pub fn active(&self) -> usize {
        self.jobs.iter().filter(|j| j.active()).count()
    }

    /// Figures over the running, queued and finished jobs (failed and
    /// cancelled ones are counted in the title, not here, so they do not
    /// hold Overall below 100% forever); stalled jobs add no speed.
    pub fn overall(&self, now: Instant) -> Overall {
        let mut o = Overall::default();
        for j in self
            .jobs
            .iter()
            .filter(|j| j.active() || j.state == JobState::Done)
        {
            let x = j.overall();
            o.files += x.files;
            o.finished += x.finished;
            o.failed += x.failed;
            o.total += x.total;
            o.done += x.done;
            if j.state == JobState::Running && j.stalled(now).is_none() {
                o.rate += x.rate;
            }
        }
        o.eta = (o.rate > 0.0)
            .then(|| Duration::from_secs_f64(o.total.saturating_sub(o.done) as f64 / o.rate));
        o
    }
}
