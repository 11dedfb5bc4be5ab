//! The two-pane terminal UI. One [`app::App`] state; terminal events,
//! network replies and progress become [`action::Action`]s; `update`
//! changes state and returns effects for the [`runtime::Runtime`];
//! [`render::render`] only draws, at most ~30 times a second and only when
//! something changed.

pub mod action;
pub mod app;
pub mod bookmarks;
pub mod chmod;
pub mod compare;
pub mod compare_run;
pub mod config;
pub mod copy;
pub mod dialog;
pub mod draw_dialog;
pub mod edit;
pub mod edit_run;
pub mod find;
pub mod form;
pub mod free;
pub mod help;
pub mod jobs;
pub mod layout;
pub mod listing;
pub mod marks;
pub mod mouse;
pub mod pane;
pub mod prompts;
pub mod queue;
pub mod render;
pub mod runtime;
pub mod sync_dialog;
pub mod text;
pub mod viewer;
pub mod within;

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod bookmarks_tests;
#[cfg(test)]
mod compare_tests;
#[cfg(test)]
mod connection_tests;
#[cfg(test)]
mod edit_tests;
#[cfg(test)]
mod habits_tests;
#[cfg(test)]
mod links_tests;
#[cfg(test)]
mod listing_tests;
#[cfg(test)]
mod messages_tests;
#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod scale_probe;
#[cfg(test)]
mod syncbrowse_tests;
#[cfg(test)]
mod tools_tests;
#[cfg(test)]
mod viewer_tests;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use futures::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::client::ConnectOptions;
use action::{Action, Effect};
use app::App;
use dialog::ConnectForm;

/// How the TUI starts.
#[derive(Debug)]
pub struct Start {
    /// Connect at once with these; otherwise show the connect form.
    pub connect: Option<ConnectOptions>,
    /// Prefill for the connect form.
    pub form: ConnectForm,
    /// The local pane's directory.
    pub local_dir: PathBuf,
}

/// Least time between two frames after input or news (~30 per second).
const FRAME: Duration = Duration::from_millis(33);
/// Least time between two frames when only gauges moved (~10 per second):
/// redrawing gauges faster costs the transfer itself ~10% of its speed on
/// a 2-core machine, and the eye gains nothing.
const GAUGE_FRAME: Duration = Duration::from_millis(100);

/// How often the app hears the time while jobs run.
const TICK: Duration = Duration::from_secs(1);

/// A number of seconds from the environment (settings meant for tests and
/// unusual setups: `FERRY_STALL_TIMEOUT`, `FERRY_KEEPALIVE`).
pub fn env_secs(name: &str) -> Option<Duration> {
    let v = std::env::var(name).ok()?;
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(
        out,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Sends logs to a file, never to the screen.
pub fn log_to_file() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?
        .join("ferry");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join("ferry.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
    Some(path)
}

/// Runs the TUI until the user quits.
pub async fn run(start: Start) -> anyhow::Result<()> {
    log_to_file();
    enable_raw_mode()?;
    let mut out = std::io::stdout();
    crossterm::execute!(out, EnterAlternateScreen, EnableMouseCapture)?;
    // Whatever happens, give the terminal back.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        default_hook(info);
    }));
    let result = event_loop(start).await;
    restore_terminal();
    result
}

async fn event_loop(start: Start) -> anyhow::Result<()> {
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let size = terminal.size()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut app = App::new(start.local_dir, Rect::new(0, 0, size.width, size.height));
    app.set_bookmarks(config::bookmarks().map_err(|e| e.to_string()));
    if let Some(secs) = env_secs("FERRY_STALL_TIMEOUT") {
        app.stall_limit = secs;
    }
    if let Some(n) = config::parallel() {
        app.queue.set_parallel(n);
    }
    let edit_tx = tx.clone();
    let mut rt = runtime::Runtime::new(tx);
    for fx in app.start() {
        rt.run(fx);
    }
    match start.connect {
        Some(opts) => {
            app.connecting(&opts.server, &opts.user);
            rt.run(Effect::Connect(Box::new(opts)));
        }
        None => app.ask_connect(start.form),
    }
    let mut events = EventStream::new();
    let mut dirty = true;
    let mut urgent = true;
    let mut last_draw = Instant::now() - FRAME;
    let mut last_tick = Instant::now();
    loop {
        let frame = if urgent { FRAME } else { GAUGE_FRAME };
        if dirty && last_draw.elapsed() >= frame {
            terminal.draw(|f| render::render(&app, f))?;
            dirty = false;
            urgent = false;
            last_draw = Instant::now();
        }
        // Idle means asleep: no timer runs unless a frame is owed or jobs
        // run (a tick a second notices stalls).
        let jobs = app.queue.active() > 0;
        if jobs && last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            for fx in app.update(Action::Tick(last_tick)) {
                rt.run(fx);
            }
            dirty = true;
            continue;
        }
        let mut wait = if dirty {
            frame.saturating_sub(last_draw.elapsed())
        } else {
            Duration::from_secs(3600)
        };
        if jobs {
            wait = wait.min(TICK.saturating_sub(last_tick.elapsed()));
        }
        let action = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => Action::Key(k),
                Some(Ok(Event::Mouse(m))) => Action::Mouse(m),
                Some(Ok(Event::Resize(w, h))) => {
                    terminal.autoresize()?;
                    Action::Resize(w, h)
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            a = rx.recv() => match a {
                Some(a) => a,
                None => break,
            },
            _ = tokio::time::sleep(wait) => continue,
        };
        dirty = true;
        urgent |= !is_progress(&action);
        for fx in app.update(action) {
            match fx {
                Effect::Edit(edit::EditWork::Run(target)) => {
                    events = edit_run::run_editor(&mut terminal, events, target, &edit_tx).await?
                }
                fx => rt.run(fx),
            }
        }
        if app.quit {
            rt.run(Effect::Quit);
            rt.close().await;
            break;
        }
    }
    Ok(())
}

/// Progress of a running transfer: only gauges move.
fn is_progress(a: &Action) -> bool {
    matches!(
        a,
        Action::JobEvent {
            event: crate::transfer::TransferEvent::Progress { .. },
            ..
        }
    )
}
