//! A pane's marked names, with the size of the marked files kept as they
//! change, so drawing a frame never walks 100,000 marks.

use std::collections::HashSet;

use ferry_proto::msg::{Entry, EntryKind};

/// Marked entries, by name.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    names: HashSet<String>,
    /// The size of the marked files (a directory's own size says nothing
    /// about what is inside, nor a link's about what it points to).
    bytes: u64,
}

fn file_bytes(e: &Entry) -> u64 {
    if e.kind == EntryKind::File {
        e.size
    } else {
        0
    }
}

impl Marks {
    /// True if `name` is marked.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// How many are marked.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when nothing is marked.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The marked names, in no order.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.names.iter()
    }

    /// The size of the marked files.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Unmarks everything (many names are freed off the UI thread).
    pub fn clear(&mut self) {
        if self.names.len() >= super::free::MANY {
            super::free::free_elsewhere(std::mem::take(&mut self.names));
        } else {
            self.names.clear();
        }
        self.bytes = 0;
    }

    /// Marks `e`; false if it already was.
    pub fn insert(&mut self, e: &Entry) -> bool {
        let new = self.names.insert(e.name.clone());
        if new {
            self.bytes += file_bytes(e);
        }
        new
    }

    /// Unmarks `e`; false if it was not marked.
    pub fn remove(&mut self, e: &Entry) -> bool {
        let was = self.names.remove(&e.name);
        if was {
            self.bytes = self.bytes.saturating_sub(file_bytes(e));
        }
        was
    }

    /// Flips the mark of `e`.
    pub fn toggle(&mut self, e: &Entry) {
        if !self.remove(e) {
            self.insert(e);
        }
    }

    /// After a new listing: marks on names that are gone go, and the sizes
    /// are those listed. Free when nothing is marked; one look-up per entry
    /// when all marked names are still there.
    pub fn keep_listed(&mut self, entries: &[Entry]) {
        if self.names.is_empty() {
            return;
        }
        let mut found = 0;
        let mut bytes = 0;
        for e in entries {
            if self.names.contains(&e.name) {
                found += 1;
                bytes += file_bytes(e);
            }
        }
        if found < self.names.len() {
            let listed: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            self.names.retain(|n| listed.contains(n.as_str()));
        }
        self.bytes = bytes;
    }
}
