//! The queue's keys beyond cancel and retry: pause and resume, moving a
//! job in the start order, jobs at once, and the speed limit.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::App;
use crate::tui::action::Effect;
use crate::tui::dialog::{Dialog, InputKind};
use crate::tui::pane::Side;
use crate::tui::prompts::InputDialog;
use crate::tui::queue::JobState;

impl App {
    /// A key of the focused queue, if it is one of these.
    pub(super) fn queue_more_key(&mut self, key: &KeyEvent) -> Option<Vec<Effect>> {
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let i = self.queue.selected;
        let fx = match key.code {
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                let fx = self.queue.toggle_pause(i);
                if let Some(j) = self.queue.jobs.get(i) {
                    match j.state {
                        JobState::Paused => self.info(format!("paused {} (p resumes)", j.source)),
                        JobState::Queued => self.info(format!("resuming {}", j.source)),
                        _ => {}
                    }
                }
                fx
            }
            KeyCode::Char('K') => self.move_job(-1),
            KeyCode::Up if shift => self.move_job(-1),
            KeyCode::Char('J') => self.move_job(1),
            KeyCode::Down if shift => self.move_job(1),
            KeyCode::Char('[') | KeyCode::Char('-') => self.change_parallel(-1),
            KeyCode::Char(']') | KeyCode::Char('+') | KeyCode::Char('=') => self.change_parallel(1),
            KeyCode::Char('l') => {
                let now = match self.queue.rate {
                    0 => "0".to_string(),
                    r => ferry_proto::size::format_size(r).replace(' ', ""),
                };
                let d = InputDialog::new(InputKind::Rate, Side::Local, now);
                self.dialog = Some(Dialog::Input(d));
                vec![]
            }
            _ => return None,
        };
        Some(fx)
    }

    fn move_job(&mut self, delta: isize) -> Vec<Effect> {
        self.queue.move_job(self.queue.selected, delta);
        vec![]
    }

    fn change_parallel(&mut self, delta: isize) -> Vec<Effect> {
        let n = self.queue.parallel.saturating_add_signed(delta);
        self.queue.set_parallel(n);
        self.info(format!("{} job(s) at once", self.queue.parallel));
        vec![self.queue_settings()]
    }

    /// The speed limit dialog's answer: `500K`, `10MiB`, `0` for none.
    pub(super) fn set_rate_text(&mut self, text: &str) -> Vec<Effect> {
        match ferry_proto::size::parse_size(text) {
            Ok(rate) => {
                self.queue.rate = rate;
                self.info(match rate {
                    0 => "no speed limit".to_string(),
                    r => format!("speed limit {}/s", ferry_proto::size::format_size(r)),
                });
                vec![self.queue_settings()]
            }
            Err(e) => {
                self.error(format!("speed limit: {e}"));
                vec![]
            }
        }
    }

    fn queue_settings(&self) -> Effect {
        Effect::QueueSettings {
            parallel: self.queue.parallel,
            rate: self.queue.rate,
        }
    }
}
