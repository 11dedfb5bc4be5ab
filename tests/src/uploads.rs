//! An upload in progress as the server holds it, on either store: the
//! partial file on the disk, or the parts recorded in object storage.

use std::time::{Duration, Instant};

use crate::Server;

/// The bytes the server holds of `user`'s upload to `remote` (e.g.
/// "big.bin"), from which a rerun resumes: the partial file's length on
/// the disk, the parts done in object storage; 0 with none.
pub fn held(server: &Server, user: &str, remote: &str) -> u64 {
    if server.store.is_some() {
        let path = format!("/{}", remote.trim_start_matches('/'));
        return crate::objects::upload_done(server, user, &path);
    }
    std::fs::metadata(server.partial(user, remote)).map_or(0, |m| m.len())
}

/// Waits (up to 60 s) until the server holds at least `min` bytes of the
/// upload (in object storage: at least one part, whatever `min`), so a
/// cut now leaves something to resume; returns what it holds.
pub fn wait_for_held(server: &Server, user: &str, remote: &str, min: u64) -> u64 {
    let min = if server.store.is_some() { 1 } else { min };
    let start = Instant::now();
    loop {
        let n = held(server, user, remote);
        if n >= min {
            return n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server never held {min} bytes of {remote} (holds {n})"
        );
        // Each look in object storage opens the server's database.
        let pause = if server.store.is_some() { 200 } else { 25 };
        std::thread::sleep(Duration::from_millis(pause));
    }
}

/// Bytes per part in object storage for the suite's servers (the
/// default `[store] part_size_mib`), or None on the disk: an upload cut
/// in object storage resumes from a part boundary, so a test that cuts
/// one needs a file larger than a part.
pub fn part_size(server: &Server) -> Option<u64> {
    server.store.as_ref().map(|_| {
        ferry_server::config::Config::load(&server.config)
            .map(|c| c.store.part_size_mib << 20)
            .unwrap_or(8 << 20)
    })
}

/// Leaves an upload of `local` to `remote` unfinished on the server: a
/// slow `ferry put` killed once the server holds some of it (in object
/// storage: a part, so `local` must be larger than one). Returns what
/// the server holds then.
pub fn leave_unfinished(
    server: &Server,
    user: &str,
    password: &str,
    local: &std::path::Path,
    remote: &str,
) -> u64 {
    let src = local.to_string_lossy().to_string();
    let mut put = server
        .ferry_command(
            user,
            password,
            &["put", &src, remote, "--limit-rate", "4MiB"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ferry put");
    wait_for_held(server, user, remote, 1 << 20);
    let _ = put.kill();
    let _ = put.wait();
    held(server, user, remote)
}
