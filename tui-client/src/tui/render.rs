//! Drawing. `render` takes `&App` and only draws: every figure it shows
//! was computed by `update` or is derived here without side effects.

use ferry_proto::msg::EntryKind;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{queue_offset, App, Focus, Link};
use super::dialog::{Dialog, InputKind};
use super::layout::{fkey_width, FKEYS};
use super::pane::{Pane, Side, SortKey, PARENT};
use super::queue::JobState;
use crate::cli::output::format_time;
use crate::transfer::Direction;

/// `1.5 MiB` style sizes.
pub fn human(bytes: u64) -> String {
    ferry_proto::size::format_size(bytes)
}

fn eta(d: Option<std::time::Duration>) -> String {
    match d {
        Some(d) => {
            let s = d.as_secs();
            if s >= 3600 {
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{}:{:02}", s / 60, s % 60)
            }
        }
        None => "--:--".into(),
    }
}

/// Draws the whole screen.
pub fn render(app: &App, f: &mut Frame) {
    let a = app.areas();
    draw_pane(app, f, Side::Local, a.local, a.local_rows);
    draw_pane(app, f, Side::Remote, a.remote, a.remote_rows);
    draw_queue(app, f, a.queue, a.queue_rows);
    draw_message(app, f, a.message);
    draw_keys(f, a.keys);
    if let Some(d) = &app.dialog {
        draw_dialog(app, d, f);
    }
}

fn title(app: &App, side: Side) -> String {
    let p = app.pane(side);
    match side {
        Side::Local => format!(" Local: {} ", p.path),
        Side::Remote => match &app.link {
            Link::Online(label) => format!(" {label}:{} ", p.path),
            Link::Connecting => " Remote: connecting… ".into(),
            Link::Lost(_) => " Remote: connection lost ".into(),
            Link::Offline => " Remote: not connected ".into(),
        },
    }
}

fn draw_pane(app: &App, f: &mut Frame, side: Side, area: Rect, rows: Rect) {
    let p = app.pane(side);
    let focused = app.focus == Focus::Pane(side);
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let mut block = Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(Line::from(title(app, side)).bold());
    let sort = match p.sort {
        SortKey::Name => "name",
        SortKey::Size => "size",
        SortKey::Time => "time",
    };
    let mut flags = format!(" sort:{sort} ");
    if p.show_hidden {
        flags.push_str("hidden ");
    }
    block = block.title(Line::from(flags).alignment(Alignment::Right));
    f.render_widget(block, area);
    if area.width < 4 || area.height < 4 {
        return;
    }
    let inner_w = area.width.saturating_sub(2);
    let header = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: inner_w,
        height: 1,
    };
    let [name_w, size_w, time_w] = columns(inner_w);
    let head = format!(
        "{:<name_w$}{:>size_w$}{:>time_w$}",
        "Name",
        "Size",
        "Modified",
        name_w = name_w,
        size_w = size_w,
        time_w = time_w
    );
    f.render_widget(
        Paragraph::new(head).style(Style::new().fg(Color::Yellow).bold()),
        header,
    );

    if let Some(err) = &p.error {
        f.render_widget(
            Paragraph::new(err.as_str())
                .style(Style::new().fg(Color::Red))
                .wrap(Wrap { trim: true }),
            rows,
        );
    } else {
        let lines: Vec<Line> = (p.offset..(p.offset + rows.height as usize).min(p.len()))
            .map(|row| entry_line(p, row, focused, name_w, size_w, time_w))
            .collect();
        f.render_widget(Paragraph::new(lines), rows);
        if p.is_empty() && !p.loading {
            f.render_widget(
                Paragraph::new("(empty)").style(Style::new().fg(Color::DarkGray)),
                rows,
            );
        }
    }

    // Footer: marks, filter, loading, quota.
    let footer = Rect {
        x: area.x + 1,
        y: area.y + area.height.saturating_sub(2),
        width: inner_w,
        height: 1,
    };
    let (n, bytes) = p.marked_summary();
    let mut left = vec![];
    if p.loading {
        left.push(Span::styled(
            format!("⟳ loading… {} entries ", p.entries.len()),
            Style::new().fg(Color::Yellow),
        ));
    } else {
        left.push(Span::raw(format!("{} entries ", p.entries.len())));
    }
    if n > 0 {
        left.push(Span::styled(
            format!("{n} marked, {} ", human(bytes)),
            Style::new().fg(Color::Magenta).bold(),
        ));
    }
    if let Some(filter) = &p.filter {
        let cursor = if app.filtering && focused { "▏" } else { "" };
        left.push(Span::styled(
            format!("filter: {filter}{cursor} "),
            Style::new().fg(Color::Cyan),
        ));
    }
    if side == Side::Remote {
        if let Some((used, limit)) = app.quota {
            let right_w = 28.min(inner_w / 2);
            let [l, r] =
                Layout::horizontal([Constraint::Min(1), Constraint::Length(right_w)]).areas(footer);
            f.render_widget(Paragraph::new(Line::from(left)), l);
            match limit {
                Some(limit) if limit > 0 => {
                    let ratio = (used as f64 / limit as f64).clamp(0.0, 1.0);
                    let color = if ratio > 0.9 {
                        Color::Red
                    } else {
                        Color::Green
                    };
                    let gauge = Gauge::default()
                        .gauge_style(Style::new().fg(color).bg(Color::Black))
                        .ratio(ratio)
                        .label(format!("{}/{}", human(used), human(limit)));
                    f.render_widget(gauge, r);
                }
                _ => f.render_widget(
                    Paragraph::new(format!("used {}", human(used))).alignment(Alignment::Right),
                    r,
                ),
            }
            return;
        }
    }
    f.render_widget(Paragraph::new(Line::from(left)), footer);
}

fn columns(width: u16) -> [usize; 3] {
    let w = width as usize;
    let time_w = if w >= 40 { 17 } else { 0 };
    let size_w = if w >= 30 { 11 } else { 0 };
    [w.saturating_sub(time_w + size_w), size_w, time_w]
}

fn entry_line(
    p: &Pane,
    row: usize,
    focused: bool,
    name_w: usize,
    size_w: usize,
    time_w: usize,
) -> Line<'static> {
    let cursor = row == p.cursor;
    let (name, size, time, style) = match p.row(row) {
        None => (
            format!("{PARENT}/"),
            "UP--DIR".to_string(),
            String::new(),
            Style::new().fg(Color::Blue).bold(),
        ),
        Some(e) => {
            let marked = p.marked.contains(&e.name);
            let (suffix, mut style) = match e.kind {
                EntryKind::Dir => ("/", Style::new().fg(Color::Blue).bold()),
                EntryKind::Symlink => ("@", Style::new().fg(Color::Cyan)),
                EntryKind::Other => ("|", Style::new().fg(Color::Red)),
                EntryKind::File => ("", Style::new()),
            };
            if marked {
                style = style.fg(Color::Yellow).add_modifier(Modifier::BOLD);
            }
            let size = if e.kind == EntryKind::Dir {
                "DIR".to_string()
            } else {
                human(e.size)
            };
            let mark = if marked { "*" } else { " " };
            (
                format!("{mark}{}{suffix}", e.name),
                size,
                format_time(e.mtime),
                style,
            )
        }
    };
    let name: String = truncate(&name, name_w);
    let text = format!(
        "{name:<name_w$}{size:>size_w$}{time:>time_w$}",
        name_w = name_w,
        size_w = size_w,
        time_w = time_w
    );
    let style = if cursor && focused {
        style.bg(Color::Cyan).fg(Color::Black)
    } else if cursor {
        style.add_modifier(Modifier::REVERSED)
    } else {
        style
    };
    Line::styled(text, style)
}

fn truncate(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn draw_queue(app: &App, f: &mut Frame, area: Rect, rows: Rect) {
    let q = &app.queue;
    let focused = app.focus == Focus::Queue;
    let running = q
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Running)
        .count();
    let queued = q
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Queued)
        .count();
    let failed = q
        .jobs
        .iter()
        .filter(|j| matches!(j.state, JobState::Failed(_)))
        .count();
    let mut t = format!(" Transfers: {running} running, {queued} queued");
    if failed > 0 {
        t.push_str(&format!(", {failed} failed"));
    }
    t.push(' ');
    let block = Block::bordered()
        .border_style(if focused {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new().fg(Color::DarkGray)
        })
        .title(Line::from(t).bold())
        .title(
            Line::from(if focused {
                " c cancel · r retry · x clear done "
            } else {
                " F9 "
            })
            .alignment(Alignment::Right),
        );
    f.render_widget(block, area);
    if area.height < 3 {
        return;
    }
    if q.jobs.is_empty() {
        f.render_widget(
            Paragraph::new("No transfers. Mark files and press F5 to copy them to the other pane.")
                .style(Style::new().fg(Color::DarkGray)),
            Rect { height: 1, ..rows },
        );
        return;
    }
    let offset = queue_offset(q.selected, rows.height as usize);
    for (i, job) in q
        .jobs
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows.height as usize)
    {
        let y = rows.y + (i - offset) as u16;
        let row = Rect {
            x: rows.x,
            y,
            width: rows.width,
            height: 1,
        };
        let o = job.overall();
        let arrow = if job.direction == Direction::Put {
            "↑"
        } else {
            "↓"
        };
        let name = job
            .source
            .rsplit('/')
            .next()
            .unwrap_or(&job.source)
            .to_string();
        let (state, color) = match &job.state {
            JobState::Queued => ("queued".to_string(), Color::DarkGray),
            JobState::Running => ("".to_string(), Color::Cyan),
            JobState::Done => ("done ✓".to_string(), Color::Green),
            JobState::Failed(e) => (format!("failed: {e}"), Color::Red),
            JobState::Cancelled => ("cancelled".to_string(), Color::Yellow),
        };
        let label_w = (rows.width / 3).max(10);
        let [label, bar] =
            Layout::horizontal([Constraint::Length(label_w), Constraint::Min(10)]).areas(row);
        let mut style = Style::new().fg(color);
        if focused && i == q.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        f.render_widget(
            Paragraph::new(truncate(&format!("{arrow} {name}"), label_w as usize)).style(style),
            label,
        );
        if job.state == JobState::Running || job.state == JobState::Done {
            let ratio = if o.total == 0 {
                1.0
            } else {
                (o.done as f64 / o.total as f64).clamp(0.0, 1.0)
            };
            let text = if job.state == JobState::Running {
                format!(
                    "{:>3.0}% {}/{} {}/s ETA {}",
                    ratio * 100.0,
                    human(o.done),
                    human(o.total),
                    human(o.rate as u64),
                    eta(o.eta)
                )
            } else {
                format!("{} files, {} done ✓", o.files, human(o.total))
            };
            let gauge = Gauge::default()
                .gauge_style(Style::new().fg(color).bg(Color::Black))
                .ratio(ratio)
                .label(text);
            f.render_widget(gauge, bar);
        } else {
            f.render_widget(Paragraph::new(state).style(Style::new().fg(color)), bar);
        }
    }
    // The overall gauge on the last inner row.
    let total_row = Rect {
        x: rows.x,
        y: area.y + area.height - 2,
        width: rows.width,
        height: 1,
    };
    let o = q.overall();
    let ratio = if o.total == 0 {
        0.0
    } else {
        (o.done as f64 / o.total as f64).clamp(0.0, 1.0)
    };
    let label = format!(
        "Overall {:>3.0}%  {}/{}  {} of {} files  {}/s  ETA {}",
        ratio * 100.0,
        human(o.done),
        human(o.total),
        o.finished,
        o.files,
        human(o.rate as u64),
        eta(o.eta)
    );
    f.render_widget(
        Gauge::default()
            .gauge_style(Style::new().fg(Color::Magenta).bg(Color::Black))
            .ratio(ratio)
            .label(label),
        total_row,
    );
}

fn draw_message(app: &App, f: &mut Frame, area: Rect) {
    let (text, style) = match &app.message {
        Some(m) if m.error => (
            format!(" ✗ {}  (Esc to dismiss)", m.text.replace('\n', " ")),
            Style::new().fg(Color::White).bg(Color::Red),
        ),
        Some(m) => (
            format!(" {}", m.text.replace('\n', " ")),
            Style::new().fg(Color::Green),
        ),
        None => match &app.identity {
            Some(id) => (
                format!(
                    " {} · {}",
                    id.fingerprint.as_deref().unwrap_or("no TLS"),
                    match id.trust {
                        crate::client::Trust::CaSigned => "CA-signed certificate",
                        crate::client::Trust::Pinned => "pinned certificate",
                        crate::client::Trust::NewlyTrusted => "newly trusted certificate",
                        crate::client::Trust::Plaintext => "UNENCRYPTED",
                    }
                ),
                Style::new().fg(Color::DarkGray),
            ),
            None => (String::new(), Style::new()),
        },
    };
    f.render_widget(Paragraph::new(text).style(style), area);
}

fn draw_keys(f: &mut Frame, area: Rect) {
    let w = fkey_width(area.width) as usize;
    let mut spans = Vec::new();
    for (n, label) in FKEYS {
        let num = format!("{n}");
        let text = truncate(label, w.saturating_sub(num.len()));
        spans.push(Span::styled(
            num.clone(),
            Style::new().fg(Color::White).bold(),
        ));
        spans.push(Span::styled(
            format!("{text:<width$}", width = w.saturating_sub(num.len())),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

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

fn draw_box(f: &mut Frame, title: &str, lines: Vec<Line>, w: u16, color: Color) {
    // Long lines wrap: count the rows they take, so nothing is cut off.
    let inner = w.min(f.area().width).saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let h = rows as u16 + 2;
    let area = centered(f.area(), w, h);
    f.render_widget(Clear, area);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(color))
        .title(Line::from(format!(" {title} ")).bold());
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_dialog(app: &App, d: &Dialog, f: &mut Frame) {
    let key = |k: &str| Span::styled(k.to_string(), Style::new().fg(Color::Yellow).bold());
    match d {
        Dialog::Help => {
            let rows = [
                ("↑↓ j k PgUp PgDn Home End", "move"),
                ("Enter / Backspace", "open directory / go up"),
                ("Tab", "switch pane (and queue)"),
                ("Space Insert", "mark and move down"),
                ("Shift+↑↓", "extend the marked range"),
                ("* + -", "invert / mark all / unmark all"),
                (
                    "mouse",
                    "click, drag to mark, Ctrl+click, double-click, wheel",
                ),
                ("F2 s / F3 . / F4 /", "sort / hidden files / filter"),
                ("F5", "copy to the other pane (upload or download)"),
                ("F6 / F7 / F8 Del", "rename-move / mkdir / delete"),
                ("F9, then c r x", "queue: cancel, retry/resume, clear done"),
                ("Ctrl-R", "refresh"),
                ("F10 q", "quit"),
            ];
            let lines = rows
                .iter()
                .map(|(k, v)| Line::from(vec![key(&format!("{k:<28}")), Span::raw(*v)]))
                .collect();
            draw_box(f, "Help — any key closes", lines, 78, Color::Cyan);
        }
        Dialog::ConfirmQuit => {
            let n = app.queue.active();
            draw_box(
                f,
                "Quit?",
                vec![
                    Line::from(format!(
                        "{n} transfer(s) still running; partial files are kept for a later resume."
                    )),
                    Line::from(vec![
                        Span::raw("Quit now? "),
                        key("y"),
                        Span::raw(" / "),
                        key("n"),
                    ]),
                ],
                60,
                Color::Yellow,
            );
        }
        Dialog::Input { kind, side, text } => {
            let what = match kind {
                InputKind::Mkdir => "New directory".to_string(),
                InputKind::Rename { from } => format!("Rename or move {from}"),
            };
            let place = if *side == Side::Local {
                "local"
            } else {
                "remote"
            };
            draw_box(
                f,
                &format!("{what} ({place})"),
                vec![
                    Line::from(vec![
                        Span::raw("> "),
                        Span::styled(format!("{text}▏"), Style::new().fg(Color::White).bold()),
                    ]),
                    Line::from(vec![
                        key("Enter"),
                        Span::raw(" ok   "),
                        key("Esc"),
                        Span::raw(" cancel"),
                    ]),
                ],
                60,
                Color::Cyan,
            );
        }
        Dialog::ConfirmDelete { side, entries } => {
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
            let mut lines = vec![Line::from(format!(
                "Delete {} {place} entr{} ({} in files{})?",
                entries.len(),
                if entries.len() == 1 { "y" } else { "ies" },
                human(bytes),
                if dirs > 0 {
                    format!(
                        ", {dirs} director{} with everything inside",
                        if dirs == 1 { "y" } else { "ies" }
                    )
                } else {
                    String::new()
                }
            ))];
            for e in entries.iter().take(5) {
                lines.push(Line::from(format!(
                    "  {}{}",
                    e.name,
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
            lines.push(Line::from(vec![
                key("y"),
                Span::raw(" delete   "),
                key("n"),
                Span::raw("/"),
                key("Esc"),
                Span::raw(" keep"),
            ]));
            draw_box(f, "Delete", lines, 70, Color::Red);
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
                    item.entry.name, plan.to_dir
                )),
                Line::from(format!("  new:      {}", describe(&item.entry))),
                Line::from(format!("  existing: {}", describe(existing))),
                Line::from(""),
                Line::from(vec![
                    key("o"),
                    Span::raw(" overwrite  "),
                    key("s"),
                    Span::raw(" skip  "),
                    key("r"),
                    Span::raw(" resume  "),
                    key("n"),
                    Span::raw(" rename  "),
                    key("Esc"),
                    Span::raw(" cancel"),
                ]),
                Line::from(vec![
                    key("a"),
                    Span::raw(format!(" {all} apply to all remaining conflicts")),
                ]),
            ];
            draw_box(f, "Target exists", lines, 72, Color::Yellow);
        }
        Dialog::Trust {
            server,
            fingerprint,
        } => {
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
                Line::from(vec![
                    Span::raw("Trust it and remember it? "),
                    key("y"),
                    Span::raw(" / "),
                    key("n"),
                ]),
            ];
            draw_box(f, "Unknown server", lines, 78, Color::Yellow);
        }
        Dialog::Reconnect { reason } => {
            let lines = vec![
                Line::from(format!("The connection was lost: {reason}")),
                Line::from(
                    "Interrupted transfers resume from their partial files after reconnecting.",
                ),
                Line::from(vec![
                    key("r"),
                    Span::raw(" reconnect   "),
                    key("Esc"),
                    Span::raw(" stay offline   "),
                    key("q"),
                    Span::raw(" quit"),
                ]),
            ];
            draw_box(f, "Connection lost", lines, 76, Color::Red);
        }
        Dialog::Connect(form) => {
            let field = |i: usize, label: &str, value: String| {
                let focused = form.field == i;
                let v = if focused {
                    format!("{value}▏")
                } else {
                    value
                };
                Line::from(vec![
                    Span::raw(format!("{label:>10}: ")),
                    Span::styled(
                        v,
                        if focused {
                            Style::new().fg(Color::White).bold().underlined()
                        } else {
                            Style::new()
                        },
                    ),
                ])
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
            if let Some(e) = &form.error {
                // Multi-line errors (a changed certificate) keep their lines.
                lines.extend(
                    e.lines()
                        .map(|l| Line::styled(l.to_string(), Style::new().fg(Color::Red))),
                );
            }
            let status = if app.link == Link::Connecting {
                "connecting…"
            } else {
                ""
            };
            lines.push(Line::from(vec![
                key("Tab"),
                Span::raw(" next field  "),
                key("Enter"),
                Span::raw(" connect  "),
                key("Esc"),
                Span::raw(" quit  "),
                Span::raw(status),
            ]));
            draw_box(f, "Connect to a Ferry server", lines, 72, Color::Cyan);
        }
    }
}
