//! The sync dialog through `update` and on screen.

use std::sync::Arc;

use crossterm::event::KeyCode;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::run::{summary, SyncNews, SyncWork};
use super::{Phase, PlanRef};
use crate::sync::plan::Step;
use crate::sync::{Deleted, Outcome, Plan, Tally};
use crate::transfer::Direction;
use crate::tui::action::{Action, Effect};
use crate::tui::app::App;
use crate::tui::app_tests::{app, key};
use crate::tui::dialog::Dialog;
use crate::tui::render::render;

fn dialog(a: &App) -> &super::SyncDialog {
    match &a.dialog {
        Some(Dialog::Sync(d)) => d,
        other => panic!("{other:?}"),
    }
}

fn typed(a: &mut App, text: &str) {
    for c in text.chars() {
        a.update(key(KeyCode::Char(c)));
    }
}

fn screen(a: &mut App, h: u16) -> String {
    a.update(Action::Resize(100, h));
    let mut t = Terminal::new(TestBackend::new(100, h)).unwrap();
    t.draw(|f| render(&*a, f)).unwrap();
    t.backend().to_string()
}

/// A plan: pics/ made, a.txt copied, b.txt updated, old.txt deleted,
/// c.txt unchanged.
fn plan() -> PlanRef {
    let mut p = Plan::default();
    let steps = [
        Step::NewDir {
            name: "pics".into(),
        },
        Step::Copy {
            name: "a.txt".into(),
            size: 100,
        },
        Step::Update {
            name: "b.txt".into(),
            size: 5,
        },
        Step::DeleteFile {
            name: "old.txt".into(),
            size: 7,
        },
        Step::Same {
            name: "c.txt".into(),
            size: 300,
        },
    ];
    for s in &steps {
        p.take("", false, s);
    }
    p.finish();
    PlanRef(Arc::new(p))
}

/// Opens the dialog, sets --delete, an include and an exclude, and asks
/// for the plan; returns its id.
fn planning(a: &mut App) -> u64 {
    assert!(a.update(key(KeyCode::Char('S'))).is_empty());
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Char(' ')));
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Down));
    typed(a, "*.txt pics");
    a.update(key(KeyCode::Down));
    typed(a, "*.tmp \"My Documents\" Old\\ Stuff");
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Sync(SyncWork::Plan { id, sides, how })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(sides.up, "the local pane had the focus");
    assert_eq!(sides.local.to_str(), Some("/home/me"));
    assert_eq!(sides.remote.to_string(), "/");
    assert!(how.delete && !how.checksum);
    assert_eq!(how.include, ["*.txt", "pics"]);
    assert_eq!(how.exclude, ["*.tmp", "My Documents", "Old Stuff"]);
    let opts = how.options();
    assert_eq!(opts.rules.len(), 5, "the same options as ferry sync");
    *id
}

#[test]
fn s_asks_for_the_plan_and_the_preview_runs_as_one_queue_job() {
    let mut a = app();
    let id = planning(&mut a);
    assert_eq!(dialog(&a).phase, Phase::Planning(id));
    // Another plan's answer changes nothing.
    a.update(Action::Sync(SyncNews::Planned {
        id: id + 100,
        result: Err("stale".into()),
    }));
    assert_eq!(dialog(&a).phase, Phase::Planning(id));
    let plan = plan();
    a.update(Action::Sync(SyncNews::Planned {
        id,
        result: Ok(plan.clone()),
    }));
    assert_eq!(dialog(&a).phase, Phase::Preview(plan.clone()));
    a.message = None;
    insta::assert_snapshot!("sync_preview", screen(&mut a, 30));
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::StartJob { job, spec }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(a.dialog.is_none());
    assert_eq!(spec.direction, Direction::Put);
    let sync = spec.sync.as_ref().expect("a sync job");
    assert!(sync.plan.is(&plan), "the plan previewed, not another");
    assert!(sync.how.delete);
    assert_eq!(spec.dest, ":/");
    let queued = &a.queue.jobs[0];
    assert_eq!((queued.id, queued.source.as_str()), (*job, "sync /home/me"));
    // A retry runs the same sync.
    assert_eq!(spec.resumed().sync, spec.sync);
}

#[test]
fn download_from_the_remote_pane_and_esc_stops_the_planning() {
    let mut a = app();
    a.update(key(KeyCode::Tab));
    a.update(key(KeyCode::Char('S')));
    assert!(!dialog(&a).up, "the remote pane had the focus: download");
    // Space on the direction turns it round.
    a.update(key(KeyCode::Char(' ')));
    assert!(dialog(&a).up);
    a.update(key(KeyCode::Char(' ')));
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Sync(SyncWork::Plan { id, sides, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert!(!sides.up);
    let fx = a.update(key(KeyCode::Esc));
    assert_eq!(fx, vec![Effect::Sync(SyncWork::Cancel(*id))]);
    assert!(a.dialog.is_none());
}

#[test]
fn a_bad_glob_is_said_before_planning() {
    let mut a = app();
    a.update(key(KeyCode::Char('S')));
    for _ in 0..4 {
        a.update(key(KeyCode::Down));
    }
    typed(&mut a, "a[");
    assert!(a.update(key(KeyCode::Enter)).is_empty());
    let d = dialog(&a);
    assert_eq!(d.phase, Phase::Options);
    assert!(d.error.as_deref().unwrap_or("").contains("a["), "{d:?}");
}

#[test]
fn nothing_to_do_is_said_and_enter_closes() {
    let mut a = app();
    a.update(key(KeyCode::Char('S')));
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Sync(SyncWork::Plan { id, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    let mut p = Plan::default();
    p.take(
        "",
        false,
        &Step::Same {
            name: "a".into(),
            size: 1,
        },
    );
    p.finish();
    a.update(Action::Sync(SyncNews::Planned {
        id: *id,
        result: Ok(PlanRef(Arc::new(p))),
    }));
    assert!(screen(&mut a, 30).contains("nothing to do: the destination is up to date"));
    assert!(a.update(key(KeyCode::Enter)).is_empty());
    assert!(a.dialog.is_none());
    assert!(a.queue.jobs.is_empty());
}

#[test]
fn the_actions_scroll() {
    let mut a = app();
    a.update(key(KeyCode::Char('S')));
    let fx = a.update(key(KeyCode::Enter));
    let [Effect::Sync(SyncWork::Plan { id, .. })] = &fx[..] else {
        panic!("{fx:?}")
    };
    let mut p = Plan::default();
    for i in 0..30 {
        let name = format!("f{i:02}");
        p.take("", false, &Step::Copy { name, size: 1 });
    }
    p.finish();
    a.update(Action::Sync(SyncNews::Planned {
        id: *id,
        result: Ok(PlanRef(Arc::new(p))),
    }));
    assert!(screen(&mut a, 40).contains("actions 1-10 of 30"));
    a.update(key(KeyCode::PageDown));
    let s = screen(&mut a, 40);
    assert!(
        s.contains("actions 11-20 of 30") && s.contains("+ f10"),
        "{s}"
    );
    a.update(key(KeyCode::End));
    assert!(screen(&mut a, 40).contains("actions 21-30 of 30"));
    // Backspace goes back to the options, kept.
    a.update(key(KeyCode::Backspace));
    assert_eq!(dialog(&a).phase, Phase::Options);
}

#[test]
fn offline_s_says_so() {
    let mut a = app();
    a.update(Action::Disconnected("gone".into()));
    a.dialog = None;
    assert!(a.update(key(KeyCode::Char('S'))).is_empty());
    assert!(a.dialog.is_none());
    assert!(a.message.as_ref().unwrap().error);
}

#[test]
fn the_summary_fails_the_job_when_something_did_not_happen() {
    let mut out = Outcome {
        copied: Tally { files: 1, bytes: 5 },
        updated: Tally { files: 1, bytes: 5 },
        deleted: vec![Deleted {
            rel: "old".into(),
            dir: false,
            error: None,
        }],
        ..Default::default()
    };
    assert_eq!(
        summary(&out),
        ("sync: 1 copied, 1 updated, 1 deleted".to_string(), true)
    );
    out.deletions_skipped = Some("1 file(s) failed; nothing deleted".into());
    out.failed = 1;
    out.deleted.clear();
    let (text, ok) = summary(&out);
    assert!(!ok);
    assert!(text.contains("1 files failed") && text.contains("nothing deleted"));
}

#[test]
fn the_previewed_plan_runs_once_and_only_at_once() {
    let p = plan();
    let fresh = super::Previewed::new(p.clone());
    let retry = fresh.clone();
    assert_eq!(fresh.take(), Some(p.clone()), "the first run, at once");
    assert_eq!(retry.take(), None, "a retry or resume plans again");
    let then = std::time::Instant::now()
        .checked_sub(super::FRESH * 2)
        .expect("a clock past the window");
    let waited = super::Previewed(Arc::new(std::sync::Mutex::new(Some((then, p)))));
    assert_eq!(waited.take(), None, "a job that waited plans again");
}

#[test]
fn globs_split_on_spaces_but_keep_quoted_or_escaped_ones() {
    let globs = |s: &str| {
        let mut d = super::SyncDialog::new(true, "/".into(), ferry_proto::RemotePath::root());
        d.include = s.to_string();
        d.how().include
    };
    assert_eq!(globs("  *.txt   pics "), ["*.txt", "pics"]);
    assert_eq!(globs("\"My Documents\" *.tmp"), ["My Documents", "*.tmp"]);
    assert_eq!(globs("My\\ Documents"), ["My Documents"]);
    assert_eq!(globs("a\\\"b \\*.x \"\""), ["a\"b", "\\*.x"]);
    assert_eq!(globs("\"two  spaces\"/*"), ["two  spaces/*"]);
}
