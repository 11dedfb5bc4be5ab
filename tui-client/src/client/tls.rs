//! TLS 1.3 on the client, with trust like ssh's known_hosts: a certificate
//! signed by a CA the system trusts is accepted as usual; a self-signed one
//! is pinned by fingerprint on first contact and must stay the same. The
//! handshake signatures are always checked with the provider's algorithms;
//! only the chain-of-trust decision is ours.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferry_proto::fingerprint::{self, TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::error::{ClientError, Result};

/// How to secure the connection.
#[derive(Clone, Debug)]
pub enum Security {
    /// TLS 1.3 (the default).
    Tls(TlsOptions),
    /// No encryption at all: only when the user asked for it explicitly.
    InsecurePlaintext,
}

impl Default for Security {
    fn default() -> Self {
        Security::Tls(TlsOptions::default())
    }
}

/// TLS trust settings.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Trust and record a server no CA vouches for, on first contact,
    /// without asking (`--accept-new`).
    pub accept_new: bool,
    /// Expect exactly this certificate fingerprint (`--fingerprint`).
    pub fingerprint: Option<String>,
    /// The known-servers file (None: neither read nor written).
    pub known_servers: Option<PathBuf>,
    /// Extra CA certificates to trust (PEM).
    pub ca_file: Option<PathBuf>,
}

/// Why the client trusts the server it is talking to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// A CA the system (or `ca_file`) trusts signed its certificate.
    CaSigned,
    /// Its fingerprint matched the one pinned earlier or given.
    Pinned,
    /// First contact: trusted now and recorded in the known-servers file.
    NewlyTrusted,
    /// No TLS: nothing is verified.
    Plaintext,
}

/// The server's identity as established by the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerIdentity {
    /// `SHA256:...` of the server's certificate (None in plaintext).
    pub fingerprint: Option<String>,
    /// The trust decision.
    pub trust: Trust,
}

/// The default known-servers file: `$XDG_CONFIG_HOME/ferry/known_servers`
/// or `~/.config/ferry/known_servers`.
pub fn default_known_servers() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("ferry").join("known_servers"))
}

/// Looks `server` up: its pinned fingerprint and the line it is on.
pub fn known_fingerprint(file: &Path, server: &str) -> Option<(String, usize)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().enumerate().find_map(|(i, line)| {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(s), Some(fp)) if s == server && !line.trim_start().starts_with('#') => {
                Some((fingerprint::normalise(fp), i + 1))
            }
            _ => None,
        }
    })
}

/// Records `server` with its fingerprint.
pub fn remember(file: &Path, server: &str, fp: &str) -> Result<()> {
    use std::io::Write;
    let io = |e| ClientError::Local {
        path: file.display().to_string(),
        source: e,
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(io)?;
    writeln!(f, "{server} {fp}").map_err(io)
}

/// What the verifier saw, for turning a refusal into a clear error.
#[derive(Debug, Default, Clone)]
struct Seen {
    fingerprint: Option<String>,
    ca: Option<std::result::Result<(), rustls::Error>>,
}

#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    expected: Option<String>,
    accept_unknown: bool,
    seen: Arc<Mutex<Seen>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint::of_der(end_entity);
        let ca = match &self.webpki {
            Some(v) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .map(|_| ()),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
        let ca_ok = ca.is_ok();
        let ca_err = ca.as_ref().err().cloned();
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.fingerprint = Some(fp.clone());
            seen.ca = Some(ca);
        }
        match &self.expected {
            // A pin decides alone: like ssh, a pinned key is trusted as is.
            Some(expected) if *expected == fp => Ok(ServerCertVerified::assertion()),
            Some(_) => Err(rustls::Error::General(
                "certificate fingerprint mismatch".into(),
            )),
            None if ca_ok || self.accept_unknown => Ok(ServerCertVerified::assertion()),
            None => Err(ca_err.unwrap_or(rustls::Error::General("untrusted certificate".into()))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    // Unreadable system certificates only mean fewer CAs: pinning still works.
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = store.add(cert);
    }
    if let Some(path) = ca_file {
        let io = |e: rustls::pki_types::pem::Error| ClientError::Local {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        };
        for cert in CertificateDer::pem_file_iter(path).map_err(io)? {
            let cert = cert.map_err(io)?;
            store
                .add(cert)
                .map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
        }
    }
    Ok(store)
}

/// `host` of `host:port` (IPv6 brackets removed), for SNI and name checks.
fn host_of(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Runs the TLS handshake and decides trust. Returns the stream, the
/// tls-exporter channel-binding data and the server's identity.
pub async fn handshake(
    stream: TcpStream,
    server: &str,
    opts: &TlsOptions,
) -> Result<(TlsStream<BufReader<TcpStream>>, Vec<u8>, ServerIdentity)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let known = opts
        .known_servers
        .as_deref()
        .and_then(|f| known_fingerprint(f, server));
    let given = opts.fingerprint.as_deref().map(fingerprint::normalise);
    let expected = given
        .clone()
        .or_else(|| known.as_ref().map(|(fp, _)| fp.clone()));
    // A pin decides alone, so the CAs are only loaded without one (reading
    // the system's store costs every command ~10 ms).
    let store = match expected {
        Some(_) => RootCertStore::empty(),
        None => roots(opts.ca_file.as_deref())?,
    };
    let webpki = if store.is_empty() {
        None
    } else {
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .ok()
    };
    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = Verifier {
        webpki,
        expected: expected.clone(),
        accept_unknown: opts.accept_new,
        seen: seen.clone(),
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = ServerName::try_from(host_of(server).to_string())
        .map_err(|_| ClientError::Tls(format!("{server}: not a valid host name")))?;
    let result = TlsConnector::from(Arc::new(config))
        .connect(
            name,
            BufReader::with_capacity(ferry_proto::TLS_READ_BUFFER, stream),
        )
        .await;
    let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let tls = match result {
        Ok(tls) => tls,
        Err(e) => return Err(refusal(server, e, &seen, given.as_deref(), known, opts)),
    };
    let binding = tls
        .get_ref()
        .1
        .export_keying_material(vec![0u8; TLS_EXPORTER_LEN], TLS_EXPORTER_LABEL, None)
        .map_err(|e| ClientError::Tls(format!("no channel binding: {e}")))?;
    let fp = seen.fingerprint.clone();
    let ca_ok = matches!(seen.ca, Some(Ok(())));
    let trust = if expected.is_some() {
        Trust::Pinned
    } else if ca_ok {
        Trust::CaSigned
    } else {
        if let (Some(file), Some(fp)) = (&opts.known_servers, &fp) {
            remember(file, server, fp)?;
        }
        Trust::NewlyTrusted
    };
    Ok((
        tls,
        binding,
        ServerIdentity {
            fingerprint: fp,
            trust,
        },
    ))
}

/// Turns a failed handshake into the error that tells the user what to do.
fn refusal(
    server: &str,
    e: std::io::Error,
    seen: &Seen,
    given: Option<&str>,
    known: Option<(String, usize)>,
    opts: &TlsOptions,
) -> ClientError {
    let Some(got) = seen.fingerprint.clone() else {
        if super::error::is_turned_away(&e) {
            return ClientError::TurnedAway {
                server: server.to_string(),
            };
        }
        // No certificate ever arrived: not a TLS server at all.
        return ClientError::Tls(format!(
            "{server} did not answer with TLS ({e}); if it runs with --insecure-plaintext, \
             you must pass --insecure-plaintext too, and only on a trusted link"
        ));
    };
    let pinned = given.is_some() || known.is_some();
    if let Some(expected) = given {
        if expected != got {
            return ClientError::FingerprintMismatch {
                server: server.into(),
                expected: expected.into(),
                got,
            };
        }
    } else if let Some((expected, line)) = known {
        if expected != got {
            return ClientError::ServerChanged {
                server: server.into(),
                expected,
                got,
                file: opts.known_servers.clone().unwrap_or_default(),
                line,
            };
        }
    }
    if pinned {
        // The pin matched: what failed came after the certificate.
        return ClientError::Tls(format!("TLS handshake with {server} failed: {e}"));
    }
    match &seen.ca {
        Some(Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))) | None => {
            ClientError::UnknownServer {
                server: server.into(),
                fingerprint: got,
            }
        }
        Some(Err(rustls::Error::InvalidCertificate(CertificateError::Expired)))
        | Some(Err(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            ..
        }))) => ClientError::Tls(format!("{server}'s certificate has expired")),
        Some(Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)))
        | Some(Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext { .. },
        ))) => ClientError::Tls(format!(
            "{server}'s certificate is not valid for the name {}",
            host_of(server)
        )),
        Some(Err(other)) => {
            ClientError::Tls(format!("{server}'s certificate was refused: {other}"))
        }
        Some(Ok(())) => ClientError::Tls(format!("TLS handshake with {server} failed: {e}")),
    }
}
