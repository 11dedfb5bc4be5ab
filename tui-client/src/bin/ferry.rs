//! ferry: thin binary over the ferry-tui library.

use ferry_tui::cli::{self, Args, Command};
use ferry_tui::tui::{self, dialog::ConnectForm, Start};

fn main() {
    let args = Args::parse_ordered();
    // A batch command drives one connection, and its heavy work (reading,
    // writing and hashing files) runs on blocking threads: one thread for
    // the async part is enough, and it spares every hand-off between the
    // connection's tasks a cross-thread wake-up (client system time per
    // 10,000-file tree: ~0.55 s -> ~0.28 s). The TUI and the demo keep a
    // thread pool, so drawing never waits behind a transfer.
    let mut builder = match &args.cmd {
        Some(Command::Demo) | None => tokio::runtime::Builder::new_multi_thread(),
        Some(_) => tokio::runtime::Builder::new_current_thread(),
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let outcome = match &args.cmd {
        Some(Command::Demo) => rt
            .block_on(ferry_tui::demo::run())
            .map_err(|e| cli::Failure::message(format!("{e:#}"))),
        None => rt.block_on(open_tui(&args)),
        Some(cmd) => rt.block_on(cli::run(&args, cmd)),
    };
    if let Err(f) = outcome {
        cli::report(&f, args.json);
        std::process::exit(f.code);
    }
}

/// The TUI: connect at once when a server or a user was given (-s, -u or
/// their environment variables), otherwise show the connect form.
async fn open_tui(args: &Args) -> Result<(), cli::Failure> {
    let local_dir = std::env::current_dir()
        .map_err(|e| cli::Failure::message(format!("no current directory: {e}")))?;
    let connect = match (&args.server, &args.user) {
        (None, None) => None,
        _ => Some(cli::options(args)?),
    };
    let recent = tui::config::recent();
    let (server, user) = recent
        .first()
        .cloned()
        .unwrap_or_else(|| (args.server(), std::env::var("USER").unwrap_or_default()));
    let form = ConnectForm {
        server,
        user,
        recent,
        ..Default::default()
    };
    tui::run(Start {
        connect,
        form,
        local_dir,
    })
    .await
    .map_err(|e| cli::Failure::message(format!("{e:#}")))
}
