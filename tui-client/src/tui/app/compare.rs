//! `=`, `#` and `M`: comparing the panes' directories, keeping the
//! comparison true as listings change, and marking the differences.

use super::{App, Link};
use crate::tui::action::Effect;
use crate::tui::compare::{CompareNews, CompareWork, Comparison, Diff};
use crate::tui::pane::Side;

impl App {
    /// The comparison, if it is for the directories the panes show.
    pub fn comparison(&self) -> Option<&Comparison> {
        self.cmp
            .shown
            .as_ref()
            .filter(|c| c.local_dir == self.local.path && c.remote_dir == self.remote.path)
    }

    /// `=` (by size and time) or `#` (by contents): compares, or hides the
    /// comparison shown (stopping its hashing).
    pub(super) fn toggle_compare(&mut self, by_hash: bool) -> Vec<Effect> {
        if self.comparison().is_some_and(|c| c.by_hash == by_hash) {
            let fx = self.drop_comparison();
            self.info("comparison hidden");
            return fx;
        }
        if !matches!(self.link, Link::Online(_)) {
            self.error("not connected: the comparison needs the remote pane");
            return vec![];
        }
        if self.local.loading || self.remote.loading {
            self.error("a listing is still coming in: compare once it is complete");
            return vec![];
        }
        let mut fx = self.drop_comparison();
        self.cmp.shown = Some(Comparison::new(
            self.local.path.clone(),
            self.remote.path.clone(),
            by_hash,
        ));
        fx.extend(self.recompute());
        fx
    }

    /// Hides the comparison; stops its hashing.
    fn drop_comparison(&mut self) -> Vec<Effect> {
        match self.cmp.shown.take().and_then(|c| c.job) {
            Some(job) => vec![Effect::Compare(CompareWork::Cancel(job))],
            None => vec![],
        }
    }

    /// Compares the listings now shown; starts hashing what `#` must
    /// decide (stopping a run in progress: its finished results are kept).
    fn recompute(&mut self) -> Vec<Effect> {
        let cap = self.cmp.cap;
        let Some(c) = self.cmp.shown.as_mut() else {
            return vec![];
        };
        let mut fx = Vec::new();
        if let Some(job) = c.job.take() {
            fx.push(Effect::Compare(CompareWork::Cancel(job)));
        }
        let files = c.compute(&self.local.entries, &self.remote.entries, cap);
        if !files.is_empty() {
            self.cmp.jobs += 1;
            let job = self.cmp.jobs;
            c.job = Some(job);
            fx.push(Effect::Compare(CompareWork::Hash {
                job,
                local_dir: self.local_dir.clone(),
                remote_dir: self.remote_dir.clone(),
                files,
            }));
        }
        let text = c.summary();
        self.info_unshown(text);
        fx
    }

    /// Says the summary, with how many differences neither pane shows
    /// (dot files hidden, or filtered out), if any.
    fn info_unshown(&mut self, mut text: String) {
        if let Some(c) = self.comparison() {
            let shown = |side: Side| -> std::collections::HashSet<&str> {
                self.pane(side).shown().map(|e| e.name.as_str()).collect()
            };
            let (l, r) = (shown(Side::Local), shown(Side::Remote));
            let unshown = c
                .diffs
                .iter()
                .filter(|(n, d)| match d {
                    Diff::OnlyLocal => !l.contains(n.as_str()),
                    Diff::OnlyRemote => !r.contains(n.as_str()),
                    _ => !l.contains(n.as_str()) && !r.contains(n.as_str()),
                })
                .count();
            if unshown > 0 {
                text.push_str(&format!(" ({unshown} of them hidden or filtered out)"));
            }
        }
        self.info(text);
    }

    /// After a listing: a comparison of directories no longer shown goes;
    /// a new listing of the same ones is compared again.
    pub(super) fn recompare(&mut self) -> Vec<Effect> {
        let Some(c) = &self.cmp.shown else {
            return vec![];
        };
        if c.local_dir != self.local.path || c.remote_dir != self.remote.path {
            return self.drop_comparison();
        }
        if self.local.loading || self.remote.loading {
            return vec![];
        }
        self.recompute()
    }

    /// Hashing news.
    pub(super) fn compare_news(&mut self, news: CompareNews) -> Vec<Effect> {
        let Some(c) = self.cmp.shown.as_mut() else {
            return vec![];
        };
        match news {
            CompareNews::Hashed { job, name, same } if c.job == Some(job) => {
                c.hashed(name, same);
            }
            CompareNews::Done { job } if c.job == Some(job) => {
                c.job = None;
                let text = c.summary();
                self.info_unshown(text);
            }
            _ => {}
        }
        vec![]
    }

    /// `M`: marks on each pane, among the entries it shows, what differs
    /// there and should be copied from there (see `differs_on`), so F5 on
    /// each copies it; differences hidden or filtered out stay unmarked.
    pub(super) fn mark_differences(&mut self) -> Vec<Effect> {
        let Some(c) = self.comparison() else {
            self.error("nothing compared: = compares by size and time, # by contents");
            return vec![];
        };
        let mut counts = [0usize; 2];
        let mut unshown = 0;
        let picked: Vec<Vec<ferry_proto::msg::Entry>> = [Side::Local, Side::Remote]
            .iter()
            .map(|&side| {
                let pane = self.pane(side);
                let all = pane
                    .entries
                    .iter()
                    .filter(|e| c.differs_on(side, &e.name))
                    .count();
                let shown: Vec<_> = pane
                    .shown()
                    .filter(|e| c.differs_on(side, &e.name))
                    .cloned()
                    .collect();
                unshown += all - shown.len();
                shown
            })
            .collect();
        let unsure = c
            .diffs
            .keys()
            .filter(|n| !c.differs_on(Side::Local, n) && !c.differs_on(Side::Remote, n))
            .count();
        for (i, (side, entries)) in [Side::Local, Side::Remote].iter().zip(picked).enumerate() {
            let p = self.pane_mut(*side);
            for e in &entries {
                p.marked.insert(e);
            }
            counts[i] = entries.len();
        }
        let mut text = format!(
            "marked {} local and {} remote entries to copy: F5 on a pane copies them",
            counts[0], counts[1]
        );
        if unshown > 0 {
            text.push_str(&format!("; {unshown} hidden or filtered out, not marked"));
        }
        if unsure > 0 {
            text.push_str(&format!(
                "; {unsure} not marked (neither side newer, or not known)"
            ));
        }
        self.info(text);
        vec![]
    }
}
