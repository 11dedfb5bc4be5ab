//! The sync dialog (`S`): direction, `--delete`, `--checksum`, include and
//! exclude globs; then the preview of the plan `ferry sync` would make
//! (computed by the runtime with the same code), confirmed into one queue
//! job. No I/O here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use ferry_proto::RemotePath;

use super::text::{edit_line, Back};
use crate::sync::{Plan, Rule, Rules, Sides, SyncOptions};

pub mod draw;
pub mod run;
#[cfg(test)]
mod tests;

/// Action rows a page of the preview scrolls by.
pub const PAGE: usize = 10;

static IDS: AtomicU64 = AtomicU64::new(1);

/// A number for a new plan (answers for older ones are dropped).
pub fn next_id() -> u64 {
    IDS.fetch_add(1, Ordering::Relaxed)
}

/// A plan shared by the preview and the job (compared by identity).
#[derive(Clone, Debug)]
pub struct PlanRef(pub Arc<Plan>);

impl PartialEq for PlanRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for PlanRef {}

/// How to sync, as the dialog says it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct How {
    /// Delete what is only in the destination.
    pub delete: bool,
    /// Compare by SHA-256.
    pub checksum: bool,
    /// Include globs (they come first: an include wins over an exclude).
    pub include: Vec<String>,
    /// Exclude globs.
    pub exclude: Vec<String>,
}

impl How {
    /// The rules in order: includes, then excludes.
    pub fn rules(&self) -> Vec<Rule> {
        let inc = self.include.iter().map(|g| Rule::include(g));
        inc.chain(self.exclude.iter().map(|g| Rule::exclude(g)))
            .collect()
    }

    /// The options `ferry sync` would have.
    pub fn options(&self) -> SyncOptions {
        SyncOptions {
            delete: self.delete,
            checksum: self.checksum,
            rules: self.rules(),
            ..SyncOptions::default()
        }
    }
}

/// How long after its confirmation a previewed plan may still run as it
/// is; a job starting later (it waited in the queue) plans again.
pub const FRESH: Duration = Duration::from_secs(2);

/// The plan a sync was confirmed with, run as it is at most once and only
/// if the job starts within `FRESH` of the confirmation: a job that waited,
/// a retry and a resume plan again with the same options, so a deletion is
/// only of what is still only in the destination and files already sent
/// are skipped as unchanged. Clones share the one plan.
#[derive(Clone, Debug)]
pub struct Previewed(Arc<Mutex<Option<(Instant, PlanRef)>>>);

impl Previewed {
    /// `plan`, confirmed now.
    pub fn new(plan: PlanRef) -> Previewed {
        Previewed(Arc::new(Mutex::new(Some((Instant::now(), plan)))))
    }

    /// The previewed plan if this is its first use and within `FRESH`;
    /// `None` when the job must plan again.
    pub fn take(&self) -> Option<PlanRef> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, plan) = slot.take()?;
        (at.elapsed() <= FRESH).then_some(plan)
    }

    /// Whether `plan` is the one confirmed (and not yet used).
    pub fn is(&self, plan: &PlanRef) -> bool {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().is_some_and(|(_, p)| p == plan)
    }
}

impl PartialEq for Previewed {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Previewed {}

/// Globs as typed: separated by whitespace, except inside double quotes
/// (`"My Documents"`) or after a backslash (`My\ Documents`, `\"`); any
/// other backslash is kept for the glob.
fn globs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut started, mut quoted) = (String::new(), false, false);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|n| n.is_whitespace() || *n == '"') => {
                cur.extend(chars.next());
                started = true;
            }
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started && !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|g| !g.is_empty());
    out
}

/// A confirmed sync: what the queue job runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncJob {
    /// The directories and the direction.
    pub sides: Sides,
    /// The options.
    pub how: How,
    /// The plan previewed, for a run that starts at once.
    pub plan: Previewed,
}

/// Where the dialog is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Choosing the options.
    Options,
    /// The runtime compares the trees.
    Planning(u64),
    /// The plan, to confirm.
    Preview(PlanRef),
}

/// The sync dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDialog {
    /// Upload (local to remote) or download.
    pub up: bool,
    /// The local pane's directory.
    pub local: PathBuf,
    /// The remote pane's directory.
    pub remote: RemotePath,
    /// `--delete`.
    pub delete: bool,
    /// `--checksum`.
    pub checksum: bool,
    /// Include globs, separated by spaces.
    pub include: String,
    /// Exclude globs, separated by spaces.
    pub exclude: String,
    /// The field with the cursor: direction, delete, checksum, include,
    /// exclude.
    pub field: usize,
    /// The cursor in a text field.
    pub back: Back,
    /// Where it is.
    pub phase: Phase,
    /// First action row shown in the preview.
    pub scroll: usize,
    /// What went wrong (a pattern, or the planning).
    pub error: Option<String>,
}

/// What a key did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Still open.
    Editing,
    /// Closed (stopping the planning `Some(id)`).
    Closed(Option<u64>),
    /// Compute the plan (the dialog is now `Planning(id)`).
    Plan(u64),
    /// Run this.
    Run(SyncJob),
}

/// Fields of the options phase.
pub const FIELDS: usize = 5;

impl SyncDialog {
    /// A dialog for the panes' directories; `up` from the focused pane.
    pub fn new(up: bool, local: PathBuf, remote: RemotePath) -> SyncDialog {
        SyncDialog {
            up,
            local,
            remote,
            delete: false,
            checksum: false,
            include: String::new(),
            exclude: String::new(),
            field: 0,
            back: 0,
            phase: Phase::Options,
            scroll: 0,
            error: None,
        }
    }

    /// The directories and the direction.
    pub fn sides(&self) -> Sides {
        Sides {
            up: self.up,
            local: self.local.clone(),
            remote: self.remote.clone(),
        }
    }

    /// The options as chosen.
    pub fn how(&self) -> How {
        How {
            delete: self.delete,
            checksum: self.checksum,
            include: globs(&self.include),
            exclude: globs(&self.exclude),
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: &KeyEvent) -> SyncOutcome {
        match self.phase.clone() {
            Phase::Options => self.options_key(key),
            Phase::Planning(id) => match key.code {
                KeyCode::Esc => SyncOutcome::Closed(Some(id)),
                _ => SyncOutcome::Editing,
            },
            Phase::Preview(plan) => self.preview_key(key, plan),
        }
    }

    fn options_key(&mut self, key: &KeyEvent) -> SyncOutcome {
        let toggle = self.field < 3;
        match key.code {
            KeyCode::Esc => return SyncOutcome::Closed(None),
            KeyCode::Up | KeyCode::BackTab => {
                self.field = (self.field + FIELDS - 1) % FIELDS;
                self.back = 0;
            }
            KeyCode::Down | KeyCode::Tab => {
                self.field = (self.field + 1) % FIELDS;
                self.back = 0;
            }
            KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right if toggle => match self.field {
                0 => self.up = !self.up,
                1 => self.delete = !self.delete,
                _ => self.checksum = !self.checksum,
            },
            KeyCode::Enter => {
                if let Err(e) = Rules::new(&self.how().rules()) {
                    self.error = Some(e.to_string());
                    return SyncOutcome::Editing;
                }
                let id = next_id();
                self.error = None;
                self.phase = Phase::Planning(id);
                return SyncOutcome::Plan(id);
            }
            _ if self.field == 3 => {
                edit_line(&mut self.include, &mut self.back, key);
            }
            _ if self.field == 4 => {
                edit_line(&mut self.exclude, &mut self.back, key);
            }
            _ => {}
        }
        SyncOutcome::Editing
    }

    fn preview_key(&mut self, key: &KeyEvent, plan: PlanRef) -> SyncOutcome {
        let last = rows(&plan.0).saturating_sub(PAGE);
        match key.code {
            KeyCode::Esc => return SyncOutcome::Closed(None),
            KeyCode::Backspace => {
                self.phase = Phase::Options;
                self.scroll = 0;
            }
            KeyCode::Enter if plan.0.is_empty() => return SyncOutcome::Closed(None),
            KeyCode::Enter => {
                return SyncOutcome::Run(SyncJob {
                    sides: self.sides(),
                    how: self.how(),
                    plan: Previewed::new(plan),
                })
            }
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.scroll = (self.scroll + 1).min(last),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(PAGE),
            KeyCode::PageDown => self.scroll = (self.scroll + PAGE).min(last),
            KeyCode::Home => self.scroll = 0,
            KeyCode::End => self.scroll = last,
            _ => {}
        }
        SyncOutcome::Editing
    }

    /// The plan came (or failed): `id` must be the one asked for.
    pub fn planned(&mut self, id: u64, result: Result<PlanRef, String>) {
        if self.phase != Phase::Planning(id) {
            return;
        }
        match result {
            Ok(plan) => {
                self.phase = Phase::Preview(plan);
                self.scroll = 0;
            }
            Err(e) => {
                self.phase = Phase::Options;
                self.error = Some(e);
            }
        }
    }
}

/// What one action row of the preview says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row<'a> {
    /// A directory made.
    Mkdir(&'a str),
    /// A file copied (the destination lacks it).
    Copy(&'a str, u64),
    /// A file replaced.
    Update(&'a str, u64),
    /// Only the time set.
    Touch(&'a str),
    /// Deleted (a directory with what it holds).
    Delete(&'a str, bool),
    /// Skipped, and why.
    Warning(&'a str),
}

/// Action rows of a plan.
pub fn rows(plan: &Plan) -> usize {
    plan.new_dirs.len()
        + plan.transfers.len()
        + plan.touches.len()
        + plan.deletions.len()
        + plan.warnings.len()
}

/// Action row `i` (directories, files, times, deletions, warnings), found
/// without building the list: a frame costs the rows shown.
pub fn row(plan: &Plan, mut i: usize) -> Option<Row<'_>> {
    if let Some(d) = plan.new_dirs.get(i) {
        return Some(Row::Mkdir(d));
    }
    i -= plan.new_dirs.len();
    if let Some(c) = plan.transfers.get(i) {
        return Some(if c.update {
            Row::Update(&c.rel, c.size)
        } else {
            Row::Copy(&c.rel, c.size)
        });
    }
    i -= plan.transfers.len();
    if let Some(t) = plan.touches.get(i) {
        return Some(Row::Touch(&t.rel));
    }
    i -= plan.touches.len();
    if let Some(d) = plan.deletions.get(i) {
        return Some(Row::Delete(&d.rel, d.dir));
    }
    i -= plan.deletions.len();
    plan.warnings.get(i).map(|w| Row::Warning(w))
}
