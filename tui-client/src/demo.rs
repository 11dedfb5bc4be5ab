//! `ferry demo`: an embedded ferryd on loopback in a temporary directory,
//! a demo user with a sample tree, and the TUI connected to it over TLS.

use std::path::Path;

use anyhow::Context;
use ferry_server::users::UserRecord;
use ferry_server::Config;

use crate::client::{ConnectOptions, Security, TlsOptions};
use crate::tui::{self, dialog::ConnectForm, Start};

/// The sample tree, embedded so the binary works from anywhere.
const SAMPLES: &[(&str, &[u8])] = &[
    ("README.txt", include_bytes!("../../assets/demo/README.txt")),
    ("notes.txt", include_bytes!("../../assets/demo/notes.txt")),
    (
        "docs/design.md",
        include_bytes!("../../assets/demo/docs/design.md"),
    ),
    (
        "photos/sample.bin",
        include_bytes!("../../assets/demo/photos/sample.bin"),
    ),
];

/// The demo user's name and password.
pub const DEMO_USER: &str = "demo";

fn write_samples(home: &Path) -> anyhow::Result<()> {
    for (name, bytes) in SAMPLES {
        let path = home.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Runs the demo until the TUI quits.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ferry-demo-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut config = Config {
        root: dir.path().join("root"),
        ..Config::default()
    };
    // The demo password is no secret: keep the login instant.
    config.auth.iterations = ferry_proto::scram::MIN_ITERATIONS;
    let store = ferry_server::store::Store::open(&config).await?;
    let home = config.home_of(DEMO_USER);
    ferry_server::users::make_home(&home)?;
    store
        .add_user(
            DEMO_USER,
            &UserRecord::new(DEMO_USER, config.auth.iterations, Some(1 << 30))?,
        )
        .await?;
    store.close().await;
    write_samples(&home)?;
    let fingerprint = ferry_server::tls::fingerprint(&config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on loopback")?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ferry_server::run(listener, config, async {
        let _ = stopped.await;
    }));

    let mut opts = ConnectOptions::new(addr.to_string(), DEMO_USER, DEMO_USER);
    opts.security = Security::Tls(TlsOptions {
        fingerprint: Some(fingerprint),
        ..Default::default()
    });
    let start = Start {
        connect: Some(opts),
        form: ConnectForm::default(),
        local_dir: std::env::current_dir().context("no current directory")?,
    };
    let result = tui::run(start).await;
    let _ = stop.send(());
    let _ = server.await;
    result
}
