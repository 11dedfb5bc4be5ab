//! The real `ferry` TUI in tmux against a real ferryd: navigate, mark with
//! keys and with mouse sequences, upload and download, then check the files
//! by content (on either store) and that the queue's gauges showed on screen.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_e2e::tmux::Tmux;
use ferry_e2e::{bin, write_random, Server, TEST_CONFIG};

const PW: &str = "pw";

/// Whether `u`'s `remote` holds the same bytes as `local`.
fn same(s: &Server, remote: &str, local: &Path) -> bool {
    s.files("u").try_read(remote) == std::fs::read(local).ok()
}

#[test]
fn browse_mark_upload_download_in_tmux() {
    let s = Server::start();
    s.add_user("u", PW, None);
    s.files("u").write_random("remote.bin", 3 << 20, 1);
    s.files("u").mkdir("inbox");
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    write_random(&work.join("a.bin"), 2 << 20, 2);
    write_random(&work.join("b.bin"), 1 << 20, 3);
    write_random(&work.join("c.txt"), 5000, 4);

    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    // Both listings, or the keys may come before the entries (CI, loaded).
    t.wait_for("both listings", |s| {
        s.contains("remote.bin") && s.contains("u@127.0.0.1") && s.contains(" c.txt")
    });

    // Keys: cursor on ../, Down to a.bin, Space marks it (and moves on).
    t.keys(&["Down", "Space"]);
    // Mouse: Ctrl+click c.txt (local rows start at screen row 3, 1-based;
    // rows are ../ a.bin b.bin c.txt, so c.txt is on screen row 6).
    t.mouse(16, 6, 6, true);
    t.mouse(16, 6, 6, false);
    t.wait_for("two marks", |s| s.contains("2 marked"));
    t.keys(&["F5"]);
    // Both marked files go in one job.
    let screen = t.wait_for("both uploads done", |s| {
        s.contains("done ✓") && s.contains("Overall 100%")
    });
    assert!(screen.contains("↑ 2 entries from"), "{screen}");
    assert!(screen.contains("2 files"), "{screen}");
    assert!(same(&s, "a.bin", &work.join("a.bin")));
    assert!(same(&s, "c.txt", &work.join("c.txt")));
    assert!(!s.files("u").exists("b.bin"), "b.bin was not marked");

    // Download: to the remote pane, End is remote.bin, F5.
    t.keys(&["Tab", "End", "F5"]);
    let screen = t.wait_for("the download done", |s| {
        s.contains("↓ remote.bin") && s.matches("done ✓").count() >= 2
    });
    assert!(screen.contains("Overall 100%"), "{screen}");
    assert!(same(&s, "remote.bin", &work.join("remote.bin")));

    // Mouse drag in the remote pane marks a range: rows are inbox/ a.bin
    // c.txt remote.bin (screen rows 3..6, column 70); drag a.bin..c.txt,
    // then delete them after confirming.
    t.mouse(0, 70, 4, true);
    t.mouse(32, 70, 5, true);
    t.mouse(0, 70, 5, false);
    t.wait_for("the dragged marks", |s| s.contains("2 marked"));
    t.keys(&["F8"]);
    t.wait_for("the delete confirmation", |s| {
        s.contains("Delete 2 remote entries")
    });
    t.keys(&["y"]);
    t.wait_for("the deletion", |_| {
        !s.files("u").exists("a.bin") && !s.files("u").exists("c.txt")
    });
    assert!(s.files("u").exists("remote.bin"));

    // Quit.
    t.keys(&["q"]);
    let start = Instant::now();
    while t.alive() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!t.alive(), "ferry quit on q");
}

#[test]
fn a_lost_connection_is_offered_a_reconnect_and_the_queue_resumes() {
    let mut s = Server::start();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    write_random(&work.join("big.bin"), 256 << 20, 7);
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the connection", |s| s.contains("u@127.0.0.1"));
    t.wait_for("the local file", |sc| sc.contains(" big.bin"));
    t.keys(&["Down", "F5"]);
    // Cut the server off mid-upload (SIGKILL), with some bytes on disk.
    // Some of it on the server (1 MiB, or a part in object storage).
    ferry_e2e::uploads::wait_for_held(&s, "u", "big.bin", 1 << 20);
    s.restart_hard_same_port();
    let screen = t.wait_for("the reconnect prompt", |s| s.contains("Connection lost"));
    assert!(screen.contains("reconnect"), "{screen}");
    assert!(
        !s.files("u").exists("big.bin"),
        "nothing torn under the final name"
    );
    t.keys(&["r"]);
    t.wait_for("the resumed upload to finish", |sc| {
        sc.contains("resumed ✓")
    });
    assert!(same(&s, "big.bin", &work.join("big.bin")));
}

/// The connect form (no -s) uses the same known_servers as `ferry -s`:
/// accepting an unknown server records it, the next run connects without
/// asking, and a changed certificate gets the CLI's refusal, not a prompt.
#[test]
fn the_connect_form_records_trust_and_refuses_a_changed_certificate() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let known = home.join(".config/ferry/known_servers");
    let addr = s.addr.to_string();
    // USER is set so the form's user field is never blank: it opens on the
    // password field.
    let ferry = format!("USER=u {}", bin("ferry").display());

    // First run: fill in the whole form, accept the unknown certificate.
    let t = Tmux::start(&work, &home, &ferry);
    t.wait_for("the connect form", |sc| {
        sc.contains("Connect to a Ferry server")
    });
    t.keys(&["BTab", "BTab", "C-u"]);
    t.type_text(&addr);
    t.keys(&["Tab", "C-u"]);
    t.type_text("u");
    t.keys(&["Tab"]);
    t.type_text(PW);
    t.keys(&["Enter"]);
    t.wait_for("the trust prompt", |sc| sc.contains("Unknown server"));
    t.keys(&["y"]);
    t.wait_for("the session", |sc| sc.contains("u@127.0.0.1"));
    let text = std::fs::read_to_string(&known).unwrap_or_default();
    let fp = s.fingerprint.clone().unwrap();
    assert!(
        text.contains(&format!("{addr} {fp}")),
        "trust recorded: {text:?}"
    );
    t.quit();

    // Second run: the form is filled from the recent list; no prompt.
    let t = Tmux::start(&work, &home, &ferry);
    t.wait_for("the connect form", |sc| sc.contains(&addr));
    t.type_text(PW);
    t.keys(&["Enter"]);
    let screen = t.wait_for("the session", |sc| {
        sc.contains("u@127.0.0.1") || sc.contains("Unknown server")
    });
    assert!(!screen.contains("Unknown server"), "{screen}");
    t.quit();

    // Third run: the pin no longer matches; the form refuses like the CLI.
    let other = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    std::fs::write(&known, format!("{addr} {other}\n")).unwrap();
    let t = Tmux::start(&work, &home, &ferry);
    t.wait_for("the connect form", |sc| sc.contains(&addr));
    t.type_text(PW);
    t.keys(&["Enter"]);
    let screen = t.wait_for("the refusal", |sc| {
        sc.contains("HAS CHANGED") || sc.contains("Unknown server") || sc.contains("u@127")
    });
    assert!(screen.contains("HAS CHANGED"), "{screen}");
    assert!(!screen.contains("Unknown server"), "{screen}");
    assert!(screen.contains("Connect to a Ferry server"), "{screen}");
    let cli = Command::new(bin("ferry"))
        .args(["-s", &addr, "-u", "u", "--known-servers"])
        .arg(&known)
        .args(["ls", "/"])
        .env("FERRY_PASSWORD", PW)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let cli_err = String::from_utf8_lossy(&cli.stderr);
    assert!(
        cli_err.contains("HAS CHANGED"),
        "the CLI refuses alike: {cli_err}"
    );
    // Esc leaves the form for the offline app, which q quits.
    t.keys(&["Escape"]);
    t.wait_for("the offline app", |sc| sc.contains("offline"));
    t.quit();
}

/// With a 2 s idle timeout on the server and a keepalive every second, an
/// idle TUI stays connected and usable.
#[test]
fn an_idle_tui_stays_connected() {
    let s =
        Server::start_with(&TEST_CONFIG.replace("[limits]\n", "[limits]\nidle_timeout_secs = 2\n"));
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_KEEPALIVE=1 FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the session", |sc| sc.contains("u@127.0.0.1"));
    std::thread::sleep(Duration::from_secs(6));
    let screen = t.screen();
    assert!(!screen.contains("Connection lost"), "{screen}");
    s.files("u").write("later.txt", "x");
    t.keys(&["Tab", "C-r"]);
    let screen = t.wait_for("the new file", |sc| {
        sc.contains("later.txt") || sc.contains("Connection lost")
    });
    assert!(!screen.contains("Connection lost"), "{screen}");
    // The local pane follows its directory on disk by itself.
    std::fs::write(work.join("made-outside.txt"), "x").unwrap();
    t.wait_for("the watcher", |sc| sc.contains("made-outside.txt"));
    t.quit();
}

/// A TUI without keepalives (here: one a day) outlived by the server's
/// idle timeout hears why the link dropped: the reason the server sends
/// before it closes, not a bare "the server closed the connection".
#[test]
fn an_idle_close_shows_the_servers_reason() {
    let s =
        Server::start_with(&TEST_CONFIG.replace("[limits]\n", "[limits]\nidle_timeout_secs = 2\n"));
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_KEEPALIVE=86400 FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the session", |sc| sc.contains("u@127.0.0.1"));
    let screen = t.wait_for("the link to drop", |sc| sc.contains("Connection lost"));
    assert!(screen.contains("idle for 2 s"), "{screen}");
    t.keys(&["r"]);
    t.wait_for("the reconnect", |sc| {
        sc.contains("connected as u@") && !sc.contains("Connection lost")
    });
    t.quit();
}

/// The demo (a server on a random port) leaves no trace in the recent
/// servers list.
#[test]
fn the_demo_is_not_a_recent_server() {
    let local = tempfile::tempdir().unwrap();
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cmd = format!("{} demo", bin("ferry").display());
    let t = Tmux::start(local.path(), &home, &cmd);
    t.wait_for("the demo session", |sc| sc.contains("demo@127.0.0.1"));
    t.quit();
    let config = home.join(".config/ferry/config.toml");
    let text = std::fs::read_to_string(&config).unwrap_or_default();
    assert!(!text.contains("127.0.0.1"), "{text}");
}

/// The pid of the ferryd this test started (found by its own config file).
fn ferryd_pid(s: &Server) -> u32 {
    let needle = s.config.to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle)
            && String::from_utf8_lossy(&cmdline).contains("ferryd")
        {
            return pid;
        }
    }
    panic!("ferryd not found")
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// A server that stops answering mid-upload shows as "stalled N s", not
/// as the last speed; after the stall limit the job fails with its reason,
/// and once the server answers again `r` resumes it.
#[test]
fn a_stalled_transfer_says_so_and_resumes() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    write_random(&work.join("big.bin"), 256 << 20, 9);
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_STALL_TIMEOUT=8 FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the session", |sc| sc.contains("u@127.0.0.1"));
    // The local listing too, or Down may come before it (CI, loaded).
    t.wait_for("the file", |sc| sc.contains("big.bin"));
    t.keys(&["Down", "F5"]);
    // Some of it on the server (1 MiB, or a part in object storage).
    ferry_e2e::uploads::wait_for_held(&s, "u", "big.bin", 1 << 20);
    let pid = ferryd_pid(&s);
    signal(pid, "-STOP");
    let screen = t.wait_for("the stall", |sc| sc.contains("stalled"));
    assert!(!screen.contains("✓"), "{screen}");
    let screen = t.wait_for("the stall limit", |sc| sc.contains("no progress"));
    assert!(screen.contains("failed"), "{screen}");
    signal(pid, "-CONT");
    t.keys(&["F9", "r"]);
    t.wait_for("the resumed upload", |sc| sc.contains("resumed ✓"));
    assert!(same(&s, "big.bin", &work.join("big.bin")));
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

/// F5 on 20,000 marked remote files: one job at once, keys answered while
/// it plans and runs, every file on disk at the end, counts that follow
/// the disk.
#[test]
fn twenty_thousand_marked_files_are_one_job() {
    const N: usize = 20_000;
    let s = Server::start();
    s.add_user("u", PW, None);
    s.files("u").write_files(
        "many",
        (0..N).map(|i| (format!("f{i:05}.txt"), format!("file {i}\n").into_bytes())),
    );
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(work.join("down")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the session", |sc| sc.contains("u@127.0.0.1"));
    // Both listings first, or the keys may come before them.
    t.wait_for("both listings", |sc| {
        sc.contains(" down/") && sc.contains(" many/")
    });
    // Local pane into down/ (rows: ../ down/).
    t.keys(&["Down", "Enter"]);
    t.wait_for("the local down/", |sc| sc.contains("/work/down"));
    // Remote pane into many/, mark everything, copy.
    t.keys(&["Tab", "End", "Enter"]);
    t.wait_for("the big listing", |sc| {
        sc.contains(&format!("{N} entries")) && !sc.contains("loading")
    });
    t.keys(&["+"]);
    t.wait_for("the marks", |sc| sc.contains(&format!("{N} marked")));
    t.keys(&["F5"]);
    t.wait_for("one job at once", |sc| {
        sc.contains(&format!("↓ {N} entries from many/"))
    });
    // Keys are answered while it runs.
    t.keys(&["F1"]);
    t.wait_for("the help", |sc| sc.contains("key closes"));
    t.keys(&["Escape"]);
    let start = Instant::now();
    let screen = loop {
        let sc = t.screen();
        if sc.contains("done ✓") {
            eprintln!("{N} files downloaded in {:?}", start.elapsed());
            break sc;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the job did not finish:\n{sc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        screen.contains(&format!("{N} of {N} files")),
        "the counts follow the commits:\n{screen}"
    );
    assert_eq!(count_files(&work.join("down")), N);
    assert_eq!(
        std::fs::read_to_string(work.join("down/f12345.txt")).unwrap(),
        "file 12345\n"
    );
}

/// A big copy cancelled at once stops for good: the scan and the files
/// in flight end, and no file arrives afterwards.
#[test]
fn a_cancelled_copy_stops_at_once() {
    let s = Server::start();
    s.add_user("u", PW, None);
    s.files("u").write_files(
        "many",
        (0..3000).map(|i| (format!("f{i:05}"), b"x".to_vec())),
    );
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(work.join("a")).unwrap();
    std::fs::create_dir_all(work.join("b")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the session", |sc| sc.contains("u@127.0.0.1"));
    t.wait_for("both listings", |sc| {
        sc.contains(" a/") && sc.contains(" b/") && sc.contains(" many/")
    });
    t.keys(&["Down", "Enter"]);
    t.wait_for("a", |sc| sc.contains("/work/a"));
    t.keys(&["Tab", "Home", "Enter"]);
    t.wait_for("many", |sc| sc.contains(":/many"));
    t.keys(&["+", "F5"]);
    t.wait_for("first done", |sc| sc.contains("done ✓"));
    t.keys(&["Tab", "Tab", "BSpace"]);
    t.wait_for("work", |sc| sc.contains("b/"));
    t.keys(&["Home", "Down", "Down", "Enter"]);
    t.wait_for("b", |sc| sc.contains("/work/b"));
    t.keys(&["Tab", "+", "F5", "F9", "c"]);
    t.wait_for("the cancel", |sc| sc.contains("cancelled"));
    let after = count_files(&work.join("b"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count_files(&work.join("b")),
        after,
        "no file after the cancel"
    );
    assert!(after < 3000, "cancelled before the end ({after} files)");
    let screen = t.screen();
    assert!(!screen.contains("1 running"), "{screen}");
}

/// Figures for the closing note, by hand, with release binaries
/// (`tests/bench/tui_scale.sh` builds them and runs this):
/// `FERRY_BIN_DIR=target/release cargo test -p ferry-e2e --test tui_tmux
/// scale_by_hand -- --ignored --nocapture`. 100,000 files
/// (`FERRY_SCALE_FILES`) down, then up (`FERRY_SCALE_DIRECTION=down` or
/// `up` for one half, each in a fresh client): how long F1 takes to open
/// the help as seen by tmux, sampled twice a second while the copy runs,
/// and the client's peak RSS (VmHWM).
#[test]
#[ignore]
fn scale_by_hand() {
    if ferry_e2e::disk_only(
        "the closing note's figures, measured by hand against a home on the disk",
    ) {
        return;
    }
    let n: usize = std::env::var("FERRY_SCALE_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let direction = std::env::var("FERRY_SCALE_DIRECTION").unwrap_or_default();
    let halves: Vec<&str> = match direction.as_str() {
        "down" => vec!["download"],
        "up" => vec!["upload"],
        _ => vec!["download", "upload"],
    };
    // No entry limit: both halves keep 2 x n files (and partials) in the home.
    let s = Server::start_with(
        &TEST_CONFIG.replace("[limits]\n", "[limits]\nmax_entries_per_user = 0\n"),
    );
    s.add_user("u", PW, None);
    let many = s.home("u").join("many");
    std::fs::create_dir_all(&many).unwrap();
    std::fs::create_dir_all(s.home("u").join("back")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let work = local.path().join("work");
    let home = local.path().join("home");
    std::fs::create_dir_all(work.join("down")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    // The files start where the first half copies them from.
    let from = if halves[0] == "upload" {
        work.join("down")
    } else {
        many.clone()
    };
    for i in 0..n {
        std::fs::write(from.join(format!("f{i:06}.txt")), format!("file {i}\n")).unwrap();
    }
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(&work, &home, &cmd);
    t.wait_for("the session", |sc| sc.contains("u@127.0.0.1"));
    t.wait_for("both listings", |sc| {
        sc.contains(" down/") && sc.contains(" back/")
    });
    let out = Command::new("tmux")
        .args(["display", "-p", "-t", &t.name, "#{pane_pid}"])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let hwm = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or("")
            .to_string()
    };
    eprintln!("pid {pid} {}", hwm());
    // Local pane into down/ (rows: ../ down/).
    t.keys(&["Down", "Enter"]);
    t.wait_for("down/", |sc| sc.contains("/work/down"));
    let mut worst = Duration::ZERO;
    let mut probe = |t: &Tmux| {
        let start = Instant::now();
        Command::new("tmux")
            .args(["send-keys", "-t", &t.name, "F1"])
            .status()
            .unwrap();
        while !t.screen().contains("key closes") {
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = start.elapsed();
        t.keys(&["Escape"]);
        worst = worst.max(took);
        took
    };
    for (done, label) in halves.iter().enumerate() {
        // Remote rows at the top: back/ many/ (after the download half
        // the remote pane is still in many/).
        if done == 0 {
            t.wait_for("the remote listing", |sc| sc.contains("back/"));
        }
        if *label == "download" {
            t.keys(&["Tab", "End", "Enter"]);
            t.wait_for("the listing", |sc| {
                sc.contains(&format!("{n} entries")) && !sc.contains("loading")
            });
        } else {
            // Remote pane into back/, then the local pane.
            // A fresh client has the local pane focused; after the
            // download the remote one is, in many/.
            t.keys(&[if done == 0 { "Tab" } else { "BSpace" }]);
            t.wait_for("the remote root", |sc| sc.contains("back/"));
            t.keys(&["Home", "Enter"]);
            t.wait_for("back/", |sc| {
                sc.contains(":/back") && sc.contains("0 entries")
            });
            t.keys(&["F9", "F9"]);
            t.wait_for("the local files", |sc| {
                sc.contains(&format!("{n} entries")) && !sc.contains("loading")
            });
        }
        t.keys(&["+"]);
        t.wait_for("the marks", |sc| sc.contains(&format!("{n} marked")));
        let start = Instant::now();
        t.keys(&["F5"]);
        let mut samples = Vec::new();
        let mut timeline = Vec::new();
        loop {
            let sc = t.screen();
            if sc.matches("done ✓").count() > done {
                break;
            }
            assert!(!sc.contains("failed:"), "the {label} failed:\n{sc}");
            let at = start.elapsed();
            samples.push(probe(&t));
            timeline.push((at.as_millis(), samples[samples.len() - 1].as_millis()));
            std::thread::sleep(Duration::from_millis(500));
            assert!(start.elapsed() < Duration::from_secs(1800));
        }
        let took = start.elapsed();
        let mut ms: Vec<u128> = samples.iter().map(|d| d.as_millis()).collect();
        ms.sort_unstable();
        let at = |q: f64| {
            ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
                .copied()
        };
        eprintln!(
            "{label}: {n} files in {took:?}; {} key answers (ms): median {:?}, p90 {:?}, \
             min {:?}, max {:?}; {}",
            ms.len(),
            at(0.5),
            at(0.9),
            ms.first(),
            ms.last(),
            hwm()
        );
        eprintln!("{label}: all key answers (ms, sorted): {ms:?}");
        eprintln!("{label}: (ms since F5, answer ms): {timeline:?}");
    }
    let back = count_files(&s.home("u").join("back"));
    eprintln!(
        "worst key answer {worst:?}; {}; files in back/: {back}",
        hwm()
    );
}
