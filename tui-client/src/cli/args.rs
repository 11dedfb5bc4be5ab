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
    /// Change the permission bits of remote files or directories (octal
    /// MODE within 0777; set-id and sticky bits are refused).
    Chmod {
        /// Octal mode, e.g. 644 or 0755.
        mode: String,
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Print a remote file to stdout (checked against the server's
    /// SHA-256 at the end).
    Cat {
        /// The file.
        path: String,
    },
    /// SHA-256 of remote files, computed by the server, printed as
    /// sha256sum prints them.
    Hash {
        /// The files.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Copy a remote file, or with -r a directory tree, on the server
    /// (nothing crosses the network).
    Cp {
        /// Copy directories and everything in them.
        #[arg(short = 'r', short_alias = 'R')]
        recursive: bool,
        /// Existing path.
        from: String,
        /// New path (an existing directory receives `from` inside it).
        to: String,
    },
    /// Search a remote tree by name on the server: [PATH] PATTERN (a glob:
    /// `*`, `?`, `[...]`, matched against names; quote it).
    Find {
        /// Directory to search (default: your home's working directory),
        /// then the pattern.
        #[arg(required = true, num_args = 1..=2, value_name = "[PATH] PATTERN")]
        args: Vec<String>,
        /// Only files of at least SIZE (e.g. 10MiB).
        #[arg(long, value_parser = ferry_proto::size::parse_size, value_name = "SIZE")]
        min_size: Option<u64>,
        /// Only files of at most SIZE.
        #[arg(long, value_parser = ferry_proto::size::parse_size, value_name = "SIZE")]
        max_size: Option<u64>,
        /// Only entries modified after WHEN: a time ago (30m, 2h, 7d) or a
        /// UTC date (2026-11-30, 2026-11-30T12:00:00).
        #[arg(long, value_parser = super::tools::parse_when, value_name = "WHEN")]
        newer: Option<i64>,
        /// Only entries modified before WHEN.
        #[arg(long, value_parser = super::tools::parse_when, value_name = "WHEN")]
        older: Option<i64>,
    },
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
    /// Make a directory's copy like it, one way: SRC DST, the remote one
    /// written with a leading colon (`sync photos :backup/photos` uploads,
    /// `sync :backup/photos photos` downloads). Compares by size and mtime
    /// (or SHA-256 with --checksum), shows the plan, then transfers.
    Sync(SyncArgs),
}

/// Options of `ferry sync`.
#[derive(clap::Args, Debug, Clone)]
pub struct SyncArgs {
    /// Delete what only the destination has (never excluded entries).
    #[arg(long)]
    pub delete: bool,
    /// Show the plan and change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Compare files of equal size by SHA-256 (the server hashes its
    /// side) instead of by size and modification time.
    #[arg(short = 'c', long)]
    pub checksum: bool,
    /// Leave out entries matching GLOB (their path below SRC or their
    /// name; `*` stays within a directory, `**` crosses; a leading `/`
    /// anchors at SRC, a trailing `/` matches directories only). With
    /// --include, the first matching rule wins, in the order given.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Take entries matching GLOB even if a later --exclude matches them.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Files transferred at once (as put and get).
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Bandwidth limit for the whole sync per second, e.g. 10MiB (0: none).
    #[arg(long, value_parser = ferry_proto::size::parse_size, value_name = "SIZE")]
    pub limit_rate: Option<u64>,
    /// The directory to copy from (`:path` when remote).
    #[arg(value_name = "SRC")]
    pub src: String,
    /// The directory to make like it (`:path` when remote).
    #[arg(value_name = "DST")]
    pub dst: String,
    /// --include and --exclude in the order given (filled by
    /// [`Args::parse_ordered`]; empty means includes first).
    #[arg(skip)]
    pub rules: Vec<crate::sync::Rule>,
}

impl SyncArgs {
    /// The include and exclude rules in the order given on the command
    /// line; when that order is unknown (parsed without
    /// [`Args::parse_ordered`]), the includes first.
    pub fn rules(&self) -> Vec<crate::sync::Rule> {
        if !self.rules.is_empty() {
            return self.rules.clone();
        }
        let inc = self.include.iter().map(|g| crate::sync::Rule::include(g));
        inc.chain(self.exclude.iter().map(|g| crate::sync::Rule::exclude(g)))
            .collect()
    }
}

impl Args {
    /// Parses the process's arguments like `Args::parse`, and keeps the
    /// order of `sync`'s --include and --exclude (the first matching rule
    /// wins, so their order matters).
    pub fn parse_ordered() -> Args {
        Args::try_parse_ordered_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// [`Args::parse_ordered`] from given arguments.
    pub fn try_parse_ordered_from<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Args::command().try_get_matches_from(args)?;
        let mut parsed = Args::from_arg_matches(&matches)?;
        if let (Some(Command::Sync(s)), Some(m)) =
            (&mut parsed.cmd, matches.subcommand_matches("sync"))
        {
            let mut ordered: Vec<(usize, crate::sync::Rule)> = Vec::new();
            for (id, make) in [
                ("include", crate::sync::Rule::include as fn(&str) -> _),
                ("exclude", crate::sync::Rule::exclude),
            ] {
                if let (Some(at), Some(globs)) = (m.indices_of(id), m.get_many::<String>(id)) {
                    ordered.extend(at.zip(globs).map(|(i, g)| (i, make(g))));
                }
            }
            ordered.sort_by_key(|(i, _)| *i);
            s.rules = ordered.into_iter().map(|(_, r)| r).collect();
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Rule;

    #[test]
    fn sync_rules_keep_the_order_given() {
        let a = Args::try_parse_ordered_from([
            "ferry",
            "sync",
            "--exclude",
            "*.log",
            "--include",
            "keep.log",
            "--exclude=tmp/",
            "src",
            ":dst",
        ])
        .unwrap();
        let Some(Command::Sync(s)) = a.cmd else {
            panic!("not sync")
        };
        assert_eq!(
            s.rules(),
            vec![
                Rule::exclude("*.log"),
                Rule::include("keep.log"),
                Rule::exclude("tmp/")
            ]
        );
        assert_eq!((s.src.as_str(), s.dst.as_str()), ("src", ":dst"));
    }
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
    /// Bandwidth limit for the whole job per second, e.g. 10MiB (0: none).
    #[arg(long, value_parser = ferry_proto::size::parse_size, value_name = "SIZE")]
    pub limit_rate: Option<u64>,
    /// get: have the server hash each file as it reads it. By default it
    /// may send the SHA-256 it verified when the file was uploaded (the
    /// download is checked against it either way).
    #[arg(long)]
    pub rehash: bool,
}
