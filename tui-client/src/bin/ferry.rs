//! ferry: thin binary over the ferry-tui library.

use clap::Parser;
use ferry_tui::cli::{self, Args};

fn main() {
    let args = Args::parse();
    let Some(cmd) = &args.cmd else {
        eprintln!(
            "ferry: the TUI is not built yet; run a command such as 'ferry ls' (see ferry --help)"
        );
        std::process::exit(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ferry: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(f) = rt.block_on(cli::run(&args, cmd)) {
        cli::report(&f, args.json);
        std::process::exit(f.code);
    }
}
