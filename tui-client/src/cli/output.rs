//! How batch results are printed: plain text for people, JSON for scripts.

use ferry_proto::msg::{Entry, EntryKind};
use serde_json::json;

/// `2024-05-01 13:37` (UTC) for a Unix time.
pub fn format_time(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "????-??-?? ??:??".into())
}

/// `drwxr-xr-x` style mode string.
pub fn format_mode(kind: EntryKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::File => '-',
        EntryKind::Other => '?',
    });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// One line of `ls`.
pub fn short_line(e: &Entry) -> String {
    match e.kind {
        EntryKind::Dir => format!("{}/", e.name),
        EntryKind::Symlink => format!("{}@", e.name),
        _ => e.name.clone(),
    }
}

/// One line of `ls -l`.
pub fn long_line(e: &Entry) -> String {
    format!(
        "{} {:>12} {} {}",
        format_mode(e.kind, e.mode),
        e.size,
        format_time(e.mtime),
        short_line(e)
    )
}

/// An entry as JSON.
pub fn entry_json(e: &Entry) -> serde_json::Value {
    let kind = match e.kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Other => "other",
    };
    json!({ "name": e.name, "kind": kind, "size": e.size, "mtime": e.mtime, "mode": format!("{:o}", e.mode) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_entries() {
        let e = Entry {
            name: "a b".into(),
            kind: EntryKind::Dir,
            size: 4096,
            mtime: 0,
            mode: 0o755,
        };
        assert_eq!(
            long_line(&e),
            "drwxr-xr-x         4096 1970-01-01 00:00 a b/"
        );
        assert_eq!(format_mode(EntryKind::File, 0o640), "-rw-r-----");
        assert_eq!(entry_json(&e)["kind"], "dir");
    }
}
