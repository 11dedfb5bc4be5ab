//! Find (Ctrl-F, Alt+F7): the form (a glob, optional sizes, newer than),
//! the results panel over the pane (arrows move, Enter goes to the entry,
//! Esc stops the search, then closes), and the filters a local search
//! applies as the server does. No I/O here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crossterm::event::{KeyCode, KeyEvent};
use ferry_proto::msg::{Entry, EntryKind};
use ferry_proto::size::parse_size;

use super::pane::Side;
use super::text::{edit_line, Back};
use crate::client::FindQuery;

pub mod draw;
pub mod run;
#[cfg(test)]
mod tests;

/// Matches kept by one search, at most (the rest is said to be left).
pub const MAX_RESULTS: usize = 10_000;

static IDS: AtomicU64 = AtomicU64::new(1);

/// A number for a new search (answers of older ones are dropped).
pub fn next_id() -> u64 {
    IDS.fetch_add(1, Ordering::Relaxed)
}

/// The form's fields.
pub const LABELS: [&str; 4] = ["Name (glob)", "Min size", "Max size", "Newer than"];

/// The find form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindForm {
    /// The pane searched.
    pub side: Side,
    /// Its directory: the top of the search.
    pub dir: String,
    /// The pattern, min size, max size, newer than.
    pub fields: [String; 4],
    /// The field with the cursor.
    pub field: usize,
    /// The cursor within it.
    pub back: Back,
    /// What was wrong with the last Enter.
    pub error: Option<String>,
}

/// A search's results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindPanel {
    /// Which search (news of others are dropped).
    pub id: u64,
    /// The pane searched.
    pub side: Side,
    /// The top of the search.
    pub dir: String,
    /// What was asked, for the title.
    pub query: FindQuery,
    /// Matches: each `name` is a full path (for a local search, made
    /// readable: only for showing).
    pub results: Vec<Entry>,
    /// A local search's real paths, one per result (none for the server).
    pub paths: Vec<PathBuf>,
    /// The selected row.
    pub cursor: usize,
    /// How the search stands.
    pub state: State,
}

/// How a search stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Still looking.
    Searching,
    /// Looked at everything under the directory.
    Complete,
    /// Stopped before the end: why.
    Incomplete(String),
    /// Failed: why.
    Failed(String),
}

/// The find dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Find {
    /// The form.
    Form(FindForm),
    /// The results.
    Panel(FindPanel),
}

/// What happened in a search, for the panel.
#[derive(Clone, Debug)]
pub enum Event {
    /// More matches of a search on the server.
    Batch(Vec<Entry>),
    /// More matches of a local search, each with its real path (a name
    /// need not be UTF-8).
    Local(Vec<(Entry, PathBuf)>),
    /// The end: `None` when the whole tree was looked at, else why not.
    Done(Option<String>),
    /// It failed.
    Failed(String),
}

/// What a key did to the form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormOutcome {
    /// Still filling it in.
    Editing,
    /// Esc.
    Cancelled,
    /// Enter, with a valid query.
    Search(FindQuery),
}

impl FindForm {
    /// A form for searching under `dir`, the pattern `*`.
    pub fn new(side: Side, dir: String) -> FindForm {
        FindForm {
            side,
            dir,
            fields: ["*".into(), String::new(), String::new(), String::new()],
            field: 0,
            back: 0,
            error: None,
        }
    }

    /// Handles a key: Tab and arrows move between fields.
    pub fn key(&mut self, key: &KeyEvent) -> FormOutcome {
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancelled,
            KeyCode::Enter => match self.query() {
                Ok(q) => return FormOutcome::Search(q),
                Err(e) => self.error = Some(e),
            },
            KeyCode::Tab | KeyCode::Down => {
                self.field = (self.field + 1) % LABELS.len();
                self.back = 0;
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.field = (self.field + LABELS.len() - 1) % LABELS.len();
                self.back = 0;
            }
            _ => {
                if let Some(f) = self.fields.get_mut(self.field) {
                    edit_line(f, &mut self.back, key);
                }
            }
        }
        FormOutcome::Editing
    }

    /// The query the fields say, or what is wrong with them.
    pub fn query(&self) -> Result<FindQuery, String> {
        let [pattern, min, max, newer] = &self.fields;
        let pattern = pattern.trim();
        let pattern = if pattern.is_empty() { "*" } else { pattern };
        glob(pattern)?;
        let size = |s: &str| -> Result<Option<u64>, String> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                parse_size(s).map(Some)
            }
        };
        let newer = newer.trim();
        let q = FindQuery {
            pattern: pattern.to_string(),
            min_size: size(min)?,
            max_size: size(max)?,
            newer: if newer.is_empty() {
                None
            } else {
                Some(crate::cli::tools::parse_when(newer)?)
            },
            older: None,
        };
        if let (Some(a), Some(b)) = (q.min_size, q.max_size) {
            if a > b {
                return Err("the min size is above the max size".into());
            }
        }
        Ok(q)
    }
}

/// A pattern compiled as the server compiles it: `*` never crosses `/`,
/// `\` escapes.
pub fn glob(pattern: &str) -> Result<globset::GlobMatcher, String> {
    if pattern.len() > ferry_proto::msg::FIND_PATTERN_MAX {
        return Err("the pattern is too long".into());
    }
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("pattern: {e}"))
}

/// Whether an entry whose name matched passes the filters (the server's
/// rule: sizes select regular files; times are strict).
pub fn keeps(q: &FindQuery, e: &Entry) -> bool {
    let sized = q.min_size.is_some() || q.max_size.is_some();
    if sized
        && (e.kind != EntryKind::File
            || q.min_size.is_some_and(|m| e.size < m)
            || q.max_size.is_some_and(|m| e.size > m))
    {
        return false;
    }
    !(q.newer.is_some_and(|t| e.mtime <= t) || q.older.is_some_and(|t| e.mtime >= t))
}

/// What a key did to the panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PanelOutcome {
    /// Still open.
    Stay,
    /// Esc while searching: stop it, keep what was found.
    Stop,
    /// Esc once stopped: close.
    Close,
    /// Enter: go to this entry's directory, cursor on it.
    Jump {
        /// Its directory.
        dir: String,
        /// Its name.
        name: String,
        /// A local result's real directory.
        local: Option<PathBuf>,
    },
}

/// `/a/b/c` → (`/a/b`, `c`); `/c` → (`/`, `c`).
pub fn split_path(path: &str) -> Option<(String, String)> {
    let (dir, name) = path.rsplit_once('/')?;
    if name.is_empty() {
        return None;
    }
    let dir = if dir.is_empty() { "/" } else { dir };
    Some((dir.to_string(), name.to_string()))
}

impl FindPanel {
    /// A panel for a search just started.
    pub fn new(id: u64, side: Side, dir: String, query: FindQuery) -> FindPanel {
        FindPanel {
            id,
            side,
            dir,
            query,
            results: Vec::new(),
            paths: Vec::new(),
            cursor: 0,
            state: State::Searching,
        }
    }

    /// Applies news of the search.
    pub fn apply(&mut self, event: Event) {
        if self.state != State::Searching {
            return;
        }
        match event {
            Event::Batch(mut b) => {
                let room = MAX_RESULTS.saturating_sub(self.results.len());
                b.truncate(room);
                self.results.extend(b);
            }
            Event::Local(mut b) => {
                let room = MAX_RESULTS.saturating_sub(self.results.len());
                b.truncate(room);
                for (e, path) in b {
                    self.results.push(e);
                    self.paths.push(path);
                }
            }
            Event::Done(None) => self.state = State::Complete,
            Event::Done(Some(why)) => self.state = State::Incomplete(why),
            Event::Failed(e) => self.state = State::Failed(e),
        }
    }

    /// Handles a key; `page` is the rows shown.
    pub fn key(&mut self, key: &KeyEvent, page: usize) -> PanelOutcome {
        let page = page.max(1) as isize;
        let delta = match key.code {
            KeyCode::Esc if self.state == State::Searching => {
                self.state = State::Incomplete("stopped".into());
                return PanelOutcome::Stop;
            }
            KeyCode::Esc | KeyCode::F(10) => return PanelOutcome::Close,
            KeyCode::Enter => {
                if let Some(path) = self.paths.get(self.cursor) {
                    return match (path.parent(), path.file_name()) {
                        (Some(dir), Some(name)) => PanelOutcome::Jump {
                            dir: dir.display().to_string(),
                            name: name.to_string_lossy().into_owned(),
                            local: Some(dir.to_path_buf()),
                        },
                        _ => PanelOutcome::Stay,
                    };
                }
                return match self
                    .results
                    .get(self.cursor)
                    .and_then(|e| split_path(&e.name))
                {
                    Some((dir, name)) => PanelOutcome::Jump {
                        dir,
                        name,
                        local: None,
                    },
                    None => PanelOutcome::Stay,
                };
            }
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::PageUp => -page,
            KeyCode::PageDown => page,
            KeyCode::Home | KeyCode::Char('g') => isize::MIN / 2,
            KeyCode::End | KeyCode::Char('G') => isize::MAX / 2,
            _ => 0,
        };
        let last = self.results.len().saturating_sub(1) as isize;
        self.cursor = (self.cursor as isize + delta).clamp(0, last) as usize;
        PanelOutcome::Stay
    }

    /// A result's path shown from the top of the search.
    pub fn shown<'a>(&self, path: &'a str) -> &'a str {
        let top = self.dir.trim_end_matches('/');
        path.strip_prefix(top)
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or(path)
    }
}
