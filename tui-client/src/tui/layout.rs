//! Where everything goes on screen, computed from the terminal size alone,
//! so drawing and mouse hit-testing agree.

use crossterm::event::KeyCode;
use ratatui::layout::{Constraint, Layout, Rect};

/// The screen's regions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    /// Left pane block (border included).
    pub local: Rect,
    /// Right pane block.
    pub remote: Rect,
    /// Rows of entries inside the left pane.
    pub local_rows: Rect,
    /// Rows of entries inside the right pane.
    pub remote_rows: Rect,
    /// Transfer queue block.
    pub queue: Rect,
    /// Rows of jobs inside the queue block.
    pub queue_rows: Rect,
    /// Message line.
    pub message: Rect,
    /// F-key bar.
    pub keys: Rect,
}

/// Height of the queue block for `jobs` jobs.
fn queue_height(jobs: usize, total: u16) -> u16 {
    let want = if jobs == 0 {
        3
    } else {
        (jobs as u16).min(6) + 3
    };
    want.min(total / 3)
}

/// Lays out a screen of `area` with `jobs` jobs in the queue.
pub fn areas(area: Rect, jobs: usize) -> Areas {
    let [main, queue, message, keys] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(queue_height(jobs, area.height)),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let [local, remote] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(main);
    // Inside a pane: border, a header row, entries, a footer row, border.
    let rows = |r: Rect| Rect {
        x: r.x + 1,
        y: r.y + 2,
        width: r.width.saturating_sub(2),
        height: r.height.saturating_sub(4),
    };
    // Inside the queue: border, jobs, the overall gauge row, border.
    let queue_rows = Rect {
        x: queue.x + 1,
        y: queue.y + 1,
        width: queue.width.saturating_sub(2),
        height: queue.height.saturating_sub(3),
    };
    Areas {
        local,
        remote,
        local_rows: rows(local),
        remote_rows: rows(remote),
        queue,
        queue_rows,
        message,
        keys,
    }
}

/// The key bar: mc's F-keys, then the keys for sorting, hidden files, the
/// filter and following links (which leave F2-F4 to what mc users expect).
/// Each entry is the key as shown, its label, and the key a click on it
/// presses.
pub const KEYBAR: [(&str, &str, KeyCode); 13] = [
    ("1", "Help", KeyCode::F(1)),
    ("3", "View", KeyCode::F(3)),
    ("4", "Edit", KeyCode::F(4)),
    ("5", "Copy", KeyCode::F(5)),
    ("6", "RenMov", KeyCode::F(6)),
    ("7", "Mkdir", KeyCode::F(7)),
    ("8", "Delete", KeyCode::F(8)),
    ("9", "Queue", KeyCode::F(9)),
    ("10", "Quit", KeyCode::F(10)),
    ("s", "Sort", KeyCode::Char('s')),
    (".", "Hidden", KeyCode::Char('.')),
    ("/", "Filter", KeyCode::Char('/')),
    ("L", "Links", KeyCode::Char('L')),
];

/// Each button's first column and width on a bar of `width` columns: as
/// wide as its key and label and a space when they all fit, else equal
/// shares (labels cut).
pub fn fkey_cells(width: u16) -> Vec<(u16, u16)> {
    let natural: Vec<u16> = KEYBAR
        .iter()
        .map(|(k, label, _)| (k.chars().count() + label.chars().count() + 1) as u16)
        .collect();
    let widths = if natural.iter().sum::<u16>() <= width {
        natural
    } else {
        vec![(width / KEYBAR.len() as u16).max(1); KEYBAR.len()]
    };
    let mut x = 0;
    widths
        .into_iter()
        .map(|w| {
            let cell = (x, w);
            x += w;
            cell
        })
        .collect()
}

/// Which key a click at column `x` of the bar presses.
pub fn fkey_at(bar: Rect, x: u16) -> Option<KeyCode> {
    let at = x.checked_sub(bar.x)?;
    let i = fkey_cells(bar.width)
        .iter()
        .position(|(start, w)| at >= *start && at < start + w)?;
    KEYBAR.get(i).map(|(_, _, k)| *k)
}

/// Widths of a pane's name, size and time columns for `width` columns
/// inside its border (narrow panes drop time, then size).
pub fn columns(width: u16) -> [usize; 3] {
    let w = width as usize;
    let time_w = if w >= 40 { 17 } else { 0 };
    let size_w = if w >= 30 { 11 } else { 0 };
    [w.saturating_sub(time_w + size_w), size_w, time_w]
}

/// The header row of a pane block.
pub fn header(pane: Rect) -> Rect {
    Rect {
        x: pane.x + 1,
        y: pane.y + 1,
        width: pane.width.saturating_sub(2),
        height: 1,
    }
}

/// True if `(x, y)` is inside `r`.
pub fn contains(r: Rect, x: u16, y: u16) -> bool {
    x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height
}
