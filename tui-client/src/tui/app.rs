//! The one App state and `update`, which turns actions into state changes
//! and effects. No I/O and no terminal here: everything is testable.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ferry_proto::msg::EntryKind;
use ferry_proto::RemotePath;
use ratatui::layout::Rect;

use super::action::{Action, Effect};
use super::chmod::ChmodOutcome;
use super::dialog::{CopyPlan, Dialog, InputKind, PlanOutcome};
use super::form::{ConnectForm, FormOutcome};
use super::layout::{self, Areas};
use super::mouse::{self, Hit};
use super::pane::{Pane, Side, SortKey};
use super::prompts::{
    yes_no, Answer, DeleteDialog, InputDialog, InputOutcome, ReconnectDialog, ReconnectOutcome,
    TrustDialog,
};
use super::queue::{JobState, Queue};
use super::text::{edit_line, Back};
use crate::transfer::Direction;

mod bookmarks;
mod browse;
mod compare;
mod edit;
mod find;
mod queue_keys;
mod sync;
mod syncbrowse;
mod tools;
mod view;
mod within;

/// The connection as the UI sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Not connected and not trying.
    Offline,
    /// Logging in.
    Connecting,
    /// Logged in as `user@server`.
    Online(String),
    /// Lost; the reason.
    Lost(String),
}

/// A message on the message line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// Shown in red.
    pub error: bool,
}

/// Which part has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// A file pane.
    Pane(Side),
    /// The transfer queue.
    Queue,
}

#[derive(Clone, Copy, Debug)]
struct Click {
    at: Instant,
    side: Side,
    row: usize,
}

/// Everything the TUI knows.
#[derive(Debug)]
pub struct App {
    /// Left pane.
    pub local: Pane,
    /// Right pane.
    pub remote: Pane,
    /// Keyboard focus.
    pub focus: Focus,
    /// Transfers.
    pub queue: Queue,
    /// The open dialog.
    pub dialog: Option<Dialog>,
    /// The message line.
    pub message: Option<Message>,
    /// Connection state.
    pub link: Link,
    /// Quota (used, limit).
    pub quota: Option<(u64, Option<u64>)>,
    /// The certificate fingerprint and trust, once connected.
    pub identity: Option<crate::client::ServerIdentity>,
    /// Screen size.
    pub size: Rect,
    /// Set when the app should end.
    pub quit: bool,
    /// Filter typing mode in the focused pane.
    pub filtering: bool,
    remote_generation: u64,
    local_generation: u64,
    local_dir: PathBuf,
    remote_dir: RemotePath,
    press: Option<(Side, usize)>,
    last_click: Option<Click>,
    /// Server and user of the last connection attempt, for the form.
    last_form: ConnectForm,
    /// A connection was attempted, so `Effect::Reconnect` has options.
    attempted: bool,
    /// The filter's cursor.
    filter_back: Back,
    /// The clock as of the last tick, for stalls.
    pub now: Instant,
    /// A running job without progress this long fails (and can be
    /// resumed with `r`).
    pub stall_limit: Duration,
    /// Copies follow symbolic links met inside trees (`L`, the CLI's `-L`);
    /// a link marked or under the cursor is always copied as what it
    /// points to.
    pub follow_links: bool,
    /// A link was entered on this side from this directory: if it turns out
    /// not to be a directory, the pane goes back there.
    entered_link: Option<(Side, String)>,
    /// The F3 viewer, full screen (dialogs still show over it).
    pub viewer: Option<Box<super::viewer::Viewer>>,
    views: u64,
    /// The help's first row shown (it scrolls on a short screen).
    pub help_top: usize,
    /// F4 edits under way.
    pub edit: edit::Edits,
    /// The panes' comparison (`=`, `#`).
    pub cmp: super::compare::Comparing,
    /// Bookmarks.
    pub places: bookmarks::Places,
    /// Synchronized browsing (Ctrl-Y).
    pub sync_browse: bool,
}

const DOUBLE_CLICK: Duration = Duration::from_millis(400);
/// Default for [`App::stall_limit`].
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

impl App {
    /// A new app with the local pane in `local_dir`.
    pub fn new(local_dir: PathBuf, size: Rect) -> App {
        App {
            local: Pane::new(Side::Local),
            remote: Pane::new(Side::Remote),
            focus: Focus::Pane(Side::Local),
            queue: Queue::default(),
            dialog: None,
            message: None,
            link: Link::Offline,
            quota: None,
            identity: None,
            size,
            quit: false,
            filtering: false,
            remote_generation: 0,
            local_generation: 0,
            local_dir,
            remote_dir: RemotePath::root(),
            press: None,
            last_click: None,
            last_form: ConnectForm::default(),
            attempted: false,
            filter_back: 0,
            now: Instant::now(),
            stall_limit: STALL_LIMIT,
            follow_links: false,
            entered_link: None,
            viewer: None,
            views: 0,
            help_top: 0,
            edit: Default::default(),
            cmp: Default::default(),
            places: Default::default(),
            sync_browse: false,
        }
    }

    /// Effects to run at start: read the local directory.
    pub fn start(&mut self) -> Vec<Effect> {
        vec![self.open_local(self.local_dir.clone())]
    }

    /// The screen's regions now.
    pub fn areas(&self) -> Areas {
        layout::areas(self.size, self.queue.jobs.len())
    }

    /// A pane.
    pub fn pane(&self, side: Side) -> &Pane {
        match side {
            Side::Local => &self.local,
            Side::Remote => &self.remote,
        }
    }

    fn pane_mut(&mut self, side: Side) -> &mut Pane {
        match side {
            Side::Local => &mut self.local,
            Side::Remote => &mut self.remote,
        }
    }

    fn focused_side(&self) -> Side {
        match self.focus {
            Focus::Pane(s) => s,
            Focus::Queue => Side::Local,
        }
    }

    fn rows_height(&self, side: Side) -> usize {
        let a = self.areas();
        match side {
            Side::Local => a.local_rows.height as usize,
            Side::Remote => a.remote_rows.height as usize,
        }
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
        });
    }

    /// The directory a pane shows, as a path string for effects.
    pub fn dir_of(&self, side: Side) -> String {
        match side {
            Side::Local => self.local_dir.display().to_string(),
            Side::Remote => self.remote_dir.to_string(),
        }
    }

    fn join(&self, side: Side, name: &str) -> String {
        match side {
            Side::Local => self.local_dir.join(name).display().to_string(),
            Side::Remote => {
                let d = self.remote_dir.to_string();
                if d == "/" {
                    format!("/{name}")
                } else {
                    format!("{d}/{name}")
                }
            }
        }
    }

    /// Applies one action; jobs start as the queue admits them.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.sync_login();
        let fx = match self.queue.route(action) {
            Some(action) => self.apply(action),
            None => vec![],
        };
        self.edit_waiting();
        self.sync_login();
        self.queue.admit(fx)
    }

    /// Tells the queue who is logged in now: new jobs belong to that
    /// login, and only its jobs start.
    fn sync_login(&mut self) {
        let now = match &self.link {
            Link::Online(label) => Some(label.as_str()),
            _ => None,
        };
        if self.queue.login.as_deref() != now {
            self.queue.login = now.map(str::to_string);
        }
    }

    fn apply(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(key) => self.on_key(key),
            Action::Mouse(m) => self.on_mouse(m),
            Action::Resize(w, h) => {
                self.size = Rect::new(0, 0, w, h);
                self.settle_viewer()
            }
            Action::View(news) => self.viewer_news(news),
            Action::Find(news) => self.find_news(news),
            Action::Within(news) => self.within_news(news),
            Action::Edit(news) => self.edit_news(news),
            Action::Tick(now) => self.tick(now),
            Action::LocalListed { .. }
            | Action::LocalChanged(_)
            | Action::RemoteBatch { .. }
            | Action::RemoteListed { .. }
            | Action::RemoteListFailed { .. } => {
                let mut fx = self.on_listing(action);
                fx.extend(self.recompare());
                fx
            }
            Action::Compare(news) => self.compare_news(news),
            Action::Sync(news) => self.sync_news(news),
            Action::Quota { used, limit } => {
                self.quota = Some((used, limit));
                vec![]
            }
            Action::OpDone { message, refresh } => {
                if let Some(m) = message {
                    self.info(m);
                }
                match refresh {
                    Some(side) => self.refresh(side),
                    None => {
                        let mut fx = self.refresh(Side::Local);
                        fx.extend(self.refresh(Side::Remote));
                        fx
                    }
                }
            }
            Action::OpFailed(e) => {
                self.error(e);
                vec![]
            }
            Action::JobEvent { job, event } => {
                self.queue.apply(job, &event);
                if let crate::transfer::TransferEvent::Warning { message, .. } = &event {
                    self.info(message.clone());
                }
                vec![]
            }
            Action::JobEnded { job, result } => {
                let direction = self.queue.get_mut(job).map(|j| j.spec.direction);
                self.queue.finish(job, result);
                if let Some(j) = self.queue.get_mut(job) {
                    if let JobState::Failed(e) = &j.state {
                        let text = format!("{}: {e}", j.source);
                        self.error(text);
                    }
                }
                let mut fx = Vec::new();
                // Show the new files in the target pane.
                fx.extend(match direction {
                    Some(Direction::Put) => self.refresh(Side::Remote),
                    Some(Direction::Get) => self.refresh(Side::Local),
                    None => vec![],
                });
                fx
            }
            Action::Connected { label, identity } => {
                self.link = Link::Online(label.clone());
                self.attempted = true;
                self.identity = Some(identity);
                if matches!(
                    self.dialog,
                    Some(Dialog::Connect(_) | Dialog::Reconnect(_) | Dialog::Trust(_))
                ) {
                    self.dialog = None;
                }
                self.info(format!("connected as {label}"));
                let arrived = self.bookmark_arrived(&label);
                let dir = self.remote_dir.clone();
                let mut fx = self.open_remote(dir);
                fx.extend(arrived);
                // Resume what the cut interrupted: partials make it cheap.
                // Only this login's jobs: another server's wait for theirs.
                for job in &mut self.queue.jobs {
                    let ours = job.owner.as_deref().is_none_or(|o| o == label);
                    if ours && matches!(&job.state, JobState::Failed(e) if is_connection_error(e)) {
                        job.state = JobState::Queued;
                        job.board = Default::default();
                        fx.push(Effect::StartJob {
                            job: job.id,
                            spec: job.spec.resumed(),
                        });
                    }
                }
                fx
            }
            Action::UnknownServer {
                server,
                fingerprint,
            } => {
                self.link = Link::Offline;
                self.dialog = Some(Dialog::Trust(TrustDialog {
                    server,
                    fingerprint,
                }));
                vec![]
            }
            Action::ConnectFailed(e) => {
                self.link = Link::Offline;
                match &mut self.dialog {
                    Some(Dialog::Connect(form)) => {
                        form.error = Some(e);
                        form.password.clear();
                        form.focus_first_blank();
                    }
                    // Still down: say so and keep offering the reconnect.
                    Some(Dialog::Reconnect(d)) => {
                        d.reason = format!("reconnecting failed: {e}");
                    }
                    _ => {
                        let form = self.form_again(Some(e));
                        self.dialog = Some(Dialog::Connect(form));
                    }
                }
                vec![]
            }
            Action::Disconnected(reason) => {
                if matches!(self.link, Link::Online(_)) {
                    self.link = Link::Lost(reason.clone());
                    if let Some(Dialog::Edit(d)) = self.dialog.take() {
                        self.edit_disconnected(d);
                    }
                    self.dialog = Some(Dialog::Reconnect(ReconnectDialog { reason }));
                }
                vec![]
            }
        }
    }

    /// A second passed: a job stalled past the limit fails with its reason
    /// (its partial files stay, so `r` resumes it).
    fn tick(&mut self, now: Instant) -> Vec<Effect> {
        self.now = now;
        let limit = self.stall_limit;
        let mut fx = Vec::new();
        let mut failed = None;
        for i in 0..self.queue.jobs.len() {
            let job = &mut self.queue.jobs[i];
            if let Some(idle) = job.stalled(now).filter(|d| *d >= limit) {
                let why = format!(
                    "no progress for {} s (is the server stopped?); r resumes",
                    idle.as_secs()
                );
                failed = Some(format!("{}: {why}", job.source));
                job.state = JobState::Failed(why);
                fx.extend(self.queue.stop(i));
            }
        }
        if let Some(text) = failed {
            self.error(text);
        }
        fx
    }

    /// Opens the connect form (no server given on the command line); with
    /// server and user filled in, the password has the focus.
    pub fn ask_connect(&mut self, mut form: ConnectForm) {
        form.focus_first_blank();
        self.last_form = ConnectForm {
            password: String::new(),
            error: None,
            ..form.clone()
        };
        self.dialog = Some(Dialog::Connect(form));
    }

    /// Marks the app as connecting to `server` as `user` (given on the
    /// command line).
    pub fn connecting(&mut self, server: &str, user: &str) {
        self.link = Link::Connecting;
        self.attempted = true;
        self.last_form.server = server.to_string();
        self.last_form.user = user.to_string();
    }

    /// The connect form again, with the last server and user and `error`.
    fn form_again(&mut self, error: Option<String>) -> ConnectForm {
        let mut form = ConnectForm {
            password: String::new(),
            error,
            ..self.last_form.clone()
        };
        form.focus_first_blank();
        form
    }

    /// Ctrl-R while not connected: try the last server again, or ask.
    fn reconnect(&mut self) -> Vec<Effect> {
        if self.attempted {
            self.link = Link::Connecting;
            self.info("reconnecting…");
            vec![Effect::Reconnect]
        } else {
            let form = self.form_again(None);
            self.dialog = Some(Dialog::Connect(form));
            vec![]
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(dialog) = self.dialog.take() {
            return self.dialog_key(dialog, key);
        }
        if self.viewer.is_some() {
            return self.viewer_key(key);
        }
        if self.filtering {
            return self.filter_key(key);
        }
        // Any key dismisses the message line.
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        match key.code {
            KeyCode::Esc => {
                self.message = None;
                vec![]
            }
            KeyCode::F(10) | KeyCode::Char('q') => self.ask_quit(),
            KeyCode::Char('c') if ctrl => self.ask_quit(),
            KeyCode::F(1) | KeyCode::Char('?') => {
                self.help_top = 0;
                self.dialog = Some(Dialog::Help);
                vec![]
            }
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Pane(Side::Local) => Focus::Pane(Side::Remote),
                    Focus::Pane(Side::Remote) if !self.queue.jobs.is_empty() => Focus::Queue,
                    _ => Focus::Pane(Side::Local),
                };
                vec![]
            }
            KeyCode::F(9) => {
                self.focus = if self.focus == Focus::Queue {
                    Focus::Pane(Side::Local)
                } else {
                    // Start on the job that is running, if any.
                    if let Some(i) = self.queue.jobs.iter().position(|j| j.active()) {
                        self.queue.selected = i;
                    }
                    Focus::Queue
                };
                vec![]
            }
            KeyCode::Char('r') if ctrl && self.focus == Focus::Queue => {
                let mut fx = self.refresh(Side::Local);
                fx.extend(self.refresh(Side::Remote));
                fx
            }
            _ if self.focus == Focus::Queue => self.queue_key(key),
            KeyCode::Up | KeyCode::Char('k') if shift => self.extend_selection(-1),
            KeyCode::Down | KeyCode::Char('j') if shift => self.extend_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_cursor(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_cursor(1),
            KeyCode::PageUp => {
                let h = self.rows_height(self.focused_side()) as isize;
                self.move_cursor(-h.max(1))
            }
            KeyCode::PageDown => {
                let h = self.rows_height(self.focused_side()) as isize;
                self.move_cursor(h.max(1))
            }
            KeyCode::Home | KeyCode::Char('g') => self.move_cursor(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_cursor(isize::MAX / 2),
            KeyCode::Enter => self.enter_synced(self.focused_side()),
            KeyCode::Backspace => self.go_up_synced(self.focused_side()),
            KeyCode::Char('y') if ctrl => self.toggle_sync_browse(),
            KeyCode::Char('r') if ctrl => {
                let side = self.focused_side();
                if side == Side::Remote && !matches!(self.link, Link::Online(_) | Link::Connecting)
                {
                    return self.reconnect();
                }
                self.refresh(side)
            }
            KeyCode::Char('o') if ctrl => {
                let form = self.form_again(None);
                self.dialog = Some(Dialog::Connect(form));
                vec![]
            }
            KeyCode::Char(' ') | KeyCode::Insert => {
                let side = self.focused_side();
                let p = self.pane_mut(side);
                p.toggle(p.cursor);
                self.move_cursor(1)
            }
            KeyCode::Char('*') => {
                self.pane_mut(self.focused_side()).invert_marks();
                vec![]
            }
            KeyCode::Char('+') => {
                self.pane_mut(self.focused_side()).mark_all();
                vec![]
            }
            KeyCode::Char('-') => {
                self.pane_mut(self.focused_side()).marked.clear();
                vec![]
            }
            KeyCode::Char('s') => {
                let p = self.pane_mut(self.focused_side());
                p.sort_by(match p.sort {
                    SortKey::Name => SortKey::Size,
                    SortKey::Size => SortKey::Time,
                    SortKey::Time => SortKey::Name,
                });
                vec![]
            }
            KeyCode::F(3) => self.open_viewer(),
            KeyCode::F(4) => self.start_edit(),
            KeyCode::Char('B') => self.start_bookmark(),
            KeyCode::Char('b') => self.open_bookmarks(false),
            _ if super::bookmarks::is_list_key(&key) => self.open_bookmarks(false),
            KeyCode::Char('.') => {
                let p = self.pane_mut(self.focused_side());
                p.show_hidden = !p.show_hidden;
                p.resort();
                vec![]
            }
            KeyCode::Char('/') => {
                self.filtering = true;
                let p = self.pane_mut(self.focused_side());
                p.filter = Some(String::new());
                vec![]
            }
            KeyCode::Char('L') => {
                self.follow_links = !self.follow_links;
                self.info(if self.follow_links {
                    "links inside trees are followed by copies from now on (L again: skipped)"
                } else {
                    "links inside trees are skipped by copies from now on (L again: followed)"
                });
                vec![]
            }
            KeyCode::F(n @ (5 | 6 | 15 | 16)) if shift || n > 10 => self.within_fkey(n),
            KeyCode::F(5) => self.copy(),
            KeyCode::F(6) => self.start_rename(),
            KeyCode::F(7) if key.modifiers.contains(KeyModifiers::ALT) => self.start_find(),
            KeyCode::Char('f') if ctrl => self.start_find(),
            KeyCode::F(7) => {
                let side = self.focused_side();
                let d = InputDialog::new(InputKind::Mkdir, side, String::new());
                self.dialog = Some(Dialog::Input(d));
                vec![]
            }
            KeyCode::F(8) | KeyCode::Delete => self.start_delete(),
            KeyCode::Char('p') => self.start_chmod(),
            KeyCode::Char('=') => self.toggle_compare(false),
            KeyCode::Char('#') => self.toggle_compare(true),
            KeyCode::Char('M') => self.mark_differences(),
            KeyCode::Char('S') => self.open_sync(),
            _ => vec![],
        }
    }

    fn ask_quit(&mut self) -> Vec<Effect> {
        if self.queue.active() > 0 {
            self.dialog = Some(Dialog::ConfirmQuit);
            vec![]
        } else {
            self.quit = true;
            vec![Effect::Quit]
        }
    }

    fn filter_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let side = self.focused_side();
        let done = matches!(
            key.code,
            KeyCode::Esc | KeyCode::Enter | KeyCode::Down | KeyCode::Up | KeyCode::Tab
        );
        if done {
            self.filtering = false;
        }
        let mut back = self.filter_back;
        let p = self.pane_mut(side);
        match key.code {
            KeyCode::Esc => p.filter = None,
            _ if done => {
                if p.filter.as_deref() == Some("") {
                    p.filter = None;
                }
            }
            _ => {
                if let Some(f) = p.filter.as_mut() {
                    edit_line(f, &mut back, &key);
                }
            }
        }
        p.resort();
        p.cursor = usize::from(!p.at_root).min(p.len().saturating_sub(1));
        self.filter_back = if done { 0 } else { back };
        vec![]
    }

    fn queue_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let n = self.queue.jobs.len();
        if let Some(fx) = self.queue_more_key(&key) {
            return fx;
        }
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.queue.selected = self.queue.selected.saturating_sub(1)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.queue.selected = (self.queue.selected + 1).min(n.saturating_sub(1))
            }
            KeyCode::Char('c') | KeyCode::Delete | KeyCode::F(8) => {
                if let Some(job) = self.queue.jobs.get_mut(self.queue.selected) {
                    if job.active() {
                        job.state = JobState::Cancelled;
                        return self.queue.stop(self.queue.selected).into_iter().collect();
                    }
                }
            }
            KeyCode::Char('r') => {
                if let Some(job) = self.queue.jobs.get_mut(self.queue.selected) {
                    if job.retryable() {
                        job.state = JobState::Queued;
                        job.board = Default::default();
                        return vec![Effect::StartJob {
                            job: job.id,
                            spec: job.spec.resumed(),
                        }];
                    }
                }
            }
            KeyCode::Char('x') => {
                // Clear ended jobs (done, failed, cancelled) from the list.
                self.queue.jobs.retain(|j| j.active());
                self.queue.selected = self
                    .queue
                    .selected
                    .min(self.queue.jobs.len().saturating_sub(1));
                if self.queue.jobs.is_empty() {
                    self.focus = Focus::Pane(Side::Local);
                }
            }
            KeyCode::Enter => {
                // The whole story of the job, unabridged.
                if let Some(job) = self.queue.jobs.get(self.queue.selected) {
                    let text = match &job.state {
                        JobState::Failed(e) => format!("{}: failed: {e} (r retries)", job.source),
                        state => format!("{} → {}: {state:?}", job.source, job.spec.dest),
                    };
                    self.info(text);
                }
            }
            KeyCode::F(5) | KeyCode::F(6) | KeyCode::F(7) => {
                self.info("that key works on a pane: Tab or F9 goes back to one");
            }
            KeyCode::Char(c) if !c.is_control() => {
                self.info(
                    "queue keys: c cancel, r retry, p pause, K/J move, [ ] jobs at once, l speed limit, x clear ended, F9 back",
                );
            }
            _ => {}
        }
        vec![]
    }

    fn move_cursor(&mut self, delta: isize) -> Vec<Effect> {
        let side = self.focused_side();
        let h = self.rows_height(side);
        let p = self.pane_mut(side);
        p.move_by(delta);
        p.anchor = None;
        p.scroll_into_view(h);
        vec![]
    }

    fn extend_selection(&mut self, delta: isize) -> Vec<Effect> {
        let side = self.focused_side();
        let h = self.rows_height(side);
        let p = self.pane_mut(side);
        let anchor = *p.anchor.get_or_insert(p.cursor);
        p.move_by(delta);
        p.mark_range(anchor, p.cursor);
        p.anchor = Some(anchor);
        p.scroll_into_view(h);
        vec![]
    }

    fn copy(&mut self) -> Vec<Effect> {
        let from = self.focused_side();
        if !matches!(self.link, Link::Online(_)) {
            self.error("not connected");
            return vec![];
        }
        let selection = self.pane(from).selection();
        self.copy_entries(from, selection)
    }

    /// Copies `selection` from one pane to the other (asking about
    /// conflicts first).
    fn copy_entries(&mut self, from: Side, selection: Vec<ferry_proto::msg::Entry>) -> Vec<Effect> {
        if !matches!(self.link, Link::Online(_)) {
            self.error("not connected");
            return vec![];
        }
        if selection.is_empty() {
            return vec![];
        }
        let direction = if from == Side::Local {
            Direction::Put
        } else {
            Direction::Get
        };
        let dirs = (self.dir_of(from), self.dir_of(from.other()));
        let target = &self.pane(from.other()).entries;
        let mut plan = CopyPlan::new(direction, dirs, selection, target);
        self.pane_mut(from).marked.clear();
        if plan.advance() {
            self.dialog = Some(Dialog::Conflict(plan));
            return vec![];
        }
        self.launch(plan)
    }

    /// Starts the copy: the plan's jobs (see `CopyPlan::jobs`).
    fn launch(&mut self, plan: CopyPlan) -> Vec<Effect> {
        let from = if plan.direction == Direction::Put {
            Side::Local
        } else {
            Side::Remote
        };
        let (specs, entries) = plan.jobs(
            |name| self.join(from, name),
            self.pane(from.other()),
            self.follow_links,
        );
        let fx: Vec<Effect> = specs
            .into_iter()
            .map(|spec| Effect::StartJob {
                job: self.queue.push(spec.clone()),
                spec,
            })
            .collect();
        if plan.items.len() >= super::free::MANY {
            super::free::free_elsewhere(plan);
        }
        if entries > 0 {
            self.info(format!(
                "copying {entries} entr{}",
                if entries == 1 { "y" } else { "ies" }
            ));
        }
        fx
    }

    /// F6: rename the entry under the cursor, or move the marked ones.
    fn start_rename(&mut self) -> Vec<Effect> {
        let side = self.focused_side();
        if !self.pane(side).marked.is_empty() {
            let names = self
                .pane(side)
                .selection()
                .into_iter()
                .map(|e| e.name)
                .collect();
            let d = InputDialog::new(InputKind::Move { names }, side, String::new());
            self.dialog = Some(Dialog::Input(d));
            return vec![];
        }
        let Some(e) = self.pane(side).current() else {
            return vec![];
        };
        let from = e.name.clone();
        let d = InputDialog::new(InputKind::Rename { from: from.clone() }, side, from);
        self.dialog = Some(Dialog::Input(d));
        vec![]
    }

    fn start_delete(&mut self) -> Vec<Effect> {
        let side = self.focused_side();
        let entries = self.pane(side).selection();
        if !entries.is_empty() {
            self.dialog = Some(Dialog::ConfirmDelete(DeleteDialog { side, entries }));
        }
        vec![]
    }

    /// Enter in a text dialog: make the directory, rename, or move the
    /// marked entries.
    fn submit_input(&mut self, kind: InputKind, side: Side, text: String) -> Vec<Effect> {
        match kind {
            InputKind::Mkdir => {
                if !text.contains('/') {
                    self.pane_mut(side).pending = Some(text.clone());
                }
                vec![Effect::Mkdir(side, self.join(side, &text))]
            }
            InputKind::Move { names } => {
                let to_dir = if text.starts_with('/') {
                    text
                } else {
                    self.join(side, &text)
                };
                let from = names.iter().map(|n| self.join(side, n)).collect();
                self.pane_mut(side).marked.clear();
                vec![Effect::Move { side, from, to_dir }]
            }
            InputKind::Rename { from } => {
                if !text.contains('/') {
                    self.pane_mut(side).pending = Some(text.clone());
                }
                let to = if text.starts_with('/') {
                    text
                } else {
                    self.join(side, &text)
                };
                vec![Effect::Rename(side, self.join(side, &from), to)]
            }
            InputKind::Rate => self.set_rate_text(&text),
        }
    }

    /// A key for the open dialog: the dialog decides what it means, and
    /// its outcome is applied here.
    fn dialog_key(&mut self, dialog: Dialog, key: KeyEvent) -> Vec<Effect> {
        match dialog {
            Dialog::Help => {
                // Scrolling keys keep it open; any other key closes it.
                if let Some(top) = super::help::scroll(self.size, self.help_top, key.code) {
                    self.help_top = top;
                    self.dialog = Some(Dialog::Help);
                }
                vec![]
            }
            Dialog::Find(d) => self.find_key(*d, key),
            Dialog::Sync(d) => self.sync_key(*d, key),
            Dialog::Within(d) => self.within_key(d, key),
            Dialog::Edit(d) => self.edit_dialog_key(d, key),
            Dialog::Bookmark(d) => self.bookmark_key(d, key),
            Dialog::Connect(_) if super::bookmarks::is_list_key(&key) => self.open_bookmarks(true),
            Dialog::Chmod(mut d) => match d.key(&key) {
                ChmodOutcome::Editing => {
                    self.dialog = Some(Dialog::Chmod(d));
                    vec![]
                }
                ChmodOutcome::Cancelled => vec![],
                ChmodOutcome::Apply(mode) => {
                    let paths = d
                        .entries
                        .iter()
                        .map(|e| self.join(d.side, &e.name))
                        .collect();
                    self.pane_mut(d.side).marked.clear();
                    vec![Effect::Chmod {
                        side: d.side,
                        paths,
                        mode,
                    }]
                }
            },
            // Any key but yes closes it.
            Dialog::ConfirmQuit => match yes_no(&key) {
                Answer::Yes => {
                    self.quit = true;
                    vec![Effect::Quit]
                }
                _ => vec![],
            },
            Dialog::Input(mut d) => match d.key(&key) {
                InputOutcome::Editing => {
                    self.dialog = Some(Dialog::Input(d));
                    vec![]
                }
                InputOutcome::Cancelled => vec![],
                InputOutcome::Submit(text) => self.submit_input(d.kind, d.side, text),
            },
            Dialog::ConfirmDelete(d) => match d.key(&key) {
                Answer::Yes => {
                    let paths = d
                        .entries
                        .iter()
                        .map(|e| self.join(d.side, &e.name))
                        .collect();
                    self.pane_mut(d.side).marked.clear();
                    vec![Effect::Delete(d.side, paths)]
                }
                Answer::No => vec![],
                Answer::Undecided => {
                    self.dialog = Some(Dialog::ConfirmDelete(d));
                    vec![]
                }
            },
            Dialog::Conflict(mut plan) => match plan.key(&key) {
                PlanOutcome::Asking => {
                    self.dialog = Some(Dialog::Conflict(plan));
                    vec![]
                }
                PlanOutcome::Ready => self.launch(plan),
                PlanOutcome::Cancelled => {
                    self.info("copy cancelled");
                    vec![]
                }
            },
            Dialog::Trust(d) => match d.key(&key) {
                Answer::Yes => {
                    self.link = Link::Connecting;
                    vec![Effect::TrustAndConnect(d.fingerprint)]
                }
                Answer::No => {
                    self.error(format!(
                        "not connected: {} was not trusted (Ctrl-R on the remote pane asks again)",
                        d.server
                    ));
                    vec![]
                }
                Answer::Undecided => {
                    self.dialog = Some(Dialog::Trust(d));
                    vec![]
                }
            },
            Dialog::Reconnect(d) => match d.key(&key) {
                ReconnectOutcome::Reconnect => {
                    self.link = Link::Connecting;
                    self.dialog = Some(Dialog::Reconnect(d));
                    vec![Effect::Reconnect]
                }
                ReconnectOutcome::Offline => {
                    self.info("offline: Ctrl-R on the remote pane reconnects");
                    vec![]
                }
                ReconnectOutcome::Quit => {
                    self.quit = true;
                    vec![Effect::Quit]
                }
                ReconnectOutcome::Waiting => {
                    self.dialog = Some(Dialog::Reconnect(d));
                    vec![]
                }
            },
            Dialog::Connect(mut form) => match form.key(&key) {
                FormOutcome::Editing => {
                    self.dialog = Some(Dialog::Connect(form));
                    vec![]
                }
                FormOutcome::Closed => {
                    if !matches!(self.link, Link::Online(_)) {
                        self.link = Link::Offline;
                        self.info("offline: Ctrl-O opens the connect form, q quits");
                    }
                    vec![]
                }
                FormOutcome::Connect(opts) => {
                    self.last_form.server = form.server.trim().to_string();
                    self.last_form.user = form.user.trim().to_string();
                    self.last_form.recent = form.recent.clone();
                    self.attempted = true;
                    self.dialog = Some(Dialog::Connect(form));
                    self.link = Link::Connecting;
                    vec![Effect::Connect(opts)]
                }
            },
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        if self.viewer.is_some() && self.dialog.is_none() {
            return self.viewer_mouse(m);
        }
        if self.dialog.is_some() {
            // A click outside a dialog closes it (except forms).
            if matches!(m.kind, MouseEventKind::Down(_))
                && matches!(self.dialog, Some(Dialog::Help))
            {
                self.dialog = None;
            }
            return vec![];
        }
        let a = self.areas();
        let side_at = mouse::pane_at(&a, m.column, m.row);
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let offsets = (self.local.offset, self.remote.offset);
                let at = mouse::hit(&a, offsets, self.queue_view_offset(), m.column, m.row);
                let (side, row) = match at {
                    Hit::Key(code) => return self.on_key(KeyEvent::new(code, KeyModifiers::NONE)),
                    Hit::Job(i) => {
                        self.focus = Focus::Queue;
                        if i < self.queue.jobs.len() {
                            self.queue.selected = i;
                        }
                        return vec![];
                    }
                    Hit::Message => {
                        self.message = None;
                        return vec![];
                    }
                    Hit::Nothing => return vec![],
                    // A click on a column header sorts by it; again reverses.
                    Hit::Header(side, key) => {
                        self.focus = Focus::Pane(side);
                        self.pane_mut(side).sort_by(key);
                        return vec![];
                    }
                    Hit::Pane(side) => {
                        self.focus = Focus::Pane(side);
                        return vec![];
                    }
                    Hit::Row(side, row) => {
                        self.focus = Focus::Pane(side);
                        (side, row)
                    }
                };
                if row >= self.pane(side).len() {
                    return vec![];
                }
                let now = Instant::now();
                let double = self.last_click.is_some_and(|c| {
                    c.side == side && c.row == row && now.duration_since(c.at) < DOUBLE_CLICK
                });
                self.last_click = Some(Click { at: now, side, row });
                let p = self.pane_mut(side);
                p.move_to(row);
                p.anchor = None;
                if m.modifiers.contains(KeyModifiers::CONTROL) {
                    p.toggle(row);
                    return vec![];
                }
                if double {
                    self.last_click = None;
                    // A directory opens; a file is copied to the other
                    // pane, as in FileZilla.
                    let file = self
                        .pane(side)
                        .current()
                        .filter(|e| e.kind == EntryKind::File)
                        .cloned();
                    return match file {
                        Some(e) => self.copy_entries(side, vec![e]),
                        None => self.enter_synced(side),
                    };
                }
                self.press = Some((side, row));
                vec![]
            }
            MouseEventKind::Drag(MouseButton::Left) => {
                if let Some((side, start)) = self.press {
                    let h = self.rows_height(side);
                    let rows = if side == Side::Local {
                        a.local_rows
                    } else {
                        a.remote_rows
                    };
                    // Dragging past the edge scrolls.
                    let row = if m.row < rows.y {
                        self.pane(side).offset.saturating_sub(1)
                    } else {
                        (m.row - rows.y) as usize + self.pane(side).offset
                    };
                    let p = self.pane_mut(side);
                    p.move_to(row);
                    p.scroll_into_view(h);
                    let cur = p.cursor;
                    if cur != start {
                        // The range between press and here is the selection.
                        p.marked.clear();
                        p.mark_range(start, cur);
                    }
                }
                vec![]
            }
            MouseEventKind::Up(MouseButton::Left) => {
                self.press = None;
                vec![]
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let delta = if m.kind == MouseEventKind::ScrollDown {
                    3
                } else {
                    -3
                };
                if layout::contains(a.queue, m.column, m.row) {
                    let n = self.queue.jobs.len();
                    self.queue.selected = (self.queue.selected as isize + delta)
                        .clamp(0, n.saturating_sub(1) as isize)
                        as usize;
                    return vec![];
                }
                let Some(side) = side_at else { return vec![] };
                let h = self.rows_height(side);
                let p = self.pane_mut(side);
                let max = p.len().saturating_sub(h);
                p.offset = (p.offset as isize + delta).clamp(0, max as isize) as usize;
                // Keep the cursor visible, as file managers do.
                if p.cursor < p.offset {
                    p.cursor = p.offset;
                } else if p.cursor >= p.offset + h {
                    p.cursor = p.offset + h - 1;
                }
                vec![]
            }
            _ => vec![],
        }
    }
}

/// First job row shown when `selected` must be visible in `height` rows.
pub fn queue_offset(selected: usize, height: usize) -> usize {
    if height == 0 {
        0
    } else {
        selected.saturating_sub(height - 1)
    }
}

impl App {
    /// First job row shown: with the queue focused, the selection stays
    /// in view; otherwise the view follows the running jobs.
    pub fn queue_view_offset(&self) -> usize {
        let height = self.areas().queue_rows.height as usize;
        if self.focus == Focus::Queue {
            return queue_offset(self.queue.selected, height);
        }
        let jobs = &self.queue.jobs;
        let first_active = jobs.iter().position(|j| j.active()).unwrap_or(jobs.len());
        first_active.min(jobs.len().saturating_sub(height))
    }
}

fn is_connection_error(e: &str) -> bool {
    e.contains("connection lost")
        || e.contains("closed the connection")
        || e.contains("broken pipe")
        || e.contains("reset")
}
