//! Drawing the viewer full screen: the rows, a status line (name, offset
//! and size, mode, a search's progress) and a line for the search being
//! typed, a note, or the keys. File contents are shown through
//! `lines::show`, which escapes whatever a terminal would act on.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::lines::{glyph, show, Mode, HEX_ROW};
use super::Viewer;
use unicode_width::UnicodeWidthStr;

use crate::tui::render::{fit, human};
use crate::tui::text::split_at_cursor;

/// Text rows on a screen `height` rows high (status and bottom lines off).
pub fn text_rows(height: u16) -> usize {
    height.saturating_sub(2).max(1) as usize
}

/// Draws `v` over the whole frame.
pub fn draw(v: &Viewer, f: &mut Frame) {
    let area = f.area();
    f.render_widget(Clear, area);
    let rows = text_rows(area.height);
    let width = area.width as usize;
    let body = Rect {
        height: rows as u16,
        ..area
    };
    let mut lines: Vec<Line> = Vec::with_capacity(rows);
    if v.loading() {
        lines.push(Line::styled("reading…", Style::new().fg(Color::DarkGray)));
    } else if v.cache.size == 0 {
        lines.push(Line::styled(
            "(empty file)",
            Style::new().fg(Color::DarkGray),
        ));
    } else {
        let (shown, missing) = v.screen(rows, width);
        for (start, len) in shown {
            lines.push(match v.mode {
                Mode::Hex => hex_row(v, start, len),
                Mode::Text { wrap } => text_row(v, start, len, width, wrap),
            });
        }
        if missing.is_some() && lines.len() < rows {
            lines.push(Line::styled("reading…", Style::new().fg(Color::DarkGray)));
        }
    }
    f.render_widget(Paragraph::new(lines), body);
    if area.height >= 2 {
        let status = Rect {
            y: area.y + area.height - 2,
            height: 1,
            ..area
        };
        f.render_widget(Paragraph::new(status_line(v, width)), status);
    }
    let bottom = Rect {
        y: area.y + area.height.saturating_sub(1),
        height: 1,
        ..area
    };
    f.render_widget(Paragraph::new(bottom_line(v)), bottom);
}

fn highlight() -> Style {
    Style::new().bg(Color::Yellow).fg(Color::Black)
}

fn in_match(v: &Viewer, at: u64) -> bool {
    v.found
        .is_some_and(|(m, len)| at >= m && at < m + len as u64)
}

/// A text row: glyphs from `left` columns on (without wrap), cut at the
/// width, the last match highlighted.
fn text_row(v: &Viewer, start: u64, len: usize, width: usize, wrap: bool) -> Line<'static> {
    let Ok(buf) = v.cache.window(start, len) else {
        return Line::styled("…", Style::new().fg(Color::DarkGray));
    };
    let left = if wrap { 0 } else { v.left };
    let mut spans: Vec<Span<'static>> = Vec::new();
    let (mut i, mut col) = (0, 0);
    let mut shown = 0;
    while let Some((g, n)) = glyph(&buf[i..]) {
        let mut s = String::new();
        let w = show(g, col, &mut s);
        let at = start + i as u64;
        col += w;
        i += n;
        if col <= left {
            continue;
        }
        if col - w < left {
            // A glyph cut by the left edge shows as blanks.
            s = " ".repeat(col - left);
        }
        let w = s.width();
        if shown + w > width {
            break;
        }
        shown += w;
        let style = if in_match(v, at) {
            highlight()
        } else {
            Style::new()
        };
        match spans.last_mut() {
            Some(sp) if sp.style == style => sp.content.to_mut().push_str(&s),
            _ => spans.push(Span::styled(s, style)),
        }
    }
    Line::from(spans)
}

/// A hex row like `hexdump -C`: offset, 16 bytes in hex, the printable
/// ones as ASCII.
fn hex_row(v: &Viewer, start: u64, len: usize) -> Line<'static> {
    let Ok(buf) = v.cache.window(start, len) else {
        return Line::styled("…", Style::new().fg(Color::DarkGray));
    };
    let mut spans = vec![Span::styled(
        format!("{start:08x}  "),
        Style::new().fg(Color::DarkGray),
    )];
    let style_at = |i: usize| {
        if in_match(v, start + i as u64) {
            highlight()
        } else {
            Style::new()
        }
    };
    for i in 0..HEX_ROW as usize {
        let text = match buf.get(i) {
            Some(b) => format!("{b:02x}"),
            None => "  ".into(),
        };
        spans.push(Span::styled(text, style_at(i)));
        spans.push(Span::raw(if i == 7 { "  " } else { " " }));
    }
    spans.push(Span::raw(" |"));
    for (i, b) in buf.iter().enumerate() {
        let c = if (0x20..0x7f).contains(b) {
            *b as char
        } else {
            '.'
        };
        spans.push(Span::styled(c.to_string(), style_at(i)));
    }
    spans.push(Span::raw("|"));
    Line::from(spans)
}

/// The status line: the name (cut to fit) on the left; the offset, size,
/// mode and a search's progress on the right.
fn status_line(v: &Viewer, width: usize) -> Line<'static> {
    let size = v.cache.size;
    let pct = if size == 0 {
        100
    } else {
        (v.top as u128 * 100 / size as u128) as u64
    };
    let mode = match v.mode {
        Mode::Hex => "hex",
        Mode::Text { wrap: true } => "text, wrap",
        Mode::Text { wrap: false } => "text",
    };
    let mut right = String::new();
    if let Some(r) = &v.running {
        let done = if r.backward {
            size.saturating_sub(r.at)
        } else {
            r.at
        };
        let pct = (done as u128 * 100 / size.max(1) as u128).min(100);
        right.push_str(&format!("searching {pct}% (Esc stops)  "));
    }
    right.push_str(&format!(
        "{}/{size} ({}) {pct}%  {mode}",
        v.top,
        human(size)
    ));
    if v.mode == (Mode::Text { wrap: false }) && v.left > 0 {
        right.push_str(&format!(", col {}", v.left + 1));
    }
    right.push(' ');
    let room = width.saturating_sub(right.width() + 2);
    let name = fit(&crate::display::escape(&v.name), room);
    Line::styled(
        format!(" {name} {right}"),
        Style::new()
            .bg(Color::Blue)
            .fg(Color::White)
            .add_modifier(Modifier::BOLD),
    )
}

fn bottom_line(v: &Viewer) -> Line<'static> {
    if let Some(p) = &v.prompt {
        let (a, b) = split_at_cursor(&p.text, p.back);
        return Line::from(vec![
            Span::raw(if p.backward { "?" } else { "/" }),
            Span::raw(crate::display::sanitize(a).into_owned()),
            Span::styled("▏", Style::new().fg(Color::Yellow)),
            Span::raw(crate::display::sanitize(b).into_owned()),
        ]);
    }
    if let Some((note, error)) = &v.note {
        let style = if *error {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        };
        return Line::styled(crate::display::sanitize(note).into_owned(), style);
    }
    let key = |k: &str| Span::styled(k.to_string(), Style::new().fg(Color::Yellow).bold());
    let mut spans = Vec::new();
    for (k, what) in KEYS {
        spans.push(key(k));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    Line::from(spans)
}

/// The viewer's keys as its bottom line shows them.
pub const KEYS: [(&str, &str); 6] = [
    ("q", "close"),
    ("/ ?", "search"),
    ("n N", "next/prev"),
    ("w", "wrap"),
    ("h", "hex"),
    ("←→", "scroll"),
];
