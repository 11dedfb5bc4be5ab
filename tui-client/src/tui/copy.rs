//! A copy (F5) being prepared: each entry with its conflict, the keys of
//! the conflict dialog, and the jobs the plan becomes.

use std::collections::HashMap;

use ferry_proto::msg::{Entry, EntryKind};

use super::pane::Pane;
use super::queue::JobSpec;
use crate::transfer::{Conflict, Direction};

/// One entry waiting to be copied, with its conflict, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCopy {
    /// The source entry.
    pub entry: Entry,
    /// The same name in the target directory, when it exists.
    pub existing: Option<Entry>,
    /// The policy chosen for it.
    pub conflict: Conflict,
}

/// What a key did to a copy being prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanOutcome {
    /// A conflict is still to decide.
    Asking,
    /// Every conflict is decided: start the copy.
    Ready,
    /// Esc: no copy.
    Cancelled,
}

/// A copy (F5) being prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyPlan {
    /// Up or down.
    pub direction: Direction,
    /// Source directory.
    pub from_dir: String,
    /// Target directory.
    pub to_dir: String,
    /// Every entry, in order.
    pub items: Vec<PendingCopy>,
    /// The item whose conflict is being asked about.
    pub asking: usize,
    /// Apply the next choice to every remaining conflict.
    pub apply_all: bool,
}

impl CopyPlan {
    /// Moves to the next conflict still to decide; false when none is left.
    pub fn advance(&mut self) -> bool {
        while self.asking < self.items.len() {
            let item = &self.items[self.asking];
            if item.existing.is_some() && item.conflict == Conflict::Auto {
                return true;
            }
            self.asking += 1;
        }
        false
    }

    /// Handles a key of the conflict dialog: o s r n choose for the file
    /// asked about (and, with `a` on, for every remaining conflict).
    pub fn key(&mut self, key: &crossterm::event::KeyEvent) -> PlanOutcome {
        use crossterm::event::KeyCode;
        let choice = match key.code {
            KeyCode::Esc => return PlanOutcome::Cancelled,
            KeyCode::Char('o' | 'O') => Conflict::Overwrite,
            KeyCode::Char('s' | 'S') => Conflict::Skip,
            KeyCode::Char('r' | 'R') => Conflict::Resume,
            KeyCode::Char('n' | 'N') => Conflict::Rename,
            KeyCode::Char('a' | 'A') => {
                self.apply_all = !self.apply_all;
                return PlanOutcome::Asking;
            }
            _ => return PlanOutcome::Asking,
        };
        self.choose(choice);
        if self.advance() {
            PlanOutcome::Asking
        } else {
            PlanOutcome::Ready
        }
    }

    /// Records a choice for the current conflict (and the rest, with
    /// "apply to all").
    pub fn choose(&mut self, c: Conflict) {
        let start = self.asking;
        let end = if self.apply_all {
            self.items.len()
        } else {
            start + 1
        };
        for item in &mut self.items[start..end] {
            if item.existing.is_some() {
                item.conflict = c;
            }
        }
        self.asking += 1;
    }
}

impl CopyPlan {
    /// A copy of `selection` from `from_dir` to `to_dir`, each entry paired
    /// with the entry of the same name among `target` (the other pane's),
    /// if any. One pass over the target's names (not one search per entry:
    /// with 100,000 marked entries that was 10^10 comparisons).
    pub fn new(
        direction: Direction,
        (from_dir, to_dir): (String, String),
        selection: Vec<Entry>,
        target: &[Entry],
    ) -> CopyPlan {
        let target: HashMap<&str, &Entry> = target.iter().map(|e| (e.name.as_str(), e)).collect();
        let items = selection
            .into_iter()
            .map(|entry| PendingCopy {
                existing: target.get(entry.name.as_str()).map(|e| (*e).clone()),
                entry,
                conflict: Conflict::Auto,
            })
            .collect();
        CopyPlan {
            direction,
            from_dir,
            to_dir,
            items,
            asking: 0,
            apply_all: false,
        }
    }

    /// The jobs that carry the plan out, and how many entries they copy:
    /// one job per conflict policy chosen (usually one for everything
    /// marked), and one per folder renamed on conflict (the folder gets the
    /// first free name in `target`, not the files inside). `source` gives
    /// an entry's path from its name.
    pub fn jobs(
        &self,
        source: impl Fn(&str) -> String,
        target: &Pane,
        follow_links: bool,
    ) -> (Vec<JobSpec>, usize) {
        let spec = |sources: Vec<String>, name: Option<String>, conflict| JobSpec {
            direction: self.direction,
            sources: sources.into(),
            dest: self.to_dir.clone(),
            name,
            conflict,
            follow_links,
            sync: None,
        };
        let mut specs: Vec<JobSpec> = Vec::new();
        let mut groups: Vec<(Conflict, Vec<String>)> = Vec::new();
        let mut entries = 0;
        for item in &self.items {
            if item.existing.is_some() && item.conflict == Conflict::Skip {
                continue;
            }
            entries += 1;
            let path = source(&item.entry.name);
            let renamed_dir = item.conflict == Conflict::Rename
                && item.existing.is_some()
                && item.entry.kind == EntryKind::Dir;
            if renamed_dir {
                let name = free_name(target, &item.entry.name);
                specs.push(spec(vec![path], Some(name), Conflict::Auto));
                continue;
            }
            match groups.iter_mut().find(|(c, _)| *c == item.conflict) {
                Some((_, v)) => v.push(path),
                None => groups.push((item.conflict, vec![path])),
            }
        }
        for (conflict, sources) in groups {
            specs.push(spec(sources, None, conflict));
        }
        (specs, entries)
    }
}

/// `name (1)`, `name (2)`… : the first name not in `pane`.
fn free_name(pane: &Pane, name: &str) -> String {
    (1..)
        .map(|i| format!("{name} ({i})"))
        .find(|n| pane.find(n).is_none())
        .unwrap_or_else(|| name.to_string())
}
