//! Frees big values on a thread of its own: returning 100,000 names to the
//! allocator costs the UI thread ~15 ms, a frame's worth.

use std::any::Any;
use std::sync::{mpsc, OnceLock};

/// From this many items on, a value is freed elsewhere.
pub const MANY: usize = 10_000;

/// Frees `value` on the freeing thread (or here, if it could not start).
pub fn free_elsewhere<T: Send + 'static>(value: T) {
    type Bin = mpsc::Sender<Box<dyn Any + Send>>;
    static BIN: OnceLock<Option<Bin>> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Box<dyn Any + Send>>();
        std::thread::Builder::new()
            .name("ferry-free".into())
            .spawn(move || rx.into_iter().for_each(drop))
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = bin {
        let _ = tx.send(Box::new(value));
    }
}
