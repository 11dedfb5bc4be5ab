//! Log fields that carry what clients sent (names, paths, errors), quoted
//! and escaped so they can neither end a line nor forge `key=value` pairs,
//! and a log writer that escapes any control character left over.

use std::fmt;
use std::io::{self, Write};

/// A value shown in the log quoted, with quotes, backslashes and control
/// characters escaped as Rust's `escape_debug` does: `"a\nb\u{1b}"`.
pub struct Quoted(String);

/// Characters of a value shown at most; a longer one (a client may send
/// a user name of a megabyte) is cut, with its length said.
const SHOWN: usize = 512;

/// An error and its causes on one line, `a: b: c`, leaving out a cause
/// whose text its error already shows: many errors (the object store's,
/// for one) repeat their source in their own message, and `{:#}` then
/// printed the same reason five times over.
pub fn join_causes(causes: impl IntoIterator<Item = String>) -> String {
    let mut line = String::new();
    for cause in causes {
        if cause.is_empty() || line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}

/// Quotes a value for the log (see [`Quoted`]).
pub fn q(value: impl fmt::Display) -> Quoted {
    let mut text = value.to_string();
    if let Some((cut, _)) = text.char_indices().nth(SHOWN) {
        let len = text.len();
        text.truncate(cut);
        text.push_str(&format!("... ({len} bytes)"));
    }
    Quoted(text)
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Escapes control characters in one formatted log line (the line's own
/// final newline aside), so nothing that slipped past [`q`] can start a
/// line of its own or drive a terminal.
pub fn escape_line(line: &[u8]) -> Vec<u8> {
    let (body, end) = match line.strip_suffix(b"\n") {
        Some(body) => (body, &b"\n"[..]),
        None => (line, &b""[..]),
    };
    let mut out = Vec::with_capacity(line.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b'\t'),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\x{b:02x}");
            }
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

/// A log writer (for `tracing_subscriber::fmt().with_writer`) that writes
/// each formatted line to stderr through [`escape_line`]. The formatter
/// hands over one whole event per `write_all`.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapingStderr;

impl Write for EscapingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().lock().write_all(&escape_line(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapingStderr {
    type Writer = EscapingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_shown_are_not_repeated() {
        let causes = [
            "cannot open the object store",
            "unavailable: list failed - HTTP error: error sending request",
            "list failed - HTTP error: error sending request",
            "HTTP error: error sending request",
            "tcp connect error: Connection refused (os error 111)",
        ]
        .map(String::from);
        assert_eq!(
            join_causes(causes),
            "cannot open the object store: unavailable: list failed - HTTP error: \
             error sending request: tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(join_causes(["a".into(), "b".into()]), "a: b");
    }

    #[test]
    fn quoted_fields_cannot_forge_lines_or_pairs() {
        let evil = "x\naudit: login ok user=root \u{1b}[2J \"y\" \\";
        let shown = q(evil).to_string();
        assert_eq!(
            shown,
            r#""x\naudit: login ok user=root \u{1b}[2J \"y\" \\""#
        );
        assert!(!shown.contains('\n') && !shown.contains('\u{1b}'));
        let long = q("é".repeat(100_000)).to_string();
        assert!(
            long.len() < 1100 && long.ends_with("... (200000 bytes)\""),
            "{long}"
        );
    }

    #[test]
    fn lines_keep_their_end_and_lose_control_characters() {
        assert_eq!(escape_line(b"a\nb\x1b[2J\tc\n"), b"a\\nb\\x1b[2J\tc\n");
        assert_eq!(escape_line(b"plain"), b"plain");
    }

    /// Fields that carry a path a client sent are quoted in every log
    /// call of the server: `f = %q(..)` or `f = ?..`, never `f = %x`,
    /// `f = x` or the bare shorthand `f`.
    #[test]
    fn every_client_field_in_the_server_is_quoted() {
        const FIELDS: [&str; 4] = ["path", "dir", "from", "to"];
        let mut files = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut bad = Vec::new();
        while let Some(at) = files.pop() {
            if at.is_dir() {
                files.extend(std::fs::read_dir(&at).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&at).unwrap();
            for (start, _) in text.match_indices("tracing::") {
                let call = &text[start..];
                let call = &call[..call.find(';').unwrap_or(call.len())];
                for f in FIELDS {
                    for (j, _) in call.match_indices(f) {
                        let before = call[..j].chars().next_back().unwrap_or(' ');
                        let rest = &call[j + f.len()..];
                        if before.is_alphanumeric() || "_\"'.".contains(before) {
                            continue;
                        }
                        let quoted = ["%q(", "%crate::logfmt::q(", "?"]
                            .iter()
                            .any(|ok| rest.strip_prefix(" = ").is_some_and(|v| v.starts_with(ok)));
                        let prev = call[..j].trim_end();
                        let field = rest.starts_with(" = ")
                            || ((rest.starts_with(',') || rest.starts_with(')'))
                                && (prev.ends_with(',') || prev.ends_with("!(")));
                        if field && !quoted {
                            bad.push(format!(
                                "{}: {}",
                                at.display(),
                                &call[..call.len().min(120)]
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            bad.is_empty(),
            "unquoted client fields:\n{}",
            bad.join("\n")
        );
    }
}
