//! Bookmarks in the app: `B` names the current place, `b` and Ctrl-\ list
//! them, and a jump goes to the directories (after a login when the
//! bookmark is of another server).

use std::path::PathBuf;

use crossterm::event::KeyEvent;
use ferry_proto::RemotePath;

use super::{App, Link};
use crate::tui::action::Effect;
use crate::tui::bookmarks::{Bookmark, BookmarkDialog, BookmarkOutcome, ListDialog, NameDialog};
use crate::tui::dialog::Dialog;
use crate::tui::pane::Side;

/// The bookmarks as the app holds them.
#[derive(Debug, Default)]
pub struct Places {
    /// Every bookmark, in order.
    pub list: Vec<Bookmark>,
    /// A bookmark of another server: its directories open once logged in
    /// there.
    pub pending: Option<Bookmark>,
    /// The list was opened from the connect form (Esc goes back to it).
    from_form: bool,
}

impl App {
    /// The bookmarks read at start (or why they could not be).
    pub fn set_bookmarks(&mut self, read: Result<Vec<Bookmark>, String>) {
        match read {
            Ok(list) => self.places.list = list,
            Err(e) => self.error(format!("bookmarks: {e}")),
        }
    }

    fn label(b: &Bookmark) -> String {
        format!("{}@{}", b.user, b.server)
    }

    /// `B`: bookmarks the current place under a name typed.
    pub(super) fn start_bookmark(&mut self) -> Vec<Effect> {
        if !matches!(self.link, Link::Online(_)) {
            self.error(
                "not connected: a bookmark names a server, a user and a directory on each side",
            );
            return vec![];
        }
        let remote = self.remote_dir.to_string();
        let name = self
            .remote_dir
            .file_name()
            .map(str::to_string)
            .unwrap_or_else(|| self.last_form.server.clone());
        let place = Bookmark {
            name,
            server: self.last_form.server.clone(),
            user: self.last_form.user.clone(),
            remote_dir: remote,
            local_dir: self.local_dir.display().to_string(),
        };
        let d = BookmarkDialog::Name(NameDialog::new(place));
        self.dialog = Some(Dialog::Bookmark(d));
        vec![]
    }

    /// `b`, Ctrl-\: the list.
    pub(super) fn open_bookmarks(&mut self, from_form: bool) -> Vec<Effect> {
        self.places.from_form = from_form;
        self.dialog = Some(Dialog::Bookmark(BookmarkDialog::List(ListDialog {
            items: self.places.list.clone(),
            at: 0,
            renaming: None,
        })));
        vec![]
    }

    /// A key in a bookmark dialog.
    pub(super) fn bookmark_key(&mut self, mut d: BookmarkDialog, key: KeyEvent) -> Vec<Effect> {
        let outcome = d.key(&key, &self.places.list);
        let is_list = matches!(d, BookmarkDialog::List(_));
        match outcome {
            BookmarkOutcome::Open => {
                self.dialog = Some(Dialog::Bookmark(d));
                vec![]
            }
            BookmarkOutcome::Closed => {
                if is_list && self.places.from_form {
                    let form = self.form_again(None);
                    self.dialog = Some(Dialog::Connect(form));
                }
                vec![]
            }
            BookmarkOutcome::Save(list) => {
                if let BookmarkDialog::Name(n) = &d {
                    self.info(format!("bookmarked as {}", n.text.trim()));
                } else {
                    self.dialog = Some(Dialog::Bookmark(d));
                }
                self.places.list = list.clone();
                vec![Effect::SaveBookmarks(list)]
            }
            BookmarkOutcome::Jump(b) => self.jump(b),
        }
    }

    /// Goes to a bookmark: at once on the same server, after a login on
    /// another (the form opens filled in).
    fn jump(&mut self, b: Bookmark) -> Vec<Effect> {
        if self.link == Link::Online(Self::label(&b)) {
            return self.go_to_bookmark(&b);
        }
        let mut form = self.form_again(None);
        form.server = b.server.clone();
        form.user = b.user.clone();
        form.focus_first_blank();
        self.info(format!("log in to {} to go to {}", Self::label(&b), b.name));
        self.places.pending = Some(b);
        self.dialog = Some(Dialog::Connect(form));
        vec![]
    }

    /// Opens the bookmark's directories on both sides.
    fn go_to_bookmark(&mut self, b: &Bookmark) -> Vec<Effect> {
        let mut fx = vec![self.open_local(PathBuf::from(&b.local_dir))];
        match RemotePath::parse(&b.remote_dir) {
            Ok(dir) => fx.extend(self.open_remote(dir)),
            Err(e) => self.error(format!("{}: {e}", b.remote_dir)),
        }
        self.focus = super::Focus::Pane(Side::Remote);
        fx
    }

    /// Logged in as `label`: a bookmark waiting for that login sets the
    /// remote directory to open and opens its local one.
    pub(super) fn bookmark_arrived(&mut self, label: &str) -> Vec<Effect> {
        let Some(b) = self.places.pending.take() else {
            return vec![];
        };
        if Self::label(&b) != label {
            return vec![];
        }
        match RemotePath::parse(&b.remote_dir) {
            Ok(dir) => self.remote_dir = dir,
            Err(e) => self.error(format!("{}: {e}", b.remote_dir)),
        }
        vec![self.open_local(PathBuf::from(&b.local_dir))]
    }
}
