//! The key help (F1), one table for the help dialog and the README.

/// (keys, what they do), in the order shown.
pub const ROWS: [(&str, &str); 15] = [
    ("↑↓ j k PgUp PgDn Home End", "move"),
    ("Enter / Backspace", "open directory / go up"),
    ("Tab", "switch pane (and queue)"),
    ("Space Insert", "mark and move down"),
    ("Shift+↑↓", "extend the marked range"),
    ("* + -", "invert / mark all / unmark all"),
    (
        "mouse",
        "click, drag marks, Ctrl+click, double-click, wheel",
    ),
    ("F2 s / F3 . / F4 /", "sort / hidden files / filter"),
    ("F5", "copy to the other pane (upload or download)"),
    ("F6 / F7 / F8 Del", "rename-move / mkdir / delete"),
    ("F9, then c r x", "queue: cancel, retry/resume, clear done"),
    ("Ctrl-R", "refresh (reconnect when offline)"),
    ("Ctrl-O", "connect form"),
    (
        "text fields",
        "← → Home End Del Ctrl-U Ctrl-W edit anywhere",
    ),
    ("F10 q", "quit"),
];
