//! Copy and move within one side (Shift+F5, Shift+F6): the target line,
//! the plan the runtime resolves (each entry with what already has its
//! name), and the conflict dialog's rules and keys. No I/O here.

use crossterm::event::{KeyCode, KeyEvent};
use ferry_proto::msg::{Entry, EntryKind};

use super::pane::Side;
use super::text::{edit_line, Back};

pub mod draw;
pub mod run;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_edges;

/// Copy or move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Shift+F5: a copy (on the server, its own `Copy` request).
    Copy,
    /// Shift+F6: a move (a rename).
    Move,
}

impl Op {
    /// "copy" or "move".
    pub fn verb(self) -> &'static str {
        match self {
            Op::Copy => "copy",
            Op::Move => "move",
        }
    }
}

/// The entries and the target as typed, for the runtime to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Which side.
    pub side: Side,
    /// Copy or move.
    pub op: Op,
    /// The pane's directory (the sources are in it).
    pub dir: String,
    /// The entries.
    pub sources: Vec<Entry>,
    /// The target: an existing directory to put them in, or (one entry)
    /// a new path; absolute.
    pub target: String,
}

/// One entry and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The entry (its name in the pane's directory).
    pub entry: Entry,
    /// Its full path.
    pub source: String,
    /// The name it gets in the target directory.
    pub name: String,
    /// What already has that name there.
    pub existing: Option<Entry>,
    /// A free name there (`name (1)`…), offered for a rename.
    pub suggestion: String,
    /// What to do.
    pub choice: Choice,
}

/// What to do with an entry whose target exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Not decided yet (or nothing is in the way).
    Undecided,
    /// Replace the file there (files only).
    Overwrite,
    /// Leave this entry alone.
    Skip,
    /// Use this name instead.
    Rename(String),
}

impl Item {
    /// Whether the entry may replace what is there: only a file or link
    /// over a file or link, and never an entry over itself. A directory is
    /// never replaced by a file nor the reverse, nor merged.
    pub fn may_overwrite(&self, to_dir: &str) -> bool {
        let Some(existing) = &self.existing else {
            return true;
        };
        existing.kind != EntryKind::Dir
            && self.entry.kind != EntryKind::Dir
            && self.source != join(to_dir, &self.name)
    }

    /// Still to be asked about.
    pub fn open(&self) -> bool {
        self.existing.is_some() && self.choice == Choice::Undecided
    }

    /// The name it ends up with, or None when skipped.
    pub fn final_name(&self) -> Option<&str> {
        match &self.choice {
            Choice::Skip => None,
            Choice::Rename(n) => Some(n),
            _ => Some(&self.name),
        }
    }
}

/// A copy or move resolved by the runtime, its conflicts being decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Which side.
    pub side: Side,
    /// Copy or move.
    pub op: Op,
    /// The target directory.
    pub to_dir: String,
    /// Every entry, in order.
    pub items: Vec<Item>,
    /// The item asked about.
    pub asking: usize,
    /// The next choice applies to every remaining conflict it fits.
    pub apply_all: bool,
    /// A new name being typed for the item asked about.
    pub renaming: Option<(String, Back)>,
    /// Why the last key did nothing (overwrite of a directory…).
    pub refusal: Option<String>,
}

/// What a key did to a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A conflict is still to decide.
    Asking,
    /// Every conflict is decided: run it.
    Ready,
    /// Esc: nothing happens.
    Cancelled,
}

/// `dir/name` with `/` as the separator (both sides' paths are shown so).
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is `dir` or inside it (by components).
pub fn inside(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || dir.is_empty() || path.starts_with(&format!("{dir}/"))
}

/// Refuses to put a directory into itself or below itself.
pub fn check_into_itself(sources: &[(String, EntryKind)], to_dir: &str) -> Result<(), String> {
    match sources
        .iter()
        .find(|(p, k)| *k == EntryKind::Dir && inside(to_dir, p))
    {
        Some((p, _)) => Err(format!("cannot put {p} into itself ({to_dir})")),
        None => Ok(()),
    }
}

/// `name (1)`, `name (2)`…: the first for which `taken` says no.
pub fn suggest(name: &str, mut taken: impl FnMut(&str) -> bool) -> Option<String> {
    (1..=999)
        .map(|i| format!("{name} ({i})"))
        .find(|n| !taken(n))
}

/// Whether `name` is one plain name (no separator, not `.` or `..`).
pub fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl Plan {
    /// Moves to the next conflict still to decide; false when none is left.
    pub fn advance(&mut self) -> bool {
        while self.asking < self.items.len() {
            if self.items[self.asking].open() {
                return true;
            }
            self.asking += 1;
        }
        false
    }

    /// The item asked about.
    pub fn current(&self) -> Option<&Item> {
        self.items.get(self.asking)
    }

    /// Entries that will be copied or moved.
    pub fn count(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.final_name().is_some())
            .count()
    }

    /// A key of the conflict dialog: `o` overwrite, `s` skip, `n` a new
    /// name (typed, starting from the suggestion), `a` apply to all,
    /// Esc cancel.
    pub fn key(&mut self, key: &KeyEvent) -> Outcome {
        self.refusal = None;
        if let Some((mut text, mut back)) = self.renaming.take() {
            match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => {
                    // Never trimmed: spaces at either end are part of a name.
                    let name = text.clone();
                    if let Err(why) = self.name_ok(&name) {
                        self.refusal = Some(why);
                        self.renaming = Some((text, back));
                        return Outcome::Asking;
                    }
                    return self.decide(Choice::Rename(name));
                }
                _ => {
                    edit_line(&mut text, &mut back, key);
                    self.renaming = Some((text, back));
                }
            }
            return Outcome::Asking;
        }
        match key.code {
            KeyCode::Esc => Outcome::Cancelled,
            KeyCode::Char('o' | 'O') => {
                let to_dir = self.to_dir.clone();
                match self.current() {
                    Some(item) if !item.may_overwrite(&to_dir) => {
                        self.refusal = Some(refusal(item, &to_dir));
                        Outcome::Asking
                    }
                    _ => self.decide(Choice::Overwrite),
                }
            }
            KeyCode::Char('s' | 'S') => self.decide(Choice::Skip),
            KeyCode::Char('n' | 'N' | 'r' | 'R') => {
                if self.apply_all {
                    // Every remaining conflict takes its own free name.
                    return self.decide(Choice::Rename(String::new()));
                }
                let text = self.current().map(|i| i.suggestion.clone());
                self.renaming = text.map(|t| (t, 0));
                Outcome::Asking
            }
            KeyCode::Char('a' | 'A') => {
                self.apply_all = !self.apply_all;
                Outcome::Asking
            }
            _ => Outcome::Asking,
        }
    }

    /// A typed new name: one plain name, different from the one in the
    /// way and from every other entry's target.
    fn name_ok(&self, name: &str) -> Result<(), String> {
        if !plain_name(name) {
            return Err("a new name is one name, without /".into());
        }
        let clash = self.items.iter().enumerate().any(|(i, it)| {
            if i == self.asking {
                it.name == name
            } else {
                it.final_name() == Some(name)
            }
        });
        if clash {
            return Err(format!("{} is taken", crate::display::escape(name)));
        }
        Ok(())
    }

    /// Records `choice` for the item asked about and, with apply to all,
    /// for the remaining conflicts it fits (an overwrite only where one
    /// may be; an empty rename means each item's suggestion).
    fn decide(&mut self, choice: Choice) -> Outcome {
        let end = if self.apply_all {
            self.items.len()
        } else {
            self.asking + 1
        };
        let to_dir = self.to_dir.clone();
        for item in &mut self.items[self.asking..end] {
            if !item.open() {
                continue;
            }
            item.choice = match &choice {
                Choice::Overwrite if !item.may_overwrite(&to_dir) => continue,
                Choice::Rename(n) if n.is_empty() => Choice::Rename(item.suggestion.clone()),
                c => c.clone(),
            };
        }
        if self.advance() {
            Outcome::Asking
        } else {
            Outcome::Ready
        }
    }
}

/// Why an overwrite is refused.
pub fn refusal(item: &Item, to_dir: &str) -> String {
    let dir = |k: EntryKind| k == EntryKind::Dir;
    let existing = item.existing.as_ref().map_or(EntryKind::File, |e| e.kind);
    if item.source == join(to_dir, &item.name) {
        "it is the same entry: skip, or copy under a new name (n)".into()
    } else if dir(existing) && dir(item.entry.kind) {
        "a directory is not merged into another: skip, or a new name (n)".into()
    } else if dir(existing) {
        "a directory is never replaced by a file: skip, or a new name (n)".into()
    } else {
        "a file is never replaced by a directory: skip, or a new name (n)".into()
    }
}

/// The target line (Shift+F5, Shift+F6): where the entries go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// Which side.
    pub side: Side,
    /// Copy or move.
    pub op: Op,
    /// The pane's directory.
    pub dir: String,
    /// The entries.
    pub sources: Vec<Entry>,
    /// The target as typed.
    pub text: String,
    /// Its cursor.
    pub back: Back,
}

/// The dialog of a copy or move within one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Within {
    /// Asking for the target.
    Prompt(Prompt),
    /// Asking about conflicts.
    Conflicts(Plan),
}

/// What a key did to the target line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptOutcome {
    /// Still typing.
    Editing,
    /// Esc or nothing typed.
    Cancelled,
    /// Enter: resolve this.
    Submit(Request),
}

impl Prompt {
    /// The target line for `sources` in `dir`: one entry starts from its
    /// name, several from the directory itself, as mc does.
    pub fn new(side: Side, op: Op, dir: String, sources: Vec<Entry>) -> Prompt {
        let text = match sources.as_slice() {
            [one] => one.name.clone(),
            _ => dir.clone(),
        };
        Prompt {
            side,
            op,
            dir,
            sources,
            text,
            back: 0,
        }
    }

    /// Handles a key.
    pub fn key(&mut self, key: &KeyEvent) -> PromptOutcome {
        match key.code {
            KeyCode::Esc => PromptOutcome::Cancelled,
            // Never trimmed: ` a` and `notes ` are names of their own.
            KeyCode::Enter => match self.text.as_str() {
                "" => PromptOutcome::Cancelled,
                t => {
                    let target = if t.starts_with('/') {
                        t.to_string()
                    } else {
                        join(&self.dir, t)
                    };
                    PromptOutcome::Submit(Request {
                        side: self.side,
                        op: self.op,
                        dir: self.dir.clone(),
                        sources: self.sources.clone(),
                        target,
                    })
                }
            },
            _ => {
                edit_line(&mut self.text, &mut self.back, key);
                PromptOutcome::Editing
            }
        }
    }
}
