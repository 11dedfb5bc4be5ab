//! `ls` latency inside one session while that session uploads a large
//! file: what a TUI user feels when browsing during a transfer. Used by
//! `tests/bench/run.sh`, which also times `ferry ls` as a new process
//! (start, TLS, login and all).
//!
//! Usage: ls_latency ADDR USER FILE [CALLS]
//! Environment: FERRY_PASSWORD; FERRY_FINGERPRINT (TLS, pinned) or none
//! for plaintext. Prints "median_ms max_ms" on stdout.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferry_tui::client::{connect, ConnectOptions, Security, TlsOptions};
use ferry_tui::transfer::{put_paths, Conflict, Events, Status, TransferOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, user, file, rest @ ..] = args.as_slice() else {
        bail!("usage: ls_latency ADDR USER FILE [CALLS]");
    };
    let calls: usize = match rest.first() {
        Some(n) => n.parse().context("CALLS must be a whole number")?,
        None => 15,
    };
    if calls == 0 {
        bail!("CALLS must be at least 1");
    }
    let password = std::env::var("FERRY_PASSWORD").context("FERRY_PASSWORD")?;
    let mut opts = ConnectOptions::new(addr.clone(), user, &password);
    opts.security = match std::env::var("FERRY_FINGERPRINT") {
        Ok(fp) => Security::Tls(TlsOptions {
            fingerprint: Some(fp),
            ..Default::default()
        }),
        Err(_) => Security::InsecurePlaintext,
    };
    let client = connect(&opts).await?;
    let put = {
        let client = client.clone();
        let file = PathBuf::from(file);
        tokio::spawn(async move {
            let opts = TransferOptions {
                on_conflict: Conflict::Overwrite,
                ..Default::default()
            };
            put_paths(&client, &[file], "/ls-latency.bin", opts, Events::none()).await
        })
    };
    // Let the upload reach full speed first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ms = Vec::with_capacity(calls);
    for _ in 0..calls {
        if put.is_finished() {
            bail!("the upload ended before {calls} listings; use a larger file");
        }
        let t = Instant::now();
        client.list("/").await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reports = put.await??;
    if reports.iter().any(|r| r.status != Status::Done) {
        bail!("the upload failed: {reports:?}");
    }
    client
        .remove("/ls-latency.bin", ferry_proto::msg::RemoveMode::File)
        .await?;
    ms.sort_by(f64::total_cmp);
    println!("{:.1} {:.1}", ms[ms.len() / 2], ms[ms.len() - 1]);
    Ok(())
}
