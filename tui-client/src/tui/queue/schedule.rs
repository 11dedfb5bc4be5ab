//! Which jobs run: queued ones start in list order, at most `parallel` at
//! once; pausing, resuming and moving jobs in the list.

use super::{JobState, Queue};
use crate::tui::action::{Action, Effect};

/// Jobs running at once unless the user says otherwise.
pub const DEFAULT_PARALLEL: usize = 3;
/// The most jobs the user can run at once.
pub const MAX_PARALLEL: usize = 8;

impl Queue {
    /// Takes the `StartJob` effects an update produced (their jobs wait in
    /// the list, with the spec to start with) and adds those of the jobs
    /// that start now: the first queued ones in list order, while fewer
    /// than `parallel` run, each only while its own login is connected
    /// (the others wait for theirs). Called after every update, so a freed slot or
    /// a higher limit starts the next job at once.
    pub fn admit(&mut self, fx: Vec<Effect>) -> Vec<Effect> {
        let mut out = Vec::with_capacity(fx.len());
        for effect in fx {
            match effect {
                Effect::StartJob { job, spec } if self.get_mut(job).is_some() => {
                    if let Some(j) = self.get_mut(job) {
                        j.run_spec = Some(spec);
                    }
                }
                other => out.push(other),
            }
        }
        out.extend(self.start_due());
        out
    }

    /// What the runtime says of a run, as news of its job (the job's id
    /// in place of the run's); `None` for a run stopped or gone, whose
    /// end frees its slot.
    pub fn route(&mut self, action: Action) -> Option<Action> {
        let run = match &action {
            Action::JobEvent { job, .. } | Action::JobEnded { job, .. } => *job,
            _ => return Some(action),
        };
        if let Some(i) = self.stopping.iter().position(|s| *s == run) {
            if matches!(action, Action::JobEnded { .. }) {
                self.stopping.swap_remove(i);
            }
            return None;
        }
        let id = self.jobs.iter().find(|j| j.run == run)?.id;
        Some(match action {
            Action::JobEvent { event, .. } => Action::JobEvent { job: id, event },
            Action::JobEnded { result, .. } => Action::JobEnded { job: id, result },
            other => other,
        })
    }

    /// Slots held: jobs handed to the runtime, and runs still stopping.
    pub fn running(&self) -> usize {
        self.jobs.iter().filter(|j| j.launched).count() + self.stopping.len()
    }

    fn start_due(&mut self) -> Vec<Effect> {
        let mut free = self.parallel.saturating_sub(self.running());
        let mut fx = Vec::new();
        let login = self.login.as_deref();
        for j in &mut self.jobs {
            if free == 0 {
                break;
            }
            if j.state == JobState::Queued && !j.launched && j.waits_for(login).is_none() {
                j.launched = true;
                free -= 1;
                let spec = j.run_spec.take().unwrap_or_else(|| j.spec.clone());
                fx.push(Effect::StartJob { job: j.run, spec });
            }
        }
        fx
    }

    /// Stops the run of job `i`, if it has one: the next run gets a new id
    /// (what the old run still reports is ignored) and the slot is free
    /// once the runtime says the old run ended. Partial files stay.
    pub fn stop(&mut self, i: usize) -> Option<Effect> {
        let next = self.next_id + 1;
        let j = self.jobs.get_mut(i).filter(|j| j.launched)?;
        j.launched = false;
        let old = std::mem::replace(&mut j.run, next);
        self.next_id = next;
        self.stopping.push(old);
        Some(Effect::CancelJob(old))
    }

    /// `p`: pauses job `i` (a queued one will not start; a running one
    /// stops, keeping its partial files) or resumes a paused one (it
    /// queues again and continues from its partials).
    pub fn toggle_pause(&mut self, i: usize) -> Vec<Effect> {
        let Some(j) = self.jobs.get_mut(i) else {
            return vec![];
        };
        match j.state {
            JobState::Paused => {
                j.state = JobState::Queued;
                j.board = Default::default();
                vec![]
            }
            JobState::Queued | JobState::Running => {
                j.state = JobState::Paused;
                if j.launched || j.board.overall().done > 0 {
                    j.run_spec = Some(j.spec.resumed());
                }
                self.stop(i).into_iter().collect()
            }
            _ => vec![],
        }
    }

    /// Moves job `i` up (`delta` < 0) or down the list, the selection with
    /// it: queued jobs start in list order.
    pub fn move_job(&mut self, i: usize, delta: isize) {
        let n = self.jobs.len();
        if i >= n {
            return;
        }
        let to = (i as isize + delta).clamp(0, n as isize - 1) as usize;
        let job = self.jobs.remove(i);
        self.jobs.insert(to, job);
        self.selected = to;
    }

    /// Sets the jobs run at once (1 to [`MAX_PARALLEL`]). Running jobs
    /// beyond a lower limit finish; more start at once under a higher one.
    pub fn set_parallel(&mut self, n: usize) {
        self.parallel = n.clamp(1, MAX_PARALLEL);
    }
}
