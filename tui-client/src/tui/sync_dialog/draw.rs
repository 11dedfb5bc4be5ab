//! Drawing the sync dialog: the options, then the preview (counts and
//! bytes, and a window on the actions).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{row, rows, Phase, Row, SyncDialog, PAGE};
use crate::display::escape;
use crate::sync::{Plan, Tally};
use crate::tui::draw_dialog::{draw_box, with_cursor};
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

/// The direction as a line: `/home/me/photos → :/backup`.
fn direction(d: &SyncDialog) -> String {
    let s = d.sides();
    let way = if d.up { "upload" } else { "download" };
    format!(
        "{way}: {} → {}",
        escape(&s.source_name()),
        escape(&s.destination_name())
    )
}

/// Draws the dialog.
pub fn draw(d: &SyncDialog, f: &mut Frame) {
    match &d.phase {
        Phase::Options | Phase::Planning(_) => draw_options(d, f),
        Phase::Preview(plan) => draw_preview(d, &plan.0, f),
    }
}

fn draw_options(d: &SyncDialog, f: &mut Frame) {
    let sel = |i: usize| {
        if d.field == i && d.phase == Phase::Options {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new()
        }
    };
    let check = |on: bool| if on { "[x]" } else { "[ ]" };
    let label = |t: &str| Span::styled(format!("{t:<11}"), Style::new().fg(Color::Cyan));
    let text = |i: usize, s: &str| {
        if d.field == i && d.phase == Phase::Options {
            with_cursor(s, d.back, Style::new())
        } else {
            vec![Span::raw(s.to_string())]
        }
    };
    let mut lines = vec![
        Line::from(vec![
            label("Direction"),
            Span::styled(format!("◀ {} ▶", direction(d)), sel(0)),
        ]),
        Line::from(vec![
            label("Delete"),
            Span::styled(check(d.delete), sel(1)),
            Span::raw(" delete what is only in the destination (--delete)"),
        ]),
        Line::from(vec![
            label("Checksum"),
            Span::styled(check(d.checksum), sel(2)),
            Span::raw(" compare by SHA-256, not size and time (--checksum)"),
        ]),
        Line::from([vec![label("Include")], text(3, &d.include)].concat()),
        Line::from([vec![label("Exclude")], text(4, &d.exclude)].concat()),
        Line::styled(
            "globs separated by spaces (\"a b\" or a\\ b is one glob);",
            Style::new().fg(Color::DarkGray),
        ),
        Line::styled(
            "an include wins over an exclude",
            Style::new().fg(Color::DarkGray),
        ),
    ];
    if let Some(e) = &d.error {
        lines.push(Line::styled(escape(e), Style::new().fg(Color::Red)));
    }
    let keys = if let Phase::Planning(_) = d.phase {
        lines.push(Line::styled(
            "comparing the trees…",
            Style::new().fg(Color::Yellow),
        ));
        key_line(&[("Esc", "stop")])
    } else {
        key_line(&[
            ("↑↓", "field"),
            ("Space", "toggle"),
            ("Enter", "preview"),
            ("Esc", "cancel"),
        ])
    };
    draw_box(f, "Sync", lines, keys, 78, Color::Cyan);
}

fn tally(what: &str, t: Tally, style: Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{what:<11}"), style),
        Span::raw(format!(
            "{:>7} file{}  {:>10}",
            t.files,
            if t.files == 1 { " " } else { "s" },
            human(t.bytes)
        )),
    ])
}

fn draw_preview(d: &SyncDialog, plan: &Plan, f: &mut Frame) {
    let mut lines = vec![Line::from(direction(d))];
    let plain = Style::new().fg(Color::Cyan);
    lines.push(tally("to copy", plan.copy, plain));
    lines.push(tally("to update", plan.update, plain));
    let red = if plan.delete.files > 0 || plan.delete_dirs > 0 {
        Style::new().fg(Color::Red)
    } else {
        plain
    };
    let mut del = tally("to delete", plan.delete, red);
    if plan.delete_dirs > 0 {
        del.spans
            .push(Span::raw(format!("  ({} directories)", plan.delete_dirs)));
    }
    lines.push(del);
    lines.push(tally("unchanged", plan.unchanged, plain));
    if plan.is_empty() {
        lines.push(Line::styled(
            "nothing to do: the destination is up to date",
            Style::new().fg(Color::Green),
        ));
    }
    let n = rows(plan);
    // The window on the actions: what the screen leaves, at most a page.
    let room = (f.area().height as usize).saturating_sub(lines.len() + 5);
    let shown = room.min(PAGE);
    let first = d.scroll.min(n.saturating_sub(shown));
    for i in first..(first + shown).min(n) {
        let Some(r) = row(plan, i) else { break };
        let (mark, text, style) = match r {
            Row::Mkdir(p) => ('+', format!("{}/", escape(p)), Style::new().fg(Color::Blue)),
            Row::Copy(p, size) => ('+', format!("{}  {}", escape(p), human(size)), Style::new()),
            Row::Update(p, size) => (
                '~',
                format!("{}  {}", escape(p), human(size)),
                Style::new().fg(Color::Yellow),
            ),
            Row::Touch(p) => ('=', format!("{}  (time only)", escape(p)), Style::new()),
            Row::Delete(p, dir) => (
                '-',
                format!("{}{}", escape(p), if dir { "/" } else { "" }),
                Style::new().fg(Color::Red),
            ),
            Row::Warning(w) => ('!', escape(w).to_string(), Style::new().fg(Color::DarkGray)),
        };
        lines.push(Line::styled(format!(" {mark} {text}"), style));
    }
    if n > shown {
        lines.push(Line::styled(
            format!("   actions {}-{} of {n}", first + 1, (first + shown).min(n)),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let keys = if plan.is_empty() {
        key_line(&[("Enter Esc", "close"), ("Backspace", "options")])
    } else {
        key_line(&[
            ("Enter", "run in the queue"),
            ("↑↓ PgUp PgDn", "scroll"),
            ("Backspace", "options"),
            ("Esc", "cancel"),
        ])
    };
    draw_box(f, "Sync preview", lines, keys, 78, Color::Cyan);
}
