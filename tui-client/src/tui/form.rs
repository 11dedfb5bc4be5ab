//! The connect form: its fields, its keys, and the options it connects
//! with (the same trust store and pinning as `ferry -s`).

use crossterm::event::{KeyCode, KeyEvent};

use super::text::{edit_line, Back};
use crate::client::ConnectOptions;

/// The connect form's fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectForm {
    /// `host:port`.
    pub server: String,
    /// User name.
    pub user: String,
    /// Password (never stored).
    pub password: String,
    /// Focused field: 0 server, 1 user, 2 password.
    pub field: usize,
    /// The cursor in the focused field, in characters from its end.
    pub back: Back,
    /// Recent `user@server` entries to pick from.
    pub recent: Vec<(String, String)>,
    /// The last attempt's error.
    pub error: Option<String>,
}

/// What a key did to the form.
#[derive(Debug, PartialEq, Eq)]
pub enum FormOutcome {
    /// Still editing.
    Editing,
    /// Connect with these options.
    Connect(Box<ConnectOptions>),
    /// Closed without connecting (the app stays offline).
    Closed,
}

impl ConnectForm {
    /// A form for `server` and `user`; with both known, the password has
    /// the focus.
    pub fn prefilled(server: &str, user: &str, recent: Vec<(String, String)>) -> ConnectForm {
        let mut f = ConnectForm {
            server: server.to_string(),
            user: user.to_string(),
            recent,
            ..Default::default()
        };
        f.focus_first_blank();
        f
    }

    /// Puts the focus on the first empty field (the password when server
    /// and user are filled in).
    pub fn focus_first_blank(&mut self) {
        self.field = if self.server.trim().is_empty() {
            0
        } else if self.user.trim().is_empty() {
            1
        } else {
            2
        };
        self.back = 0;
    }

    /// The focused field's text.
    pub fn focused(&mut self) -> &mut String {
        match self.field {
            0 => &mut self.server,
            1 => &mut self.user,
            _ => &mut self.password,
        }
    }

    /// The options the form connects with: TLS with the default trust
    /// store, so a server trusted here is recorded in `known_servers` and
    /// a changed certificate is refused exactly as `ferry -s` refuses it.
    pub fn options(&self) -> ConnectOptions {
        ConnectOptions::new(self.server.trim(), self.user.trim(), self.password.clone())
    }

    fn focus(&mut self, field: usize) {
        self.field = field % 3;
        self.back = 0;
    }

    /// Handles one key.
    pub fn key(&mut self, key: &KeyEvent) -> FormOutcome {
        match key.code {
            KeyCode::Esc => return FormOutcome::Closed,
            KeyCode::Tab | KeyCode::Down => self.focus(self.field + 1),
            KeyCode::BackTab | KeyCode::Up => self.focus(self.field + 2),
            KeyCode::F(2) => self.next_recent(),
            KeyCode::Enter if self.field < 2 => self.focus(self.field + 1),
            KeyCode::Enter => {
                if self.server.trim().is_empty() || self.user.trim().is_empty() {
                    self.error = Some("a server and a user are needed".into());
                    self.focus_first_blank();
                    return FormOutcome::Editing;
                }
                self.error = None;
                return FormOutcome::Connect(Box::new(self.options()));
            }
            _ => {
                let mut back = self.back;
                edit_line(self.focused(), &mut back, key);
                self.back = back;
            }
        }
        FormOutcome::Editing
    }

    /// Cycles through recent servers.
    fn next_recent(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let i = self
            .recent
            .iter()
            .position(|(s, u)| *s == self.server && *u == self.user)
            .map_or(0, |i| (i + 1) % self.recent.len());
        self.server = self.recent[i].0.clone();
        self.user = self.recent[i].1.clone();
        self.focus(2);
    }
}
