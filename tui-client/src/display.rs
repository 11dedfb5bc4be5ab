//! Escaping text a server supplied (names, paths, error details) before it
//! reaches a terminal, so a hostile server cannot drive the terminal.
//!
//! A terminal acts on control characters: ESC starts sequences that move
//! the cursor, clear the screen, set the window title or (on some
//! terminals) write files; a newline can forge a whole output line; the
//! C1 controls U+0080-U+009F act as ESC sequences on some terminals; and
//! the Unicode bidirectional overrides and isolates can make `evil.exe`
//! read as `exe.live` or hide part of a name. Such characters are shown
//! escaped, as `ls -b` does: `\n`, `\t`, `\e`, `\x01`, `\x7f`, `\u{85}`,
//! `\u{202e}`. `--json` output needs none of this: JSON escapes control
//! characters itself, and names there stay exact.

use std::borrow::Cow;
use std::fmt::Write;

/// A name, path or message from the server, made safe to print: every
/// control character (C0, DEL, C1), bidirectional override, isolate or
/// mark and line or paragraph separator is written as an escape, and a
/// backslash as `\\`, so the output is unambiguous (`a\nb` the name with
/// a backslash prints as `a\\nb`, the one with a newline as `a\nb`).
/// Text with nothing to escape is returned as it is, without a copy.
///
/// Use it for every name shown to a person (listings, transfer lines,
/// progress bars, dialogs). Use [`sanitize`] for text that may already
/// hold escapes made by this function.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, true)
}

/// Like [`escape`] but leaves backslashes as they are. The result holds
/// no character a terminal acts on, and applying it again changes
/// nothing, so it suits messages that embed text [`escape`] already
/// escaped (an error that quotes a name) alongside text that may not be.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    escape_with(s, false)
}

/// True for a character that must not reach a terminal as it is.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        // Bidirectional marks, embeddings, overrides and isolates.
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        // Line and paragraph separators.
        | '\u{2028}' | '\u{2029}')
}

fn escape_with(s: &str, backslash: bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) || (backslash && c == '\\');
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs(c) {
            out.push(c);
            continue;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        for s in ["", "report final.txt", "été/日本語.txt", "a'b\"c $x"] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(escape(s), s);
        }
    }

    #[test]
    fn c0_controls_and_del() {
        assert_eq!(escape("a\nb\tc\re"), "a\\nb\\tc\\re");
        assert_eq!(
            escape("\u{1b}[2J\u{1b}]0;pwned\u{7}"),
            "\\e[2J\\e]0;pwned\\a"
        );
        assert_eq!(
            escape("\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}"),
            "\\x00\\x01\\b\\v\\f\\x1f"
        );
        assert_eq!(escape("x\u{7f}"), "x\\x7f");
    }

    #[test]
    fn c1_controls() {
        assert_eq!(
            escape("\u{80}\u{85}\u{9b}31m\u{9f}"),
            "\\u{80}\\u{85}\\u{9b}31m\\u{9f}"
        );
        // Printable Latin-1 right after the C1 range is left alone.
        assert_eq!(escape("\u{a0}é"), "\u{a0}é");
    }

    #[test]
    fn bidi_and_separators() {
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}', '\u{2028}', '\u{2029}',
        ] {
            let e = escape(&c.to_string()).into_owned();
            assert_eq!(e, format!("\\u{{{:x}}}", c as u32));
        }
        // Zero-width joiners and other format characters that do not
        // reorder text stay (emoji sequences need them).
        assert_eq!(escape("a\u{200d}b"), "a\u{200d}b");
    }

    #[test]
    fn backslash_makes_it_unambiguous() {
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_ne!(escape("a\\nb"), escape("a\nb"));
        assert_eq!(sanitize("a\\nb"), "a\\nb");
    }

    #[test]
    fn sanitize_is_idempotent_and_safe() {
        let nasty = "x\u{1b}[31m\\e\n\u{9b}\u{202e}y";
        let once = sanitize(nasty).into_owned();
        assert_eq!(sanitize(&once), once);
        let escaped = escape(nasty).into_owned();
        assert_eq!(sanitize(&escaped), escaped);
        for s in [&once, &escaped] {
            assert!(!s.chars().any(is_unsafe), "{s:?}");
        }
    }

    #[test]
    fn every_unsafe_char_is_escaped_to_ascii() {
        for c in (0u32..0x3000)
            .filter_map(char::from_u32)
            .filter(|&c| is_unsafe(c))
        {
            let e = escape(&c.to_string()).into_owned();
            assert!(
                e.starts_with('\\') && e.is_ascii() && e.len() > 1,
                "{c:?} -> {e:?}"
            );
        }
    }
}
