//! The real `ferry` TUI in tmux against a real ferryd: `B` bookmarks the
//! place (both directories) in a private config file without the
//! password; the next run lists it from the connect form with Ctrl-\,
//! and after the login both panes open where the bookmark says.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::PermissionsExt;

use ferry_e2e::tmux::Tmux;
use ferry_e2e::{bin, Server};

const PW: &str = "bookmark-pw";

#[test]
fn a_bookmark_survives_a_restart_and_opens_both_directories_after_login() {
    let s = Server::start();
    s.add_user("u", PW, None);
    s.files("u").write("photos/a.jpg", "jpeg");
    let dirs = tempfile::tempdir().unwrap();
    let work = dirs.path().join("work");
    let home = dirs.path().join("home");
    std::fs::create_dir_all(work.join("pics")).unwrap();
    std::fs::write(work.join("pics/local.txt"), "here").unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let addr = s.addr.to_string();
    let ferry = format!("USER=u {}", bin("ferry").display());

    // First run: log in through the form, go to pics/ and /photos, B.
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
    t.wait_for("the session", |sc| sc.contains("photos/"));
    t.keys(&["Down", "Enter"]);
    t.wait_for("the local directory", |sc| sc.contains("local.txt"));
    t.keys(&["Tab", "Enter"]);
    t.wait_for("the remote directory", |sc| sc.contains("a.jpg"));
    t.keys(&["B"]);
    t.wait_for("the name prompt", |sc| {
        sc.contains("Bookmark this place as")
    });
    t.type_text("_2026");
    t.keys(&["Enter"]);
    t.wait_for("the bookmark saved", |sc| {
        sc.contains("bookmarked as photos_2026")
    });
    let config = home.join(".config/ferry/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("name = \"photos_2026\""), "{text}");
    assert!(text.contains("remote_dir = \"/photos\""), "{text}");
    assert!(!text.contains(PW), "{text}");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    t.quit();

    // Second run: the form names it; Ctrl-\ lists it; Enter fills the form
    // in; after the login both panes are there.
    let t = Tmux::start(&work, &home, &ferry);
    t.wait_for("the form with the bookmark", |sc| {
        sc.contains("Bookmarks (Ctrl-\\ lists): photos_2026")
    });
    t.keys(&["C-\\"]);
    t.wait_for("the list", |sc| sc.contains("▸ photos_2026"));
    t.keys(&["Enter"]);
    t.wait_for("the form again", |sc| sc.contains("log in to u@"));
    t.type_text(PW);
    t.keys(&["Enter"]);
    let screen = t.wait_for("both directories", |sc| {
        sc.contains("a.jpg") && sc.contains("local.txt")
    });
    assert!(screen.contains(":/photos"), "{screen}");
    t.quit();
}
