//! The key help (F1), one table for the help dialog and the README.

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
