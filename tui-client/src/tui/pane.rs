//! One file pane: a directory's entries, the cursor, marks, sorting,
//! hidden files and the filter. Pure state, no I/O: the runtime fills it.

use ferry_proto::msg::Entry;

use super::listing::{self, Listing, Order};
use super::marks::Marks;

/// Which pane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// This machine, on the left.
    Local,
    /// The server, on the right.
    Remote,
}

impl Side {
    /// The other pane.
    pub fn other(self) -> Side {
        match self {
            Side::Local => Side::Remote,
            Side::Remote => Side::Local,
        }
    }
}

/// Sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// By name (directories first).
    Name,
    /// Largest first.
    Size,
    /// Newest first.
    Time,
}

/// The name of the parent-directory row.
pub const PARENT: &str = "..";

/// A pane's state.
#[derive(Debug, Clone)]
pub struct Pane {
    /// Which side.
    pub side: Side,
    /// The directory shown, as text (a local path or a remote path).
    pub path: String,
    /// Whether `path` is the top (no parent row).
    pub at_root: bool,
    /// Every entry of the directory, sorted.
    pub entries: Vec<Entry>,
    /// Indices into `entries` that are shown (hidden files and the filter
    /// applied); the parent row, when present, is not in here.
    view: Vec<usize>,
    /// Entries not shown because they are hidden (dot files), counted when
    /// `view` is made so a frame need not walk every entry.
    hidden: usize,
    /// Cursor row (0 is the parent row when there is one).
    pub cursor: usize,
    /// First row shown.
    pub offset: usize,
    /// Marked names.
    pub marked: Marks,
    /// Where a Shift-selection started.
    pub anchor: Option<usize>,
    /// Sort order.
    pub sort: SortKey,
    /// The sort order reversed (directories still first).
    pub reverse: bool,
    /// Show names starting with a dot.
    pub show_hidden: bool,
    /// Filter text (case-insensitive substring), when filtering.
    pub filter: Option<String>,
    /// A listing is streaming in.
    pub loading: bool,
    /// The last listing error.
    pub error: Option<String>,
    /// The entry the cursor goes to once the listing shows it: the
    /// directory we came up from, a new directory, the entry under the
    /// cursor before a refresh.
    pub pending: Option<String>,
}

impl Pane {
    /// An empty pane.
    pub fn new(side: Side) -> Pane {
        Pane {
            side,
            path: String::new(),
            at_root: true,
            entries: Vec::new(),
            view: Vec::new(),
            hidden: 0,
            cursor: 0,
            offset: 0,
            marked: Marks::default(),
            anchor: None,
            sort: SortKey::Name,
            reverse: false,
            show_hidden: false,
            filter: None,
            loading: false,
            error: None,
            pending: None,
        }
    }

    /// Starts showing a new directory (entries arrive with [`Pane::extend`]).
    pub fn begin(&mut self, path: String, at_root: bool) {
        if path != self.path {
            self.cursor = 0;
            self.offset = 0;
            self.marked.clear();
            self.filter = None;
            self.pending = None;
        } else if self.pending.is_none() {
            // A refresh: stay on the same entry.
            self.pending = self.current().map(|e| e.name.clone());
        }
        self.path = path;
        self.at_root = at_root;
        listing::free_elsewhere(std::mem::take(&mut self.entries));
        self.view.clear();
        self.hidden = 0;
        self.loading = true;
        self.error = None;
        self.anchor = None;
    }

    /// Adds a batch of entries (a huge directory arrives in several).
    /// While a listing streams in, batches are only appended (cheap, so a
    /// directory of 100,000 entries never stalls the UI; the work is that
    /// of the batch, not of all entries so far); `done` sorts them all
    /// here, which suits small listings: a big one ends with
    /// [`Pane::install`] of a listing sorted elsewhere.
    pub fn extend(&mut self, batch: Vec<Entry>, done: bool) {
        if done {
            let cursor_name = self
                .pending
                .take()
                .or_else(|| self.current().map(|e| e.name.clone()));
            self.entries.extend(batch);
            self.loading = false;
            self.resort();
            if let Some(name) = cursor_name {
                self.select_name(&name);
            }
        } else {
            // Appending leaves every shown row where it was: only a
            // pending name (which may still come) can move the cursor.
            let from = self.entries.len();
            self.entries.extend(batch);
            let first_new_row = self.len();
            self.append_view(from);
            if let Some(name) = self.pending.clone() {
                if let Some(i) = self.view[first_new_row - self.parent_rows()..]
                    .iter()
                    .position(|&k| self.entries[k].name == name)
                {
                    self.cursor = first_new_row + i;
                }
            }
        }
        self.clamp();
    }

    /// Replaces the entries with a whole listing (sorted off the UI thread
    /// unless the order changed meanwhile); the cursor stays on its entry
    /// (or goes to the pending one), marks of names that are gone go.
    pub fn install(&mut self, listing: Listing) {
        let cursor_name = self
            .pending
            .take()
            .or_else(|| self.current().map(|e| e.name.clone()));
        listing::free_elsewhere(std::mem::replace(&mut self.entries, listing.entries));
        self.loading = false;
        self.error = None;
        if listing.order == Some(self.order()) {
            self.refilter();
        } else {
            self.resort();
        }
        self.marked.keep_listed(&self.entries);
        if let Some(name) = cursor_name {
            self.select_name(&name);
        }
        self.clamp();
    }

    /// Shows an error instead of entries.
    pub fn fail(&mut self, error: String) {
        self.loading = false;
        self.error = Some(error);
    }

    fn parent_rows(&self) -> usize {
        usize::from(!self.at_root)
    }

    /// Rows shown, the parent row included.
    pub fn len(&self) -> usize {
        self.parent_rows() + self.view.len()
    }

    /// True when nothing is shown.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry on a row; `None` for the parent row.
    pub fn row(&self, row: usize) -> Option<&Entry> {
        let i = row.checked_sub(self.parent_rows())?;
        self.view.get(i).map(|&k| &self.entries[k])
    }

    /// True if `row` is the parent row.
    pub fn is_parent_row(&self, row: usize) -> bool {
        !self.at_root && row == 0
    }

    /// The entry under the cursor.
    pub fn current(&self) -> Option<&Entry> {
        self.row(self.cursor)
    }

    /// The sort order.
    pub fn order(&self) -> Order {
        Order {
            key: self.sort,
            reverse: self.reverse,
        }
    }

    /// Re-sorts and re-filters after a change of order, filter or entries.
    pub fn resort(&mut self) {
        let order = self.order();
        listing::sort(&mut self.entries, order);
        self.refilter();
    }

    /// Recomputes which entries show (hidden files, filter) without sorting.
    fn refilter(&mut self) {
        self.view.clear();
        self.hidden = 0;
        self.append_view(0);
        self.clamp();
    }

    /// Adds the entries from index `from` on to the shown ones (hidden
    /// files and the filter applied).
    fn append_view(&mut self, from: usize) {
        let needle = self.filter.as_ref().map(|f| f.to_lowercase());
        for (i, e) in self.entries.iter().enumerate().skip(from) {
            if !self.show_hidden && e.name.starts_with('.') {
                self.hidden += 1;
                continue;
            }
            if needle
                .as_ref()
                .is_none_or(|n| e.name.to_lowercase().contains(n.as_str()))
            {
                self.view.push(i);
            }
        }
    }

    fn clamp(&mut self) {
        let len = self.len();
        if len == 0 {
            self.cursor = 0;
        } else if self.cursor >= len {
            self.cursor = len - 1;
        }
    }

    /// Sorts by `key`; the same key again reverses the order.
    pub fn sort_by(&mut self, key: SortKey) {
        if self.sort == key {
            self.reverse = !self.reverse;
        } else {
            self.sort = key;
            self.reverse = false;
        }
        let name = self.current().map(|e| e.name.clone());
        self.resort();
        if let Some(n) = name {
            self.select_name(&n);
        }
    }

    /// Moves the cursor to the entry called `name`, if shown; true if so.
    pub fn select_name(&mut self, name: &str) -> bool {
        match self.view.iter().position(|&k| self.entries[k].name == name) {
            Some(i) => {
                self.cursor = self.parent_rows() + i;
                true
            }
            None => false,
        }
    }

    /// Entries not shown because they are hidden (dot files).
    pub fn hidden_count(&self) -> usize {
        self.hidden
    }

    /// Moves the cursor by `delta` rows (clamped).
    pub fn move_by(&mut self, delta: isize) {
        self.pending = None;
        let len = self.len();
        if len == 0 {
            return;
        }
        let target = (self.cursor as isize + delta).clamp(0, len as isize - 1);
        self.cursor = target as usize;
    }

    /// Moves the cursor to a row (clamped).
    pub fn move_to(&mut self, row: usize) {
        self.pending = None;
        if !self.is_empty() {
            self.cursor = row.min(self.len() - 1);
        }
    }

    /// Keeps the cursor inside a window of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        if height == 0 {
            return;
        }
        if self.cursor < self.offset {
            self.offset = self.cursor;
        } else if self.cursor >= self.offset + height {
            self.offset = self.cursor + 1 - height;
        }
        let max_offset = self.len().saturating_sub(height);
        self.offset = self.offset.min(max_offset);
    }

    /// The index into `entries` of a row; `None` for the parent row.
    fn index(&self, row: usize) -> Option<usize> {
        let i = row.checked_sub(self.parent_rows())?;
        self.view.get(i).copied()
    }

    /// Toggles the mark on a row (the parent row cannot be marked).
    pub fn toggle(&mut self, row: usize) {
        if let Some(k) = self.index(row) {
            self.marked.toggle(&self.entries[k]);
        }
    }

    /// Marks every row between `a` and `b` inclusive.
    pub fn mark_range(&mut self, a: usize, b: usize) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        for row in lo..=hi.min(self.len().saturating_sub(1)) {
            if let Some(k) = self.index(row) {
                self.marked.insert(&self.entries[k]);
            }
        }
    }

    /// Inverts the marks of every shown entry.
    pub fn invert_marks(&mut self) {
        for &i in &self.view {
            self.marked.toggle(&self.entries[i]);
        }
    }

    /// The entries shown (hidden files and the filter applied), in order.
    pub fn shown(&self) -> impl Iterator<Item = &Entry> {
        self.view.iter().map(|&i| &self.entries[i])
    }

    /// Marks every shown entry.
    pub fn mark_all(&mut self) {
        for &i in &self.view {
            self.marked.insert(&self.entries[i]);
        }
    }

    /// The entries an action applies to: the marked ones, or the one under
    /// the cursor when nothing is marked.
    pub fn selection(&self) -> Vec<Entry> {
        if self.marked.is_empty() {
            return self.current().cloned().into_iter().collect();
        }
        self.entries
            .iter()
            .filter(|e| self.marked.contains(&e.name))
            .cloned()
            .collect()
    }

    /// Count of the marked entries and the size of the marked files (a
    /// directory's own size says nothing about what is inside, nor a
    /// link's about what it points to). Kept as marks change: free.
    pub fn marked_summary(&self) -> (usize, u64) {
        (self.marked.len(), self.marked.bytes())
    }

    /// An entry by name.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_proto::msg::EntryKind;

    pub(crate) fn entry(name: &str, kind: EntryKind, size: u64, mtime: i64) -> Entry {
        Entry {
            name: name.into(),
            kind,
            size,
            mtime,
            mode: 0o644,
        }
    }

    fn pane() -> Pane {
        let mut p = Pane::new(Side::Local);
        p.begin("/x".into(), false);
        p.extend(
            vec![
                entry("b.txt", EntryKind::File, 10, 3),
                entry("A.txt", EntryKind::File, 30, 1),
                entry("dir", EntryKind::Dir, 4096, 2),
                entry(".hidden", EntryKind::File, 1, 9),
            ],
            true,
        );
        p
    }

    fn names(p: &Pane) -> Vec<String> {
        (0..p.len())
            .map(|r| p.row(r).map_or("..".into(), |e| e.name.clone()))
            .collect()
    }

    #[test]
    fn sorts_dirs_first_and_hides_dotfiles() {
        let mut p = pane();
        assert_eq!(names(&p), ["..", "dir", "A.txt", "b.txt"]);
        p.sort = SortKey::Size;
        p.resort();
        assert_eq!(names(&p), ["..", "dir", "A.txt", "b.txt"]);
        p.sort = SortKey::Time;
        p.show_hidden = true;
        p.resort();
        assert_eq!(names(&p), ["..", "dir", ".hidden", "b.txt", "A.txt"]);
    }

    #[test]
    fn filter_marks_and_selection() {
        let mut p = pane();
        p.filter = Some("TXT".into());
        p.resort();
        assert_eq!(names(&p), ["..", "A.txt", "b.txt"]);
        p.toggle(0); // the parent row is not markable
        assert!(p.marked.is_empty());
        p.mark_range(2, 1);
        assert_eq!(p.marked_summary(), (2, 40));
        p.invert_marks();
        assert!(p.marked.is_empty());
        p.mark_all();
        assert_eq!(p.selection().len(), 2);
        p.marked.clear();
        p.cursor = 1;
        assert_eq!(p.selection()[0].name, "A.txt");
    }

    #[test]
    fn a_hundred_thousand_entries_stream_in_batches() {
        let mut p = Pane::new(Side::Remote);
        p.begin("/big".into(), false);
        for b in 0..200 {
            let batch = (0..500)
                .map(|i| {
                    entry(
                        &format!("f{:06}", 199_999 - (b * 500 + i)),
                        EntryKind::File,
                        1,
                        1,
                    )
                })
                .collect();
            p.extend(batch, false);
            assert!(p.loading);
        }
        p.extend(vec![], true);
        assert_eq!(p.len(), 100_001);
        assert_eq!(p.row(1).unwrap().name, "f100000", "sorted once complete");
    }

    #[test]
    fn cursor_stays_on_its_entry_as_batches_arrive() {
        let mut p = Pane::new(Side::Remote);
        p.begin("/".into(), true);
        p.extend(vec![entry("m", EntryKind::File, 1, 1)], false);
        assert!(p.loading);
        p.extend(
            vec![
                entry("a", EntryKind::File, 1, 1),
                entry("z", EntryKind::File, 1, 1),
            ],
            true,
        );
        assert!(!p.loading);
        assert_eq!(p.current().unwrap().name, "m");
        p.move_by(10);
        assert_eq!(p.current().unwrap().name, "z");
        p.scroll_into_view(2);
        assert_eq!(p.offset, 1);
    }
}
