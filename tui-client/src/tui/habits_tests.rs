//! `update` for the habits of mc and FileZilla users and the defects found
//! in use: cursor placement, F-keys, F6 on marks, the queue's keys and
//! view, folder renames on conflict, counts and sizes, big copies.

use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEventKind};
use ferry_proto::msg::EntryKind;

use super::action::{Action, Effect};
use super::app::{App, Focus};
use super::app_tests::{app, e, key, mouse};
use super::dialog::Dialog;
use super::pane::Side;
use super::queue::JobState;
use crate::transfer::Conflict;

fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn cursor_name(a: &App, side: Side) -> String {
    a.pane(side)
        .current()
        .map(|e| e.name.clone())
        .unwrap_or_default()
}

fn local_listed(a: &mut App, fx: &[Effect], names: &[(&str, EntryKind)]) {
    let Some(Effect::ListLocal { generation, .. }) = fx.first() else {
        panic!("{fx:?}")
    };
    a.update(Action::LocalListed {
        generation: *generation,
        result: Ok(names.iter().map(|(n, k)| e(n, *k, 1)).collect()),
    });
}

#[test]
fn the_cursor_lands_where_it_should() {
    let mut a = app();
    // Into pics/ and back up: the cursor is on pics/.
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::Enter));
    local_listed(&mut a, &fx, &[]);
    let fx = a.update(key(KeyCode::Backspace));
    local_listed(
        &mut a,
        &fx,
        &[
            ("a.txt", EntryKind::File),
            ("pics", EntryKind::Dir),
            ("z", EntryKind::File),
        ],
    );
    assert_eq!(cursor_name(&a, Side::Local), "pics");
    // After a refresh, on the same entry even though one came before it.
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Down));
    assert_eq!(cursor_name(&a, Side::Local), "z");
    let fx = a.update(ctrl('r'));
    local_listed(
        &mut a,
        &fx,
        &[
            ("0", EntryKind::File),
            ("a.txt", EntryKind::File),
            ("pics", EntryKind::Dir),
            ("z", EntryKind::File),
        ],
    );
    assert_eq!(cursor_name(&a, Side::Local), "z");
    // After mkdir, on the new directory.
    a.update(key(KeyCode::F(7)));
    for c in "new".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    let fx = a.update(key(KeyCode::Enter));
    assert!(matches!(&fx[..], [Effect::Mkdir(Side::Local, p)] if p == "/home/me/new"));
    let fx = a.update(Action::OpDone {
        message: None,
        refresh: Some(Side::Local),
    });
    local_listed(
        &mut a,
        &fx,
        &[
            ("a.txt", EntryKind::File),
            ("new", EntryKind::Dir),
            ("z", EntryKind::File),
        ],
    );
    assert_eq!(cursor_name(&a, Side::Local), "new");
}

#[test]
fn a_stale_local_listing_is_ignored() {
    let mut a = app();
    let first = a.update(ctrl('r'));
    let second = a.update(ctrl('r'));
    local_listed(&mut a, &second, &[("x", EntryKind::File)]);
    local_listed(&mut a, &first, &[("x", EntryKind::File)]);
    assert_eq!(a.local.entries.len(), 1, "listed once, not twice");
}

#[test]
fn f6_moves_the_marked_entries() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Char(' ')));
    a.update(key(KeyCode::Char(' ')));
    a.update(key(KeyCode::F(6)));
    assert!(matches!(&a.dialog, Some(Dialog::Input(_))));
    for c in "pics".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    let fx = a.update(key(KeyCode::Enter));
    assert_eq!(
        fx,
        vec![Effect::Move {
            side: Side::Local,
            from: vec!["/home/me/a.txt".into(), "/home/me/b.txt".into()],
            to_dir: "/home/me/pics".into(),
        }]
    );
    assert!(a.local.marked.is_empty());
}

#[test]
fn mc_f_keys_and_the_key_bar() {
    let mut a = app();
    // F3 and F4 on the parent entry say what they work on.
    for (f, says) in [(3, "F3 views files"), (4, "F4 edits files")] {
        assert!(a.update(key(KeyCode::F(f))).is_empty());
        assert!(
            a.message.as_ref().unwrap().text.contains(says),
            "F{f} says why"
        );
    }
    // Sorting left F2: it is on `s`, and on the bar.
    let sort = a.local.sort;
    a.update(key(KeyCode::F(2)));
    assert_eq!(a.local.sort, sort);
    let bar = a.areas().keys;
    let (sort_x, _) = super::layout::fkey_cells(bar.width)[9];
    a.update(mouse(
        MouseEventKind::Down(MouseButton::Left),
        bar.x + sort_x + 1,
        bar.y,
        KeyModifiers::NONE,
    ));
    assert_ne!(a.local.sort, sort, "the bar's Sort button sorts");
}

#[test]
fn queue_keys_mean_one_thing() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job, .. } = fx[0].clone() else {
        panic!()
    };
    a.update(Action::JobEnded {
        job,
        result: Err("quota exceeded".into()),
    });
    a.update(key(KeyCode::F(9)));
    assert_eq!(a.focus, Focus::Queue);
    // Ctrl-R refreshes; it does not retry.
    let fx = a.update(ctrl('r'));
    assert!(
        fx.iter().all(|f| !matches!(f, Effect::StartJob { .. })),
        "{fx:?}"
    );
    assert!(fx.iter().any(|f| matches!(f, Effect::ListLocal { .. })));
    // F5 says why it does nothing here.
    a.message = None;
    assert!(a.update(key(KeyCode::F(5))).is_empty());
    assert!(a.message.is_some());
    // Failed jobs do not hold Overall down, and x clears them.
    assert_eq!(a.queue.overall(Instant::now()).total, 0);
    a.update(key(KeyCode::Char('x')));
    assert!(a.queue.jobs.is_empty());
    assert_eq!(a.focus, Focus::Pane(Side::Local));
}

#[test]
fn the_queue_view_follows_the_running_jobs() {
    let mut a = app();
    for _ in 0..12 {
        a.update(key(KeyCode::Down));
        a.update(key(KeyCode::F(5)));
        a.update(key(KeyCode::Home));
    }
    let ids: Vec<u64> = a.queue.jobs.iter().map(|j| j.id).collect();
    for &job in &ids[..10] {
        a.update(Action::JobEnded {
            job,
            result: Ok(()),
        });
    }
    let height = a.areas().queue_rows.height as usize;
    let offset = a.queue_view_offset();
    assert!(offset + height > 10, "job 11 (running) is in view");
    assert!(a.queue.jobs[offset..]
        .iter()
        .take(height)
        .any(|j| j.active()));
}

#[test]
fn renaming_a_folder_on_conflict_renames_the_folder() {
    let mut a = app();
    // Remote has pics/ already.
    a.update(Action::RemoteBatch {
        generation: 1,
        entries: vec![
            e("pics", EntryKind::Dir, 0),
            e("pics (1)", EntryKind::Dir, 0),
        ],
        done: true,
    });
    a.update(key(KeyCode::Down)); // pics (dirs first)
    a.update(key(KeyCode::F(5)));
    assert!(matches!(a.dialog, Some(Dialog::Conflict(_))));
    let fx = a.update(key(KeyCode::Char('n')));
    let [Effect::StartJob { spec, .. }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(*spec.sources, ["/home/me/pics".to_string()]);
    assert_eq!(spec.name.as_deref(), Some("pics (2)"));
    assert_eq!(spec.conflict, Conflict::Auto);
}

#[test]
fn counts_and_sizes_say_what_they_mean() {
    let mut a = app();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(vec![
            e("dir", EntryKind::Dir, 4096),
            e("f", EntryKind::File, 10),
            e(".hidden", EntryKind::File, 5),
        ]
        .into()),
    });
    a.update(key(KeyCode::Char('+')));
    assert_eq!(
        a.local.marked_summary(),
        (2, 10),
        "a directory's inode size is not counted"
    );
    assert_eq!(a.local.hidden_count(), 1);
    assert_eq!(a.local.len(), 3, "parent row, dir, f");
}

/// F5 on 100,000 marked files is one job (started at once), not 100,000.
#[test]
fn a_big_copy_is_one_job() {
    let mut a = app();
    let many: Vec<_> = (0..100_000)
        .map(|i| e(&format!("f{i:06}"), EntryKind::File, 1))
        .collect();
    a.update(Action::LocalListed {
        generation: 1,
        result: Ok(many.into()),
    });
    a.update(key(KeyCode::Char('+')));
    let fx = a.update(key(KeyCode::F(5)));
    let [Effect::StartJob { spec, .. }] = &fx[..] else {
        panic!("{} effects", fx.len())
    };
    assert_eq!(spec.sources.len(), 100_000);
    assert_eq!(a.queue.jobs.len(), 1);
    assert_eq!(a.queue.jobs[0].state, JobState::Queued);
    assert!(a.queue.jobs[0].source.starts_with("100000 entries"));
}

#[test]
fn f9_then_c_cancels_the_running_job() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job: first, .. } = fx[0].clone() else {
        panic!()
    };
    a.update(Action::JobEnded {
        job: first,
        result: Ok(()),
    });
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job: second, .. } = fx[0].clone() else {
        panic!()
    };
    a.update(key(KeyCode::F(9)));
    assert_eq!(
        a.update(key(KeyCode::Char('c'))),
        vec![Effect::CancelJob(second)]
    );
}

#[test]
fn a_click_on_a_column_header_sorts_and_again_reverses() {
    let mut a = app();
    let header = super::layout::header(a.areas().local);
    let [name_w, _, _] = super::layout::columns(header.width);
    let click = |a: &mut App, x: u16| {
        a.update(mouse(
            MouseEventKind::Down(MouseButton::Left),
            x,
            header.y,
            KeyModifiers::NONE,
        ));
    };
    click(&mut a, header.x + name_w as u16 + 2); // Size
    assert_eq!(a.local.sort, super::pane::SortKey::Size);
    a.update(key(KeyCode::End));
    assert_eq!(cursor_name(&a, Side::Local), "a.txt", "smallest last");
    click(&mut a, header.x + name_w as u16 + 2); // Size again: reversed
    assert!(a.local.reverse);
    a.update(key(KeyCode::End));
    assert_eq!(cursor_name(&a, Side::Local), "c.txt", "largest last");
    click(&mut a, header.x + 1); // Name
    assert_eq!(a.local.sort, super::pane::SortKey::Name);
    assert!(!a.local.reverse);
}

#[test]
fn a_double_click_on_a_file_copies_it() {
    let mut a = app();
    let rows = a.areas().local_rows;
    // Rows: ../ pics/ a.txt b.txt c.txt; a.txt is row 2.
    for _ in 0..2 {
        a.update(mouse(
            MouseEventKind::Down(MouseButton::Left),
            rows.x + 2,
            rows.y + 2,
            KeyModifiers::NONE,
        ));
    }
    let fx = a.update(mouse(
        MouseEventKind::Up(MouseButton::Left),
        rows.x + 2,
        rows.y + 2,
        KeyModifiers::NONE,
    ));
    assert!(fx.is_empty());
    let job = a.queue.jobs.first().expect("a job");
    assert_eq!(*job.spec.sources, ["/home/me/a.txt".to_string()]);
}

#[test]
fn a_change_on_disk_relists_the_local_pane() {
    let mut a = app();
    let fx = a.update(Action::LocalChanged(PathBuf::from("/home/me")));
    assert!(
        matches!(&fx[..], [Effect::ListLocal { generation: 2, .. }]),
        "{fx:?}"
    );
    // Not while a listing is on its way, nor for another directory.
    assert!(a
        .update(Action::LocalChanged(PathBuf::from("/home/me")))
        .is_empty());
    assert!(a
        .update(Action::LocalChanged(PathBuf::from("/elsewhere")))
        .is_empty());
}

/// A refresh of the local pane keeps its entries until the new listing
/// arrives, so a key pressed meanwhile (+ on 100,000 entries) is not lost.
#[test]
fn a_local_refresh_keeps_the_entries_usable() {
    let mut a = app();
    let fx = a.update(ctrl('r'));
    assert!(a.local.loading);
    a.update(key(KeyCode::Char('+')));
    assert_eq!(a.local.marked.len(), 4, "marked while the listing runs");
    local_listed(
        &mut a,
        &fx,
        &[("a.txt", EntryKind::File), ("b.txt", EntryKind::File)],
    );
    assert!(!a.local.loading);
    assert_eq!(a.local.entries.len(), 2);
    assert_eq!(a.local.marked.len(), 2, "marks of vanished entries go");
}
