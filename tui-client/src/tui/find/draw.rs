//! Drawing the find form and the results panel (over the pane searched).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::{Find, FindForm, FindPanel, State, LABELS};
use crate::cli::output::format_time;
use crate::display::escape;
use crate::tui::app::App;
use crate::tui::draw_dialog::{draw_box, with_cursor};
use crate::tui::pane::Side;
use crate::tui::render::human;

fn key_line(pairs: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, (k, what)) in pairs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            k.to_string(),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

/// Draws the find dialog.
pub fn draw(app: &App, d: &Find, f: &mut Frame) {
    match d {
        Find::Form(form) => draw_form(form, f),
        Find::Panel(p) => draw_panel(app, p, f),
    }
}

fn place(side: Side) -> &'static str {
    match side {
        Side::Local => "local",
        Side::Remote => "remote (searched by the server)",
    }
}

fn draw_form(form: &FindForm, f: &mut Frame) {
    let mut lines = vec![Line::from(format!(
        "Under {} ({})",
        escape(&form.dir),
        place(form.side)
    ))];
    for (i, label) in LABELS.iter().enumerate() {
        let mut spans = vec![Span::raw(format!("{label:>12}: "))];
        let value = form.fields.get(i).cloned().unwrap_or_default();
        if form.field == i {
            let style = Style::new()
                .fg(Color::White)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
            spans.extend(with_cursor(&value, form.back, style));
        } else {
            spans.push(Span::raw(value));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::styled(
        "  sizes: 10MiB, 5GB, 1500; newer than: 30m, 2h, 7d or 2026-11-30",
        Style::new().fg(Color::DarkGray),
    ));
    if let Some(e) = &form.error {
        lines.push(Line::styled(e.clone(), Style::new().fg(Color::Red)));
    }
    draw_box(
        f,
        "Find",
        lines,
        key_line(&[
            ("Tab", "next field"),
            ("Enter", "search"),
            ("Esc", "cancel"),
        ]),
        72,
        Color::Cyan,
    );
}

/// The rows of the list from `cursor`'s view in `height` rows.
fn first_row(cursor: usize, height: usize) -> usize {
    cursor.saturating_sub(height.saturating_sub(1))
}

fn draw_panel(app: &App, p: &FindPanel, f: &mut Frame) {
    let a = app.areas();
    // Over both panes, as mc's list of found files: long paths fit.
    let area = a.local.union(a.remote).intersection(f.area());
    if area.height < 4 || area.width < 10 {
        return;
    }
    f.render_widget(Clear, area);
    let title = format!(
        " Find {} under {} ({}) ",
        p.query.pattern,
        p.dir,
        match p.side {
            Side::Local => "local",
            Side::Remote => "remote",
        }
    );
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(Color::Cyan))
        .title(Line::from(escape(&title).into_owned()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let rows = inner.height.saturating_sub(2) as usize;
    let width = inner.width as usize;
    let start = first_row(p.cursor, rows);
    let mut lines: Vec<Line> = Vec::new();
    for (i, e) in p.results.iter().enumerate().skip(start).take(rows) {
        let dir = if e.kind == ferry_proto::msg::EntryKind::Dir {
            "/"
        } else {
            ""
        };
        let right = format!(" {:>10}  {}", human(e.size), format_time(e.mtime));
        let mark = if i == p.cursor { "▸ " } else { "  " };
        let name = format!("{mark}{}{dir}", escape(p.shown(&e.name)));
        let room = width.saturating_sub(right.width());
        let name = fit(&name, room);
        let pad = room.saturating_sub(name.width());
        let text = format!("{name}{}{right}", " ".repeat(pad));
        let style = if i == p.cursor {
            Style::new().bg(Color::Cyan).fg(Color::Black)
        } else {
            Style::new()
        };
        lines.push(Line::styled(text, style));
    }
    while lines.len() < rows {
        lines.push(Line::from(""));
    }
    let n = p.results.len();
    let (status, color) = match &p.state {
        State::Searching => (format!("searching… {n} found"), Color::Yellow),
        State::Complete => (format!("{n} found"), Color::Green),
        State::Incomplete(why) => (format!("{n} found; incomplete: {why}"), Color::Yellow),
        State::Failed(e) => (format!("{n} found; failed: {e}"), Color::Red),
    };
    lines.push(Line::styled(status, Style::new().fg(color)));
    let stop = if p.state == State::Searching {
        "stop"
    } else {
        "close"
    };
    lines.push(key_line(&[
        ("↑↓", "move"),
        ("Enter", "go to it"),
        ("Esc", stop),
    ]));
    f.render_widget(Paragraph::new(lines), inner);
}

/// `s` cut to `w` display columns, with `…` when cut.
fn fit(s: &str, w: usize) -> String {
    if s.width() <= w {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}
