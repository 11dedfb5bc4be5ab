//! Find in the TUI against a real ferryd: in tmux, Ctrl-F on the remote
//! pane finds a file deep in the tree on the server and Enter opens its
//! directory with the cursor on it; through the client library, a search
//! the server stops at its limits is said to be incomplete.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use ferry_e2e::tmux::Tmux;
use ferry_e2e::{bin, Server, TEST_CONFIG};
use ferry_tui::client::FindQuery;
use ferry_tui::tui::action::Action;
use ferry_tui::tui::find::run::{spawn, News, Work};
use ferry_tui::tui::find::Event;
use ferry_tui::tui::pane::Side;

const PW: &str = "pw";

#[test]
fn ctrl_f_finds_a_remote_file_and_enter_goes_to_it() {
    let s = Server::start();
    s.add_user("u", PW, None);
    let f = s.files("u");
    for i in 0..30 {
        f.write(format!("top/file{i:02}.txt"), b"x");
    }
    f.write("top/deep/er/needle.bin", b"the needle");
    f.write("top/deep/er/hay.txt", b"hay");
    f.write("zzz.txt", b"z");
    let local = tempfile::tempdir().unwrap();
    let home = local.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let fp = s.fingerprint.clone().unwrap();
    let cmd = format!(
        "FERRY_PASSWORD={PW} {} -s {} -u u --fingerprint {fp}",
        bin("ferry").display(),
        s.addr
    );
    let t = Tmux::start(local.path(), &home, &cmd);
    t.wait_for("the remote listing", |s| s.contains("zzz.txt"));
    t.keys(&["Tab", "C-f"]);
    t.wait_for("the find form", |s| s.contains("Name (glob)"));
    t.keys(&["C-u"]);
    t.type_text("needle*");
    t.keys(&["Enter"]);
    let screen = t.wait_for("the result", |s| s.contains("1 found"));
    assert!(screen.contains("top/deep/er/needle.bin"), "{screen}");
    t.keys(&["Enter"]);
    t.wait_for("the pane in the directory", |s| {
        s.contains(":/top/deep/er") && s.contains("hay.txt")
    });
    // The cursor is on it (not on hay.txt, the first row): F3 views it.
    t.keys(&["F3"]);
    t.wait_for("the file viewed", |s| s.contains("the needle"));
    t.keys(&["q"]);
    t.wait_for("the panes again", |s| s.contains("hay.txt"));
    // Alt+F7 opens the same form, for this directory.
    t.keys(&["M-F7"]);
    t.wait_for("the form again", |s| {
        s.contains("Name (glob)") && s.contains("Under /top/deep/er (remote")
    });
    t.keys(&["Escape"]);
    t.wait_for("the form closed", |s| !s.contains("Name (glob)"));
    t.quit();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_stopped_at_the_servers_limits_is_incomplete() {
    let s =
        Server::start_with(&TEST_CONFIG.replace("[limits]\n", "[limits]\nfind_max_visited = 20\n"));
    s.add_user("u", PW, None);
    let f = s.files("u");
    for i in 0..60 {
        f.write(format!("d/f{i:02}.txt"), b"x");
    }
    let c = s.client("u", PW).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let work = Work::Start {
        id: 9,
        side: Side::Remote,
        dir: "/".into(),
        query: FindQuery {
            pattern: "*.txt".into(),
            ..Default::default()
        },
    };
    spawn(work, Some(c), tx);
    let mut found = 0;
    let end = loop {
        match rx.recv().await {
            Some(Action::Find(News { id: 9, event })) => match event {
                Event::Batch(b) => found += b.len(),
                Event::Local(b) => panic!("{b:?}"),
                Event::Done(why) => break why,
                Event::Failed(e) => panic!("{e}"),
            },
            other => panic!("{other:?}"),
        }
    };
    assert!(found < 60, "{found}");
    assert!(end.unwrap().contains("the server stopped at its limits"));
}
