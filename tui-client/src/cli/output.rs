//! How batch results are printed: plain text for people, JSON for scripts.

use ferry_proto::msg::{Entry, EntryKind};
use serde_json::json;

use crate::display::{escape, is_unsafe};

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

/// One line of `ls`: the name, escaped (see [`crate::display`]).
pub fn short_line(e: &Entry) -> String {
    let name = escape(&e.name);
    match e.kind {
        EntryKind::Dir => format!("{name}/"),
        EntryKind::Symlink => format!("{name}@"),
        _ => name.into_owned(),
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

/// JSON text of one value for stdout. serde_json escapes only the C0
/// controls; this also writes DEL, the C1 controls and the bidirectional
/// overrides as `\uXXXX`, so a parser reads every name back exactly and a
/// terminal showing the JSON is driven by none of them.
pub fn json_line(v: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeJson);
    match serde::Serialize::serialize(v, &mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| v.to_string()),
        Err(_) => v.to_string(),
    }
}

/// serde_json's compact output with [`is_unsafe`] characters escaped.
struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// An entry as JSON: the name exact (print it with [`json_line`]).
pub fn entry_json(e: &Entry) -> serde_json::Value {
    let kind = match e.kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Other => "other",
    };
    json!({ "name": e.name, "kind": kind, "size": e.size, "mtime": e.mtime, "mode": format!("{:o}", e.mode) })
}

/// One line of `ferry quota`: `used 10 of 20 bytes (50.0%)`, or
/// `used 10 bytes (no quota)` without a limit.
pub fn usage_line(used: u64, limit: Option<u64>, unit: &str, unlimited: &str) -> String {
    match limit {
        Some(l) => format!(
            "used {used} of {l} {unit} ({:.1}%)",
            used as f64 * 100.0 / l.max(1) as f64
        ),
        None => format!("used {used} {unit} ({unlimited})"),
    }
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

    #[test]
    fn names_are_escaped_in_text_and_exact_in_json() {
        let e = Entry {
            name: "a\u{1b}[2J\nb\tc".into(),
            kind: EntryKind::File,
            size: 1,
            mtime: 0,
            mode: 0o644,
        };
        assert_eq!(short_line(&e), "a\\e[2J\\nb\\tc");
        assert!(!long_line(&e).chars().any(char::is_control));
        assert_eq!(entry_json(&e)["name"], "a\u{1b}[2J\nb\tc");
    }

    #[test]
    fn json_lines_escape_what_terminals_act_on_and_parse_back_exactly() {
        let name = "a\u{1b}\u{7f}\u{9b}b\u{202e}c\\\"é\n";
        let line = json_line(&json!({ "name": name }));
        assert_eq!(line, r#"{"name":"a\u001b\u007f\u009bb\u202ec\\\"é\n"}"#);
        assert!(!line.chars().any(is_unsafe), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["name"], name);
    }
}
