//! Where a click lands, from the layout alone: `App` applies what was hit
//! (press a key, select a job, sort, move to a row) without doing
//! geometry itself.

use crossterm::event::KeyCode;

use super::layout::{self, Areas};
use super::pane::{Side, SortKey};

/// What is under the mouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// A button of the key bar: press its key.
    Key(KeyCode),
    /// A row of the queue: this job (it may be past the last one).
    Job(usize),
    /// The message line.
    Message,
    /// A pane's column header: sort by this key.
    Header(Side, SortKey),
    /// A row of a pane (0 is the first row shown at offset 0; it may be
    /// past the last entry).
    Row(Side, usize),
    /// Elsewhere in a pane (its border, its footer).
    Pane(Side),
    /// Nothing that answers a click.
    Nothing,
}

/// The pane whose block holds `(x, y)`.
pub fn pane_at(a: &Areas, x: u16, y: u16) -> Option<Side> {
    if layout::contains(a.local, x, y) {
        Some(Side::Local)
    } else if layout::contains(a.remote, x, y) {
        Some(Side::Remote)
    } else {
        None
    }
}

/// What a click at `(x, y)` hits, with the panes scrolled by `offsets`
/// (local, remote) and the queue by `queue_offset`.
pub fn hit(a: &Areas, offsets: (usize, usize), queue_offset: usize, x: u16, y: u16) -> Hit {
    if layout::contains(a.keys, x, y) {
        return layout::fkey_at(a.keys, x).map_or(Hit::Nothing, Hit::Key);
    }
    if layout::contains(a.queue_rows, x, y) {
        return Hit::Job((y - a.queue_rows.y) as usize + queue_offset);
    }
    if layout::contains(a.message, x, y) {
        return Hit::Message;
    }
    let Some(side) = pane_at(a, x, y) else {
        return Hit::Nothing;
    };
    let (block, rows, offset) = match side {
        Side::Local => (a.local, a.local_rows, offsets.0),
        Side::Remote => (a.remote, a.remote_rows, offsets.1),
    };
    let header = layout::header(block);
    if layout::contains(header, x, y) {
        let [name_w, size_w, _] = layout::columns(header.width);
        let at = (x - header.x) as usize;
        let key = if at < name_w {
            SortKey::Name
        } else if at < name_w + size_w {
            SortKey::Size
        } else {
            SortKey::Time
        };
        return Hit::Header(side, key);
    }
    if layout::contains(rows, x, y) {
        return Hit::Row(side, (y - rows.y) as usize + offset);
    }
    Hit::Pane(side)
}
