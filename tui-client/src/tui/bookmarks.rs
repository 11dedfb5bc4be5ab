//! Named bookmarks of servers and directories: the name prompt (`B`),
//! the list (`b`, Ctrl-\) with jump, rename and delete, and their drawing.
//! They are stored by `config.rs`; `app/bookmarks.rs` applies them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub use super::config::Bookmark;
use super::text::{edit_line, Back};

/// Ctrl-\ (which terminals send as the byte crossterm reads as Ctrl-4).
pub fn is_list_key(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && matches!(key.code, KeyCode::Char('\\' | '4'))
}

/// A bookmark dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookmarkDialog {
    /// Naming the current place.
    Name(NameDialog),
    /// The list.
    List(ListDialog),
}

/// `B`: the name for the place being bookmarked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameDialog {
    /// The place (its name is the text once saved).
    pub place: Bookmark,
    /// The name typed.
    pub text: String,
    /// The cursor, in characters from the end.
    pub back: Back,
}

/// The list: one row per bookmark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListDialog {
    /// The bookmarks.
    pub items: Vec<Bookmark>,
    /// The selected row.
    pub at: usize,
    /// A new name being typed for the selected row.
    pub renaming: Option<(String, Back)>,
}

/// What a key did in a bookmark dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BookmarkOutcome {
    /// Still open.
    Open,
    /// Closed, nothing changed.
    Closed,
    /// Save this list (a bookmark added, renamed or deleted); the dialog
    /// stays open when it is the list.
    Save(Vec<Bookmark>),
    /// Go to this place.
    Jump(Bookmark),
}

impl NameDialog {
    /// A prompt for `place`, its name prefilled.
    pub fn new(place: Bookmark) -> NameDialog {
        NameDialog {
            text: place.name.clone(),
            place,
            back: 0,
        }
    }
}

impl BookmarkDialog {
    /// Handles one key; `list` is every bookmark (a name prompt adds to
    /// it, replacing one of the same name).
    pub fn key(&mut self, key: &KeyEvent, list: &[Bookmark]) -> BookmarkOutcome {
        match self {
            BookmarkDialog::Name(d) => match key.code {
                KeyCode::Esc => BookmarkOutcome::Closed,
                KeyCode::Enter => {
                    let name = d.text.trim();
                    if name.is_empty() {
                        return BookmarkOutcome::Open;
                    }
                    let mut place = d.place.clone();
                    place.name = name.to_string();
                    let mut all: Vec<Bookmark> = list
                        .iter()
                        .filter(|b| b.name != place.name)
                        .cloned()
                        .collect();
                    all.push(place);
                    BookmarkOutcome::Save(all)
                }
                _ => {
                    edit_line(&mut d.text, &mut d.back, key);
                    BookmarkOutcome::Open
                }
            },
            BookmarkDialog::List(d) => d.key(key),
        }
    }
}

impl ListDialog {
    fn key(&mut self, key: &KeyEvent) -> BookmarkOutcome {
        if let Some((text, back)) = &mut self.renaming {
            match key.code {
                KeyCode::Esc => self.renaming = None,
                KeyCode::Enter => {
                    let name = text.trim().to_string();
                    self.renaming = None;
                    let taken = self.items.iter().any(|b| b.name == name);
                    if let (false, false, Some(b)) =
                        (name.is_empty(), taken, self.items.get_mut(self.at))
                    {
                        b.name = name;
                        return BookmarkOutcome::Save(self.items.clone());
                    }
                }
                _ => {
                    edit_line(text, back, key);
                }
            }
            return BookmarkOutcome::Open;
        }
        let last = self.items.len().saturating_sub(1);
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return BookmarkOutcome::Closed,
            _ if is_list_key(key) => return BookmarkOutcome::Closed,
            KeyCode::Up | KeyCode::Char('k') => self.at = self.at.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.at = (self.at + 1).min(last),
            KeyCode::Home => self.at = 0,
            KeyCode::End => self.at = last,
            KeyCode::Enter => {
                if let Some(b) = self.items.get(self.at) {
                    return BookmarkOutcome::Jump(b.clone());
                }
            }
            KeyCode::Char('r') | KeyCode::F(2) => {
                if let Some(b) = self.items.get(self.at) {
                    self.renaming = Some((b.name.clone(), 0));
                }
            }
            KeyCode::Char('d') | KeyCode::Delete | KeyCode::F(8) if self.at < self.items.len() => {
                self.items.remove(self.at);
                self.at = self.at.min(self.items.len().saturating_sub(1));
                return BookmarkOutcome::Save(self.items.clone());
            }
            _ => {}
        }
        BookmarkOutcome::Open
    }
}

/// Where a bookmark leads, as one line.
pub fn describe(b: &Bookmark) -> String {
    format!(
        "{}@{}:{}  ⇄  {}",
        b.user,
        b.server,
        crate::display::escape(&b.remote_dir),
        crate::display::escape(&b.local_dir)
    )
}

fn keys(pairs: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, what) in pairs {
        if !spans.is_empty() {
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

/// Draws a bookmark dialog.
pub fn draw(d: &BookmarkDialog, f: &mut Frame) {
    use super::draw_dialog::{draw_box, with_cursor};
    let bold = Style::new().fg(Color::White).bold();
    match d {
        BookmarkDialog::Name(d) => {
            let mut line = vec![Span::raw("> ")];
            line.extend(with_cursor(&d.text, d.back, bold));
            let lines = vec![Line::from(describe(&d.place)), Line::from(line)];
            let k = keys(&[("Enter", "save"), ("Esc", "cancel")]);
            draw_box(f, "Bookmark this place as", lines, k, 70, Color::Cyan);
        }
        BookmarkDialog::List(d) => {
            let mut lines = Vec::new();
            if d.items.is_empty() {
                lines.push(Line::from(
                    "No bookmarks yet: B bookmarks the place you are in.",
                ));
            }
            let width = d.items.iter().map(|b| b.name.chars().count()).max();
            let width = width.unwrap_or(0).min(24);
            for (i, b) in d.items.iter().enumerate() {
                let selected = i == d.at;
                let name = match (&d.renaming, selected) {
                    (Some((text, back)), true) => {
                        let mut s = with_cursor(text, *back, bold);
                        s.push(Span::raw("  "));
                        s
                    }
                    _ => vec![Span::raw(format!(
                        "{:<width$}  ",
                        crate::display::escape(&b.name)
                    ))],
                };
                let mut spans = vec![Span::raw(if selected { "▸ " } else { "  " })];
                spans.extend(name);
                spans.push(Span::raw(describe(b)));
                let style = if selected {
                    Style::new().fg(Color::Black).bg(Color::Cyan)
                } else {
                    Style::new()
                };
                lines.push(Line::from(spans).style(style));
            }
            let k = if d.renaming.is_some() {
                keys(&[("Enter", "rename"), ("Esc", "back")])
            } else {
                keys(&[
                    ("Enter", "go"),
                    ("r", "rename"),
                    ("d", "delete"),
                    ("Esc", "close"),
                ])
            };
            draw_box(f, "Bookmarks", lines, k, 90, Color::Cyan);
        }
    }
}

/// The connect form's line about bookmarks, when there are any.
pub fn form_line(list: &[Bookmark]) -> Option<Line<'static>> {
    if list.is_empty() {
        return None;
    }
    let names: Vec<String> = list
        .iter()
        .take(4)
        .map(|b| crate::display::escape(&b.name).into_owned())
        .collect();
    Some(Line::from(format!(
        "Bookmarks (Ctrl-\\ lists): {}",
        names.join(", ")
    )))
}

/// Saves the list (on the blocking pool); a failure is reported.
pub fn save(list: Vec<Bookmark>, tx: tokio::sync::mpsc::UnboundedSender<super::action::Action>) {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = super::config::save_bookmarks(list) {
            tracing::warn!("bookmarks not saved: {e}");
            let _ = tx.send(super::action::Action::OpFailed(format!(
                "bookmarks not saved: {e}"
            )));
        }
    });
}
