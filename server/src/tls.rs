//! TLS 1.3 for every connection (rustls with the ring provider). Without a
//! configured certificate, ferryd makes a self-signed one under its root on
//! first start and reuses it; clients pin its fingerprint on first contact.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use ferry_proto::fingerprint::{self, TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::Config;
use crate::secrets::{private_dir, write_private};

/// Where the certificate and key live, and whether they were made here.
#[derive(Debug, Clone)]
pub struct CertPaths {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The paths in use: configured ones, or the self-signed pair under the root.
pub fn cert_paths(config: &Config) -> CertPaths {
    match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => CertPaths {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => CertPaths {
            cert: config.root.join("tls").join("cert.pem"),
            key: config.root.join("tls").join("key.pem"),
        },
    }
}

/// Makes a self-signed certificate and a key (mode 0600) if none exist.
fn ensure_self_signed(paths: &CertPaths) -> anyhow::Result<()> {
    if paths.cert.exists() && paths.key.exists() {
        return Ok(());
    }
    let dir = paths.cert.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut names = vec!["localhost".to_string()];
    if !host.is_empty() && host != "localhost" {
        names.push(host);
    }
    let generated =
        rcgen::generate_simple_self_signed(names).context("cannot generate a certificate")?;
    // Written aside and renamed, key first: whoever sees the certificate
    // sees its key, even if two processes race here.
    let tmp_key = paths
        .key
        .with_extension(format!("tmp{}", std::process::id()));
    let tmp_cert = paths
        .cert
        .with_extension(format!("tmp{}", std::process::id()));
    write_private(&tmp_key, generated.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&tmp_cert, generated.cert.pem())
        .with_context(|| format!("cannot write {}", tmp_cert.display()))?;
    if paths.cert.exists() {
        // Someone else won the race: keep theirs.
        let _ = std::fs::remove_file(&tmp_key);
        let _ = std::fs::remove_file(&tmp_cert);
        return Ok(());
    }
    std::fs::rename(&tmp_key, &paths.key)?;
    std::fs::rename(&tmp_cert, &paths.cert)?;
    tracing::info!(cert = %paths.cert.display(), "generated a self-signed certificate");
    Ok(())
}

fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificate {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad certificate PEM in {}", path.display()))?;
    if certs.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

/// The server's TLS setup and its certificate's fingerprint.
pub fn server_config(config: &Config) -> anyhow::Result<(Arc<ServerConfig>, String)> {
    let paths = cert_paths(config);
    if config.tls.cert.is_none() || config.tls.key.is_none() {
        ensure_self_signed(&paths)?;
    }
    let certs = load_certs(&paths.cert)?;
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .with_context(|| format!("cannot read private key {}", paths.key.display()))?;
    let fp = fingerprint::of_der(&certs[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 unavailable")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not match")?;
    Ok((Arc::new(tls), fp))
}

/// The fingerprint of the certificate in use (for `ferryd fingerprint`),
/// creating the self-signed one if needed so the answer stays true.
pub fn fingerprint(config: &Config) -> anyhow::Result<String> {
    Ok(server_config(config)?.1)
}

/// tls-exporter channel-binding data (RFC 9266) of an established session.
pub fn exporter(conn: &rustls::ServerConnection) -> Option<Vec<u8>> {
    conn.export_keying_material(vec![0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None)
        .ok()
}
