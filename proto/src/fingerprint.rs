//! Certificate fingerprints as people compare them: `SHA256:` and the
//! unpadded base64 of the SHA-256 of the certificate's DER bytes (the form
//! OpenSSH uses for host keys).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The fingerprint of a DER certificate.
pub fn of_der(der: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(der)))
}

/// Normalises a fingerprint typed by a person (spaces trimmed, the
/// `SHA256:` prefix optional, base64 padding ignored).
pub fn normalise(s: &str) -> String {
    let t = s.trim();
    let body = t
        .strip_prefix("SHA256:")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    format!("SHA256:{}", body.trim_end_matches('='))
}

/// The label RFC 9266 gives tls-exporter channel binding.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// Bytes of keying material exported for channel binding.
pub const TLS_EXPORTER_LEN: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_normalises() {
        let fp = of_der(b"cert");
        assert!(fp.starts_with("SHA256:") && !fp.ends_with('='));
        assert_eq!(normalise(&format!("  {fp}= ")), fp);
        assert_eq!(normalise(fp.trim_start_matches("SHA256:")), fp);
    }
}
