//! The optional access key: before any login exchange, a server configured
//! with a key sends a fresh random nonce and the client must answer with
//! HMAC-SHA256(key, label || nonce). The key never crosses the wire.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Length of the server's challenge nonce.
pub const NONCE_LEN: usize = 32;

const LABEL: &[u8] = b"ferry access key v1";

fn mac(key: &[u8], nonce: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    mac.update(LABEL);
    mac.update(nonce);
    mac.finalize().into_bytes().into()
}

/// The client's answer to a challenge.
pub fn respond(key: &[u8], nonce: &[u8]) -> [u8; 32] {
    mac(key, nonce)
}

/// The server's check of an answer, in constant time.
pub fn verify(key: &[u8], nonce: &[u8], answer: &[u8]) -> bool {
    mac(key, nonce).ct_eq(answer).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_key_passes_wrong_key_fails() {
        let nonce = [7u8; NONCE_LEN];
        let answer = respond(b"secret", &nonce);
        assert!(verify(b"secret", &nonce, &answer));
        assert!(!verify(b"other", &nonce, &answer));
        assert!(!verify(b"secret", &[8u8; NONCE_LEN], &answer));
        assert!(!verify(b"secret", &nonce, &answer[..31]));
    }
}
