//! Drawing the dialogs. Every dialog is a box sized to its text (wrapped
//! at word boundaries, counted in display columns) with its keys on the
//! last row, which stays visible however small the screen is.

use ferry_proto::msg::{EntryKind, MODE_BITS};
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthChar;

use super::app::{App, Link};
use super::chmod::symbolic;
use super::dialog::{ChmodDialog, Dialog, InputKind};
use super::pane::Side;
use super::prompts::{DeleteDialog, InputDialog, ReconnectDialog, TrustDialog};
use super::render::human;
use super::text::split_at_cursor;
use crate::cli::output::format_time;

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Wraps `line` into rows of at most `width` display columns, breaking
/// after a space where one is near, keeping each character's style.
pub fn wrap(line: &Line<'_>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let chars: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| {
            let style = line.style.patch(s.style);
            s.content.chars().map(move |c| (c, style))
        })
        .collect();
    let mut rows: Vec<Vec<(char, Style)>> = Vec::new();
    let mut row: Vec<(char, Style)> = Vec::new();
    let mut used = 0;
    for (c, style) in chars {
        let w = c.width().unwrap_or(0);
        if used + w > width && !row.is_empty() {
            // Break after the last space; a word longer than the row breaks
            // where it must.
            let cut = row.iter().rposition(|(c, _)| *c == ' ');
            match cut {
                Some(at) if at > 0 => {
                    let rest = row.split_off(at + 1);
                    rows.push(std::mem::take(&mut row));
                    row = rest;
                }
                _ => rows.push(std::mem::take(&mut row)),
            }
            used = row.iter().map(|(c, _)| c.width().unwrap_or(0)).sum();
        }
        row.push((c, style));
        used += w;
    }
    rows.push(row);
    rows.into_iter()
        .map(|r| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (c, style) in r {
                match spans.last_mut() {
                    Some(s) if s.style == style => s.content.to_mut().push(c),
                    _ => spans.push(Span::styled(c.to_string(), style)),
                }
            }
            Line::from(spans)
        })
        .collect()
}

/// Draws a box of at most `w` columns: the body wrapped to fit, then the
/// keys row. When the screen is too low, the body is cut, never the keys.
pub(super) fn draw_box(
    f: &mut Frame,
    title: &str,
    body: Vec<Line>,
    keys: Line,
    w: u16,
    color: Color,
) {
    let screen = f.area();
    let outer_w = w.min(screen.width);
    let inner = outer_w.saturating_sub(2).max(1) as usize;
    let mut rows: Vec<Line> = body.iter().flat_map(|l| wrap(l, inner)).collect();
    let key_rows = wrap(&keys, inner);
    let room = (screen.height as usize).saturating_sub(2 + key_rows.len());
    if rows.len() > room {
        rows.truncate(room.saturating_sub(1));
        rows.push(Line::styled("…", Style::new().fg(Color::DarkGray)));
        rows.truncate(room);
    }
    rows.extend(key_rows);
    let area = centered(screen, outer_w, rows.len() as u16 + 2);
    f.render_widget(Clear, area);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(color))
        .title(Line::from(format!(" {title} ")).bold());
    // Rows are wrapped already: nothing wraps again.
    f.render_widget(Paragraph::new(rows).block(block), area);
}

/// A text with a visible cursor at `back` characters from its end.
pub(super) fn with_cursor(text: &str, back: usize, style: Style) -> Vec<Span<'static>> {
    let (a, b) = split_at_cursor(text, back);
    vec![
        Span::styled(a.to_string(), style),
        Span::styled("▏", Style::new().fg(Color::Yellow)),
        Span::styled(b.to_string(), style),
    ]
}

/// Draws the open dialog.
pub fn draw_dialog(app: &App, d: &Dialog, f: &mut Frame) {
    let key = |k: &str| Span::styled(k.to_string(), Style::new().fg(Color::Yellow).bold());
    // A keys row: ("Enter", "ok"), ("Esc", "cancel") -> "Enter ok  Esc cancel".
    let keys = |pairs: &[(&str, &str)]| {
        let mut spans = Vec::new();
        for (i, (k, what)) in pairs.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw("  "));
            }
            spans.push(key(k));
            if !what.is_empty() {
                spans.push(Span::raw(format!(" {what}")));
            }
        }
        Line::from(spans)
    };
    match d {
        Dialog::Within(d) => super::within::draw::draw(d, f),
        Dialog::Edit(d) => d.draw(f),
        Dialog::Find(d) => super::find::draw::draw(app, d, f),
        Dialog::Bookmark(d) => super::bookmarks::draw(d, f),
        Dialog::Sync(d) => super::sync_dialog::draw::draw(d, f),
        Dialog::Help => {
            let (lines, keys, top, total) = super::help::page(f.area(), app.help_top);
            let title = if lines.len() < total {
                let last = top + lines.len();
                format!("Help: rows {}-{last} of {total}", top + 1)
            } else {
                "Help".to_string()
            };
            draw_box(f, &title, lines, keys, super::help::WIDTH, Color::Cyan);
        }
        Dialog::Chmod(d) => {
            let mut lines = vec![match &d.entries[..] {
                [e] => Line::from(format!(
                    "{}  now {} ({:03o})",
                    crate::display::escape(&e.name),
                    symbolic(e.mode & MODE_BITS),
                    e.mode & MODE_BITS
                )),
                es => Line::from(format!("{} entries, the same mode for each", es.len())),
            }];
            lines.push(Line::from(""));
            lines.push(Line::from("          read  write exec"));
            for (row, who) in ["owner", "group", "others"].iter().enumerate() {
                let mut spans = vec![Span::raw(format!("  {who:<8}"))];
                for col in 0..3 {
                    let i = row * 3 + col;
                    let on = d.mode & ChmodDialog::bit(i) != 0;
                    let style = if i == d.at {
                        Style::new().fg(Color::Black).bg(Color::Cyan)
                    } else {
                        Style::new()
                    };
                    spans.push(Span::styled(if on { "[x]" } else { "[ ]" }, style));
                    spans.push(Span::raw("   "));
                }
                lines.push(Line::from(spans));
            }
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                Span::raw("mode: "),
                Span::styled(
                    format!("{:03o}  {}", d.mode, symbolic(d.mode)),
                    Style::new().fg(Color::White).bold(),
                ),
            ]));
            let place = if d.side == Side::Local {
                "local"
            } else {
                "remote"
            };
            draw_box(
                f,
                &format!("Permissions ({place})"),
                lines,
                keys(&[
                    ("←↑↓→", "move"),
                    ("Space r w x", "toggle"),
                    ("0-7", "octal"),
                    ("Enter", "set"),
                    ("Esc", "cancel"),
                ]),
                70,
                Color::Cyan,
            );
        }
        Dialog::ConfirmQuit => {
            let n = app.queue.active();
            draw_box(
                f,
                "Quit?",
                vec![Line::from(format!(
                    "{n} transfer(s) still running; partial files are kept for a later resume. Quit now?"
                ))],
                keys(&[("y", "quit"), ("n", "stay")]),
                60,
                Color::Yellow,
            );
        }
        Dialog::Input(InputDialog {
            kind,
            side,
            text,
            back,
        }) => {
            let what = match kind {
                InputKind::Mkdir => "New directory".to_string(),
                InputKind::Rename { from } => {
                    format!("Rename or move {}", crate::display::escape(from))
                }
                InputKind::Move { names } => format!(
                    "Move {} marked entr{} into the directory",
                    names.len(),
                    if names.len() == 1 { "y" } else { "ies" }
                ),
                InputKind::Rate => "Speed limit of all transfers (500K, 10M; 0: none)".into(),
            };
            let place = if *side == Side::Local {
                "local"
            } else {
                "remote"
            };
            let mut line = vec![Span::raw("> ")];
            line.extend(with_cursor(
                text,
                *back,
                Style::new().fg(Color::White).bold(),
            ));
            draw_box(
                f,
                &if *kind == InputKind::Rate {
                    what
                } else {
                    format!("{what} ({place})")
                },
                vec![Line::from(line)],
                keys(&[("Enter", "ok"), ("Esc", "cancel")]),
                60,
                Color::Cyan,
            );
        }
        Dialog::ConfirmDelete(DeleteDialog { side, entries }) => {
            let dirs = entries.iter().filter(|e| e.kind == EntryKind::Dir).count();
            let bytes: u64 = entries
                .iter()
                .filter(|e| e.kind != EntryKind::Dir)
                .map(|e| e.size)
                .sum();
            let place = if *side == Side::Local {
                "local"
            } else {
                "remote"
            };
            // A directory's size is not what is inside: only files get
            // a figure.
            let files = entries.len() - dirs;
            let mut what = Vec::new();
            if files > 0 {
                what.push(format!(
                    "{files} file{}, {}",
                    if files == 1 { "" } else { "s" },
                    human(bytes)
                ));
            }
            if dirs > 0 {
                what.push(format!(
                    "{dirs} director{} with everything inside",
                    if dirs == 1 { "y" } else { "ies" }
                ));
            }
            let mut lines = vec![Line::from(format!(
                "Delete {} {place} entr{} ({})?",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" },
                what.join(", ")
            ))];
            for e in entries.iter().take(5) {
                lines.push(Line::from(format!(
                    "  {}{}",
                    crate::display::escape(&e.name),
                    if e.kind == EntryKind::Dir {
                        "/  (recursive)"
                    } else {
                        ""
                    }
                )));
            }
            if entries.len() > 5 {
                lines.push(Line::from(format!("  … and {} more", entries.len() - 5)));
            }
            draw_box(
                f,
                "Delete",
                lines,
                keys(&[("y", "delete"), ("n/Esc", "keep")]),
                70,
                Color::Red,
            );
        }
        Dialog::Conflict(plan) => {
            let Some(item) = plan.items.get(plan.asking) else {
                return;
            };
            let Some(existing) = &item.existing else {
                return;
            };
            let describe = |e: &ferry_proto::msg::Entry| {
                format!("{:>12}  {}", human(e.size), format_time(e.mtime))
            };
            let all = if plan.apply_all { "[x]" } else { "[ ]" };
            let lines = vec![
                Line::from(format!(
                    "{} already exists in {}",
                    crate::display::escape(&item.entry.name),
                    crate::display::escape(&plan.to_dir)
                )),
                Line::from(format!("  new:      {}", describe(&item.entry))),
                Line::from(format!("  existing: {}", describe(existing))),
                Line::from(""),
                Line::from(vec![
                    key("a"),
                    Span::raw(format!(" {all} apply to all remaining conflicts")),
                ]),
            ];
            draw_box(
                f,
                "Target exists",
                lines,
                keys(&[
                    ("o", "overwrite"),
                    ("s", "skip"),
                    ("r", "resume"),
                    ("n", "rename"),
                    ("Esc", "cancel"),
                ]),
                72,
                Color::Yellow,
            );
        }
        Dialog::Trust(TrustDialog {
            server,
            fingerprint,
        }) => {
            let lines = vec![
                Line::from(format!(
                    "{server} presented a certificate no trusted authority signed."
                )),
                Line::from("Its fingerprint is:"),
                Line::from(Span::styled(
                    fingerprint.clone(),
                    Style::new().fg(Color::White).bold(),
                )),
                Line::from(
                    "Compare it with what the administrator gives you (ferryd fingerprint).",
                ),
                Line::from("Trust it and remember it in known_servers?"),
            ];
            draw_box(
                f,
                "Unknown server",
                lines,
                keys(&[("y", "trust"), ("n/Esc", "do not connect")]),
                78,
                Color::Yellow,
            );
        }
        Dialog::Reconnect(ReconnectDialog { reason }) => {
            let status = if app.link == Link::Connecting {
                "  reconnecting…"
            } else {
                ""
            };
            let lines = vec![
                Line::from(format!("The connection was lost: {reason}{status}")),
                Line::from(
                    "Interrupted transfers resume from their partial files after reconnecting.",
                ),
            ];
            draw_box(
                f,
                "Connection lost",
                lines,
                keys(&[("r", "reconnect"), ("Esc", "stay offline"), ("q", "quit")]),
                76,
                Color::Red,
            );
        }
        Dialog::Connect(form) => {
            let field = |i: usize, label: &str, value: String| {
                let focused = form.field == i;
                let mut spans = vec![Span::raw(format!("{label:>10}: "))];
                if focused {
                    let style = Style::new().fg(Color::White).bold().underlined();
                    spans.extend(with_cursor(&value, form.back, style));
                } else {
                    spans.push(Span::raw(value));
                }
                Line::from(spans)
            };
            let mut lines = vec![
                field(0, "Server", form.server.clone()),
                field(1, "User", form.user.clone()),
                field(2, "Password", "•".repeat(form.password.chars().count())),
                Line::from(""),
            ];
            if !form.recent.is_empty() {
                let recent: Vec<String> = form
                    .recent
                    .iter()
                    .take(4)
                    .map(|(s, u)| format!("{u}@{s}"))
                    .collect();
                lines.push(Line::from(format!(
                    "Recent (F2 cycles): {}",
                    recent.join(", ")
                )));
            }
            lines.extend(super::bookmarks::form_line(&app.places.list));
            if let Some(e) = &form.error {
                // Multi-line errors (a changed certificate) keep their lines.
                lines.extend(
                    e.lines()
                        .map(|l| Line::styled(l.to_string(), Style::new().fg(Color::Red))),
                );
            }
            if app.link == Link::Connecting {
                lines.push(Line::styled("connecting…", Style::new().fg(Color::Yellow)));
            }
            draw_box(
                f,
                "Connect to a Ferry server",
                lines,
                keys(&[
                    ("Tab", "next field"),
                    ("Enter", "connect"),
                    ("Esc", "stay offline"),
                ]),
                72,
                Color::Cyan,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_in_display_columns() {
        let rows = wrap(&Line::from("the connection was lost: 日本語 words"), 12);
        let text: Vec<String> = rows.iter().map(|l| l.to_string()).collect();
        assert_eq!(text, ["the ", "connection ", "was lost: ", "日本語 words"]);
        for l in &rows {
            assert!(l.width() <= 12, "{l}");
        }
    }
}
