//! Checks ferryd makes as it starts: its open-file limit.

use rustix::process::{getrlimit, setrlimit, Resource};

use crate::config::Config;

/// Raises the soft limit on open files to the hard limit (every connection
/// and every running transfer holds descriptors), and warns when even that
/// is below what the configured limits may need.
pub fn raise_open_files(config: &Config) {
    let limit = getrlimit(Resource::Nofile);
    let mut soft = limit.current;
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => soft = limit.maximum,
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
    let l = &config.limits;
    // A socket per connection, a file and a directory per running
    // transfer, and room for the rest.
    let need = (l.max_connections + l.max_unauthenticated + 2 * l.max_transfers + 256) as u64;
    if let Some(soft) = soft {
        if soft < need {
            tracing::warn!(
                limit = soft,
                need,
                "the open-file limit (ulimit -n, LimitNOFILE=) is below what the configured limits may need"
            );
        }
    }
}
