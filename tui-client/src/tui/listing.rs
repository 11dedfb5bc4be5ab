//! A directory listing as it reaches a pane, sorted off the UI thread, and
//! the sort order it is in.

use ferry_proto::msg::{Entry, EntryKind};

use super::pane::SortKey;

/// A pane's sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// What is compared.
    pub key: SortKey,
    /// Reversed (directories still first).
    pub reverse: bool,
}

impl Default for Order {
    fn default() -> Order {
        Order {
            key: SortKey::Name,
            reverse: false,
        }
    }
}

/// Sorts `entries` in `order`: directories first, then the rest. Costs
/// ~50-100 ms for 100,000 entries, so big listings are sorted where they
/// are read, not on the UI thread.
pub fn sort(entries: &mut [Entry], order: Order) {
    let dir_last = |e: &Entry| e.kind != EntryKind::Dir;
    match order.key {
        // Lowercased once per entry, not once per comparison.
        SortKey::Name => entries.sort_by_cached_key(|e| (dir_last(e), e.name.to_lowercase())),
        SortKey::Size => entries.sort_by(|a, b| {
            dir_last(a)
                .cmp(&dir_last(b))
                .then(b.size.cmp(&a.size))
                .then_with(|| a.name.cmp(&b.name))
        }),
        SortKey::Time => entries.sort_by(|a, b| {
            dir_last(a)
                .cmp(&dir_last(b))
                .then(b.mtime.cmp(&a.mtime))
                .then_with(|| a.name.cmp(&b.name))
        }),
    }
    if order.reverse {
        // Reverse within directories and within files.
        let dirs = entries
            .iter()
            .take_while(|e| e.kind == EntryKind::Dir)
            .count();
        entries[..dirs].reverse();
        entries[dirs..].reverse();
    }
}

/// Every entry of a directory, whole.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The entries.
    pub entries: Vec<Entry>,
    /// The order they are in; `None`: as read (the pane sorts them).
    pub order: Option<Order>,
}

impl Listing {
    /// `entries` sorted in `order` (on the calling thread).
    pub fn sorted(mut entries: Vec<Entry>, order: Order) -> Listing {
        sort(&mut entries, order);
        Listing {
            entries,
            order: Some(order),
        }
    }
}

impl From<Vec<Entry>> for Listing {
    /// Entries as read, not sorted yet.
    fn from(entries: Vec<Entry>) -> Listing {
        Listing {
            entries,
            order: None,
        }
    }
}

impl FromIterator<Entry> for Listing {
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Listing {
        Listing::from(iter.into_iter().collect::<Vec<_>>())
    }
}

/// Entries replaced by a new listing are freed on a thread of their own
/// when there are many.
pub fn free_elsewhere(entries: Vec<Entry>) {
    if entries.len() >= super::free::MANY {
        super::free::free_elsewhere(entries);
    }
}
