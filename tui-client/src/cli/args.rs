//! Command-line arguments of `ferry`.

use clap::{Parser, Subcommand};

/// The Ferry client: a two-pane TUI (no command), or batch commands for
/// scripts.
#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "Ferry client: run without a command for the two-pane TUI, or give a batch command"
)]
pub struct Args {
    /// Server address, host:port [default: 127.0.0.1:7272].
    #[arg(short = 's', long, env = "FERRY_SERVER", global = true)]
    pub server: Option<String>,
    /// User name (defaults to $USER).
    #[arg(short = 'u', long, env = "FERRY_USER", global = true)]
    pub user: Option<String>,
    /// Access key, when the server requires one.
    #[arg(long, env = "FERRY_ACCESS_KEY", hide_env_values = true, global = true)]
    pub access_key: Option<String>,
    /// Print machine-readable JSON results.
    #[arg(long, global = true)]
    pub json: bool,
    /// Trust a server no CA vouches for on first contact without asking,
    /// and remember it (for scripts).
    #[arg(long, global = true)]
    pub accept_new: bool,
    /// Expect exactly this certificate fingerprint (SHA256:...), as printed
    /// by `ferryd fingerprint` on the server.
    #[arg(long, global = true, value_name = "SHA256:...")]
    pub fingerprint: Option<String>,
    /// Known-servers file (default ~/.config/ferry/known_servers).
    #[arg(long, env = "FERRY_KNOWN_SERVERS", global = true, value_name = "FILE")]
    pub known_servers: Option<std::path::PathBuf>,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, env = "FERRY_CA_FILE", global = true, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Connect without TLS. UNSAFE outside a trusted link: names and
    /// contents cross the wire in clear. The server must allow it too.
    #[arg(long, global = true)]
    pub insecure_plaintext: bool,
    /// When the server is busy (too many connections, or too many
    /// sessions of this user, as when many commands run in parallel), keep
    /// trying for up to SECS seconds, waiting a little longer each time;
    /// 0 fails at once (exit status 4).
    #[arg(
        long,
        env = "FERRY_BUSY_TIMEOUT",
        global = true,
        value_name = "SECS",
        default_value_t = crate::client::DEFAULT_BUSY_TIMEOUT.as_secs()
    )]
    pub busy_timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub cmd: Option<Command>,
}

/// The server used when none is given.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7272";

impl Args {
    /// The server to talk to.
    pub fn server(&self) -> String {
        self.server
            .clone()
            .unwrap_or_else(|| DEFAULT_SERVER.to_string())
    }
}

/// Batch commands. Remote paths are relative to your home ("/" is the home).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List a remote directory.
    Ls {
        /// Long format: kind, permissions, size, time, name.
        #[arg(short = 'l')]
        long: bool,
        /// Directory (default: your home).
        path: Option<String>,
    },
    /// Create a remote directory.
    Mkdir {
        /// Create parents too; an existing directory is fine.
        #[arg(short = 'p')]
        parents: bool,
        /// The directory.
        path: String,
    },
    /// Remove remote files (with -r, directories and their contents).
    Rm {
        /// Recursive.
        #[arg(short = 'r', short_alias = 'R')]
        recursive: bool,
        /// What to remove.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove an empty remote directory.
    Rmdir {
        /// The directory.
        path: String,
    },
    /// Rename or move a remote path.
    Mv {
        /// Existing path.
        from: String,
        /// New path (an existing directory receives `from` inside it).
        to: String,
    },
    /// Show metadata of a remote path.
    Stat {
        /// The path.
        path: String,
    },
    /// Show disk usage and quota.
    Quota,
    /// Try Ferry: an embedded server on loopback with a demo user and
    /// sample files, and the TUI connected to it.
    Demo,
    /// Upload files, and with -r directory trees: LOCAL... [REMOTE].
    Put {
        #[command(flatten)]
        xfer: XferArgs,
        /// Local sources, then the remote target (default: your home's
        /// working directory) when there are two or more paths.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Download files, and with -r directory trees: REMOTE... [LOCAL].
    Get {
        #[command(flatten)]
        xfer: XferArgs,
        /// Remote sources, then the local target (default: the current
        /// directory) when there are two or more paths.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
}

/// Options shared by put and get.
#[derive(clap::Args, Debug, Clone)]
pub struct XferArgs {
    /// Copy directory trees.
    #[arg(short = 'r', short_alias = 'R')]
    pub recursive: bool,
    /// When the target exists: overwrite, skip, resume, rename or fail.
    /// Default: resume a partial file, fail on a complete target.
    #[arg(long, value_enum)]
    pub on_conflict: Option<crate::transfer::Conflict>,
    /// Follow symbolic links met inside trees (put and get); otherwise
    /// they are skipped with a warning. A link named as a source is
    /// always copied as what it points to.
    #[arg(short = 'L', long)]
    pub follow_symlinks: bool,
    /// Files transferred at once. Files of 256 KiB or less count a 32nd,
    /// so trees of small files keep up to 32x as many (at most 256, or what
    /// the server allows) in flight.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Bandwidth limit for the whole job per second, e.g. 10MiB.
    #[arg(long, value_parser = ferry_proto::size::parse_size, value_name = "SIZE")]
    pub limit_rate: Option<u64>,
    /// get: have the server hash each file as it reads it. By default it
    /// may send the SHA-256 it verified when the file was uploaded (the
    /// download is checked against it either way).
    #[arg(long)]
    pub rehash: bool,
}
