//! Writes a setting off the UI thread, one write at a time, the last value
//! winning: a burst of `[` `]` keys costs one config write or two, and a
//! slow disk or a held config lock never stalls the event loop.

use std::sync::{Arc, Mutex};

/// The write a [`Latest`] does (runs on the blocking pool).
type Write<T> = Arc<dyn Fn(T) + Send + Sync>;

/// A value to write, and whether a writer runs.
struct State<T> {
    pending: Option<T>,
    busy: bool,
}

/// Hands values to `write` on the blocking pool; a value saved while an
/// earlier one is being written replaces any still waiting.
pub struct Latest<T> {
    state: Arc<Mutex<State<T>>>,
    write: Write<T>,
}

impl<T: Send + 'static> Latest<T> {
    /// Saves with `write`.
    pub fn new(write: impl Fn(T) + Send + Sync + 'static) -> Latest<T> {
        Latest {
            state: Arc::new(Mutex::new(State {
                pending: None,
                busy: false,
            })),
            write: Arc::new(write),
        }
    }

    /// Queues `value` to be written and returns at once (inside a tokio
    /// runtime).
    pub fn save(&self, value: T) {
        let start = {
            let mut s = lock(&self.state);
            s.pending = Some(value);
            !std::mem::replace(&mut s.busy, true)
        };
        if start {
            let (state, write) = (self.state.clone(), self.write.clone());
            tokio::task::spawn_blocking(move || loop {
                let next = {
                    let mut s = lock(&state);
                    match s.pending.take() {
                        Some(v) => v,
                        None => {
                            s.busy = false;
                            return;
                        }
                    }
                };
                write(next);
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// While a write is stuck (the config lock held, a slow disk), saving
    /// returns at once; once it is free, only the newest value is written.
    #[test]
    fn saving_never_waits_for_the_write_and_the_last_value_wins() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let written = Arc::new(Mutex::new(Vec::new()));
        let (gate, held) = mpsc::channel::<()>();
        let (entered, writing) = mpsc::channel::<()>();
        let held = Mutex::new((held, entered));
        let w = written.clone();
        let latest = Latest::new(move |v: u32| {
            if v == 1 {
                // The first write hangs until the test lets it go.
                let h = held.lock().unwrap();
                let _ = h.1.send(());
                let _ = h.0.recv();
            }
            w.lock().unwrap().push(v);
        });
        let (done, returned) = mpsc::channel();
        let saving = std::thread::spawn(move || {
            let _in = rt.enter();
            latest.save(1);
            let stuck = writing.recv_timeout(Duration::from_secs(30)).is_ok();
            for v in 2..=5 {
                latest.save(v);
            }
            let _ = done.send(stuck);
            drop(_in);
            rt // kept alive until the writes end
        });
        let stuck = returned.recv_timeout(Duration::from_secs(30));
        assert_eq!(stuck, Ok(true), "save waited for a stuck write");
        gate.send(()).unwrap();
        let rt = saving.join().unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while written.lock().unwrap().len() < 2 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(*written.lock().unwrap(), vec![1, 5]);
        drop(rt);
    }
}
