//! `update` for the connection's life through the form and the dialogs
//! (trust store, failed logins, reconnecting, offline) and for stalls and
//! text fields.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;

use super::action::{Action, Effect};
use super::app::{App, Link};
use super::app_tests::{app, key};
use super::dialog::{Dialog, ReconnectDialog};
use super::pane::Side;
use super::queue::JobState;
use crate::transfer::{Direction, TransferEvent};

fn ctrl(c: char) -> Action {
    Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn type_text(a: &mut App, text: &str) {
    for c in text.chars() {
        a.update(key(KeyCode::Char(c)));
    }
}

/// The form connects with the CLI's trust store, so trust is recorded in
/// known_servers and a changed certificate meets the CLI's refusal.
#[test]
fn the_form_uses_the_known_servers_file() {
    let mut a = App::new(PathBuf::from("/"), Rect::new(0, 0, 80, 24));
    a.ask_connect(super::form::ConnectForm::prefilled(
        "host:7272",
        "me",
        vec![],
    ));
    type_text(&mut a, "pw");
    let fx = a.update(key(KeyCode::Enter));
    let Some(Effect::Connect(opts)) = fx.first() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        opts.password, "pw",
        "a pre-filled form focuses the password"
    );
    match &opts.security {
        crate::client::Security::Tls(t) => assert_eq!(
            t.known_servers,
            crate::client::tls::default_known_servers(),
            "the form must read and write the same known_servers as ferry -s"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_login_keeps_server_and_user_even_after_the_trust_prompt() {
    let mut a = App::new(PathBuf::from("/"), Rect::new(0, 0, 80, 24));
    a.ask_connect(super::form::ConnectForm::prefilled(
        "host:7272",
        "me",
        vec![],
    ));
    type_text(&mut a, "wrong");
    a.update(key(KeyCode::Enter));
    a.update(Action::UnknownServer {
        server: "host:7272".into(),
        fingerprint: "SHA256:abc".into(),
    });
    a.update(key(KeyCode::Char('y')));
    a.update(Action::ConnectFailed(
        "unknown user or wrong password".into(),
    ));
    let Some(Dialog::Connect(form)) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert_eq!(
        (form.server.as_str(), form.user.as_str()),
        ("host:7272", "me")
    );
    assert_eq!((form.password.as_str(), form.field), ("", 2));
    assert!(form.error.as_deref().unwrap().contains("wrong password"));
    // Esc leaves the form and the program runs on, offline.
    assert!(a.update(key(KeyCode::Esc)).is_empty());
    assert!(!a.quit && a.dialog.is_none());
    assert_eq!(a.link, Link::Offline);
    // Ctrl-O brings the form back, filled in.
    a.update(ctrl('o'));
    assert!(matches!(&a.dialog, Some(Dialog::Connect(f)) if f.server == "host:7272"));
}

#[test]
fn reconnecting_to_a_server_still_down_keeps_the_reconnect_dialog() {
    let mut a = app();
    a.update(Action::Disconnected("connection reset".into()));
    assert_eq!(a.update(key(KeyCode::Char('r'))), vec![Effect::Reconnect]);
    a.update(Action::ConnectFailed(
        "cannot connect to host:7272: connection refused".into(),
    ));
    let Some(Dialog::Reconnect(ReconnectDialog { reason })) = &a.dialog else {
        panic!("{:?}", a.dialog)
    };
    assert!(reason.contains("connection refused"), "{reason}");
    // Esc stays offline, it does not quit; Ctrl-R on the remote pane
    // tries again.
    a.update(key(KeyCode::Esc));
    assert!(!a.quit && a.dialog.is_none());
    a.update(key(KeyCode::Tab));
    assert_eq!(a.update(ctrl('r')), vec![Effect::Reconnect]);
    assert_eq!(a.link, Link::Connecting);
}

#[test]
fn after_a_declined_trust_prompt_ctrl_r_asks_again() {
    let mut a = App::new(PathBuf::from("/"), Rect::new(0, 0, 80, 24));
    a.connecting("host:7272", "me");
    a.update(Action::UnknownServer {
        server: "host:7272".into(),
        fingerprint: "SHA256:abc".into(),
    });
    a.update(key(KeyCode::Char('n')));
    assert!(a.dialog.is_none() && !a.quit);
    assert!(a.message.as_ref().unwrap().text.contains("Ctrl-R"));
    a.update(key(KeyCode::Tab));
    assert_eq!(a.update(ctrl('r')), vec![Effect::Reconnect]);
}

#[test]
fn text_fields_edit_anywhere() {
    let mut a = app();
    a.update(key(KeyCode::F(7)));
    type_text(&mut a, "new dir");
    for k in [
        KeyCode::Home,
        KeyCode::Delete,
        KeyCode::Right,
        KeyCode::Right,
    ] {
        a.update(key(k));
    }
    a.update(key(KeyCode::Char('W')));
    a.update(key(KeyCode::End));
    a.update(ctrl('w'));
    type_text(&mut a, "x");
    let fx = a.update(key(KeyCode::Enter));
    assert_eq!(
        fx,
        vec![Effect::Mkdir(Side::Local, "/home/me/ewW x".into())]
    );
}

/// A job whose figures stand still shows "stalled N s", adds no speed to
/// Overall, and fails after the stall limit so `r` can resume it.
#[test]
fn a_stalled_job_says_so_then_fails_and_can_be_resumed() {
    use std::time::{Duration, Instant};
    let mut a = app();
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job, .. } = fx[0].clone() else {
        panic!()
    };
    for ev in [
        TransferEvent::Queued {
            id: 1,
            direction: Direction::Put,
            source: "a.txt".into(),
            target: "/a.txt".into(),
            size: Some(100),
        },
        TransferEvent::Started {
            id: 1,
            size: 100,
            resumed_from: 0,
        },
        TransferEvent::Progress { id: 1, done: 40 },
    ] {
        a.update(Action::JobEvent { job, event: ev });
    }
    let t0 = Instant::now();
    a.update(Action::Tick(t0 + Duration::from_secs(1)));
    let label = super::render::job_figures(&a.queue.jobs[0], a.now);
    assert!(label.contains("/s ETA"), "{label}");
    a.update(Action::Tick(t0 + Duration::from_secs(10)));
    let label = super::render::job_figures(&a.queue.jobs[0], a.now);
    assert!(label.contains("stalled 1"), "{label}");
    assert_eq!(a.queue.overall(a.now).rate, 0.0);
    a.stall_limit = Duration::from_secs(30);
    let fx = a.update(Action::Tick(t0 + Duration::from_secs(40)));
    assert_eq!(fx, vec![Effect::CancelJob(job)]);
    assert!(matches!(&a.queue.jobs[0].state, JobState::Failed(e) if e.contains("no progress")));
    // The runtime's "cancelled" does not overwrite the reason.
    a.update(Action::JobEnded {
        job,
        result: Err("cancelled".into()),
    });
    assert!(matches!(&a.queue.jobs[0].state, JobState::Failed(e) if e.contains("no progress")));
    a.update(key(KeyCode::F(9)));
    let fx = a.update(key(KeyCode::Char('r')));
    assert!(matches!(fx[..], [Effect::StartJob { .. }]), "{fx:?}");
}

/// While a resume hashes the partial it found, the gauge says "checking
/// N MiB already there" (it stood at 0%), and the job is not stalled.
#[test]
fn a_resume_says_checking_while_it_hashes_the_partial() {
    use std::time::{Duration, Instant};
    let mut a = app();
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let Effect::StartJob { job, .. } = fx[0].clone() else {
        panic!()
    };
    for ev in [
        TransferEvent::Queued {
            id: 0,
            direction: Direction::Put,
            source: "a.txt".into(),
            target: "/a.txt".into(),
            size: Some(3 << 30),
        },
        TransferEvent::Checking {
            id: 0,
            bytes: 2 << 30,
        },
    ] {
        a.update(Action::JobEvent { job, event: ev });
    }
    let label = super::render::job_figures(&a.queue.jobs[0], a.now);
    assert_eq!(label, "checking 2.0 GiB already there");
    // Hashing 2 GiB takes a while: neither "stalled" nor failed for it.
    a.stall_limit = Duration::from_secs(30);
    let fx = a.update(Action::Tick(Instant::now() + Duration::from_secs(40)));
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(a.queue.jobs[0].state, JobState::Running);
    a.update(Action::JobEvent {
        job,
        event: TransferEvent::Started {
            id: 0,
            size: 3 << 30,
            resumed_from: 2 << 30,
        },
    });
    let label = super::render::job_figures(&a.queue.jobs[0], a.now);
    assert!(label.starts_with(" 67% 2.0 GiB/3.0 GiB"), "{label}");
}

fn connected(label: &str) -> Action {
    Action::Connected {
        label: label.into(),
        identity: crate::client::tls::ServerIdentity {
            fingerprint: None,
            trust: crate::client::tls::Trust::Pinned,
        },
    }
}

fn started(fx: &[Effect]) -> Vec<u64> {
    fx.iter()
        .filter_map(|f| match f {
            Effect::StartJob { job, .. } => Some(*job),
            _ => None,
        })
        .collect()
}

/// A job belongs to the login it was made under: logged in elsewhere (a
/// bookmark on another server), its queued jobs wait and one a lost
/// connection interrupted is not resumed there; back on its own login,
/// it resumes and the rest follow.
#[test]
fn jobs_run_only_under_the_login_they_were_made_under() {
    let mut a = app();
    a.queue.set_parallel(1);
    // Rows: .., pics/, a.txt, b.txt (also remote), c.txt: three jobs.
    let mut fx = Vec::new();
    for downs in [1, 1, 2] {
        for _ in 0..downs {
            a.update(key(KeyCode::Down));
        }
        fx.extend(a.update(key(KeyCode::F(5))));
    }
    assert_eq!(a.queue.jobs.len(), 3, "{fx:?}");
    let first = a.queue.jobs[0].run;
    assert_eq!(started(&fx), vec![first], "one at a time");
    // The link drops, cutting the first job; the next does not start.
    a.update(Action::Disconnected("reset by peer".into()));
    let fx = a.update(Action::JobEnded {
        job: first,
        result: Err("connection lost: reset by peer".into()),
    });
    assert!(started(&fx).is_empty(), "offline: {fx:?}");
    // Logged in on another server: nothing of me@host:7272 runs there.
    let fx = a.update(connected("bob@other:7272"));
    assert!(started(&fx).is_empty(), "resumed on another server: {fx:?}");
    assert!(matches!(a.queue.jobs[0].state, JobState::Failed(_)));
    for j in &a.queue.jobs[1..] {
        assert_eq!(j.waits_for(Some("bob@other:7272")), Some("me@host:7272"));
    }
    let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(100, 30)).unwrap();
    t.draw(|f| super::render::render(&a, f)).unwrap();
    let screen = t.backend().to_string();
    assert!(screen.contains("waits for me@host:7272"), "{screen}");
    // A job made now is bob's and runs on his server at once.
    a.update(key(KeyCode::Home));
    a.update(key(KeyCode::Down));
    let fx = a.update(key(KeyCode::F(5)));
    let bobs = a.queue.jobs[3].run;
    assert_eq!(started(&fx), vec![bobs]);
    assert_eq!(a.queue.jobs[3].owner.as_deref(), Some("bob@other:7272"));
    let fx = a.update(Action::JobEnded {
        job: bobs,
        result: Ok(()),
    });
    assert!(started(&fx).is_empty(), "me's jobs wait: {fx:?}");
    // Back as me@host:7272: the interrupted job resumes, the rest follow.
    let fx = a.update(connected("me@host:7272"));
    let [Effect::StartJob { job, spec }] = &fx
        .iter()
        .filter(|f| matches!(f, Effect::StartJob { .. }))
        .collect::<Vec<_>>()[..]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(*job, a.queue.jobs[0].run);
    assert_eq!(spec.conflict, crate::transfer::Conflict::Resume);
    let fx = a.update(Action::JobEnded {
        job: *job,
        result: Ok(()),
    });
    assert_eq!(started(&fx), vec![a.queue.jobs[1].run]);
}

/// A sync setting times or deleting (one recursive delete can take
/// minutes) moves no bytes: the job says what it does, and the stall
/// watchdog leaves it alone; a job whose bytes stand still still fails.
#[test]
fn a_job_setting_times_or_deleting_is_not_stalled() {
    use std::time::{Duration, Instant};
    let mut a = app();
    a.queue.set_parallel(2);
    let mut jobs = Vec::new();
    for _ in 0..2 {
        a.update(key(KeyCode::Down));
        let fx = a.update(key(KeyCode::F(5)));
        jobs.extend(started(&fx));
    }
    assert_eq!(jobs.len(), 2);
    for &job in &jobs {
        for event in [
            TransferEvent::Queued {
                id: 0,
                direction: Direction::Put,
                source: "x".into(),
                target: "/x".into(),
                size: Some(10),
            },
            TransferEvent::Started {
                id: 0,
                size: 10,
                resumed_from: 0,
            },
        ] {
            a.update(Action::JobEvent { job, event });
        }
    }
    a.update(Action::JobEvent {
        job: jobs[0],
        event: TransferEvent::Phase { what: "deleting" },
    });
    let label = super::render::job_figures(&a.queue.jobs[0], a.now);
    assert_eq!(label, "deleting…");
    a.stall_limit = Duration::from_secs(120);
    let fx = a.update(Action::Tick(Instant::now() + Duration::from_secs(600)));
    assert_eq!(fx, vec![Effect::CancelJob(jobs[1])], "only the other job");
    assert_eq!(a.queue.jobs[0].state, JobState::Running);
    assert!(matches!(&a.queue.jobs[1].state, JobState::Failed(e) if e.contains("no progress")));
}
