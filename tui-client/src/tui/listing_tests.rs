//! Listings that arrive later, sorted off the UI thread: the newest one is
//! installed with the cursor kept by name, a superseded one is dropped,
//! and the runtime sorts where it reads.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ferry_proto::msg::{Entry, EntryKind};

use super::action::{Action, Effect};
use super::app::App;
use super::app_tests::{app, e, key};
use super::listing::{Listing, Order};
use super::pane::{Side, SortKey};

fn ctrl_r() -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL))
}

/// The generation and order of the one `ListLocal` in `fx`.
fn list_local(fx: &[Effect]) -> (u64, Order) {
    match fx {
        [Effect::ListLocal {
            generation, order, ..
        }] => (*generation, *order),
        _ => panic!("{fx:?}"),
    }
}

fn names(a: &App, side: Side) -> Vec<String> {
    let p = a.pane(side);
    (0..p.len())
        .map(|r| p.row(r).map_or("..".into(), |e| e.name.clone()))
        .collect()
}

#[test]
fn a_relisting_arriving_later_is_installed_with_the_cursor_on_its_entry() {
    let mut a = app();
    a.update(key(KeyCode::End));
    assert_eq!(a.local.current().unwrap().name, "c.txt");
    let (generation, order) = list_local(&a.update(Action::LocalChanged("/home/me".into())));
    assert_eq!(order, Order::default());
    assert!(a.local.loading);
    // Meanwhile the old entries stay usable.
    assert_eq!(a.local.len(), 5);
    // New files sort before c.txt: the cursor follows its name, not its row.
    let listing = Listing::sorted(
        vec![
            e("c.txt", EntryKind::File, 300),
            e("a.txt", EntryKind::File, 100),
            e("a2.txt", EntryKind::File, 1),
            e("b.txt", EntryKind::File, 200),
            e("b2.txt", EntryKind::File, 1),
            e("pics", EntryKind::Dir, 4096),
        ],
        order,
    );
    a.update(Action::LocalListed {
        generation,
        result: Ok(listing),
    });
    assert!(!a.local.loading);
    assert_eq!(
        names(&a, Side::Local),
        ["..", "pics", "a.txt", "a2.txt", "b.txt", "b2.txt", "c.txt"]
    );
    assert_eq!(a.local.current().unwrap().name, "c.txt");
}

#[test]
fn a_cursor_moved_while_the_listing_runs_stays_on_its_entry() {
    let mut a = app();
    a.update(key(KeyCode::Down)); // pics
    let (generation, order) = list_local(&a.update(ctrl_r()));
    a.update(key(KeyCode::Down)); // a.txt, while the listing runs
    assert_eq!(a.local.current().unwrap().name, "a.txt");
    let listing = Listing::sorted(
        vec![
            e("0.txt", EntryKind::File, 1),
            e("a.txt", EntryKind::File, 100),
            e("pics", EntryKind::Dir, 4096),
        ],
        order,
    );
    a.update(Action::LocalListed {
        generation,
        result: Ok(listing),
    });
    assert_eq!(names(&a, Side::Local), ["..", "pics", "0.txt", "a.txt"]);
    assert_eq!(a.local.current().unwrap().name, "a.txt");
}

#[test]
fn a_superseded_listing_is_dropped() {
    let mut a = app();
    let (older, _) = list_local(&a.update(ctrl_r()));
    let (newer, order) = list_local(&a.update(ctrl_r()));
    assert!(newer > older);
    // The older one arrives first: dropped, the pane still waits.
    a.update(Action::LocalListed {
        generation: older,
        result: Ok(Listing::sorted(vec![e("old", EntryKind::File, 1)], order)),
    });
    assert!(a.local.loading);
    assert!(a.local.find("old").is_none());
    assert_eq!(a.local.len(), 5, "the entries before both listings");
    a.update(Action::LocalListed {
        generation: newer,
        result: Ok(Listing::sorted(vec![e("new", EntryKind::File, 1)], order)),
    });
    assert!(!a.local.loading);
    assert_eq!(names(&a, Side::Local), ["..", "new"]);
    // The older one arriving after the newer: dropped too.
    a.update(Action::LocalListed {
        generation: older,
        result: Ok(Listing::sorted(vec![e("old", EntryKind::File, 1)], order)),
    });
    assert_eq!(names(&a, Side::Local), ["..", "new"]);
}

#[test]
fn a_listing_sorted_before_the_order_changed_is_sorted_again() {
    let mut a = app();
    let (generation, order) = list_local(&a.update(ctrl_r()));
    assert_eq!(order.key, SortKey::Name);
    a.update(key(KeyCode::Char('s'))); // by size, while the listing runs
    let listing = Listing::sorted(
        vec![
            e("small", EntryKind::File, 1),
            e("big", EntryKind::File, 1000),
        ],
        order,
    );
    a.update(Action::LocalListed {
        generation,
        result: Ok(listing),
    });
    assert_eq!(names(&a, Side::Local), ["..", "big", "small"]);
    // The next listing is asked for in the new order.
    let (_, order) = list_local(&a.update(ctrl_r()));
    assert_eq!(order.key, SortKey::Size);
}

#[test]
fn a_remote_listing_streams_then_is_replaced_by_the_sorted_whole() {
    let mut a = app();
    a.update(key(KeyCode::Tab));
    let fx = a.update(ctrl_r());
    let Some(Effect::ListRemote {
        generation, order, ..
    }) = fx.first().cloned()
    else {
        panic!("{fx:?}")
    };
    let batch =
        |names: &[&str]| -> Vec<Entry> { names.iter().map(|n| e(n, EntryKind::File, 1)).collect() };
    a.update(Action::RemoteBatch {
        generation,
        entries: batch(&["z", "m"]),
        done: false,
    });
    a.update(key(KeyCode::End)); // m, the last row so far
    a.update(Action::RemoteBatch {
        generation,
        entries: batch(&["a"]),
        done: false,
    });
    assert!(a.remote.loading);
    assert_eq!(names(&a, Side::Remote), ["z", "m", "a"], "as they came");
    assert_eq!(a.remote.current().unwrap().name, "m");
    // A stale whole listing is dropped.
    a.update(Action::RemoteListed {
        generation: generation - 1,
        listing: Listing::sorted(batch(&["stale"]), order),
    });
    assert!(a.remote.loading);
    a.update(Action::RemoteListed {
        generation,
        listing: Listing::sorted(batch(&["z", "m", "a"]), order),
    });
    assert!(!a.remote.loading);
    assert_eq!(names(&a, Side::Remote), ["a", "m", "z"]);
    assert_eq!(a.remote.current().unwrap().name, "m");
}

#[test]
fn marks_follow_a_relisting_and_their_size_is_kept() {
    let mut a = app();
    a.update(key(KeyCode::Char('+')));
    assert_eq!(
        a.local.marked_summary(),
        (4, 600),
        "files only: 100+200+300"
    );
    let (generation, order) = list_local(&a.update(ctrl_r()));
    // b.txt is gone, c.txt grew.
    let listing = Listing::sorted(
        vec![
            e("a.txt", EntryKind::File, 100),
            e("c.txt", EntryKind::File, 1000),
            e("pics", EntryKind::Dir, 4096),
        ],
        order,
    );
    a.update(Action::LocalListed {
        generation,
        result: Ok(listing),
    });
    assert_eq!(a.local.marked_summary(), (3, 1100));
    assert!(!a.local.marked.contains("b.txt"));
    a.update(key(KeyCode::Down)); // pics
    a.update(key(KeyCode::Down)); // a.txt
    a.update(key(KeyCode::Char(' ')));
    assert_eq!(a.local.marked_summary(), (2, 1000));
}

/// The runtime reads and sorts a local directory off the UI thread and
/// says in which order it sorted.
#[tokio::test]
async fn the_runtime_sends_a_local_listing_sorted() {
    let dir = tempfile::tempdir().unwrap();
    for (name, len) in [("a", 1), ("b", 300), ("c", 20)] {
        std::fs::write(dir.path().join(name), vec![0u8; len]).unwrap();
    }
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut rt = super::runtime::Runtime::new(tx);
    let order = Order {
        key: SortKey::Size,
        reverse: false,
    };
    rt.run(Effect::ListLocal {
        path: PathBuf::from(dir.path()),
        generation: 7,
        order,
    });
    let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a listing")
        .expect("the runtime runs");
    let Action::LocalListed {
        generation: 7,
        result: Ok(listing),
    } = got
    else {
        panic!("{got:?}")
    };
    assert_eq!(listing.order, Some(order));
    let names: Vec<_> = listing.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["d", "b", "c", "a"]);
}
