//! The small dialogs as types: each owns its state, handles its keys and
//! returns an outcome that `App::update` applies (the copy plan and the
//! connect form work the same way, in `dialog.rs` and `form.rs`).

use crossterm::event::{KeyCode, KeyEvent};
use ferry_proto::msg::Entry;

use super::dialog::InputKind;
use super::pane::Side;
use super::text::{edit_line, Back};

/// How a question was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Yes: do it.
    Yes,
    /// No (or Esc).
    No,
    /// Not yet: the dialog stays.
    Undecided,
}

/// y, Y and Enter say yes; n, N and Esc say no.
pub fn yes_no(key: &KeyEvent) -> Answer {
    match key.code {
        KeyCode::Char('y' | 'Y') | KeyCode::Enter => Answer::Yes,
        KeyCode::Char('n' | 'N') | KeyCode::Esc => Answer::No,
        _ => Answer::Undecided,
    }
}

/// A line of text: a new directory's name, a new name, a target directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDialog {
    /// What for.
    pub kind: InputKind,
    /// In which pane.
    pub side: Side,
    /// The text so far.
    pub text: String,
    /// The cursor, in characters from the end.
    pub back: Back,
}

/// What a key did to a line being typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputOutcome {
    /// Still typing.
    Editing,
    /// Esc, or Enter on nothing: no action.
    Cancelled,
    /// Enter: the text, trimmed.
    Submit(String),
}

impl InputDialog {
    /// A dialog for `kind` in `side`, starting with `text` (cursor at its end).
    pub fn new(kind: InputKind, side: Side, text: String) -> InputDialog {
        InputDialog {
            kind,
            side,
            text,
            back: 0,
        }
    }

    /// Handles one key.
    pub fn key(&mut self, key: &KeyEvent) -> InputOutcome {
        match key.code {
            KeyCode::Esc => InputOutcome::Cancelled,
            KeyCode::Enter => match self.text.trim() {
                "" => InputOutcome::Cancelled,
                text => InputOutcome::Submit(text.to_string()),
            },
            _ => {
                edit_line(&mut self.text, &mut self.back, key);
                InputOutcome::Editing
            }
        }
    }
}

/// Delete these entries?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteDialog {
    /// In which pane.
    pub side: Side,
    /// What.
    pub entries: Vec<Entry>,
}

impl DeleteDialog {
    /// Handles one key: y or Enter deletes, n or Esc keeps.
    pub fn key(&self, key: &KeyEvent) -> Answer {
        yes_no(key)
    }
}

/// First contact with an unknown server: trust its certificate?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustDialog {
    /// The server.
    pub server: String,
    /// Its fingerprint.
    pub fingerprint: String,
}

impl TrustDialog {
    /// Handles one key: only y trusts (not Enter: trust is never the
    /// default), n or Esc declines.
    pub fn key(&self, key: &KeyEvent) -> Answer {
        match key.code {
            KeyCode::Enter => Answer::Undecided,
            _ => yes_no(key),
        }
    }
}

/// The connection was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectDialog {
    /// Why (the server's reason when it gave one).
    pub reason: String,
}

/// What a key did in the connection-lost dialog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconnectOutcome {
    /// r or Enter: log in again (the dialog stays until it worked).
    Reconnect,
    /// Esc: stay offline.
    Offline,
    /// q: quit.
    Quit,
    /// Any other key: the dialog stays.
    Waiting,
}

impl ReconnectDialog {
    /// Handles one key.
    pub fn key(&self, key: &KeyEvent) -> ReconnectOutcome {
        match key.code {
            KeyCode::Char('r' | 'R') | KeyCode::Enter => ReconnectOutcome::Reconnect,
            KeyCode::Esc => ReconnectOutcome::Offline,
            KeyCode::Char('q') => ReconnectOutcome::Quit,
            _ => ReconnectOutcome::Waiting,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn each_dialog_turns_keys_into_its_outcome() {
        let mut d = InputDialog::new(InputKind::Mkdir, Side::Local, String::new());
        assert_eq!(d.key(&k(KeyCode::Enter)), InputOutcome::Cancelled);
        assert_eq!(d.key(&k(KeyCode::Char('x'))), InputOutcome::Editing);
        assert_eq!(d.key(&k(KeyCode::Char(' '))), InputOutcome::Editing);
        assert_eq!(d.key(&k(KeyCode::Enter)), InputOutcome::Submit("x".into()));
        assert_eq!(d.key(&k(KeyCode::Esc)), InputOutcome::Cancelled);

        let del = DeleteDialog {
            side: Side::Remote,
            entries: vec![],
        };
        assert_eq!(del.key(&k(KeyCode::Enter)), Answer::Yes);
        assert_eq!(del.key(&k(KeyCode::Char('n'))), Answer::No);
        assert_eq!(del.key(&k(KeyCode::Char('x'))), Answer::Undecided);

        let trust = TrustDialog {
            server: "s".into(),
            fingerprint: "f".into(),
        };
        assert_eq!(trust.key(&k(KeyCode::Enter)), Answer::Undecided);
        assert_eq!(trust.key(&k(KeyCode::Char('y'))), Answer::Yes);
        assert_eq!(trust.key(&k(KeyCode::Esc)), Answer::No);

        let lost = ReconnectDialog { reason: "r".into() };
        assert_eq!(lost.key(&k(KeyCode::Enter)), ReconnectOutcome::Reconnect);
        assert_eq!(lost.key(&k(KeyCode::Esc)), ReconnectOutcome::Offline);
        assert_eq!(lost.key(&k(KeyCode::Char('q'))), ReconnectOutcome::Quit);
        assert_eq!(lost.key(&k(KeyCode::Char('z'))), ReconnectOutcome::Waiting);
    }
}
