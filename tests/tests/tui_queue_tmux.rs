//! The real `ferry` TUI in tmux against a real ferryd: the queue's speed
//! limit slows an upload down, `p` pauses it mid-way keeping the server's
//! partial, `p` again resumes it from that partial, and the file arrives
//! whole.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_e2e::tmux::Tmux;
use ferry_e2e::{bin, on_s3, write_random, Server};
use ferry_proto::size::format_size;

const PW: &str = "pw";
/// Large enough that on object storage, whose uploads resume from the
/// last 5 MiB part stored, three quarters of it hold two parts.
const SIZE: usize = 16 << 20;

/// The percentage on the big.bin job's row, if it shows one.
fn percent(screen: &str) -> Option<u32> {
    let row = screen.lines().find(|l| l.contains("↑ big.bin"))?;
    row.split_whitespace()
        .find_map(|w| w.strip_suffix('%')?.parse().ok())
}

/// The one partial upload in the server's partial area, if any.
fn partial(home: &Path) -> Option<PathBuf> {
    let dir = home.join(".ferry-partials");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
}

#[test]
fn a_paused_upload_keeps_its_partial_and_resumes_from_it() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let work = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let src = work.path().join("big.bin");
    write_random(&src, SIZE, 7);

    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(work.path(), home, &cmd);
    t.wait_for("both listings", |s| {
        s.contains("u@127.0.0.1") && s.contains(" big.bin")
    });
    // The limit first: F9 focuses the (empty) queue, l asks for it.
    t.keys(&["F9", "l"]);
    t.wait_for("the limit dialog", |s| s.contains("Speed limit of all"));
    t.keys(&["BSpace"]);
    t.type_text("2MiB");
    t.keys(&["Enter"]);
    t.wait_for("the limit in the title", |s| s.contains("limit 2.0 MiB/s"));
    // Upload big.bin: 8 s at 2 MiB/s.
    t.keys(&["F9", "Down", "F5"]);
    t.keys(&["F9"]);
    t.wait_for("three quarters of the upload", |s| {
        percent(s).is_some_and(|p| p >= 75)
    });
    t.keys(&["p"]);
    let screen = t.wait_for("the job paused", |s| s.contains("paused at"));
    assert!(screen.contains("1 paused"), "{screen}");
    let p = percent(&screen).unwrap();
    assert!((75..100).contains(&p), "{screen}");

    // The server keeps the partial while the job is paused.
    let mut held = 0;
    if !on_s3() {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let size = || {
                partial(&s.home("u"))
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map_or(0, |m| m.len())
            };
            let a = size();
            std::thread::sleep(Duration::from_millis(300));
            if a > 0 && a == size() {
                held = a;
                break;
            }
            assert!(Instant::now() < until, "no partial kept on the server");
        }
        assert!(held < SIZE as u64, "the upload did not finish: {held}");
        assert!(!s.files("u").exists("big.bin"));
    }

    // Resumed, it continues from the partial and verifies.
    t.keys(&["p"]);
    let screen = t.wait_for("the upload done", |s| {
        s.contains("done, ") && s.contains("✓")
    });
    let row = screen.lines().find(|l| l.contains("↑ big.bin")).unwrap();
    assert!(
        row.contains("resumed ✓"),
        "not resumed from the partial: {row}"
    );
    if !on_s3() {
        let resumed = format!("{} resumed", format_size(held));
        assert!(row.contains(&resumed), "{resumed} expected: {row}");
        assert!(partial(&s.home("u")).is_none(), "the partial is committed");
    }
    assert_eq!(s.files("u").read("big.bin"), std::fs::read(&src).unwrap());
    t.quit();
}
