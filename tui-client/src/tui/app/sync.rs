//! `S`: the sync dialog opened on the panes' directories, its outcomes
//! (plan, run through the queue) and the runtime's plans.

use super::{App, Focus, Link};
use crate::transfer::{Conflict, Direction};
use crate::tui::action::Effect;
use crate::tui::dialog::Dialog;
use crate::tui::pane::Side;
use crate::tui::queue::JobSpec;
use crate::tui::sync_dialog::run::{SyncNews, SyncWork};
use crate::tui::sync_dialog::{SyncDialog, SyncOutcome};

impl App {
    /// `S`: the sync dialog, uploading from the local pane or downloading
    /// from the remote one (whichever has the focus).
    pub(super) fn open_sync(&mut self) -> Vec<Effect> {
        if !matches!(self.link, Link::Online(_)) {
            self.error("not connected: a sync needs the remote pane");
            return vec![];
        }
        let up = self.focus != Focus::Pane(Side::Remote);
        let d = SyncDialog::new(up, self.local_dir.clone(), self.remote_dir.clone());
        self.dialog = Some(Dialog::Sync(Box::new(d)));
        vec![]
    }

    /// A key for the sync dialog.
    pub(super) fn sync_key(
        &mut self,
        mut d: SyncDialog,
        key: crossterm::event::KeyEvent,
    ) -> Vec<Effect> {
        match d.key(&key) {
            SyncOutcome::Editing => {
                self.dialog = Some(Dialog::Sync(Box::new(d)));
                vec![]
            }
            SyncOutcome::Closed(planning) => {
                planning.map_or_else(Vec::new, |id| vec![Effect::Sync(SyncWork::Cancel(id))])
            }
            SyncOutcome::Plan(id) => {
                let work = SyncWork::Plan {
                    id,
                    sides: d.sides(),
                    how: d.how(),
                };
                self.dialog = Some(Dialog::Sync(Box::new(d)));
                vec![Effect::Sync(work)]
            }
            SyncOutcome::Run(job) => {
                let (source, dest) = (job.sides.source_name(), job.sides.destination_name());
                let spec = JobSpec {
                    direction: if job.sides.up {
                        Direction::Put
                    } else {
                        Direction::Get
                    },
                    sources: vec![source.clone()].into(),
                    dest: dest.clone(),
                    name: None,
                    conflict: Conflict::Overwrite,
                    follow_links: false,
                    sync: Some(Box::new(job)),
                };
                let id = self.queue.push(spec.clone());
                if let Some(j) = self.queue.get_mut(id) {
                    j.source = format!("sync {source}");
                }
                self.info(format!("sync {source} → {dest} started"));
                vec![Effect::StartJob { job: id, spec }]
            }
        }
    }

    /// A plan came.
    pub(super) fn sync_news(&mut self, news: SyncNews) -> Vec<Effect> {
        let SyncNews::Planned { id, result } = news;
        if let Some(Dialog::Sync(d)) = self.dialog.as_mut() {
            d.planned(id, result);
        }
        vec![]
    }
}
