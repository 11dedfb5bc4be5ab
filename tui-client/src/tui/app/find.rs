//! Find (Ctrl-F, Alt+F7): opening the form, starting the search, passing
//! its news to the panel, and going to a result.

use std::path::PathBuf;

use crossterm::event::KeyEvent;
use ferry_proto::RemotePath;

use super::{App, Focus, Link};
use crate::tui::action::Effect;
use crate::tui::dialog::Dialog;
use crate::tui::find::run::{News, Work};
use crate::tui::find::{next_id, Find, FindForm, FindPanel, FormOutcome, PanelOutcome};
use crate::tui::pane::Side;

impl App {
    /// Ctrl-F / Alt+F7: the form, for the focused pane's directory.
    pub(super) fn start_find(&mut self) -> Vec<Effect> {
        let side = self.focused_side();
        if side == Side::Remote && !matches!(self.link, Link::Online(_)) {
            self.error("not connected");
            return vec![];
        }
        let form = FindForm::new(side, self.dir_of(side));
        self.dialog = Some(Dialog::Find(Box::new(Find::Form(form))));
        vec![]
    }

    /// A key for the form or the panel.
    pub(super) fn find_key(&mut self, d: Find, key: KeyEvent) -> Vec<Effect> {
        match d {
            Find::Form(mut form) => match form.key(&key) {
                FormOutcome::Editing => {
                    self.dialog = Some(Dialog::Find(Box::new(Find::Form(form))));
                    vec![]
                }
                FormOutcome::Cancelled => vec![],
                FormOutcome::Search(query) => {
                    let id = next_id();
                    let (side, dir) = (form.side, form.dir);
                    let panel = FindPanel::new(id, side, dir.clone(), query.clone());
                    self.dialog = Some(Dialog::Find(Box::new(Find::Panel(panel))));
                    vec![Work::Start {
                        id,
                        side,
                        dir,
                        query,
                    }
                    .into()]
                }
            },
            Find::Panel(mut p) => {
                let page = self.rows_height(p.side).saturating_sub(2);
                let outcome = p.key(&key, page);
                let id = p.id;
                match outcome {
                    PanelOutcome::Stay | PanelOutcome::Stop => {
                        self.dialog = Some(Dialog::Find(Box::new(Find::Panel(p))));
                        if outcome == PanelOutcome::Stop {
                            return vec![Work::Stop(id).into()];
                        }
                        vec![]
                    }
                    PanelOutcome::Close => vec![Work::Stop(id).into()],
                    PanelOutcome::Jump { dir, name, local } => {
                        let mut fx = vec![Work::Stop(id).into()];
                        fx.extend(self.go_to(p.side, &dir, name, local));
                        fx
                    }
                }
            }
        }
    }

    /// News of a search: to its panel, if it is still open.
    pub(super) fn find_news(&mut self, news: News) -> Vec<Effect> {
        if let Some(Dialog::Find(d)) = &mut self.dialog {
            if let Find::Panel(p) = d.as_mut() {
                if p.id == news.id {
                    p.apply(news.event);
                }
            }
        }
        vec![]
    }

    /// Opens `dir` on `side` (locally `local`, the real path, when known)
    /// with the cursor on `name`.
    fn go_to(
        &mut self,
        side: Side,
        dir: &str,
        name: String,
        local: Option<PathBuf>,
    ) -> Vec<Effect> {
        self.focus = Focus::Pane(side);
        if name.starts_with('.') {
            self.pane_mut(side).show_hidden = true;
        }
        let fx = match side {
            Side::Local => vec![self.open_local(local.unwrap_or_else(|| PathBuf::from(dir)))],
            Side::Remote => match RemotePath::parse(dir) {
                Ok(d) => self.open_remote(d),
                Err(e) => {
                    self.error(format!("{dir}: {e}"));
                    return vec![];
                }
            },
        };
        self.pane_mut(side).filter = None;
        self.pending_select(side, name);
        fx
    }
}
