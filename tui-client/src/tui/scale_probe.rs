//! Timings of the UI thread's share of a 100,000-entry directory, by hand:
//! `cargo test --release -p ferry-tui --lib scale_probe -- --ignored
//! --nocapture`. Figures, not assertions.

use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::KeyCode;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

use super::action::Action;
use super::app::App;
use super::app_tests::key;
use super::listing::Listing;
use super::runtime::read_local;

#[test]
#[ignore]
fn scale_probe() {
    let n = 100_000;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        std::fs::write(dir.path().join(format!("f{i:06}.txt")), "x").unwrap();
    }
    let path = PathBuf::from(dir.path());
    // Off the UI thread (the runtime's blocking task).
    let t = Instant::now();
    let listed = read_local(&path).unwrap();
    eprintln!("read_local {n} (runtime): {:?}", t.elapsed());
    let t = Instant::now();
    let sorted = Listing::sorted(listed.clone(), Default::default());
    eprintln!("sort {n} (runtime): {:?}", t.elapsed());

    // On the UI thread.
    let mut a = App::new(path.clone(), Rect::new(0, 0, 120, 40));
    a.start();
    let result = Ok(sorted.clone());
    let t = Instant::now();
    a.update(Action::LocalListed {
        generation: 1,
        result,
    });
    eprintln!("install of the first listing: {:?}", t.elapsed());
    a.update(Action::LocalChanged(path.clone()));
    let result = Ok(sorted.clone());
    let t = Instant::now();
    a.update(Action::LocalListed {
        generation: 2,
        result,
    });
    eprintln!("install of a re-listing, nothing marked: {:?}", t.elapsed());
    let t = Instant::now();
    a.update(key(KeyCode::Char('+')));
    eprintln!("+ (mark all): {:?}", t.elapsed());
    a.update(Action::LocalChanged(path.clone()));
    let result = Ok(sorted.clone());
    let t = Instant::now();
    a.update(Action::LocalListed {
        generation: 3,
        result,
    });
    eprintln!("install of a re-listing, all marked: {:?}", t.elapsed());
    a.update(Action::LocalChanged(path));
    let result = Ok(listed.into());
    let t = Instant::now();
    a.update(Action::LocalListed {
        generation: 4,
        result,
    });
    eprintln!(
        "install of an unsorted re-listing, all marked (the old path): {:?}",
        t.elapsed()
    );
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    for i in 0..3 {
        let t = Instant::now();
        term.draw(|f| super::render::render(&a, f)).unwrap();
        eprintln!(
            "frame {i} ({} marked): {:?}",
            a.local.marked.len(),
            t.elapsed()
        );
    }
    let t = Instant::now();
    a.update(key(KeyCode::F(1)));
    term.draw(|f| super::render::render(&a, f)).unwrap();
    eprintln!("F1 and its frame: {:?}", t.elapsed());
    // F5 on 100,000 marked files (an upload into an empty directory).
    a.update(Action::Connected {
        label: "u@host".into(),
        identity: crate::client::ServerIdentity {
            fingerprint: None,
            trust: crate::client::Trust::Pinned,
        },
    });
    a.update(Action::RemoteListed {
        generation: 1,
        listing: Listing::default(),
    });
    let t = Instant::now();
    let fx = a.update(key(KeyCode::F(5)));
    eprintln!(
        "F5 on {} marked: {:?} ({} effects)",
        n,
        t.elapsed(),
        fx.len()
    );
    let t = Instant::now();
    drop(fx);
    eprintln!("dropping its effects: {:?}", t.elapsed());
}
