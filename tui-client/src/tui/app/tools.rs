//! Opening the dialogs of the everyday tools (chmod); their outcomes are
//! applied in `App::dialog_key`.

use super::{App, Link};
use crate::tui::action::Effect;
use crate::tui::dialog::{ChmodDialog, Dialog};
use crate::tui::pane::Side;

impl App {
    /// `p`: the permissions of the marked entries, or the one under the
    /// cursor.
    pub(super) fn start_chmod(&mut self) -> Vec<Effect> {
        let side = self.focused_side();
        if side == Side::Remote && !matches!(self.link, Link::Online(_)) {
            self.error("not connected");
            return vec![];
        }
        let entries = self.pane(side).selection();
        if !entries.is_empty() {
            self.dialog = Some(Dialog::Chmod(ChmodDialog::new(side, entries)));
        }
        vec![]
    }
}
