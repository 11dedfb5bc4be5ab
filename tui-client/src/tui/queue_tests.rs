//! The queue's scheduling (start order, jobs at once, pause and resume),
//! its keys, and how it looks.

use std::sync::Arc;

use crossterm::event::KeyCode;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::action::{Action, Effect};
use super::app::Focus;
use super::app_tests::{app, key, shift};
use super::dialog::Dialog;
use super::queue::{JobSpec, JobState, Queue};
use super::render::render;
use crate::transfer::{Conflict, Direction, TransferEvent};

fn spec(name: &str) -> JobSpec {
    JobSpec {
        direction: Direction::Put,
        sources: Arc::from(vec![format!("/home/me/{name}")]),
        dest: "/".into(),
        name: None,
        conflict: Conflict::Fail,
        follow_links: false,
        sync: None,
    }
}

/// A queue of `names` at `parallel` jobs at once; the jobs it started.
fn queue(parallel: usize, names: &[&str]) -> (Queue, Vec<u64>) {
    let mut q = Queue::default();
    q.set_parallel(parallel);
    for n in names {
        q.push(spec(n));
    }
    let started = started(q.admit(vec![]));
    (q, started)
}

fn started(fx: Vec<Effect>) -> Vec<u64> {
    fx.iter()
        .filter_map(|f| match f {
            Effect::StartJob { job, .. } => Some(*job),
            _ => None,
        })
        .collect()
}

fn id(q: &Queue, name: &str) -> u64 {
    q.jobs
        .iter()
        .find(|j| j.source == name)
        .map(|j| j.run)
        .unwrap_or(0)
}

/// What the runtime says of run `run`, through `route` as `update` does.
fn news(q: &mut Queue, run: u64, event: TransferEvent) {
    if let Some(Action::JobEvent { job, event }) = q.route(Action::JobEvent { job: run, event }) {
        q.apply(job, &event);
    }
}

fn end_of(q: &mut Queue, name: &str, result: Result<(), String>) {
    let run = id(q, name);
    end(q, run, result);
}

fn end(q: &mut Queue, run: u64, result: Result<(), String>) {
    if let Some(Action::JobEnded { job, result }) = q.route(Action::JobEnded { job: run, result }) {
        q.finish(job, result);
    }
}

fn progress(q: &mut Queue, job: u64, done: u64) {
    news(
        q,
        job,
        TransferEvent::Queued {
            id: 0,
            direction: Direction::Put,
            source: "a".into(),
            target: "/a".into(),
            size: Some(100),
        },
    );
    news(
        q,
        job,
        TransferEvent::Started {
            id: 0,
            size: 100,
            resumed_from: 0,
        },
    );
    news(q, job, TransferEvent::Progress { id: 0, done });
}

#[test]
fn at_most_parallel_jobs_run_and_the_next_starts_when_one_ends() {
    let (mut q, first) = queue(2, &["a", "b", "c", "d"]);
    assert_eq!(first, vec![id(&q, "a"), id(&q, "b")]);
    assert!(q.admit(vec![]).is_empty(), "no third job while two run");
    end_of(&mut q, "a", Ok(()));
    assert_eq!(started(q.admit(vec![])), vec![id(&q, "c")]);
    assert_eq!(q.running(), 2);
}

#[test]
fn moving_a_job_up_changes_which_starts_next() {
    let (mut q, first) = queue(1, &["a", "b", "c", "d"]);
    assert_eq!(first, vec![id(&q, "a")]);
    q.move_job(3, -2); // d above b
    assert_eq!(q.selected, 1);
    let order: Vec<&str> = q.jobs.iter().map(|j| j.source.as_str()).collect();
    assert_eq!(order, ["a", "d", "b", "c"]);
    end_of(&mut q, "a", Ok(()));
    assert_eq!(started(q.admit(vec![])), vec![id(&q, "d")]);
    // Moving past either end stops there.
    q.move_job(0, -5);
    q.move_job(0, 10);
    assert_eq!(q.jobs[3].source, "a");
}

#[test]
fn pausing_keeps_the_figures_frees_the_slot_and_resume_continues() {
    let (mut q, first) = queue(1, &["a", "b"]);
    let a = first[0];
    progress(&mut q, a, 40);
    let fx = q.toggle_pause(0);
    assert_eq!(fx, vec![Effect::CancelJob(a)], "its run stops");
    assert_eq!(q.jobs[0].state, JobState::Paused);
    assert_eq!(q.jobs[0].overall().done, 40, "how far it got stays");
    // The slot is free once the old run is gone, not before.
    assert!(q.admit(vec![]).is_empty());
    news(&mut q, a, TransferEvent::Progress { id: 0, done: 60 });
    end(&mut q, a, Err("cancelled".into()));
    assert_eq!(
        q.jobs[0].state,
        JobState::Paused,
        "not cancelled, not failed"
    );
    assert_eq!(
        q.jobs[0].overall().done,
        40,
        "the old run's news is ignored"
    );
    assert_eq!(started(q.admit(vec![])), vec![id(&q, "b")]);
    // Resumed, it waits for a slot, then starts from its partials.
    assert!(q.toggle_pause(0).is_empty());
    assert_eq!(q.jobs[0].state, JobState::Queued);
    assert!(q.admit(vec![]).is_empty());
    end_of(&mut q, "b", Ok(()));
    let fx = q.admit(vec![]);
    let [Effect::StartJob { job, spec }] = &fx[..] else {
        panic!("{fx:?}")
    };
    assert_eq!(*job, q.jobs[0].run);
    assert_ne!(*job, a, "a new run, with a new id");
    assert_eq!(q.jobs[0].id, a, "the job keeps its id");
    assert_eq!(spec.conflict, Conflict::Resume, "the resumed spec");
}

#[test]
fn a_paused_queued_job_does_not_start() {
    let (mut q, first) = queue(1, &["a", "b", "c"]);
    assert!(q.toggle_pause(1).is_empty(), "b never ran: nothing to stop");
    end(&mut q, first[0], Ok(()));
    assert_eq!(started(q.admit(vec![])), vec![id(&q, "c")]);
    assert_eq!(q.jobs[1].state, JobState::Paused);
}

#[test]
fn the_parallel_limit_changes_live() {
    let (mut q, first) = queue(1, &["a", "b", "c", "d"]);
    assert_eq!(first.len(), 1);
    q.set_parallel(3);
    assert_eq!(
        started(q.admit(vec![])),
        vec![id(&q, "b"), id(&q, "c")],
        "raising starts more now"
    );
    q.set_parallel(1);
    assert!(q.admit(vec![]).is_empty());
    end_of(&mut q, "a", Ok(()));
    assert!(q.admit(vec![]).is_empty(), "two still run: no new one");
    end_of(&mut q, "b", Ok(()));
    end_of(&mut q, "c", Ok(()));
    assert_eq!(started(q.admit(vec![])), vec![id(&q, "d")]);
    q.set_parallel(0);
    assert_eq!(q.parallel, 1);
    q.set_parallel(99);
    assert_eq!(q.parallel, 8);
}

#[test]
fn queue_keys_pause_move_parallel_and_limit() {
    let mut a = app();
    for n in ["a.txt", "b.txt", "c.txt"] {
        a.queue.push(spec(n));
    }
    a.update(Action::Tick(a.now));
    assert_eq!(a.queue.running(), 3);
    a.update(key(KeyCode::F(9)));
    assert_eq!(a.focus, Focus::Queue);
    a.queue.selected = 0;
    let first = a.queue.jobs[0].run;
    assert_eq!(
        a.update(key(KeyCode::Char(' '))),
        vec![Effect::CancelJob(first)]
    );
    assert_eq!(a.queue.jobs[0].state, JobState::Paused);
    // Shift+Down and J move it down; K moves it back up.
    a.update(shift(KeyCode::Down));
    a.update(key(KeyCode::Char('J')));
    assert_eq!(a.queue.selected, 2);
    assert_eq!(a.queue.jobs[2].state, JobState::Paused);
    a.update(key(KeyCode::Char('K')));
    assert_eq!(a.queue.selected, 1);
    // Fewer and more jobs at once, remembered by the runtime.
    assert_eq!(
        a.update(key(KeyCode::Char('['))),
        vec![Effect::QueueSettings {
            parallel: 2,
            rate: 0
        }]
    );
    a.update(key(KeyCode::Char('+')));
    a.update(key(KeyCode::Char(']')));
    assert_eq!(a.queue.parallel, 4);
    // The speed limit dialog.
    a.update(key(KeyCode::Char('l')));
    assert!(matches!(a.dialog, Some(Dialog::Input(_))));
    a.update(key(KeyCode::Backspace));
    for c in "500K".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    assert_eq!(
        a.update(key(KeyCode::Enter)),
        vec![Effect::QueueSettings {
            parallel: 4,
            rate: 500_000
        }]
    );
    assert_eq!(a.queue.rate, 500_000);
    // Nonsense is refused with a message.
    a.update(key(KeyCode::Char('l')));
    for c in "fast".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    assert!(a.update(key(KeyCode::Enter)).is_empty());
    assert!(a.message.as_ref().is_some_and(|m| m.error));
    assert_eq!(a.queue.rate, 500_000);
}

#[test]
fn the_queue_shows_a_paused_job_and_its_limits() {
    let mut a = app();
    for n in ["a.txt", "b.txt", "c.txt"] {
        a.queue.push(spec(n));
    }
    a.update(Action::Tick(a.now));
    a.update(key(KeyCode::F(9)));
    a.queue.selected = 0;
    let first = a.queue.jobs[0].run;
    progress(&mut a.queue, first, 40);
    a.update(key(KeyCode::Char('p')));
    a.update(Action::JobEnded {
        job: first,
        result: Err("cancelled".into()),
    });
    a.update(key(KeyCode::Char('[')));
    a.update(key(KeyCode::Char('l')));
    a.update(key(KeyCode::Backspace));
    for c in "10MiB".chars() {
        a.update(key(KeyCode::Char(c)));
    }
    a.update(key(KeyCode::Enter));
    a.message = None;
    a.update(Action::Resize(100, 20));
    let mut t = Terminal::new(TestBackend::new(100, 20)).unwrap();
    t.draw(|f| render(&a, f)).unwrap();
    insta::assert_snapshot!("queue_paused", t.backend().to_string());
}

#[test]
fn a_resumed_job_skips_the_files_it_finished_and_keeps_an_explicit_choice() {
    // Auto and Fail fail on a complete target: every file the first run
    // finished would fail "already exists". Resume skips a complete target
    // of the same size and SHA-256, resumes a partial, and still fails on a
    // different target.
    for (asked, resumed) in [
        (Conflict::Auto, Conflict::Resume),
        (Conflict::Fail, Conflict::Resume),
        (Conflict::Resume, Conflict::Resume),
        (Conflict::Overwrite, Conflict::Overwrite),
        (Conflict::Skip, Conflict::Skip),
        (Conflict::Rename, Conflict::Rename),
    ] {
        let s = JobSpec {
            conflict: asked,
            ..spec("tree")
        };
        assert_eq!(s.resumed().conflict, resumed, "{asked:?}");
        assert_eq!(s.resumed().sources, s.sources);
    }
}
