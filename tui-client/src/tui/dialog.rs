//! Modal dialogs: which one is open, and what a text line is for.

pub use super::chmod::ChmodDialog;
pub use super::copy::{CopyPlan, PendingCopy, PlanOutcome};
pub use super::form::ConnectForm;
pub use super::prompts::{DeleteDialog, InputDialog, ReconnectDialog, TrustDialog};

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
    /// The speed limit of all transfers.
    Rate,
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
    /// Permissions of entries.
    Chmod(ChmodDialog),
    /// A copy or move within one side.
    Within(super::within::Within),
    /// An edited remote file changed meanwhile: what now?
    Edit(super::edit::EditDialog),
    /// Find: the form, then the results.
    Find(Box<super::find::Find>),
    /// Naming a bookmark, or the list.
    Bookmark(super::bookmarks::BookmarkDialog),
    /// The sync dialog and its preview.
    Sync(Box<super::sync_dialog::SyncDialog>),
    /// Key help.
    Help,
    /// Quit while transfers run?
    ConfirmQuit,
}
