//! The F3 viewer: a file shown full screen as text (wrapped or not) or as
//! hex, read in blocks as it is looked at, so a 10 GiB log opens at once
//! and memory holds a few blocks whatever the size. The viewer owns its
//! state and keys; the reads and searches it asks for (`ViewWork`) run on
//! the runtime (`fetch.rs`) and come back as `ViewNews`.

pub mod cache;
pub mod draw;
pub mod fetch;
pub mod lines;

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::text::{edit_line, Back};
use cache::{BlockCache, Missing, BLOCK, CAPACITY};
use lines::{next_row, row_at, row_containing, Mode};

/// Where the file is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A local file, read with positioned reads.
    Local(PathBuf),
    /// A remote path, read by ranges (`Read`).
    Remote(String),
}

/// What to look for and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchSpec {
    /// The bytes to find.
    pub pattern: Vec<u8>,
    /// ASCII letters match either case (the pattern has no capital).
    pub ignore_case: bool,
    /// Forward: the first match at or after `from`; backward: the last
    /// one starting before it.
    pub from: u64,
    /// Looking back.
    pub backward: bool,
}

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewWork {
    /// Read `length` bytes at `offset`.
    Read {
        /// Which view.
        view: u64,
        /// The file.
        source: Source,
        /// Block index (the offset is `block * length`).
        block: u64,
        /// Bytes per block.
        length: u32,
    },
    /// Search in the background (one search at a time: a new one, or
    /// `Stop`, ends the one before).
    Search {
        /// Which view.
        view: u64,
        /// Which search of the view.
        search: u64,
        /// The file.
        source: Source,
        /// What and where.
        spec: SearchSpec,
    },
    /// Stop the running search.
    Stop,
}

/// What the runtime found.
#[derive(Clone, Debug)]
pub enum ViewNews {
    /// A block was read.
    Block {
        /// Which view.
        view: u64,
        /// Block index.
        block: u64,
        /// The bytes and the file's size then, or why not.
        result: Result<(Bytes, u64), String>,
    },
    /// A search went past `at`.
    Searching {
        /// Which view.
        view: u64,
        /// Which search.
        search: u64,
        /// How far it looked.
        at: u64,
    },
    /// A search ended: a match's offset, none, or why it failed.
    Found {
        /// Which view.
        view: u64,
        /// Which search.
        search: u64,
        /// The match's offset (None: not found).
        result: Result<Option<u64>, String>,
    },
}

/// The search line being typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Its text.
    pub text: String,
    /// The cursor, from the end.
    pub back: Back,
    /// `?`: look back.
    pub backward: bool,
    /// The top when it opened: each change of the text searches again
    /// from there, and Esc goes back there.
    pub origin: u64,
}

/// A search running in the background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Running {
    /// Its number.
    pub id: u64,
    /// How far it looked.
    pub at: u64,
    /// Looking back.
    pub backward: bool,
    /// What it looks for.
    pub text: String,
}

/// Moves not made yet because a block they need is being read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Goal {
    /// Put the top on the row holding this byte first.
    align: Option<u64>,
    /// Then move this many rows (negative: up).
    rows: isize,
}

/// What a key did to the viewer.
#[derive(Debug, PartialEq, Eq)]
pub enum ViewOutcome {
    /// It stays open; work for the runtime.
    Open(Vec<ViewWork>),
    /// It closes.
    Close,
}

/// Most bytes searched for.
pub const MAX_PATTERN: usize = 1024;

/// An open viewer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Viewer {
    /// Which view (stale news is dropped).
    pub id: u64,
    /// The name shown.
    pub name: String,
    /// The file.
    pub source: Source,
    /// The blocks held.
    pub cache: BlockCache,
    /// Text or hex.
    pub mode: Mode,
    /// Text mode wraps (kept while in hex).
    pub wrap: bool,
    /// The first byte of the top row.
    pub top: u64,
    /// Columns scrolled right (text without wrap).
    pub left: usize,
    /// The last match and its length, highlighted.
    pub found: Option<(u64, usize)>,
    /// The search being typed.
    pub prompt: Option<Prompt>,
    /// The search running.
    pub running: Option<Running>,
    /// The last search (n and N repeat it).
    pub query: Option<Prompt>,
    /// A note for the bottom line (errors in red).
    pub note: Option<(String, bool)>,
    goal: Goal,
    /// The mode was chosen (by the first block or the user).
    chosen: bool,
    pending: BTreeSet<u64>,
    failed: BTreeSet<u64>,
    searches: u64,
}

impl Viewer {
    /// A viewer of `source`, shown as `name`, `size` bytes as listed.
    pub fn new(id: u64, name: String, source: Source, size: u64) -> Viewer {
        Viewer {
            id,
            name,
            source,
            cache: BlockCache::new(BLOCK, CAPACITY, size),
            mode: Mode::Text { wrap: false },
            wrap: false,
            top: 0,
            left: 0,
            found: None,
            prompt: None,
            running: None,
            query: None,
            note: None,
            goal: Goal::default(),
            chosen: false,
            pending: BTreeSet::new(),
            failed: BTreeSet::new(),
            searches: 0,
        }
    }

    /// True until the first block came (nothing to show yet).
    pub fn loading(&self) -> bool {
        !self.chosen
    }

    /// A key, on a screen of `rows` text rows.
    pub fn key(&mut self, key: &KeyEvent, rows: usize) -> ViewOutcome {
        if let Some(mut p) = self.prompt.take() {
            return ViewOutcome::Open(self.prompt_key(&mut p, key));
        }
        self.note = None;
        self.failed.clear(); // a key retries reads that failed
        let page = rows.max(2) as isize - 1;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let mut work = Vec::new();
        match key.code {
            KeyCode::Esc if self.running.is_some() => {
                self.running = None;
                self.note = Some(("search stopped".into(), false));
                work.push(ViewWork::Stop);
            }
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::F(3) | KeyCode::F(10) => {
                return ViewOutcome::Close;
            }
            KeyCode::Char('b') if ctrl => self.goal.rows -= page,
            KeyCode::Char('f') if ctrl => self.goal.rows += page,
            KeyCode::Up | KeyCode::Char('k') => self.goal.rows -= 1,
            KeyCode::Down | KeyCode::Char('j') | KeyCode::Enter => self.goal.rows += 1,
            KeyCode::PageUp | KeyCode::Char('b') => self.goal.rows -= page,
            KeyCode::PageDown | KeyCode::Char(' ') => self.goal.rows += page,
            KeyCode::Home | KeyCode::Char('g') => self.goal = Goal::default().at(0),
            KeyCode::End | KeyCode::Char('G') => {
                self.goal = Goal {
                    align: Some(self.cache.size.saturating_sub(1)),
                    rows: -(rows.max(1) as isize - 1),
                };
            }
            KeyCode::Left if self.left > 0 => self.left = self.left.saturating_sub(8),
            KeyCode::Right if self.mode == (Mode::Text { wrap: false }) => self.left += 8,
            KeyCode::Char('w') | KeyCode::F(2) => {
                self.wrap = !self.wrap;
                if let Mode::Text { .. } = self.mode {
                    self.set_mode(Mode::Text { wrap: self.wrap });
                }
                self.left = 0;
            }
            KeyCode::Char('h') | KeyCode::F(4) => {
                let mode = match self.mode {
                    Mode::Hex => Mode::Text { wrap: self.wrap },
                    Mode::Text { .. } => Mode::Hex,
                };
                self.set_mode(mode);
            }
            KeyCode::Char('/') | KeyCode::Char('?') => {
                self.prompt = Some(Prompt {
                    backward: key.code == KeyCode::Char('?'),
                    origin: self.top,
                    ..Prompt::default()
                });
            }
            KeyCode::Char('n') | KeyCode::Char('N') => match self.query.clone() {
                Some(q) => {
                    let backward = q.backward != (key.code == KeyCode::Char('N'));
                    work.extend(self.search(&q.text, backward));
                }
                None => self.note = Some(("no search yet: / or ? starts one".into(), false)),
            },
            _ => {}
        }
        ViewOutcome::Open(work)
    }

    fn prompt_key(&mut self, p: &mut Prompt, key: &KeyEvent) -> Vec<ViewWork> {
        match key.code {
            KeyCode::Esc => self.back_to(p.origin),
            KeyCode::Enter if p.text.is_empty() => match self.query.clone() {
                // Enter alone repeats the last search this way.
                Some(q) => {
                    let text = q.text.clone();
                    self.query = Some(Prompt {
                        backward: p.backward,
                        ..q
                    });
                    self.search(&text, p.backward)
                }
                None => vec![],
            },
            KeyCode::Enter => {
                // The search typed is running or found already: it stands.
                self.query = Some(Prompt {
                    text: p.text.clone(),
                    back: 0,
                    backward: p.backward,
                    origin: p.origin,
                });
                vec![]
            }
            _ => {
                let before = p.text.clone();
                if p.text.len() < MAX_PATTERN || key.code == KeyCode::Backspace {
                    edit_line(&mut p.text, &mut p.back, key);
                }
                self.prompt = Some(p.clone());
                if p.text == before {
                    vec![]
                } else if p.text.is_empty() {
                    self.back_to(p.origin)
                } else {
                    // Incremental: each change searches again from the origin.
                    self.found = None;
                    self.search_from(&p.text, p.backward, p.origin)
                }
            }
        }
    }

    /// Goes back to `top` as it was, with no match and no search running.
    fn back_to(&mut self, top: u64) -> Vec<ViewWork> {
        self.goal = Goal::default().at(top);
        self.found = None;
        match self.running.take() {
            Some(_) => vec![ViewWork::Stop],
            None => vec![],
        }
    }

    /// Starts a search for `text` from the last match (or the top).
    fn search(&mut self, text: &str, backward: bool) -> Vec<ViewWork> {
        let from = match self.found {
            Some((m, _)) if m >= self.top => {
                if backward {
                    m
                } else {
                    m + 1
                }
            }
            _ => self.top,
        };
        self.search_from(text, backward, from)
    }

    /// Starts a search for `text` from byte `from`.
    fn search_from(&mut self, text: &str, backward: bool, from: u64) -> Vec<ViewWork> {
        if text.is_empty() {
            return vec![];
        }
        self.searches += 1;
        self.running = Some(Running {
            id: self.searches,
            at: from,
            backward,
            text: text.to_string(),
        });
        vec![ViewWork::Search {
            view: self.id,
            search: self.searches,
            source: self.source.clone(),
            spec: SearchSpec {
                pattern: text.as_bytes().to_vec(),
                ignore_case: !text.chars().any(|c| c.is_uppercase()),
                from,
                backward,
            },
        }]
    }

    fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.chosen = true;
        // Stay on the same bytes: the top row is the one holding them.
        let keep = self.goal.align.unwrap_or(self.top);
        self.goal = Goal::default().at(keep);
    }

    /// Applies what the runtime found.
    pub fn news(&mut self, news: ViewNews) {
        match news {
            ViewNews::Block {
                view,
                block,
                result,
            } if view == self.id => {
                self.pending.remove(&block);
                match result {
                    Ok((data, size)) => {
                        if block == 0 && !self.chosen {
                            self.chosen = true;
                            if looks_binary(&data) {
                                self.mode = Mode::Hex;
                            }
                        }
                        self.cache.insert(block, data, size, self.top);
                    }
                    Err(e) => {
                        self.chosen = true;
                        self.failed.insert(block);
                        self.note = Some((e, true));
                    }
                }
            }
            ViewNews::Searching { view, search, at } if view == self.id => {
                if let Some(r) = self.running.as_mut().filter(|r| r.id == search) {
                    r.at = at;
                }
            }
            ViewNews::Found {
                view,
                search,
                result,
            } if view == self.id => {
                let Some(done) = self.running.take_if(|r| r.id == search) else {
                    return;
                };
                let len = done.text.len();
                match result {
                    Ok(Some(at)) => {
                        self.found = Some((at, len));
                        self.goal = Goal::default().at(at);
                    }
                    Ok(None) => {
                        let q = crate::display::escape(&done.text);
                        self.note = Some((format!("not found: {q}"), false));
                    }
                    Err(e) => self.note = Some((format!("search failed: {e}"), true)),
                }
            }
            _ => {}
        }
    }

    /// Makes the moves it can with the blocks held, and asks for the
    /// blocks the moves and a screen of `rows` rows `width` wide need,
    /// and one block beyond.
    pub fn settle(&mut self, rows: usize, width: usize) -> Vec<ViewWork> {
        let mut want = Vec::new();
        if let Err(Missing(b)) = self.walk(width) {
            want.push(b);
        } else {
            let (shown, missing) = self.screen(rows, width);
            match missing {
                Some(Missing(b)) => want.push(b),
                None => {
                    // Read ahead past the last row shown.
                    let end = shown.last().map_or(0, |(s, len)| s + *len as u64);
                    let next = end / self.cache.block_size() + 1;
                    if next * self.cache.block_size() < self.cache.size {
                        want.push(next);
                    }
                }
            }
        }
        if !self.chosen && !self.cache.has(0) {
            want.insert(0, 0);
        }
        want.into_iter()
            .filter(|b| !self.cache.has(*b) && !self.failed.contains(b))
            .filter(|b| self.pending.insert(*b))
            .map(|block| ViewWork::Read {
                view: self.id,
                source: self.source.clone(),
                block,
                length: self.cache.block_size() as u32,
            })
            .collect()
    }

    /// Makes the pending moves, as far as the blocks held allow.
    fn walk(&mut self, width: usize) -> Result<(), Missing> {
        if !self.chosen {
            return Ok(()); // the mode is not known yet
        }
        let (c, mode) = (&self.cache, self.mode);
        if let Some(at) = self.goal.align {
            self.top = row_containing(c, at, mode, width)?;
            self.goal.align = None;
        }
        while self.goal.rows > 0 {
            match next_row(c, self.top, mode, width)? {
                Some(n) => {
                    self.top = n;
                    self.goal.rows -= 1;
                }
                None => self.goal.rows = 0,
            }
        }
        while self.goal.rows < 0 {
            if self.top == 0 {
                self.goal.rows = 0;
                break;
            }
            self.top = row_containing(c, self.top - 1, mode, width)?;
            self.goal.rows += 1;
        }
        Ok(())
    }

    /// The rows on a screen of `rows` rows from the top (start, bytes
    /// shown), and the block that stopped it short if one is not held.
    pub fn screen(&self, rows: usize, width: usize) -> (Vec<(u64, usize)>, Option<Missing>) {
        let mut out = Vec::with_capacity(rows);
        let mut at = Some(self.top);
        while let Some(start) = at.filter(|_| out.len() < rows) {
            match row_at(&self.cache, start, self.mode, width) {
                Ok(r) => {
                    out.push((start, r.len));
                    at = (r.next > 0)
                        .then_some(start + r.next as u64)
                        .filter(|n| *n < self.cache.size);
                }
                Err(m) => return (out, Some(m)),
            }
        }
        (out, None)
    }
}

impl Goal {
    fn at(self, offset: u64) -> Goal {
        Goal {
            align: Some(offset),
            rows: 0,
        }
    }
}

/// Binary: a NUL byte, or bytes that are not UTF-8 (a character cut by
/// the block's end does not count).
pub fn looks_binary(first: &[u8]) -> bool {
    if first.contains(&0) {
        return true;
    }
    match std::str::from_utf8(first) {
        Ok(_) => false,
        Err(e) => e.error_len().is_some(),
    }
}
