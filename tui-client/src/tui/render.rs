//! Drawing. `render` takes `&App` and only draws: every figure it shows
//! was computed by `update` or is derived here without side effects.

use ferry_proto::msg::EntryKind;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Gauge, Paragraph, Wrap};
use ratatui::Frame;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::app::{App, Focus, Link};
use super::layout::{fkey_cells, KEYBAR};
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
    if let Some(v) = &app.viewer {
        super::viewer::draw::draw(v, f);
        if let Some(d) = &app.dialog {
            super::draw_dialog::draw_dialog(app, d, f);
        }
        return;
    }
    let a = app.areas();
    draw_pane(app, f, Side::Local, a.local, a.local_rows);
    draw_pane(app, f, Side::Remote, a.remote, a.remote_rows);
    draw_queue(app, f, a.queue, a.queue_rows);
    draw_message(app, f, a.message);
    draw_keys(f, a.keys);
    if let Some(d) = &app.dialog {
        super::draw_dialog::draw_dialog(app, d, f);
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
    let mut flags = format!(" sort:{sort}{} ", if p.reverse { "↑" } else { "" });
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
    let [name_w, size_w, time_w] = super::layout::columns(inner_w);
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
            .map(|row| entry_line(p, row, focused, app.comparison(), [name_w, size_w, time_w]))
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
    // The entries shown; hidden ones are counted apart.
    let shown = p.len() - usize::from(!p.at_root);
    let hidden = match p.hidden_count() {
        0 => String::new(),
        n => format!("(+{n} hidden) "),
    };
    if p.loading {
        left.push(Span::styled(
            format!("⟳ loading… {shown} entries {hidden}"),
            Style::new().fg(Color::Yellow),
        ));
    } else {
        left.push(Span::raw(format!("{shown} entries {hidden}")));
    }
    if n > 0 {
        left.push(Span::styled(
            format!("{n} marked, {} ", human(bytes)),
            Style::new().fg(Color::Magenta).bold(),
        ));
    }
    if let Some(c) = app.comparison() {
        left.push(Span::styled(
            format!("{} differ ", c.shown_on(side)),
            Style::new().fg(Color::LightRed),
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

fn entry_line(
    p: &Pane,
    row: usize,
    focused: bool,
    cmp: Option<&super::compare::Comparison>,
    [name_w, size_w, time_w]: [usize; 3],
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
            let badge = cmp.and_then(|c| c.badge(p.side, &e.name));
            if badge.is_some() {
                style = style.fg(Color::LightRed);
            }
            if marked {
                style = style.fg(Color::Yellow).add_modifier(Modifier::BOLD);
            }
            let size = if e.kind == EntryKind::Dir {
                "DIR".to_string()
            } else {
                human(e.size)
            };
            let mark = match (marked, badge) {
                (true, _) => '*',
                (false, Some(b)) => b,
                _ => ' ',
            };
            (
                format!("{mark}{}{suffix}", crate::display::escape(&e.name)),
                size,
                format_time(e.mtime),
                style,
            )
        }
    };
    // Columns in display widths: CJK and emoji take two columns each.
    let text = format!(
        "{}{}{}",
        fit(&name, name_w),
        fit_right(&size, size_w),
        fit_right(&time, time_w)
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

/// `s` cut to `w` display columns (wide characters count two), with `…`
/// where it was cut.
pub fn truncate(s: &str, w: usize) -> String {
    if s.width() <= w {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > w {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}

/// `s` cut or padded to exactly `w` display columns.
pub fn fit(s: &str, w: usize) -> String {
    let mut out = truncate(s, w);
    let pad = w.saturating_sub(out.width());
    out.extend(std::iter::repeat_n(' ', pad));
    out
}

/// `s` right-aligned in `w` display columns.
fn fit_right(s: &str, w: usize) -> String {
    let t = truncate(s, w);
    format!("{}{t}", " ".repeat(w.saturating_sub(t.width())))
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
    t.push_str(&queue_limits(q));
    if app.follow_links {
        t.push_str(" · links followed (L)");
    }
    if app.sync_browse {
        t.push_str(" · browsing in step (Ctrl-Y)");
    }
    t.push(' ');
    let hint = queue_hint(focused, area.width as usize, t.chars().count());
    let block = Block::bordered()
        .border_style(if focused {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new().fg(Color::DarkGray)
        })
        .title(Line::from(t).bold())
        .title(Line::from(hint).alignment(Alignment::Right));
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
    let offset = app.queue_view_offset();
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
        let arrow = if job.spec.direction == Direction::Put {
            "↑"
        } else {
            "↓"
        };
        let name = crate::display::escape(&job.source).into_owned();
        let (state, color) = match &job.state {
            JobState::Queued => match job.waits_for(q.login.as_deref()) {
                Some(login) => (format!("waits for {login}"), Color::DarkGray),
                None => ("queued".to_string(), Color::DarkGray),
            },
            JobState::Running => ("".to_string(), Color::Cyan),
            JobState::Done => ("done ✓".to_string(), Color::Green),
            JobState::Failed(e) => (format!("failed: {e}"), Color::Red),
            JobState::Cancelled => ("cancelled".to_string(), Color::Yellow),
            JobState::Paused => (paused_figures(job), Color::Yellow),
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
                job_figures(job, app.now)
            } else {
                done_figures(job)
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
    let o = q.overall(app.now);
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

/// The queue's key hint, as much as fits beside its title.
fn queue_hint(focused: bool, width: usize, title: usize) -> &'static str {
    if !focused {
        return " F9 ";
    }
    [
        " c cancel · r retry · p pause · K/J move · [ ] jobs · l limit · x clear ",
        " c cancel · r retry · p pause · l limit ",
        " F1 keys ",
    ]
    .into_iter()
    .find(|h| title + h.chars().count() + 4 <= width)
    .unwrap_or("")
}

/// The queue title's limits: paused jobs, jobs at once, the speed limit.
fn queue_limits(q: &super::queue::Queue) -> String {
    let paused = q
        .jobs
        .iter()
        .filter(|j| j.state == JobState::Paused)
        .count();
    let mut t = String::new();
    if paused > 0 {
        t.push_str(&format!(", {paused} paused"));
    }
    // An empty queue at the defaults has nothing to say.
    if q.jobs.is_empty() && q.parallel == super::queue::DEFAULT_PARALLEL && q.rate == 0 {
        return t;
    }
    t.push_str(&format!(" · {} at once", q.parallel));
    if q.rate > 0 {
        t.push_str(&format!(" · limit {}/s", human(q.rate)));
    }
    t
}

/// A paused job's row: how far it got.
fn paused_figures(job: &super::queue::Job) -> String {
    let o = job.overall();
    if o.total == 0 {
        return "paused (p resumes)".into();
    }
    let pct = (o.done as f64 / o.total as f64 * 100.0).clamp(0.0, 100.0);
    format!(
        "paused at {pct:.0}%  {}/{}  (p resumes)",
        human(o.done),
        human(o.total)
    )
}

/// A running job's gauge text: percent, bytes, and its speed and ETA, or
/// how long it has been stalled (the last speed would be a lie).
pub fn job_figures(job: &super::queue::Job, now: std::time::Instant) -> String {
    let o = job.overall();
    if let Some(bytes) = job.board.checking() {
        return format!("checking {} already there", human(bytes));
    }
    if let Some(what) = job.board.phase() {
        return format!("{what}…");
    }
    let pct = if o.total == 0 {
        100.0
    } else {
        (o.done as f64 / o.total as f64).clamp(0.0, 1.0) * 100.0
    };
    let speed = match job.stalled(now) {
        Some(d) => format!("stalled {} s", d.as_secs()),
        None => format!("{}/s ETA {}", human(o.rate as u64), eta(o.eta)),
    };
    format!("{pct:>3.0}% {}/{} {speed}", human(o.done), human(o.total))
}

/// A finished job's gauge text: what it copied, or, when it copied
/// nothing, why (its first warning: a skipped link, a special file).
pub fn done_figures(job: &super::queue::Job) -> String {
    let o = job.overall();
    match (o.files, job.board.warnings().first()) {
        (0, Some(why)) => format!("nothing copied: {}", crate::display::sanitize(why)),
        (0, None) => "nothing to copy ✓".to_string(),
        (1, _) => format!("1 file, {} done{} ✓", human(o.total), resumed(job)),
        (n, _) => format!("{n} files, {} done{} ✓", human(o.total), resumed(job)),
    }
}

/// ", N resumed" when the job continued from partial files.
fn resumed(job: &super::queue::Job) -> String {
    match job.board.resumed() {
        0 => String::new(),
        n => format!(", {} resumed", human(n)),
    }
}

fn draw_message(app: &App, f: &mut Frame, area: Rect) {
    let (text, style) = match &app.message {
        Some(m) if m.error => (
            format!(
                " ✗ {}  (Esc to dismiss)",
                crate::display::sanitize(&m.text.replace('\n', " "))
            ),
            Style::new().fg(Color::White).bg(Color::Red),
        ),
        Some(m) => (
            format!(" {}", crate::display::sanitize(&m.text.replace('\n', " "))),
            Style::new().fg(Color::Green),
        ),
        None => {
            // The full name of the entry under the cursor (a long one is
            // cut in its pane), and the server's identity on the right.
            let side = match app.focus {
                Focus::Pane(s) => s,
                Focus::Queue => Side::Local,
            };
            let current = app
                .pane(side)
                .current()
                .map(|e| {
                    let size = if e.kind == EntryKind::Dir {
                        String::new()
                    } else {
                        format!("  {}", human(e.size))
                    };
                    format!(" {}{size}", crate::display::escape(&e.name))
                })
                .unwrap_or_default();
            let id = app
                .identity
                .as_ref()
                .map(|id| {
                    format!(
                        "{} · {} ",
                        id.fingerprint.as_deref().unwrap_or("no TLS"),
                        match id.trust {
                            crate::client::Trust::CaSigned => "CA-signed",
                            crate::client::Trust::Pinned => "pinned",
                            crate::client::Trust::NewlyTrusted => "newly trusted",
                            crate::client::Trust::Plaintext => "UNENCRYPTED",
                        }
                    )
                })
                .unwrap_or_default();
            let w = area.width as usize;
            let id_w = id.width();
            let line = if current.width() + id_w + 2 <= w {
                Line::from(vec![
                    Span::raw(fit(&current, w - id_w)),
                    Span::styled(id, Style::new().fg(Color::DarkGray)),
                ])
            } else {
                Line::from(truncate(&current, w))
            };
            f.render_widget(Paragraph::new(line), area);
            return;
        }
    };
    f.render_widget(Paragraph::new(text).style(style), area);
}

fn draw_keys(f: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for ((n, label, _), (_, w)) in KEYBAR.iter().zip(fkey_cells(area.width)) {
        let num = n.to_string();
        let room = (w as usize).saturating_sub(num.len());
        let text = truncate(label, room);
        spans.push(Span::styled(
            num.clone(),
            Style::new().fg(Color::White).bold(),
        ));
        spans.push(Span::styled(
            format!("{text:<room$}"),
            Style::new().fg(Color::Black).bg(Color::Cyan),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}
