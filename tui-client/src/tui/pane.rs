//! One file pane: a directory's entries, the cursor, marks, sorting,
//! hidden files and the filter. Pure state, no I/O: the runtime fills it.

use std::collections::HashSet;

use ferry_proto::msg::{Entry, EntryKind};

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
    /// Cursor row (0 is the parent row when there is one).
    pub cursor: usize,
    /// First row shown.
    pub offset: usize,
    /// Marked names.
    pub marked: HashSet<String>,
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
            cursor: 0,
            offset: 0,
            marked: HashSet::new(),
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
        self.entries.clear();
        self.view.clear();
        self.loading = true;
        self.error = None;
        self.anchor = None;
    }

    /// Adds a batch of entries (a huge directory arrives in several).
    /// While a listing streams in, batches are only appended (cheap, so a
    /// directory of 100,000 entries never stalls the UI); the one sort
    /// happens when the last batch arrives.
    pub fn extend(&mut self, batch: Vec<Entry>, done: bool) {
        let cursor_name = self
            .pending
            .clone()
            .or_else(|| self.current().map(|e| e.name.clone()));
        self.entries.extend(batch);
        if done {
            self.loading = false;
            self.resort();
        } else {
            self.refilter();
        }
        if let Some(name) = cursor_name {
            self.select_name(&name);
        }
        // Until the listing ends, a pending name may still come.
        if done {
            self.pending = None;
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

    /// Re-sorts and re-filters after a change of order, filter or entries.
    pub fn resort(&mut self) {
        let dir_last = |e: &Entry| e.kind != EntryKind::Dir;
        match self.sort {
            // Lowercased once per entry, not once per comparison.
            SortKey::Name => self
                .entries
                .sort_by_cached_key(|e| (dir_last(e), e.name.to_lowercase())),
            SortKey::Size => self.entries.sort_by(|a, b| {
                dir_last(a)
                    .cmp(&dir_last(b))
                    .then(b.size.cmp(&a.size))
                    .then_with(|| a.name.cmp(&b.name))
            }),
            SortKey::Time => self.entries.sort_by(|a, b| {
                dir_last(a)
                    .cmp(&dir_last(b))
                    .then(b.mtime.cmp(&a.mtime))
                    .then_with(|| a.name.cmp(&b.name))
            }),
        }
        if self.reverse {
            // Reverse within directories and within files.
            let dirs = self
                .entries
                .iter()
                .take_while(|e| e.kind == EntryKind::Dir)
                .count();
            self.entries[..dirs].reverse();
            self.entries[dirs..].reverse();
        }
        self.refilter();
    }

    /// Recomputes which entries show (hidden files, filter) without sorting.
    fn refilter(&mut self) {
        let needle = self.filter.as_ref().map(|f| f.to_lowercase());
        self.view = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| self.show_hidden || !e.name.starts_with('.'))
            .filter(|(_, e)| {
                needle
                    .as_ref()
                    .is_none_or(|n| e.name.to_lowercase().contains(n.as_str()))
            })
            .map(|(i, _)| i)
            .collect();
        self.clamp();
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
        match (0..self.len()).find(|&r| self.row(r).is_some_and(|e| e.name == name)) {
            Some(row) => {
                self.cursor = row;
                true
            }
            None => false,
        }
    }

    /// Entries not shown because they are hidden (dot files).
    pub fn hidden_count(&self) -> usize {
        if self.show_hidden {
            0
        } else {
            self.entries
                .iter()
                .filter(|e| e.name.starts_with('.'))
                .count()
        }
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

    /// Toggles the mark on a row (the parent row cannot be marked).
    pub fn toggle(&mut self, row: usize) {
        if let Some(name) = self.row(row).map(|e| e.name.clone()) {
            if !self.marked.remove(&name) {
                self.marked.insert(name);
            }
        }
    }

    /// Marks every row between `a` and `b` inclusive.
    pub fn mark_range(&mut self, a: usize, b: usize) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        for row in lo..=hi.min(self.len().saturating_sub(1)) {
            if let Some(name) = self.row(row).map(|e| e.name.clone()) {
                self.marked.insert(name);
            }
        }
    }

    /// Inverts the marks of every shown entry.
    pub fn invert_marks(&mut self) {
        for &i in &self.view {
            let name = &self.entries[i].name;
            if !self.marked.remove(name) {
                self.marked.insert(name.clone());
            }
        }
    }

    /// Marks every shown entry.
    pub fn mark_all(&mut self) {
        for &i in &self.view {
            self.marked.insert(self.entries[i].name.clone());
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
    /// link's about what it points to).
    pub fn marked_summary(&self) -> (usize, u64) {
        let size = self
            .entries
            .iter()
            .filter(|e| self.marked.contains(&e.name) && e.kind == EntryKind::File)
            .map(|e| e.size)
            .sum();
        (self.marked.len(), size)
    }

    /// An entry by name.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
