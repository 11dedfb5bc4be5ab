//! Synchronized browsing (Ctrl-Y), as FileZilla has it: entering a
//! directory on one side enters the same-named one on the other, going up
//! goes up on both; when the other side has no such directory, it says
//! so and the toggle goes off.

use ferry_proto::msg::EntryKind;

use super::{App, Link};
use crate::tui::action::Effect;
use crate::tui::pane::Side;

impl App {
    /// Ctrl-Y: on or off.
    pub(super) fn toggle_sync_browse(&mut self) -> Vec<Effect> {
        if !self.sync_browse && !matches!(self.link, Link::Online(_)) {
            self.error("synchronized browsing needs both panes: connect first");
            return vec![];
        }
        self.sync_browse = !self.sync_browse;
        self.info(if self.sync_browse {
            "synchronized browsing on: directories are entered and left on both sides (Ctrl-Y: off)"
        } else {
            "synchronized browsing off"
        });
        vec![]
    }

    fn sync_off(&mut self, why: String) {
        self.sync_browse = false;
        self.error(format!(
            "{why}: synchronized browsing is off (Ctrl-Y turns it on)"
        ));
    }

    /// Enter on `side`, and in step on the other side.
    pub(super) fn enter_synced(&mut self, side: Side) -> Vec<Effect> {
        if !self.sync_browse {
            return self.enter(side);
        }
        let p = self.pane(side);
        if p.is_parent_row(p.cursor) {
            return self.go_up_synced(side);
        }
        let name = match p.current() {
            Some(e) if matches!(e.kind, EntryKind::Dir | EntryKind::Symlink) => e.name.clone(),
            _ => return self.enter(side),
        };
        let other = side.other();
        let there = self
            .pane(other)
            .entries
            .iter()
            .any(|e| e.name == name && matches!(e.kind, EntryKind::Dir | EntryKind::Symlink));
        let mut fx = self.enter(side);
        if !there {
            let place = match other {
                Side::Local => "local",
                Side::Remote => "remote",
            };
            self.sync_off(format!("the {place} side has no directory {name}"));
            return fx;
        }
        match other {
            Side::Local => {
                let dir = self.local_dir.join(&name);
                fx.push(self.open_local(dir));
            }
            Side::Remote => match self.remote_dir.child(&name) {
                Ok(dir) => fx.extend(self.open_remote(dir)),
                Err(e) => self.sync_off(e.to_string()),
            },
        }
        fx
    }

    /// Backspace (or Enter on `..`) on `side`, and up on the other side.
    pub(super) fn go_up_synced(&mut self, side: Side) -> Vec<Effect> {
        if !self.sync_browse || self.pane(side).at_root {
            return self.go_up(side);
        }
        let mut fx = self.go_up(side);
        let other = side.other();
        if self.pane(other).at_root {
            self.sync_off("the other side is at its top already".into());
            return fx;
        }
        fx.extend(self.go_up(other));
        fx
    }
}
