//! Opening and refreshing directories, and installing their listings:
//! the newest listing of a pane wins, and it arrives sorted, so the UI
//! thread's share of a 100,000-entry directory is one pass over it.

use std::path::{Path, PathBuf};

use ferry_proto::msg::EntryKind;
use ferry_proto::RemotePath;

use super::{App, Link};
use crate::tui::action::{Action, Effect};
use crate::tui::pane::Side;

impl App {
    /// A listing arrived (or the local directory changed on disk).
    pub(super) fn on_listing(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::LocalListed { generation, result } => {
                // Only the newest listing counts: an older one in flight
                // is stale.
                if generation != self.local_generation {
                    return vec![];
                }
                match result {
                    Err(e) if self.link_was_no_dir(Side::Local) => {
                        return self.back_from_link(Side::Local, e);
                    }
                    Ok(listing) => {
                        self.entered_link = None;
                        // A local listing arrives whole; marks on names
                        // that are gone go with them.
                        self.local.install(listing);
                    }
                    Err(e) => {
                        self.local.fail(e.clone());
                        self.error(e);
                    }
                }
            }
            // Re-list unless a listing is already on its way.
            Action::LocalChanged(dir) if dir == self.local_dir && !self.local.loading => {
                return self.refresh(Side::Local);
            }
            Action::RemoteBatch {
                generation,
                entries,
                done,
            } if generation == self.remote_generation => {
                if done && self.link_was_no_dir(Side::Remote) {
                    self.entered_link = None;
                }
                self.remote.extend(entries, done);
            }
            Action::RemoteListed {
                generation,
                listing,
            } if generation == self.remote_generation => {
                if self.link_was_no_dir(Side::Remote) {
                    self.entered_link = None;
                }
                self.remote.install(listing);
            }
            Action::RemoteListFailed { generation, error }
                if generation == self.remote_generation =>
            {
                if self.link_was_no_dir(Side::Remote) {
                    return self.back_from_link(Side::Remote, error);
                }
                self.remote.fail(error.clone());
                self.error(error);
            }
            // Stale listings (and changes elsewhere) change nothing.
            _ => {}
        }
        vec![]
    }

    pub(super) fn open_local(&mut self, dir: PathBuf) -> Effect {
        let at_root = dir.parent().is_none();
        let path = dir.display().to_string();
        if path == self.local.path && !self.local.entries.is_empty() {
            // A refresh: the old entries stay, usable (marks included),
            // until the new listing replaces them whole.
            self.local.loading = true;
            if self.local.pending.is_none() {
                self.local.pending = self.local.current().map(|e| e.name.clone());
            }
        } else {
            self.local.begin(path, at_root);
        }
        self.local_dir = dir.clone();
        self.local_generation += 1;
        Effect::ListLocal {
            path: dir,
            generation: self.local_generation,
            order: self.local.order(),
        }
    }

    pub(super) fn open_remote(&mut self, dir: RemotePath) -> Vec<Effect> {
        if !matches!(self.link, Link::Online(_)) {
            return vec![];
        }
        self.remote_generation += 1;
        self.remote.begin(dir.to_string(), dir.is_root());
        self.remote_dir = dir.clone();
        vec![
            Effect::ListRemote {
                path: dir,
                generation: self.remote_generation,
                order: self.remote.order(),
            },
            Effect::Quota,
        ]
    }

    pub(super) fn refresh(&mut self, side: Side) -> Vec<Effect> {
        match side {
            Side::Local => {
                let dir = self.local_dir.clone();
                vec![self.open_local(dir)]
            }
            Side::Remote => {
                let dir = self.remote_dir.clone();
                self.open_remote(dir)
            }
        }
    }

    pub(super) fn enter(&mut self, side: Side) -> Vec<Effect> {
        let p = self.pane(side);
        if p.is_parent_row(p.cursor) {
            return self.go_up(side);
        }
        let Some(e) = p.current() else { return vec![] };
        if e.kind != EntryKind::Dir && e.kind != EntryKind::Symlink {
            return vec![];
        }
        let name = e.name.clone();
        // A link opens if it leads to a directory; if not, the pane comes
        // back here (see `back_from_link`).
        self.entered_link = (e.kind == EntryKind::Symlink).then(|| (side, name.clone()));
        match side {
            Side::Local => {
                let dir = self.local_dir.join(&name);
                vec![self.open_local(dir)]
            }
            Side::Remote => match self.remote_dir.child(&name) {
                Ok(dir) => self.open_remote(dir),
                Err(e) => {
                    self.error(e.to_string());
                    vec![]
                }
            },
        }
    }

    pub(super) fn go_up(&mut self, side: Side) -> Vec<Effect> {
        match side {
            Side::Local => {
                let Some(parent) = self.local_dir.parent().map(Path::to_path_buf) else {
                    return vec![];
                };
                let came_from = self
                    .local_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                let fx = vec![self.open_local(parent)];
                if let Some(name) = came_from {
                    self.pending_select(Side::Local, name);
                }
                fx
            }
            Side::Remote => {
                if self.remote_dir.is_root() {
                    return vec![];
                }
                let came_from = self.remote_dir.file_name().map(str::to_string);
                let fx = self.open_remote(self.remote_dir.parent());
                if let Some(name) = came_from {
                    self.pending_select(Side::Remote, name);
                }
                fx
            }
        }
    }

    /// After going up, put the cursor on the directory we came from once
    /// it shows up in the listing.
    pub(super) fn pending_select(&mut self, side: Side, name: String) {
        self.pane_mut(side).pending = Some(name);
    }

    /// The listing that failed on `side` was of a link just entered.
    fn link_was_no_dir(&self, side: Side) -> bool {
        self.entered_link.as_ref().is_some_and(|(s, _)| *s == side)
    }

    /// A link entered on `side` could not be listed (it leads to a file,
    /// or nowhere): back to the directory it is in, cursor on it.
    fn back_from_link(&mut self, side: Side, error: String) -> Vec<Effect> {
        let Some((_, name)) = self.entered_link.take() else {
            return vec![];
        };
        let fx = self.go_up(side);
        self.pending_select(side, name.clone());
        self.error(format!(
            "{}: the link leads to no directory ({error}); F5 copies what it points to",
            crate::display::escape(&name)
        ));
        fx
    }
}
