//! SHA-256 whose state can be saved at a part boundary and restored on
//! any node, so an upload resumed elsewhere proves its prefix and goes on
//! hashing where the last part ended (sha2 0.11's serialisable state).

use sha2_state::digest::common::hazmat::{SerializableState, SerializedState};
use sha2_state::{Digest, Sha256};

/// A running SHA-256 that can be saved and restored.
#[derive(Clone, Debug, Default)]
pub struct PartSha(Sha256);

impl PartSha {
    /// A fresh hash.
    pub fn new() -> PartSha {
        PartSha(Sha256::new())
    }

    /// Hashes more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The state, to store.
    pub fn save(&self) -> Vec<u8> {
        self.0.serialize().to_vec()
    }

    /// A state saved by [`PartSha::save`]; None when it is not one.
    pub fn restore(saved: &[u8]) -> Option<PartSha> {
        let state = SerializedState::<Sha256>::try_from(saved).ok()?;
        Sha256::deserialize(&state).ok().map(PartSha)
    }

    /// The digest of what was hashed so far (the hash goes on).
    pub fn digest(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_goes_on_where_it_stopped() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&data).into();
        for cut in [0, 1, 64, 1000, 1 << 20, data.len()] {
            let mut a = PartSha::new();
            a.update(&data[..cut]);
            let saved = a.save();
            let prefix: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&data[..cut]).into();
            let mut b = PartSha::restore(&saved).unwrap();
            assert_eq!(b.digest(), prefix, "the prefix proof at {cut}");
            b.update(&data[cut..]);
            assert_eq!(b.digest(), whole, "cut at {cut}");
        }
        assert!(PartSha::restore(&[1, 2, 3]).is_none());
    }
}
