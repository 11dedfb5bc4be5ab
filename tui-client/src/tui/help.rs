//! The key help (F1), one table for the help dialog and the README, and
//! the dialog's page of it (scrolled when the screen is too short).

use crossterm::event::KeyCode;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use super::draw_dialog::wrap;

/// (keys, what they do), in the order shown.
pub const ROWS: &[(&str, &str)] = &[
    ("↑↓ j k PgUp PgDn Home End", "move"),
    ("Enter / Backspace", "open directory / go up"),
    ("Tab", "switch pane (and queue)"),
    ("Space Insert", "mark and move down"),
    ("Shift+↑↓", "extend the marked range"),
    ("* + -", "invert / mark all / unmark all"),
    (
        "mouse",
        "click, drag marks, Ctrl+click, double-click (open/copy), header sorts",
    ),
    ("s / . / /", "sort / hidden files / filter"),
    ("L", "copies follow links inside trees, or skip them"),
    ("F3", "view: / ? search, n N again, w wrap, h hex"),
    (
        "F4",
        "edit ($VISUAL/$EDITOR; a remote file via a private copy)",
    ),
    ("F5", "copy to the other pane (upload or download)"),
    ("F6", "rename, or move the marked entries"),
    ("Shift+F5 / Shift+F6", "copy / move within the same side"),
    ("F7 / F8 Del", "mkdir / delete"),
    ("p", "permissions (chmod) of the marked entries"),
    (
        "Ctrl-F / Alt+F7",
        "find below the pane's directory (remote: on the server)",
    ),
    (
        "= # M",
        "compare the panes by size and time / by hash; mark differences",
    ),
    ("S", "sync the panes' directories: options, preview, run"),
    (
        "B / b Ctrl-\\",
        "bookmark this place / the bookmarks (go, rename, delete)",
    ),
    (
        "Ctrl-Y",
        "synchronized browsing: enter and leave directories on both sides",
    ),
    (
        "F9, then c r x Enter",
        "queue: cancel, retry, clear ended, details",
    ),
    (
        "in the queue: p K J [ ] l",
        "pause, move, jobs at once, speed limit",
    ),
    ("Ctrl-R", "refresh (reconnect when offline)"),
    ("Ctrl-O", "connect form"),
    (
        "text fields",
        "← → Home End Del Ctrl-U Ctrl-W edit anywhere",
    ),
    ("F10 q", "quit"),
];

/// How wide the help box is at most.
pub const WIDTH: u16 = 80;

/// The keys row under the help: how to scroll when it does not fit.
fn keys(scrolls: bool) -> Line<'static> {
    let key = |k: &str| Span::styled(k.to_string(), Style::new().fg(Color::Yellow).bold());
    let mut spans = Vec::new();
    if scrolls {
        spans.extend([key("↑↓ PgUp PgDn Home End"), Span::raw(" scroll  ")]);
        spans.extend([key("any other key"), Span::raw(" closes")]);
    } else {
        spans.extend([key("any key"), Span::raw(" closes")]);
    }
    Line::from(spans)
}

/// What the help shows on `screen` from wrapped row `top`: its rows (at
/// most what fits), the keys row, the first row shown (`top` kept within
/// the rows) and how many rows it has in all.
pub fn page(screen: Rect, top: usize) -> (Vec<Line<'static>>, Line<'static>, usize, usize) {
    let inner = WIDTH.min(screen.width).saturating_sub(2).max(1) as usize;
    let key = |k: &str| Span::styled(format!("{k:<28}"), Style::new().fg(Color::Yellow).bold());
    let rows: Vec<Line<'static>> = ROWS
        .iter()
        .map(|(k, v)| Line::from(vec![key(k), Span::raw(*v)]))
        .flat_map(|l| wrap(&l, inner))
        .collect();
    let total = rows.len();
    let fits = |keys: &Line| {
        let key_rows = wrap(keys, inner).len();
        (screen.height as usize).saturating_sub(2 + key_rows)
    };
    let room = fits(&keys(false));
    let (room, keys) = if total <= room {
        (room, keys(false))
    } else {
        let k = keys(true);
        (fits(&k).max(1), k)
    };
    let top = top.min(total.saturating_sub(room));
    let shown = rows.into_iter().skip(top).take(room).collect();
    (shown, keys, top, total)
}

/// The help's first row after `key` (a scrolling key, when the help does
/// not fit), or None for any other key, which closes it.
pub fn scroll(screen: Rect, top: usize, key: KeyCode) -> Option<usize> {
    let (shown, _, top, total) = page(screen, top);
    if shown.len() >= total {
        // All of it fits: "any key closes", as the keys row says.
        return None;
    }
    let step = shown.len().max(1);
    let top = match key {
        KeyCode::Up | KeyCode::Char('k') => top.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => top + 1,
        KeyCode::PageUp => top.saturating_sub(step),
        KeyCode::PageDown | KeyCode::Char(' ') => top + step,
        KeyCode::Home => 0,
        KeyCode::End => total,
        _ => return None,
    };
    Some(page(screen, top).2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a short screen every row can be reached, and the last one is
    /// shown at the end; on a tall one nothing scrolls.
    #[test]
    fn every_row_can_be_scrolled_to_on_a_short_screen() {
        let short = Rect::new(0, 0, 100, 20);
        let (shown, _, _, total) = page(short, 0);
        assert!(shown.len() < total, "the help fits in 20 rows now");
        let mut top = 0;
        let mut seen = shown.len();
        while let Some(next) = scroll(short, top, KeyCode::PageDown) {
            if next == top {
                break;
            }
            top = next;
            seen = top + page(short, top).0.len();
        }
        assert_eq!(seen, total, "the last row is reachable");
        let last = page(short, top).0;
        let text: String = last[last.len() - 1]
            .spans
            .iter()
            .map(|s| s.content.as_ref())
            .collect();
        assert!(text.contains("quit"), "{text}");
        assert_eq!(scroll(short, top, KeyCode::Home), Some(0));
        assert_eq!(scroll(short, 0, KeyCode::Up), Some(0));
        assert_eq!(scroll(short, 0, KeyCode::Esc), None);
        let tall = Rect::new(0, 0, 100, 200);
        assert_eq!(
            scroll(tall, 0, KeyCode::Down),
            None,
            "it all fits: Down closes"
        );
    }
}
