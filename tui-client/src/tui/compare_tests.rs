//! Comparing the panes (`=`, `#`, `M`) through `update` and on screen.

use std::path::PathBuf;

use crossterm::event::KeyCode;
use ferry_proto::msg::{Entry, EntryKind};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::action::{Action, Effect};
use super::app::App;
use super::app_tests::{app, key};
use super::compare::{CompareNews, CompareWork, Diff};
use super::pane::Side;
use super::render::render;

const T: i64 = 1_700_000_000;

fn f(name: &str, size: u64, mtime: i64) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryKind::File,
        size,
        mtime,
        mode: 0o644,
    }
}

fn d(name: &str) -> Entry {
    Entry {
        kind: EntryKind::Dir,
        ..f(name, 4096, T)
    }
}

/// Local: a (only here), b, c, e (larger here), pics/; remote: b (same),
/// c (newer there), d (only there), e, pics/.
fn compared_app() -> App {
    let mut a = app();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            f("a.txt", 100, T),
            f("b.txt", 200, T),
            f("c.txt", 300, T),
            f("e.txt", 900, T),
            d("pics"),
        ]
        .into()),
    });
    a.update(Action::RemoteListed {
        generation: 1,
        listing: vec![
            f("b.txt", 200, T),
            f("c.txt", 300, T + 1),
            f("d.txt", 7, T),
            f("e.txt", 800, T),
            d("pics"),
        ]
        .into(),
    });
    a
}

fn screen(a: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(100, 16)).unwrap();
    t.draw(|f| render(a, f)).unwrap();
    t.backend().to_string()
}

fn diff(a: &App, name: &str) -> Option<Diff> {
    a.comparison().and_then(|c| c.diffs.get(name).copied())
}

#[test]
fn equals_compares_by_size_and_time_and_highlights_both_panes() {
    let mut a = compared_app();
    a.update(Action::Resize(100, 16));
    a.message = None;
    let before = screen(&a);
    assert!(
        a.update(key(KeyCode::Char('='))).is_empty(),
        "nothing to hash"
    );
    assert_eq!(
        a.message.as_ref().unwrap().text,
        "4 differ (by size and time): 1 only local, 1 only remote, 2 changed · M marks them"
    );
    assert_eq!(diff(&a, "a.txt"), Some(Diff::OnlyLocal));
    assert_eq!(diff(&a, "d.txt"), Some(Diff::OnlyRemote));
    assert_eq!(
        diff(&a, "c.txt"),
        Some(Diff::Changed {
            newer: Some(Side::Remote),
            larger: None
        })
    );
    assert_eq!(
        diff(&a, "e.txt"),
        Some(Diff::Changed {
            newer: None,
            larger: Some(Side::Local)
        })
    );
    assert_eq!(diff(&a, "b.txt"), None, "same size, same second");
    assert_eq!(diff(&a, "pics"), None, "directories on both sides");
    let c = a.comparison().unwrap();
    assert_eq!(c.badge(Side::Local, "c.txt"), Some('<'));
    assert_eq!(c.badge(Side::Remote, "c.txt"), Some('>'));
    let after = screen(&a);
    assert_ne!(before, after);
    insta::assert_snapshot!("compare_highlight", after);
    // Highlighted rows have their own colour.
    let mut t = Terminal::new(TestBackend::new(100, 16)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    let buf = t.backend().buffer();
    let row_of = |x: u16, text: &str| {
        (0..16).find(|&y| {
            (x..x + 12)
                .map(|i| buf[(i, y)].symbol().to_string())
                .collect::<String>()
                .contains(text)
        })
    };
    let a_row = row_of(1, "+a.txt").expect("a.txt marked + on the left");
    assert_eq!(buf[(3, a_row)].fg, ratatui::style::Color::LightRed);
    let b_row = row_of(1, " b.txt").expect("b.txt plain");
    assert_ne!(buf[(3, b_row)].fg, ratatui::style::Color::LightRed);
    // `=` again hides it.
    a.update(key(KeyCode::Char('=')));
    assert!(a.comparison().is_none());
    assert_eq!(a.message.as_ref().unwrap().text, "comparison hidden");
    a.message = None;
    assert_eq!(screen(&a), before);
}

#[test]
fn leaving_the_directory_clears_it_and_a_new_listing_compares_again() {
    let mut a = compared_app();
    a.update(key(KeyCode::Char('=')));
    // The remote side changes (c.txt copied over): compared again.
    a.update(Action::RemoteListed {
        generation: 1,
        listing: vec![
            f("b.txt", 200, T),
            f("c.txt", 300, T),
            f("e.txt", 900, T),
            d("pics"),
        ]
        .into(),
    });
    assert_eq!(
        a.message.as_ref().unwrap().text,
        "1 differ (by size and time): 1 only local, 0 only remote, 0 changed · M marks them"
    );
    // Into pics on the left: nothing is highlighted any more.
    a.local.select_name("pics");
    a.update(key(KeyCode::Enter));
    assert!(a.comparison().is_none());
    a.update(Action::LocalListed {
        generation: 2,
        result: Ok(vec![f("a.txt", 1, T)].into()),
    });
    assert!(a.cmp.shown.is_none(), "dropped once the listing came");
    assert!(!screen(&a).contains("+a.txt"));
}

#[test]
fn hash_compares_files_of_equal_size_by_contents_within_the_cap() {
    let mut a = compared_app();
    a.cmp.cap = 250;
    let fx = a.update(key(KeyCode::Char('#')));
    let [Effect::Compare(CompareWork::Hash {
        job,
        local_dir,
        remote_dir,
        files,
    })] = &fx[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(local_dir, &PathBuf::from("/home/me"));
    assert_eq!(remote_dir.to_string(), "/");
    // b (200) fits the cap; c (300) would pass it; e differs by size.
    assert_eq!(files, &vec![("b.txt".to_string(), 200)]);
    assert_eq!(diff(&a, "b.txt"), Some(Diff::Hashing));
    assert_eq!(diff(&a, "c.txt"), Some(Diff::Unknown));
    assert!(a.message.as_ref().unwrap().text.contains("hashing 1…"));
    let job = *job;
    // A stale run's news changes nothing.
    a.update(Action::Compare(CompareNews::Hashed {
        job: job + 7,
        name: "b.txt".into(),
        same: Ok(false),
    }));
    assert_eq!(diff(&a, "b.txt"), Some(Diff::Hashing));
    a.update(Action::Compare(CompareNews::Hashed {
        job,
        name: "b.txt".into(),
        same: Ok(false),
    }));
    a.update(Action::Compare(CompareNews::Done { job }));
    assert_eq!(
        diff(&a, "b.txt"),
        Some(Diff::Changed {
            newer: None,
            larger: None
        })
    );
    assert_eq!(
        a.comparison().unwrap().badge(Side::Local, "b.txt"),
        Some('≠')
    );
    assert_eq!(
        a.message.as_ref().unwrap().text,
        "4 differ (by contents): 1 only local, 1 only remote, 2 changed; 1 not hashed · M marks them"
    );
    // The same listing again: the known result is kept, nothing rehashed.
    let fx = a.update(Action::RemoteListed {
        generation: 1,
        listing: vec![f("b.txt", 200, T), f("c.txt", 300, T + 1)].into(),
    });
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Compare(CompareWork::Hash { .. }))),
        "{fx:?}"
    );
    // Same size and time, other contents: no side is newer, M marks it
    // on neither.
    let c = a.comparison().unwrap();
    assert!(!c.differs_on(Side::Local, "b.txt") && !c.differs_on(Side::Remote, "b.txt"));
}

#[test]
fn hashing_stops_when_hidden_or_when_the_directory_changes() {
    let mut a = compared_app();
    let fx = a.update(key(KeyCode::Char('#')));
    let [Effect::Compare(CompareWork::Hash { job, files, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(files.len(), 2, "b and c, equal sizes whatever the time");
    let job = *job;
    assert_eq!(
        a.update(key(KeyCode::Char('#'))),
        vec![Effect::Compare(CompareWork::Cancel(job))]
    );
    let fx = a.update(key(KeyCode::Char('#')));
    let [Effect::Compare(CompareWork::Hash { job, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    let job = *job;
    a.local.select_name("pics");
    a.update(key(KeyCode::Enter));
    let fx = a.update(Action::LocalListed {
        generation: 2,
        result: Ok(vec![].into()),
    });
    assert!(
        fx.contains(&Effect::Compare(CompareWork::Cancel(job))),
        "{fx:?}"
    );
}

#[test]
fn capital_m_marks_each_difference_on_the_side_to_copy_from() {
    let mut a = compared_app();
    a.update(key(KeyCode::Char('M')));
    assert!(a.message.as_ref().unwrap().error, "nothing compared yet");
    a.update(key(KeyCode::Char('=')));
    a.update(key(KeyCode::Char('M')));
    let mut local: Vec<_> = a.local.marked.iter().cloned().collect();
    let mut remote: Vec<_> = a.remote.marked.iter().cloned().collect();
    local.sort();
    remote.sort();
    // c.txt is newer on the remote side, e.txt larger on the local one
    // (same time): each is marked only where it should be copied from.
    assert_eq!(local, ["a.txt", "e.txt"]);
    assert_eq!(remote, ["c.txt", "d.txt"]);
    assert_eq!(
        a.message.as_ref().unwrap().text,
        "marked 2 local and 2 remote entries to copy: F5 on a pane copies them"
    );
}

#[test]
fn capital_m_marks_only_what_the_panes_show_and_no_kind_mismatch() {
    let mut a = app();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            f(".env", 10, T),
            f("a.txt", 1, T),
            f("k", 1, T),
            f("log", 1, T),
        ]
        .into()),
    });
    a.update(Action::RemoteListed {
        generation: 1,
        listing: vec![d("k"), f("z.txt", 1, T)].into(),
    });
    assert!(!a.local.show_hidden, "dot files hidden by default");
    a.local.filter = Some("t".into());
    a.local.resort();
    a.update(key(KeyCode::Char('=')));
    assert!(
        a.message
            .as_ref()
            .unwrap()
            .text
            .ends_with("· M marks them (2 of them hidden or filtered out)"),
        "{:?}",
        a.message
    );
    assert_eq!(diff(&a, ".env"), Some(Diff::OnlyLocal));
    assert_eq!(diff(&a, "k"), Some(Diff::Kind));
    a.update(key(KeyCode::Char('M')));
    let mut local: Vec<_> = a.local.marked.iter().cloned().collect();
    local.sort();
    let remote: Vec<_> = a.remote.marked.iter().cloned().collect();
    assert_eq!(
        local,
        ["a.txt"],
        ".env hidden, log filtered out, k a kind mismatch"
    );
    assert_eq!(remote, ["z.txt"]);
    assert_eq!(
        a.message.as_ref().unwrap().text,
        "marked 1 local and 1 remote entries to copy: F5 on a pane copies them; \
         2 hidden or filtered out, not marked; 1 not marked (neither side newer, or not known)"
    );
}

#[test]
fn offline_or_loading_it_says_why() {
    let mut a = compared_app();
    a.update(Action::Disconnected("gone".into()));
    a.dialog = None;
    assert!(a.update(key(KeyCode::Char('='))).is_empty());
    assert!(a
        .message
        .as_ref()
        .unwrap()
        .text
        .starts_with("not connected"));
    assert!(a.comparison().is_none());
}
