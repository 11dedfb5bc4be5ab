//! The real `ferry` TUI in tmux against a real ferryd: F4 edits a remote
//! file through a private copy with `$EDITOR` set to a script, uploads it
//! back verified, uploads nothing when nothing changed or the editor
//! failed, and asks when another client changed the file meanwhile.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use ferry_e2e::tmux::Tmux;
use ferry_e2e::{bin, Server};

const PW: &str = "pw";

/// An editor: records the file's and its directory's modes, then does
/// what `flags/mode` says (append a line; append and fail; nothing), after
/// waiting for `flags/go` when `flags/wait` exists.
const EDITOR: &str = r#"#!/bin/sh
flags="$(dirname "$0")/flags"
echo "$1" > "$flags/path"
stat -c %a "$1" > "$flags/file-mode"
stat -c %a "$(dirname "$1")" > "$flags/dir-mode"
touch "$flags/started"
if [ -e "$flags/wait" ]; then
  while [ ! -e "$flags/go" ]; do sleep 0.1; done
fi
mode=$(cat "$flags/mode")
case "$mode" in
  append) echo "added by the editor" >> "$1" ;;
  fail) echo "added by the editor" >> "$1"; exit 3 ;;
esac
"#;

struct Setup {
    _dirs: tempfile::TempDir,
    flags: std::path::PathBuf,
    t: Tmux,
}

fn start(s: &Server) -> Setup {
    let dirs = tempfile::tempdir().unwrap();
    let home = dirs.path().join("home");
    let work = dirs.path().join("work");
    let tools = dirs.path().join("tools");
    let flags = tools.join("flags");
    for d in [&home, &work, &flags] {
        std::fs::create_dir_all(d).unwrap();
    }
    let editor = tools.join("editor.sh");
    std::fs::write(&editor, EDITOR).unwrap();
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "VISUAL= EDITOR={} FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        editor.display(),
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the remote listing", |s| s.contains("notes.txt"));
    t.keys(&["Tab"]);
    Setup {
        _dirs: dirs,
        flags,
        t,
    }
}

fn wait_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never came",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The remote file's permission bits, as `ferry stat` says them.
fn mode_of(s: &Server, path: &str) -> String {
    let o = s.ferry("u", PW, &["--json", "stat", path]);
    assert!(o.status.success(), "stat {path}: {o:?}");
    let line = String::from_utf8(o.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    v["mode"].as_str().unwrap().to_string()
}

#[test]
fn f4_edits_a_remote_file_and_uploads_it_back_only_when_changed() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let files = s.files("u");
    files.write("notes.txt", "first line\n");
    // An executable script: an edit keeps its mode (the private copy's
    // 0600 is not the server file's).
    let o = s.ferry("u", PW, &["chmod", "755", "notes.txt"]);
    assert!(o.status.success(), "{o:?}");
    let Setup { flags, t, _dirs } = start(&s);

    std::fs::write(flags.join("mode"), "append").unwrap();
    t.keys(&["F4"]);
    t.wait_for("the upload", |s| {
        s.contains("/notes.txt saved on the server (verified)")
    });
    assert_eq!(
        files.read_string("notes.txt"),
        "first line\nadded by the editor\n"
    );
    assert_eq!(mode_of(&s, "notes.txt"), "755");
    // The copy was private, and is gone once the upload verified.
    let read = |n: &str| std::fs::read_to_string(flags.join(n)).unwrap();
    assert_eq!(read("file-mode").trim(), "600");
    assert_eq!(read("dir-mode").trim(), "700");
    let copy = read("path");
    let copy = Path::new(copy.trim());
    assert!(copy.ends_with("notes.txt"), "{}", copy.display());
    assert!(!copy.exists(), "{} is still there", copy.display());
    assert!(!copy.parent().unwrap().exists());

    // Nothing changed: nothing is uploaded.
    std::fs::write(flags.join("mode"), "none").unwrap();
    t.keys(&["F4"]);
    t.wait_for("the verdict", |s| {
        s.contains("notes.txt was not changed: nothing uploaded")
    });
    // The editor failed: nothing is uploaded, and the copy is kept.
    std::fs::write(flags.join("mode"), "fail").unwrap();
    t.keys(&["F4"]);
    let screen = t.wait_for("the failure", |s| s.contains("nothing uploaded; your"));
    assert!(screen.contains("exit status: 3"), "{screen}");
    assert_eq!(
        files.read_string("notes.txt"),
        "first line\nadded by the editor\n"
    );
    let copy = read("path");
    let copy = Path::new(copy.trim());
    assert_eq!(
        std::fs::read_to_string(copy).unwrap(),
        "first line\nadded by the editor\nadded by the editor\n"
    );
    std::fs::remove_dir_all(copy.parent().unwrap()).unwrap();
    t.quit();
}

#[test]
fn f4_asks_when_another_client_changed_the_file_meanwhile() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let files = s.files("u");
    files.write("notes.txt", "first line\n");
    let Setup { flags, t, _dirs } = start(&s);

    std::fs::write(flags.join("mode"), "append").unwrap();
    std::fs::write(flags.join("wait"), "").unwrap();
    t.keys(&["F4"]);
    wait_file(&flags.join("started"));
    // Another client writes the file while the editor is open.
    files.write("notes.txt", "changed by someone else\n");
    std::fs::write(flags.join("go"), "").unwrap();
    let screen = t.wait_for("the question", |s| s.contains("Changed on the server"));
    assert!(
        screen.contains("keep mine as notes.txt.edited-1"),
        "{screen}"
    );
    t.keys(&["k"]);
    t.wait_for("the upload", |s| {
        s.contains("/notes.txt.edited-1 saved on the server (verified)")
    });
    // Both versions are there: theirs in place, mine beside it.
    assert_eq!(files.read_string("notes.txt"), "changed by someone else\n");
    assert_eq!(
        files.read_string("notes.txt.edited-1"),
        "first line\nadded by the editor\n"
    );
    t.quit();
}
