//! The server side of transfers. Each upload or download is an async task
//! that does its file work in bounded steps on the user's share of
//! blocking threads, fed or drained through queues bounded by the
//! connection's byte budget, so memory stays flat, no thread waits for a
//! client, and the connection keeps serving other requests.

pub mod commit;
pub mod download;
pub mod partials;
pub mod stored;
pub mod sweep;
pub mod upload;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_proto::{ErrorKind, RemoteError};
use tokio::sync::mpsc;

use crate::budget::Charge;

/// What the connection's reader hands an upload.
#[derive(Debug)]
pub enum UploadMsg {
    /// Where the client starts sending.
    Start(u64),
    /// File bytes, with what they cost the connection's budget (given
    /// back once they are written and hashed).
    Data(Bytes, Charge),
    /// All sent; the client's SHA-256.
    End([u8; 32]),
}

/// A live transfer on a connection.
#[derive(Debug, Clone)]
pub enum Slot {
    /// An upload being received.
    Upload(mpsc::Sender<UploadMsg>),
    /// A download being sent; set the flag to stop it.
    Download(Arc<AtomicBool>),
}

/// Live transfers of one connection, by client-chosen id.
#[derive(Debug, Default, Clone)]
pub struct Transfers {
    map: Arc<Mutex<HashMap<u32, Slot>>>,
}

impl Transfers {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Slot>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a transfer; fails if the id is in use.
    pub fn insert(&self, id: u32, slot: Slot) -> Result<(), RemoteError> {
        let mut map = self.map();
        if map.contains_key(&id) {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("transfer id {id} is already in use"),
            ));
        }
        map.insert(id, slot);
        Ok(())
    }

    /// Looks a transfer up.
    pub fn get(&self, id: u32) -> Option<Slot> {
        self.map().get(&id).cloned()
    }

    /// Ends every transfer when the connection closes: uploads see their
    /// channel close (partials are kept), downloads stop sending.
    pub fn close_all(&self) {
        for (_, slot) in self.map().drain() {
            if let Slot::Download(flag) = slot {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Forgets a transfer (its task ended, or the client cancelled it).
    pub fn remove(&self, id: u32) -> Option<Slot> {
        self.map().remove(&id)
    }
}

pub use ferry_proto::chunks::hash_prefix;

/// Lowercase hex, for logs and messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes `s` spells in hex (as [`hex`] writes it); none if `s` is
/// anything else.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let nibble = |b: &u8| char::from(*b).to_digit(16);
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [hi, lo] => u8::try_from(nibble(hi)? << 4 | nibble(lo)?).ok(),
            _ => None,
        })
        .collect()
}
