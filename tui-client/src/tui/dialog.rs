//! Modal dialogs: what they hold and how keys edit them.

use ferry_proto::msg::Entry;

pub use super::form::ConnectForm;
pub use super::prompts::{DeleteDialog, InputDialog, ReconnectDialog, TrustDialog};
use crate::transfer::{Conflict, Direction};

/// What a text input is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// A new directory's name.
    Mkdir,
    /// A directory to move the marked entries into.
    Move {
        /// Their names.
        names: Vec<String>,
    },
    /// A new name or path for `from`.
    Rename {
        /// The entry's current name.
        from: String,
    },
}

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

/// A modal dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dialog {
    /// A line of text.
    Input(InputDialog),
    /// Delete these entries?
    ConfirmDelete(DeleteDialog),
    /// A target exists: overwrite, skip, resume or rename?
    Conflict(CopyPlan),
    /// First contact with an unknown server: trust its certificate?
    Trust(TrustDialog),
    /// The connect form.
    Connect(ConnectForm),
    /// The connection was lost.
    Reconnect(ReconnectDialog),
    /// Key help.
    Help,
    /// Quit while transfers run?
    ConfirmQuit,
}
