//! F4 edit: what an edit session remembers, the decision after the
//! editor (unchanged / upload / the remote changed meanwhile), and the
//! dialog that asks when the remote changed. The runtime side (fetching,
//! the editor, checking) is `edit_run.rs`; `app/edit.rs` applies it.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent};

/// A remote file larger than this is not fetched for editing.
pub const EDIT_LIMIT: u64 = 64 << 20;

/// The remote file as it was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds).
    pub mtime: i64,
    /// SHA-256 of the content, as the download verified it.
    pub sha256: [u8; 32],
    /// Its permission bits (the upload gives them back, not the private
    /// copy's 0600).
    pub mode: u32,
}

/// A remote file being edited through a private temporary copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditSession {
    /// The remote file's full path.
    pub remote: String,
    /// Its directory on the server.
    pub dir: String,
    /// Its name.
    pub name: String,
    /// The private temporary directory (0700) holding the copy.
    pub temp_dir: PathBuf,
    /// The copy (0600) inside it.
    pub file: PathBuf,
    /// The remote file when it was fetched.
    pub seen: Seen,
}

/// What the editor runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditTarget {
    /// A local file, edited in place.
    Local(PathBuf),
    /// A remote file's temporary copy.
    Remote(EditSession),
}

impl EditTarget {
    /// The file the editor opens.
    pub fn path(&self) -> &std::path::Path {
        match self {
            EditTarget::Local(p) => p,
            EditTarget::Remote(s) => &s.file,
        }
    }
}

/// The remote file now, as a stat (and maybe the server's hash) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteNow {
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds).
    pub mtime: i64,
    /// Its SHA-256, once asked for.
    pub sha256: Option<[u8; 32]>,
}

/// What to do with an edited copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The copy is as it was fetched: nothing to upload.
    Unchanged,
    /// The copy changed and the remote did not: upload it.
    Upload,
    /// Size and mtime are as fetched, which does not prove the content
    /// is (a write within the same second): ask the server's hash.
    NeedHash,
    /// The remote changed meanwhile (why): ask the user.
    RemoteChanged(String),
}

/// Decides after the editor: `edited` is the copy's hash now, `now` the
/// remote file now (`None`: it is gone).
pub fn decide(seen: &Seen, edited: &[u8; 32], now: Option<&RemoteNow>) -> Verdict {
    if *edited == seen.sha256 {
        return Verdict::Unchanged;
    }
    let Some(now) = now else {
        return Verdict::RemoteChanged("it was deleted on the server".into());
    };
    if now.size != seen.size || now.mtime != seen.mtime {
        return Verdict::RemoteChanged(format!(
            "it changed on the server ({} bytes, modified {}, was {} bytes, {})",
            now.size,
            crate::cli::output::format_time(now.mtime),
            seen.size,
            crate::cli::output::format_time(seen.mtime),
        ));
    }
    match now.sha256 {
        None => Verdict::NeedHash,
        Some(h) if h == seen.sha256 => Verdict::Upload,
        Some(_) => Verdict::RemoteChanged(
            "its content changed on the server (same size and time, another hash)".into(),
        ),
    }
}

/// The name the copy is kept under beside a changed remote file.
pub fn spare_name(name: &str, n: u32) -> String {
    format!("{name}.edited-{n}")
}

/// Work for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditWork {
    /// Download the remote file into a private temporary directory.
    Fetch {
        /// Its full path.
        remote: String,
        /// Its directory.
        dir: String,
        /// Its name.
        name: String,
    },
    /// Suspend the screen and run the editor (the event loop does this,
    /// as it owns the terminal).
    Run(EditTarget),
    /// Hash the edited copy and decide (`failed`: the editor's failure,
    /// when it failed: then only whether the copy changed is told).
    Check {
        /// The session.
        session: EditSession,
        /// How the editor failed, if it did.
        failed: Option<String>,
    },
    /// Upload the copy as the user answered the dialog: over the remote
    /// file, or as `spare` beside it.
    Upload {
        /// The session.
        session: EditSession,
        /// The free name beside it, for "keep mine".
        spare: Option<String>,
    },
    /// Remove the temporary copy.
    Discard(EditSession),
}

/// News from the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditNews {
    /// The copy is ready (or why not).
    Fetched(Result<EditSession, String>),
    /// The editor ended; `Err` says how it failed.
    Exited {
        /// What it edited.
        target: EditTarget,
        /// Its outcome.
        result: Result<(), String>,
    },
    /// The copy was checked.
    Checked {
        /// The session.
        session: EditSession,
        /// How the editor failed, if it did.
        failed: Option<String>,
        /// The verdict (never `NeedHash`; `Upload` only after the editor
        /// failed, else the copy is uploaded at once) and a free name for
        /// a kept copy beside the remote file, or why the check failed.
        result: Result<(Verdict, String), String>,
    },
    /// The copy was uploaded (verified), or why not.
    Uploaded {
        /// The session.
        session: EditSession,
        /// The remote path written.
        to: String,
        /// The outcome.
        result: Result<(), String>,
    },
}

/// The remote file changed while it was edited: what now?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditDialog {
    /// The session.
    pub session: EditSession,
    /// What changed.
    pub why: String,
    /// The free name beside it for "keep my copy".
    pub spare: String,
}

/// The user's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditChoice {
    /// Replace the remote file with the copy.
    Overwrite,
    /// Upload the copy under the spare name.
    KeepBeside,
    /// Throw the copy away.
    Discard,
    /// Leave the copy where it is, and do nothing.
    Leave,
    /// Not answered yet.
    Asking,
}

impl EditDialog {
    /// Handles one key.
    pub fn key(&self, key: &KeyEvent) -> EditChoice {
        match key.code {
            KeyCode::Char('o' | 'O') => EditChoice::Overwrite,
            KeyCode::Char('k' | 'K') => EditChoice::KeepBeside,
            KeyCode::Char('d' | 'D') => EditChoice::Discard,
            KeyCode::Esc => EditChoice::Leave,
            _ => EditChoice::Asking,
        }
    }

    /// Draws it.
    pub fn draw(&self, f: &mut ratatui::Frame) {
        use ratatui::style::{Color, Style};
        use ratatui::text::{Line, Span};
        let (rows, pairs) = self.body();
        let mut spans = Vec::new();
        for (k, what) in pairs {
            if !spans.is_empty() {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(k, Style::new().fg(Color::Yellow).bold()));
            spans.push(Span::raw(format!(" {what}")));
        }
        let lines = rows.into_iter().map(Line::from).collect();
        let keys = Line::from(spans);
        let title = "Changed on the server";
        super::draw_dialog::draw_box(f, title, lines, keys, 70, Color::Yellow);
    }

    /// Its rows and keys.
    fn body(&self) -> (Vec<String>, Vec<(&'static str, String)>) {
        let name = crate::display::escape(&self.session.name);
        let rows = vec![
            format!("{name} was edited, but {}.", self.why),
            String::new(),
            format!(
                "Your copy: {}",
                crate::display::escape(&self.session.file.display().to_string())
            ),
        ];
        let keys = vec![
            ("o", "overwrite the server's".to_string()),
            (
                "k",
                format!("keep mine as {}", crate::display::escape(&self.spare)),
            ),
            ("d", "discard mine".to_string()),
            ("Esc", "decide later".to_string()),
        ];
        (rows, keys)
    }
}
