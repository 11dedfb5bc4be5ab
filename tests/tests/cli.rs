//! The batch CLI against a real ferryd: every browsing command, exit codes,
//! error lines, JSON output, and two users who never see each other.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::{stderr, stdout, Server};

const PW: &str = "s3cret pass";

fn server() -> Server {
    let s = Server::start();
    s.add_user("alice", PW, Some("10MiB"));
    s.add_user("bob", "bobpass", None);
    s
}

#[test]
fn browse_mkdir_mv_rm() {
    let s = server();
    let ok = |args: &[&str]| {
        let o = s.ferry("alice", PW, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    assert_eq!(ok(&["ls"]), "");
    ok(&["mkdir", "-p", "docs/2024/q1"]);
    ok(&["mkdir", "-p", "docs/2024"]); // existing is fine with -p
    s.files("alice").write("docs/report final.txt", b"hello");
    assert_eq!(ok(&["ls", "docs"]), "2024/\nreport final.txt\n");
    let long = ok(&["ls", "-l", "/docs"]);
    assert!(
        long.contains("drwx")
            && long.contains("           5 ")
            && long.contains("report final.txt"),
        "{long}"
    );
    ok(&["mv", "docs/report final.txt", "docs/2024"]); // into a directory
    assert!(s.files("alice").exists("docs/2024/report final.txt"));
    ok(&["mv", "docs/2024/report final.txt", "rapport.txt"]);
    let stat = ok(&["stat", "rapport.txt"]);
    assert!(
        stat.starts_with("-rw") && stat.contains("rapport.txt"),
        "{stat}"
    );
    ok(&["rmdir", "docs/2024/q1"]);
    ok(&["rm", "rapport.txt"]);
    ok(&["rm", "-r", "docs"]);
    assert_eq!(ok(&["ls"]), "");
    if !ferry_e2e::on_s3() {
        assert_eq!(std::fs::read_dir(s.home("alice")).unwrap().count(), 0);
    }
}

#[test]
fn errors_are_one_clear_line_and_nonzero() {
    let s = server();
    let fails = |args: &[&str], expect: &str| {
        let o = s.ferry("alice", PW, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.trim_end(), format!("ferry: {expect}"), "{args:?}");
        assert_eq!(err.lines().count(), 1);
    };
    fails(
        &["ls", "../../etc"],
        "../../etc: outside your home directory",
    );
    fails(&["stat", "nope"], "nope: no such file or directory");
    fails(&["rm", "nope"], "nope: no such file or directory");
    s.files("alice").mkdir("d/e");
    fails(&["rmdir", "d"], "d: directory not empty");
    fails(&["rm", "d"], "d: is a directory");
    fails(&["mkdir", "d"], "d: already exists");
    fails(&["mkdir", "x/y"], "x/y: no such file or directory");
    fails(&["mv", "d", "d/e/f"], "d: bad request");
    let long = "n".repeat(300);
    fails(
        &["mkdir", &long],
        &format!("{long}: a name is longer than 255 bytes"),
    );
    // An absolute path means the home, never the server's root.
    fails(
        &["stat", "/etc/passwd"],
        "/etc/passwd: no such file or directory",
    );
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let s = server();
    let wrong = s.ferry("alice", "nope", &["ls"]);
    let unknown = s.ferry("mallory", "nope", &["ls"]);
    for o in [&wrong, &unknown] {
        assert_eq!(o.status.code(), Some(3));
        assert_eq!(
            stderr(o).trim_end(),
            "ferry: login failed: unknown user or wrong password"
        );
    }
}

#[test]
fn json_output() {
    let s = server();
    s.files("alice").write("f.bin", vec![7u8; 1234]);
    let o = s.ferry("alice", PW, &["--json", "ls"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["name"], "f.bin");
    assert_eq!(v[0]["size"], 1234);
    assert_eq!(v[0]["kind"], "file");
    let o = s.ferry("alice", PW, &["--json", "quota"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["used"], 1234);
    assert_eq!(v["limit"], 10 * 1024 * 1024);
    let o = s.ferry("alice", PW, &["--json", "stat", "missing"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "NotFound");
}

#[test]
fn quota_tracks_removals() {
    let s = server();
    s.files("alice").mkdir("d");
    s.files("alice").write("d/a", vec![0u8; 3000]);
    s.files("alice").write("b", vec![0u8; 1000]);
    // Files' bytes, and 4 KiB for the directory.
    let quota = stdout(&s.ferry("alice", PW, &["quota"]));
    assert!(quota.starts_with("used 8096 of 10485760 bytes"), "{quota}");
    assert!(quota.contains("used 3 of 100000 entries"), "{quota}");
    let c = tokio::runtime::Runtime::new().unwrap();
    c.block_on(async {
        let client = s.client("alice", PW).await.unwrap();
        assert_eq!(client.quota().await.unwrap(), (8096, Some(10 << 20)));
        client
            .remove("d", ferry_proto::msg::RemoveMode::Recursive)
            .await
            .unwrap();
        assert_eq!(client.quota().await.unwrap().0, 1000);
    });
    assert!(stdout(&s.ferry("bob", "bobpass", &["quota"])).contains("no quota"));
}

#[test]
fn users_never_see_each_other() {
    let s = server();
    s.files("bob").write("bob-secret.txt", "bob's");
    s.files("alice").write("alice.txt", "alice's");
    assert_eq!(stdout(&s.ferry("alice", PW, &["ls"])), "alice.txt\n");
    assert_eq!(
        stdout(&s.ferry("bob", "bobpass", &["ls"])),
        "bob-secret.txt\n"
    );
    for path in ["../bob/bob-secret.txt", "/../bob", "../../home/bob"] {
        let o = s.ferry("alice", PW, &["stat", path]);
        assert!(
            stderr(&o).contains("outside your home directory"),
            "{path}: {}",
            stderr(&o)
        );
    }
    assert!(!s
        .ferry("alice", PW, &["rm", "../bob/bob-secret.txt"])
        .status
        .success());
    assert_eq!(s.files("bob").read_string("bob-secret.txt"), "bob's");
    if s.store.is_some() {
        // Object storage holds no symbolic links.
        return;
    }
    // A symlink into bob's home or /etc shows as a link but leads nowhere.
    let ah = s.home("alice");
    std::os::unix::fs::symlink(s.home("bob"), ah.join("bob")).unwrap();
    std::os::unix::fs::symlink("/etc", ah.join("etc")).unwrap();
    std::os::unix::fs::symlink("../bob/bob-secret.txt", ah.join("rel")).unwrap();
    let ls = stdout(&s.ferry("alice", PW, &["ls"]));
    assert_eq!(ls, "alice.txt\nbob@\netc@\nrel@\n");
    for args in [
        vec!["ls", "bob"],
        vec!["ls", "etc"],
        vec!["stat", "bob/bob-secret.txt"],
        vec!["stat", "etc/passwd"],
        vec!["rm", "bob/bob-secret.txt"],
        vec!["mv", "bob/bob-secret.txt", "mine.txt"],
        vec!["mv", "etc/hostname", "mine.txt"],
        vec!["mv", "alice.txt", "bob/planted.txt"],
        vec!["mkdir", "bob/x"],
    ] {
        let o = s.ferry("alice", PW, &args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert!(
            err.contains("outside your home directory") || err.contains("not a directory"),
            "{args:?}: {err}"
        );
    }
    // rm on the link (even rm -r with a trailing slash) removes the link only.
    assert!(s.ferry("alice", PW, &["rm", "-r", "bob/"]).status.success());
    assert!(s.ferry("alice", PW, &["rm", "-r", "etc"]).status.success());
    assert_eq!(s.files("bob").read_string("bob-secret.txt"), "bob's");
    assert!(std::path::Path::new("/etc/passwd").exists());
    assert!(!s.files("bob").exists("planted.txt"));
}

/// A name a hostile server (or another program writing the home) chose to
/// drive the terminal: clear the screen, forge a line, reverse the text.
const NASTY: &str = "a\u{1b}[2J\nferry: forged\tb\u{9b}\u{202e}txt.exe";
/// How the CLI shows it: as `ls -b` would.
const NASTY_SHOWN: &str = "a\\e[2J\\nferry: forged\\tb\\u{9b}\\u{202e}txt.exe";

fn assert_no_controls(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    assert!(
        !text
            .chars()
            .any(|c| c != '\n' && ferry_tui::display::is_unsafe(c)),
        "{what} printed raw control characters: {text:?}"
    );
}

#[test]
fn server_supplied_names_are_escaped_on_the_terminal() {
    let s = server();
    s.files("alice").write(NASTY, b"x");
    s.files("alice").mkdir("d\u{7}\u{7f}");
    let ok = |args: &[&str]| {
        let o = s.ferry("alice", PW, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert_no_controls(&format!("{args:?} stdout"), &o.stdout);
        assert_no_controls(&format!("{args:?} stderr"), &o.stderr);
        stdout(&o)
    };
    assert_eq!(ok(&["ls"]), format!("{NASTY_SHOWN}\nd\\a\\x7f/\n"));
    let long = ok(&["ls", "-l"]);
    assert_eq!(long.lines().count(), 2, "{long}");
    assert!(long.contains(NASTY_SHOWN), "{long}");
    assert!(ok(&["stat", NASTY]).ends_with(&format!(" {NASTY_SHOWN}\n")));
    let local = tempfile::tempdir().unwrap();
    let got = ok(&["get", NASTY, local.path().to_str().unwrap()]);
    assert!(got.contains(NASTY_SHOWN), "{got}");
    assert_eq!(std::fs::read(local.path().join(NASTY)).unwrap(), b"x");
    // Errors name the path escaped, on one line.
    let o = s.ferry("alice", PW, &["stat", &format!("{NASTY}.missing")]);
    assert_eq!(
        stderr(&o),
        format!("ferry: {NASTY_SHOWN}.missing: no such file or directory\n")
    );
    // JSON keeps the exact name (JSON escapes it itself).
    let o = s.ferry("alice", PW, &["--json", "ls"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["name"], NASTY);
    assert_no_controls("ls --json", &o.stdout);
}
