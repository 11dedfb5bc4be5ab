//! Opening the F3 viewer and passing it keys, mouse wheel and news; the
//! viewer itself (`tui/viewer/`) decides what they mean.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ferry_proto::msg::EntryKind;

use super::{App, Link};
use crate::tui::action::Effect;
use crate::tui::pane::Side;
use crate::tui::viewer::draw::text_rows;
use crate::tui::viewer::{Source, ViewNews, ViewOutcome, ViewWork, Viewer};

impl App {
    /// The viewer's text rows and width on this screen.
    fn viewer_dims(&self) -> (usize, usize) {
        (text_rows(self.size.height), self.size.width as usize)
    }

    /// F3: views the file under the cursor.
    pub(super) fn open_viewer(&mut self) -> Vec<Effect> {
        let side = self.focused_side();
        let e = self.pane(side).current().cloned();
        let Some(e) = e.filter(|e| matches!(e.kind, EntryKind::File | EntryKind::Symlink)) else {
            self.info("F3 views files (Enter opens a directory)");
            return vec![];
        };
        let source = match side {
            Side::Local => Source::Local(self.local_dir.join(&e.name)),
            Side::Remote => {
                if !matches!(self.link, Link::Online(_)) {
                    self.error("not connected");
                    return vec![];
                }
                Source::Remote(self.join(Side::Remote, &e.name))
            }
        };
        self.views += 1;
        self.viewer = Some(Box::new(Viewer::new(self.views, e.name, source, e.size)));
        self.settle_viewer()
    }

    /// A key while the viewer is open.
    pub(super) fn viewer_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let (rows, _) = self.viewer_dims();
        let Some(v) = self.viewer.as_mut() else {
            return vec![];
        };
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.viewer = None;
            let mut fx = vec![Effect::View(ViewWork::Stop)];
            fx.extend(self.ask_quit());
            return fx;
        }
        match v.key(&key, rows) {
            ViewOutcome::Close => {
                self.viewer = None;
                vec![Effect::View(ViewWork::Stop)]
            }
            ViewOutcome::Open(work) => {
                let mut fx: Vec<Effect> = work.into_iter().map(Effect::View).collect();
                fx.extend(self.settle_viewer());
                fx
            }
        }
    }

    /// The wheel scrolls the viewer three rows.
    pub(super) fn viewer_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let code = match m.kind {
            MouseEventKind::ScrollDown => KeyCode::Down,
            MouseEventKind::ScrollUp => KeyCode::Up,
            _ => return vec![],
        };
        let mut fx = Vec::new();
        for _ in 0..3 {
            fx.extend(self.viewer_key(KeyEvent::new(code, KeyModifiers::NONE)));
        }
        fx
    }

    /// A block or a search result came.
    pub(super) fn viewer_news(&mut self, news: ViewNews) -> Vec<Effect> {
        match self.viewer.as_mut() {
            Some(v) => {
                v.news(news);
                self.settle_viewer()
            }
            None => vec![],
        }
    }

    /// The reads the viewer needs now.
    pub(super) fn settle_viewer(&mut self) -> Vec<Effect> {
        let (rows, width) = self.viewer_dims();
        match self.viewer.as_mut() {
            Some(v) => v
                .settle(rows, width)
                .into_iter()
                .map(Effect::View)
                .collect(),
            None => vec![],
        }
    }
}
