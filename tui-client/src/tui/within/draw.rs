//! Drawing the target line and the conflict dialog of a copy or move
//! within one side.

use ferry_proto::msg::{Entry, EntryKind};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::{Op, Plan, Prompt, Within};
use crate::cli::output::format_time;
use crate::display::escape;
use crate::tui::draw_dialog::{draw_box, with_cursor};
use crate::tui::pane::Side;
use crate::tui::render::human;

fn keys(pairs: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, (k, what)) in pairs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(
            k.to_string(),
            Style::new().fg(Color::Yellow).bold(),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

fn place(side: Side) -> &'static str {
    match side {
        Side::Local => "local",
        Side::Remote => "remote",
    }
}

fn title(op: Op) -> &'static str {
    match op {
        Op::Copy => "Copy",
        Op::Move => "Move",
    }
}

/// Draws the dialog.
pub fn draw(d: &Within, f: &mut Frame) {
    match d {
        Within::Prompt(p) => prompt(p, f),
        Within::Conflicts(p) => conflict(p, f),
    }
}

fn prompt(p: &Prompt, f: &mut Frame) {
    let what = match p.sources.as_slice() {
        [one] => escape(&one.name).into_owned(),
        many => format!("{} entries", many.len()),
    };
    let mut line = vec![Span::raw("> ")];
    line.extend(escaped_cursor(
        &p.text,
        p.back,
        Style::new().fg(Color::White).bold(),
    ));
    let lines = vec![
        Line::from(format!(
            "{} {what} to (a directory, or a new name):",
            title(p.op)
        )),
        Line::from(line),
    ];
    draw_box(
        f,
        &format!("{} within the {} side", title(p.op), place(p.side)),
        lines,
        keys(&[("Enter", p.op.verb()), ("Esc", "cancel")]),
        64,
        Color::Cyan,
    );
}

/// The edited text with its cursor, each side escaped where it is drawn:
/// the text itself stays the real name (it may come from the server).
fn escaped_cursor(text: &str, back: usize, style: Style) -> Vec<Span<'static>> {
    with_cursor(text, back, style)
        .into_iter()
        .map(|s| Span::styled(escape(&s.content).into_owned(), s.style))
        .collect()
}

fn describe(e: &Entry) -> String {
    let kind = match e.kind {
        EntryKind::Dir => "directory",
        EntryKind::Symlink => "link",
        EntryKind::File => "file",
        EntryKind::Other => "special file",
    };
    format!("{kind:<9} {:>10}  {}", human(e.size), format_time(e.mtime))
}

fn conflict(p: &Plan, f: &mut Frame) {
    let Some(item) = p.current() else { return };
    let Some(existing) = &item.existing else {
        return;
    };
    let all = if p.apply_all { "[x]" } else { "[ ]" };
    let left = p.items[p.asking..].iter().filter(|i| i.open()).count();
    let mut lines = vec![
        Line::from(format!(
            "{} already exists in {}",
            escape(&item.name),
            escape(&p.to_dir)
        )),
        Line::from(format!("  new:      {}", describe(&item.entry))),
        Line::from(format!("  existing: {}", describe(existing))),
        Line::from(""),
        Line::from(vec![
            Span::styled("a", Style::new().fg(Color::Yellow).bold()),
            Span::raw(format!(" {all} apply to all remaining conflicts ({left})")),
        ]),
    ];
    if let Some((text, back)) = &p.renaming {
        let mut l = vec![Span::raw("new name: ")];
        l.extend(escaped_cursor(
            text,
            *back,
            Style::new().fg(Color::White).bold(),
        ));
        lines.push(Line::from(l));
    }
    if let Some(why) = &p.refusal {
        lines.push(Line::styled(why.clone(), Style::new().fg(Color::Red)));
    }
    let keys = if p.renaming.is_some() {
        keys(&[("Enter", "use this name"), ("Esc", "back")])
    } else if item.may_overwrite(&p.to_dir) {
        keys(&[
            ("o", "overwrite"),
            ("s", "skip"),
            ("n", "new name"),
            ("Esc", "cancel"),
        ])
    } else {
        keys(&[("s", "skip"), ("n", "new name"), ("Esc", "cancel")])
    };
    draw_box(
        f,
        &format!("{}: target exists", title(p.op)),
        lines,
        keys,
        72,
        Color::Yellow,
    );
}
