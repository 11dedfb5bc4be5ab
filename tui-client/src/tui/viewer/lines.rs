//! How bytes become rows of text: a line ends at `\n` (`\r\n` counts as
//! one), a line longer than [`MAX_LINE`] bytes is cut into rows of that
//! many, and with wrap on a row also ends at the screen's width. A row is
//! made of glyphs: characters, tabs (to the next multiple of 8 columns),
//! and what a terminal must never see raw (control characters, bidi
//! overrides, invalid UTF-8), shown escaped as `crate::display` does.
//!
//! Rows are found from any row start by looking forward only, so the file
//! is never indexed whole. Going back looks for the previous `\n` within
//! [`MAX_BACK`] bytes; in a line longer than that, rows going up are
//! counted from multiples of [`MAX_LINE`] in the file (which is where they
//! start going down too, without wrap, when the line starts at one, as a
//! file of one line does; with wrap, rows going up may be cut at other
//! places than going down).

use unicode_width::UnicodeWidthChar;

use super::cache::{BlockCache, Missing};

/// A line longer than this many bytes is shown as rows of this many.
pub const MAX_LINE: usize = 4096;
/// How far back a line's start is looked for.
pub const MAX_BACK: u64 = 256 * 1024;
/// Bytes per row in hex mode.
pub const HEX_ROW: u64 = 16;
/// Tab stops every this many columns.
const TAB: usize = 8;

/// One unit of display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Glyph {
    /// A character (shown escaped when unsafe).
    Char(char),
    /// A tab.
    Tab,
    /// The end of a line: `\n` or `\r\n`.
    Newline,
    /// A byte that is not part of valid UTF-8.
    Bad(u8),
}

/// The glyph at the start of `buf` and its length in bytes (None when
/// `buf` is empty). A sequence cut by the end of `buf` is `Bad`.
pub fn glyph(buf: &[u8]) -> Option<(Glyph, usize)> {
    let b = *buf.first()?;
    let n = match b {
        b'\n' => return Some((Glyph::Newline, 1)),
        b'\r' if buf.get(1) == Some(&b'\n') => return Some((Glyph::Newline, 2)),
        b'\t' => return Some((Glyph::Tab, 1)),
        0..=0x7f => return Some((Glyph::Char(b as char), 1)),
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Some((Glyph::Bad(b), 1)),
    };
    match buf.get(..n).map(std::str::from_utf8) {
        Some(Ok(s)) => s.chars().next().map(|c| (Glyph::Char(c), n)),
        _ => Some((Glyph::Bad(b), 1)),
    }
}

/// Appends what `g` shows at column `col` to `out`; returns its width.
pub fn show(g: Glyph, col: usize, out: &mut String) -> usize {
    match g {
        Glyph::Newline => 0,
        Glyph::Tab => {
            let n = TAB - col % TAB;
            out.extend(std::iter::repeat_n(' ', n));
            n
        }
        Glyph::Bad(b) => {
            out.push_str(&format!("\\x{b:02x}"));
            4
        }
        Glyph::Char(c) if crate::display::is_unsafe(c) => {
            let mut buf = [0; 4];
            let e = crate::display::sanitize(c.encode_utf8(&mut buf));
            out.push_str(&e);
            e.chars().count()
        }
        Glyph::Char(c) => {
            out.push(c);
            c.width().unwrap_or(0)
        }
    }
}

/// The width `g` takes at column `col`.
pub fn width(g: Glyph, col: usize) -> usize {
    match g {
        Glyph::Newline => 0,
        Glyph::Tab => TAB - col % TAB,
        Glyph::Bad(_) => 4,
        Glyph::Char(c) if crate::display::is_unsafe(c) => escape_width(c),
        Glyph::Char(c) => c.width().unwrap_or(0),
    }
}

/// Columns `display::sanitize` writes for an unsafe character (`\e`,
/// `\x01`, `\u{202e}`), counted without writing it.
fn escape_width(c: char) -> usize {
    match c {
        '\u{7}' | '\u{8}' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\u{1b}' => 2,
        c if (c as u32) < 0x80 => 4,
        c => 4 + (32 - (c as u32).leading_zeros() as usize).div_ceil(4),
    }
}

/// A row from its start: the bytes it shows, and where the next row
/// starts (past the newline, if it ends its line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// Bytes shown (without the line's end).
    pub len: usize,
    /// Offset of the next row.
    pub next: usize,
}

/// The row at the start of `buf`, which holds the bytes from there to the
/// end of the file or at least `MAX_LINE + 4` of them; `wrap` is the
/// width rows wrap at (none: only `MAX_LINE` cuts a line).
pub fn row(buf: &[u8], wrap: Option<usize>) -> Row {
    match wrap {
        None => row_plain(buf),
        Some(_) => row_decoded(buf, wrap),
    }
}

/// [`row`] without wrap, found by looking at bytes only: up to a newline,
/// else cut at `MAX_LINE` bytes, after the character that crosses it.
fn row_plain(buf: &[u8]) -> Row {
    let reach = buf.len().min(MAX_LINE + 1);
    if let Some(p) = buf[..reach].iter().position(|b| *b == b'\n') {
        let cr = p > 0 && buf[p - 1] == b'\r';
        if p < MAX_LINE || cr {
            return Row {
                len: p - usize::from(cr),
                next: p + 1,
            };
        }
    }
    if buf.len() <= MAX_LINE {
        return Row {
            len: buf.len(),
            next: buf.len(),
        };
    }
    // A valid character is decoded whole: one starting before the cut
    // and ending past it takes the row to its end. Any lead byte starts a
    // glyph, so the nearest one before the cut decides.
    let mut cut = MAX_LINE;
    for k in 1..=3 {
        let at = MAX_LINE - k;
        match buf[at] {
            0..=0x7f => break,
            0x80..=0xbf => continue,
            _ => {
                if let Some((Glyph::Char(_), n)) = glyph(&buf[at..]) {
                    cut = cut.max(at + n);
                }
                break;
            }
        }
    }
    Row {
        len: cut,
        next: cut,
    }
}

/// [`row`] by decoding each glyph (needed to wrap at a width).
fn row_decoded(buf: &[u8], wrap: Option<usize>) -> Row {
    let mut i = 0;
    let mut col = 0;
    while let Some((g, n)) = glyph(&buf[i..]) {
        if i >= MAX_LINE {
            break;
        }
        if g == Glyph::Newline {
            return Row {
                len: i,
                next: i + n,
            };
        }
        let w = width(g, col);
        if wrap.is_some_and(|width| col + w > width && i > 0) {
            break;
        }
        col += w;
        i += n;
    }
    Row { len: i, next: i }
}

/// How rows are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Text, wrapped at the width or not.
    Text {
        /// Rows wrap at the screen's width.
        wrap: bool,
    },
    /// Hex and ASCII, [`HEX_ROW`] bytes a row.
    Hex,
}

/// The row starting at byte `start` for a screen `width` columns wide.
pub fn row_at(c: &BlockCache, start: u64, mode: Mode, width: usize) -> Result<Row, Missing> {
    match mode {
        Mode::Hex => {
            let len = HEX_ROW.min(c.size.saturating_sub(start)) as usize;
            Ok(Row { len, next: len })
        }
        Mode::Text { wrap } => {
            // What is held may be enough: a row that ends well before a
            // block not held does not wait for it.
            let (buf, missing) = c.window_partial(start, MAX_LINE + 4);
            let r = row(&buf, wrap.then_some(width.max(1)));
            match missing {
                Some(m) if r.len == r.next && r.next + 4 > buf.len() => Err(m),
                _ => Ok(r),
            }
        }
    }
}

/// The start of the row after the one at `start`; None when that one is
/// the last.
pub fn next_row(
    c: &BlockCache,
    start: u64,
    mode: Mode,
    width: usize,
) -> Result<Option<u64>, Missing> {
    let r = row_at(c, start, mode, width)?;
    let next = start + r.next as u64;
    Ok((r.next > 0 && next < c.size).then_some(next))
}

/// The start of the row holding byte `pos` (a row holds its line's end).
pub fn row_containing(c: &BlockCache, pos: u64, mode: Mode, width: usize) -> Result<u64, Missing> {
    let pos = pos.min(c.size.saturating_sub(1));
    if mode == Mode::Hex {
        return Ok(pos / HEX_ROW * HEX_ROW);
    }
    if pos == 0 {
        return Ok(0);
    }
    let from = pos.saturating_sub(MAX_BACK);
    // Without a line start in reach, rows are counted from the multiple
    // of MAX_LINE before `pos`, so going up steps back through a long
    // line evenly and each step looks at 4 KiB, not 256.
    let mut start = match c.rfind(b'\n', from, pos)? {
        Some(i) => i + 1,
        None if from == 0 => 0,
        None => pos / MAX_LINE as u64 * MAX_LINE as u64,
    };
    loop {
        let r = row_at(c, start, mode, width)?;
        let next = start + r.next as u64;
        if r.next == 0 || next > pos {
            return Ok(start);
        }
        start = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn full(data: &[u8], block: u64) -> BlockCache {
        let blocks = data.len().div_ceil(block as usize).max(1);
        let mut c = BlockCache::new(block, blocks + 1, data.len() as u64);
        for (i, chunk) in data.chunks(block as usize).enumerate() {
            c.insert(
                i as u64,
                Bytes::copy_from_slice(chunk),
                data.len() as u64,
                0,
            );
        }
        c
    }

    /// Every row start from the top, going down.
    fn rows_down(c: &BlockCache, mode: Mode, width: usize) -> Vec<u64> {
        let mut out = vec![0];
        let mut at = 0;
        while let Some(n) = next_row(c, at, mode, width).unwrap() {
            out.push(n);
            at = n;
        }
        out
    }

    /// Every row start from the bottom, going up.
    fn rows_up(c: &BlockCache, mode: Mode, width: usize) -> Vec<u64> {
        let mut at = row_containing(c, c.size.saturating_sub(1), mode, width).unwrap();
        let mut out = vec![at];
        while at > 0 {
            at = row_containing(c, at - 1, mode, width).unwrap();
            out.push(at);
        }
        out.reverse();
        out
    }

    fn text(c: &BlockCache, start: u64, mode: Mode, width: usize) -> String {
        let r = row_at(c, start, mode, width).unwrap();
        let buf = c.window(start, r.len).unwrap();
        let mut s = String::new();
        let mut i = 0;
        let mut col = 0;
        while let Some((g, n)) = glyph(&buf[i..]) {
            col += show(g, col, &mut s);
            i += n;
        }
        s
    }

    const PLAIN: Mode = Mode::Text { wrap: false };
    const WRAP: Mode = Mode::Text { wrap: true };

    #[test]
    fn lines_end_at_newlines_and_crlf_counts_as_one() {
        let c = full(b"one\r\ntwo\nthree\r\n", 4);
        assert_eq!(rows_down(&c, PLAIN, 80), [0, 5, 9]);
        assert_eq!(rows_up(&c, PLAIN, 80), [0, 5, 9]);
        assert_eq!(text(&c, 0, PLAIN, 80), "one");
        assert_eq!(text(&c, 9, PLAIN, 80), "three");
    }

    #[test]
    fn a_last_line_without_newline_is_a_row() {
        let c = full(b"a\nbc", 3);
        assert_eq!(rows_down(&c, PLAIN, 80), [0, 2]);
        assert_eq!(rows_up(&c, PLAIN, 80), [0, 2]);
        assert_eq!(text(&c, 2, PLAIN, 80), "bc");
    }

    #[test]
    fn an_empty_file_has_one_empty_row() {
        let c = full(b"", 4);
        assert_eq!(rows_down(&c, PLAIN, 80), [0]);
        assert_eq!(row_containing(&c, 0, PLAIN, 80), Ok(0));
        assert_eq!(row_at(&c, 0, PLAIN, 80), Ok(Row { len: 0, next: 0 }));
        assert_eq!(rows_down(&c, Mode::Hex, 80), [0]);
    }

    #[test]
    fn a_very_long_line_is_cut_every_max_line_bytes() {
        let mut data = vec![b'x'; MAX_LINE * 3 + 10];
        data.push(b'\n');
        data.extend_from_slice(b"end\n");
        let c = full(&data, 1000);
        let m = MAX_LINE as u64;
        let down = rows_down(&c, PLAIN, 80);
        assert_eq!(down, [0, m, 2 * m, 3 * m, 3 * m + 11]);
        assert_eq!(rows_up(&c, PLAIN, 80), down);
        let wrapped = rows_down(&c, WRAP, 1000);
        // Wrapped at 1000 columns: the line wraps through, then "end".
        assert_eq!(wrapped.len(), 13 + 1);
        assert_eq!(rows_up(&c, WRAP, 1000), wrapped);
    }

    #[test]
    fn a_line_longer_than_the_look_back_steps_up_as_it_steps_down() {
        let data = vec![b'x'; 2 * MAX_BACK as usize + 1000];
        let c = full(&data, 64 * 1024);
        let down = rows_down(&c, PLAIN, 80);
        assert_eq!(down.len(), data.len().div_ceil(MAX_LINE));
        assert_eq!(rows_up(&c, PLAIN, 80), down);
    }

    #[test]
    fn a_long_line_with_multibyte_characters_is_cut_between_them() {
        let data = "é".repeat(MAX_LINE);
        let c = full(data.as_bytes(), 333);
        let down = rows_down(&c, PLAIN, 80);
        assert_eq!(down, [0, MAX_LINE as u64]);
        assert_eq!(
            text(&c, MAX_LINE as u64, PLAIN, 80).chars().count(),
            MAX_LINE / 2
        );
    }

    #[test]
    fn wrapping_counts_display_columns() {
        let c = full("ab日本語cd\nxyz".as_bytes(), 5);
        // 5 columns: "ab日" (4; 本 would make 6), "本語c", "d", "xyz".
        let down = rows_down(&c, WRAP, 5);
        let shown: Vec<String> = down.iter().map(|s| text(&c, *s, WRAP, 5)).collect();
        assert_eq!(shown, ["ab日", "本語c", "d", "xyz"]);
        assert_eq!(rows_up(&c, WRAP, 5), down);
    }

    #[test]
    fn control_characters_and_bad_bytes_are_escaped() {
        let c = full(b"a\x1b[2Jb\tc\xff\x07\r\xe2\x80\xaed", 64);
        assert_eq!(text(&c, 0, PLAIN, 80), "a\\e[2Jb c\\xff\\a\\r\\u{202e}d");
    }

    #[test]
    fn escape_widths_are_what_sanitize_writes() {
        for c in [
            '\0', '\u{7}', '\n', '\u{1b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}', '\u{61c}',
            '\u{202e}', '\u{2029}',
        ] {
            let mut buf = [0; 4];
            let shown = crate::display::sanitize(c.encode_utf8(&mut buf))
                .chars()
                .count();
            assert_eq!(width(Glyph::Char(c), 0), shown, "{c:?}");
        }
    }

    #[test]
    fn rows_without_wrap_by_bytes_are_rows_by_glyphs() {
        // Newlines, CRLF and multibyte or broken characters near the cut.
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for at in MAX_LINE - 4..MAX_LINE + 2 {
            for piece in [
                &b"\n"[..],
                b"\r\n",
                "é".as_bytes(),
                "日".as_bytes(),
                "😀".as_bytes(),
                b"\xe6\x97",
                b"\xff\x80",
            ] {
                let mut v = vec![b'a'; at];
                v.extend_from_slice(piece);
                v.extend_from_slice(&[b'b'; 8]);
                cases.push(v.clone());
                v.truncate(at + 1);
                cases.push(v);
            }
        }
        let mut x: u32 = 7;
        for i in 0..400 {
            // Half without newlines, so the cut is met.
            let alphabet: &[u8] = if i % 2 == 0 {
                &[b'a', b'\n', b'\r', 0xe6, 0x97, 0xa5, 0xc3, 0xa9, 0xff]
            } else {
                &[
                    b'a', b'\r', 0xe6, 0x97, 0xa5, 0xc3, 0xa9, 0xff, 0xf0, 0x9f, 0x98, 0x80,
                ]
            };
            let v: Vec<u8> = (0..MAX_LINE + 40)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    alphabet[(x >> 16) as usize % alphabet.len()]
                })
                .collect();
            cases.push(v);
        }
        for v in &cases {
            for from in [0, 1, 2, 3] {
                let b = &v[from.min(v.len())..];
                assert_eq!(
                    row_plain(b),
                    row_decoded(b, None),
                    "{from} {:?}",
                    &b[b.len().saturating_sub(12)..]
                );
            }
        }
    }

    #[test]
    fn hex_rows_are_sixteen_bytes() {
        let c = full(&[0u8; 40], 7);
        assert_eq!(rows_down(&c, Mode::Hex, 80), [0, 16, 32]);
        assert_eq!(row_containing(&c, 35, Mode::Hex, 80), Ok(32));
        assert_eq!(row_at(&c, 32, Mode::Hex, 80), Ok(Row { len: 8, next: 8 }));
    }

    #[test]
    fn missing_blocks_are_named_not_guessed() {
        let mut c = BlockCache::new(8, 4, 64);
        c.insert(0, Bytes::from_static(b"abc\ndefg"), 64, 0);
        assert_eq!(next_row(&c, 0, PLAIN, 80), Ok(Some(4)));
        assert_eq!(next_row(&c, 4, PLAIN, 80), Err(Missing(1)));
        assert_eq!(row_containing(&c, 20, PLAIN, 80), Err(Missing(2)));
    }
}
