//! Copy and move within one side (Shift+F5, Shift+F6): opening the target
//! line, applying the dialog's outcomes and the runtime's plan.

use crossterm::event::KeyEvent;

use super::{App, Link};
use crate::tui::action::Effect;
use crate::tui::dialog::Dialog;
use crate::tui::pane::Side;
use crate::tui::within::run::{News, Work};
use crate::tui::within::{Op, Outcome, Plan, Prompt, PromptOutcome, Within};

impl App {
    /// Shift+F5 (F15 on some terminals): copy; Shift+F6 (F16): move, the
    /// marked entries or the one under the cursor, within the focused side.
    pub(super) fn within_fkey(&mut self, n: u8) -> Vec<Effect> {
        let op = if n == 5 || n == 15 {
            Op::Copy
        } else {
            Op::Move
        };
        let side = self.focused_side();
        if side == Side::Remote && !matches!(self.link, Link::Online(_)) {
            self.error("not connected");
            return vec![];
        }
        let sources = self.pane(side).selection();
        if sources.is_empty() {
            return vec![];
        }
        let p = Prompt::new(side, op, self.dir_of(side), sources);
        self.dialog = Some(Dialog::Within(Within::Prompt(p)));
        vec![]
    }

    /// A key for the dialog.
    pub(super) fn within_key(&mut self, d: Within, key: KeyEvent) -> Vec<Effect> {
        match d {
            Within::Prompt(mut p) => match p.key(&key) {
                PromptOutcome::Editing => {
                    self.dialog = Some(Dialog::Within(Within::Prompt(p)));
                    vec![]
                }
                PromptOutcome::Cancelled => vec![],
                PromptOutcome::Submit(req) => {
                    // The marks stay until the work starts: Esc in the
                    // conflict dialog or a planning error keeps them.
                    self.info(format!("{}: looking at {}…", req.op.verb(), req.target));
                    vec![Work::Plan(req).into()]
                }
            },
            Within::Conflicts(mut plan) => match plan.key(&key) {
                Outcome::Asking => {
                    self.dialog = Some(Dialog::Within(Within::Conflicts(plan)));
                    vec![]
                }
                Outcome::Ready => self.within_run(plan),
                Outcome::Cancelled => {
                    self.info(format!("{} cancelled", plan.op.verb()));
                    vec![]
                }
            },
        }
    }

    /// The runtime's answer.
    pub(super) fn within_news(&mut self, news: News) -> Vec<Effect> {
        match news {
            News::Planned(Err(e)) => {
                self.error(e);
                vec![]
            }
            News::Planned(Ok(mut plan)) => {
                if plan.advance() {
                    if self.dialog.is_some() {
                        self.error(format!(
                            "{}: close the open dialog first, then try again",
                            plan.op.verb()
                        ));
                        return vec![];
                    }
                    self.dialog = Some(Dialog::Within(Within::Conflicts(plan)));
                    return vec![];
                }
                self.within_run(plan)
            }
        }
    }

    fn within_run(&mut self, plan: Plan) -> Vec<Effect> {
        let n = plan.count();
        if n == 0 {
            self.info(format!("nothing to {}", plan.op.verb()));
            return vec![];
        }
        self.pane_mut(plan.side).marked.clear();
        // The cursor goes to the one new entry when it shows in the pane.
        if let [item] = plan.items.as_slice() {
            if plan.to_dir == self.dir_of(plan.side) {
                if let Some(name) = item.final_name() {
                    self.pane_mut(plan.side).pending = Some(name.to_string());
                }
            }
        }
        self.info(format!(
            "{}ing {n} entr{}…",
            if plan.op == Op::Copy { "copy" } else { "mov" },
            if n == 1 { "y" } else { "ies" }
        ));
        vec![Work::Run(plan).into()]
    }
}
