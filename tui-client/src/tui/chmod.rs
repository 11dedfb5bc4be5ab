//! The chmod dialog: the nine permission bits of the entry under the
//! cursor (or of the marked ones), toggled on a grid or typed in octal,
//! and the change it becomes on either side. Set-id and sticky bits are
//! neither shown nor set (the server refuses them; the local side keeps
//! them out too).

use crossterm::event::{KeyCode, KeyEvent};
use ferry_proto::msg::{Entry, MODE_BITS};

use super::pane::Side;
use crate::client::Client;

/// What a key did to the dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChmodOutcome {
    /// Still choosing.
    Editing,
    /// Esc: nothing changes.
    Cancelled,
    /// Enter: set this mode.
    Apply(u32),
}

/// The permissions being chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChmodDialog {
    /// In which pane.
    pub side: Side,
    /// The entries (their modes as listed).
    pub entries: Vec<Entry>,
    /// The mode chosen so far (within 0o777).
    pub mode: u32,
    /// The bit under the cursor: 0 is the owner's read, 8 the others'
    /// execute (row by row as `ls -l` writes them).
    pub at: usize,
}

impl ChmodDialog {
    /// A dialog for `entries` (not empty), starting from the first one's mode.
    pub fn new(side: Side, entries: Vec<Entry>) -> ChmodDialog {
        let mode = entries.first().map_or(0o644, |e| e.mode & MODE_BITS);
        ChmodDialog {
            side,
            entries,
            mode,
            at: 0,
        }
    }

    /// The mask of bit `i` (0..9, `rwxrwxrwx` order).
    pub fn bit(i: usize) -> u32 {
        0o400 >> i
    }

    /// Handles one key: arrows move on the grid, Space (or r w x on the
    /// cursor's row) toggles, digits type the octal mode (shifted in from
    /// the right), Enter applies.
    pub fn key(&mut self, key: &KeyEvent) -> ChmodOutcome {
        match key.code {
            KeyCode::Esc => return ChmodOutcome::Cancelled,
            KeyCode::Enter => return ChmodOutcome::Apply(self.mode),
            KeyCode::Left => self.at = self.at - self.at % 3 + (self.at % 3 + 2) % 3,
            KeyCode::Right | KeyCode::Tab => {
                self.at = self.at - self.at % 3 + (self.at % 3 + 1) % 3
            }
            KeyCode::Up => self.at = (self.at + 6) % 9,
            KeyCode::Down => self.at = (self.at + 3) % 9,
            KeyCode::Char(' ') => self.mode ^= Self::bit(self.at),
            KeyCode::Char(c @ ('r' | 'w' | 'x')) => {
                let col = match c {
                    'r' => 0,
                    'w' => 1,
                    _ => 2,
                };
                self.at = self.at - self.at % 3 + col;
                self.mode ^= Self::bit(self.at);
            }
            KeyCode::Char(d @ '0'..='7') => {
                self.mode = ((self.mode << 3) | (d as u32 - '0' as u32)) & MODE_BITS;
            }
            KeyCode::Backspace => self.mode >>= 3,
            _ => {}
        }
        ChmodOutcome::Editing
    }
}

/// `rwxr-xr-x` for a mode.
pub fn symbolic(mode: u32) -> String {
    (0..9)
        .map(|i| {
            if mode & ChmodDialog::bit(i) != 0 {
                ['r', 'w', 'x'][i % 3]
            } else {
                '-'
            }
        })
        .collect()
}

/// Sets `mode` on each of `paths` (remote with a client, else local);
/// stops at the first that fails.
pub async fn apply(c: Option<Client>, paths: Vec<String>, mode: u32) -> Result<String, String> {
    let n = paths.len();
    let mode = mode & MODE_BITS;
    match c {
        Some(c) => {
            for p in &paths {
                // The server's refusal names the path itself.
                c.chmod(p, mode).await.map_err(|e| e.to_string())?;
            }
        }
        None => {
            tokio::task::spawn_blocking(move || {
                paths.iter().try_for_each(|p| chmod_local(p, mode))
            })
            .await
            .map_err(|e| e.to_string())??;
        }
    }
    Ok(format!(
        "mode {mode:03o} ({}) set on {n} entr{}",
        symbolic(mode),
        if n == 1 { "y" } else { "ies" }
    ))
}

/// Sets `mode` on a local file or directory through a descriptor opened
/// without following a final link (`O_PATH | O_NOFOLLOW`) and its
/// `/proc/self/fd` link, which names the entry itself: a link swapped in
/// after the look is never followed. Set-id and sticky bits the entry
/// had are kept out.
fn chmod_local(p: &str, mode: u32) -> Result<(), String> {
    use rustix::fs::{FileType, Mode, OFlags};
    let fail = |e: rustix::io::Errno| format!("{p}: {}", std::io::Error::from(e));
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(p, flags, Mode::empty()).map_err(fail)?;
    let st = rustix::fs::fstat(&fd).map_err(fail)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return Err(format!("{p}: a symbolic link has no mode of its own"));
    }
    #[cfg(test)]
    if let Some(hook) = tests::BEFORE_CHMOD.get() {
        hook(p);
    }
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    rustix::fs::chmod(link.as_str(), Mode::from_raw_mode(mode & MODE_BITS)).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;
    use ferry_proto::msg::EntryKind;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn dialog(mode: u32) -> ChmodDialog {
        let e = Entry {
            name: "f".into(),
            kind: EntryKind::File,
            size: 1,
            mtime: 0,
            mode,
        };
        ChmodDialog::new(Side::Remote, vec![e])
    }

    #[test]
    fn the_grid_and_octal_digits_set_the_mode() {
        let mut d = dialog(0o4755);
        assert_eq!(d.mode, 0o755, "set-id bits are not offered");
        // Down to the group's row, right to write, toggle.
        d.key(&k(KeyCode::Down));
        d.key(&k(KeyCode::Right));
        d.key(&k(KeyCode::Char(' ')));
        assert_eq!(d.mode, 0o775);
        // x on the same row toggles the group's execute.
        d.key(&k(KeyCode::Char('x')));
        assert_eq!(d.mode, 0o765);
        // Up twice wraps to the others' row.
        d.key(&k(KeyCode::Up));
        d.key(&k(KeyCode::Up));
        assert_eq!(d.at, 8);
        for c in "640".chars() {
            d.key(&k(KeyCode::Char(c)));
        }
        assert_eq!(d.mode, 0o640);
        // A fourth digit shifts the first out: no set-id bit ever.
        d.key(&k(KeyCode::Char('7')));
        assert_eq!(d.mode, 0o407);
        assert_eq!(d.key(&k(KeyCode::Enter)), ChmodOutcome::Apply(0o407));
        assert_eq!(d.key(&k(KeyCode::Esc)), ChmodOutcome::Cancelled);
        assert_eq!(symbolic(0o754), "rwxr-xr--");
    }

    #[tokio::test]
    async fn a_local_chmod_sets_the_bits_and_refuses_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let p = f.display().to_string();
        let m = apply(None, vec![p.clone()], 0o600).await.unwrap();
        assert_eq!(m, "mode 600 (rw-------) set on 1 entry");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600);
        let l = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let e = apply(None, vec![l.display().to_string()], 0o777)
            .await
            .unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600, "the link's target is untouched");
    }

    thread_local! {
        /// Runs between the local chmod's look and its change: a test
        /// swaps a link in there, as another program might.
        pub(super) static BEFORE_CHMOD: std::cell::Cell<Option<fn(&str)>> =
            const { std::cell::Cell::new(None) };
    }

    #[test]
    fn a_local_chmod_never_follows_a_link_swapped_in() {
        // Failed before the fix: the victim became 0644 through the link.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (f, victim) = (dir.path().join("f"), dir.path().join("victim"));
        for p in [&f, &victim] {
            std::fs::write(p, "x").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        BEFORE_CHMOD.set(Some(|p| {
            std::fs::rename(p, format!("{p}.orig")).unwrap();
            let victim = std::path::Path::new(p).with_file_name("victim");
            std::os::unix::fs::symlink(victim, p).unwrap();
        }));
        let r = chmod_local(&f.display().to_string(), 0o644);
        BEFORE_CHMOD.set(None);
        r.unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(
            mode(&victim) & 0o7777,
            0o600,
            "the link's target is untouched"
        );
        assert_eq!(mode(&dir.path().join("f.orig")) & 0o7777, 0o644);
    }
}
