//! Group commit of uploads into object storage: a user's uploads that
//! finish while her commit transaction runs wait and go together into the
//! next one (at most `[store] commit_batch_max`), so a tree of small files
//! costs a database flush per batch, not per file. Each file keeps its own
//! outcome and its own settlement of the quota.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_proto::{ErrorKind, RemoteError, RemotePath};
use tokio::sync::oneshot;

use super::home::{ns_error, store_error};
use crate::ledger::{Cost, Reservation};
use crate::store::ns_put::{PutFile, Refused};
use crate::store::Store;

/// A finished upload to name.
pub struct Commit {
    /// The path, for messages.
    pub path: RemotePath,
    /// Its row, where, and whether it may replace a file.
    pub put: PutFile,
    /// Its quota, every byte counted as written: settled by what the
    /// commit replaces.
    pub reservation: Reservation,
}

/// One user's group commit (one per home on a node; several nodes'
/// transactions take turns on the user's namespace lock).
#[derive(Clone)]
pub struct Committer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("owner", &self.inner.owner)
            .field("max", &self.inner.max)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Store,
    owner: String,
    max: usize,
    queue: Mutex<Queue>,
    transactions: AtomicU64,
}

/// An upload waiting for its commit, and where its outcome goes.
struct Waiting {
    commit: Commit,
    reply: oneshot::Sender<Result<(), RemoteError>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// A task is running transactions (and takes what waits).
    running: bool,
}

impl Committer {
    /// The group commit of `owner`'s uploads, at most `max` files a
    /// transaction.
    pub fn new(store: Store, owner: &str, max: usize) -> Committer {
        Committer {
            inner: Arc::new(Inner {
                store,
                owner: owner.to_string(),
                max: max.max(1),
                queue: Mutex::new(Queue::default()),
                transactions: AtomicU64::new(0),
            }),
        }
    }

    /// Points the upload's path at its file. Done: what it replaced is
    /// given back to the quota. Refused or failed: nothing appears under
    /// the name, the file's bytes and entry are given back, its blob goes
    /// to the trash and its multipart upload's row goes.
    pub async fn commit(&self, commit: Commit) -> Result<(), RemoteError> {
        let (reply, outcome) = oneshot::channel();
        let start = {
            let mut q = self.inner.lock();
            q.waiting.push_back(Waiting { commit, reply });
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            tokio::spawn(self.inner.clone().run());
        }
        outcome.await.unwrap_or_else(|_| {
            Err(RemoteError::new(
                ErrorKind::Io,
                "internal error: the commit was lost",
            ))
        })
    }

    /// Transactions run so far (for tests).
    pub fn transactions(&self) -> u64 {
        self.inner.transactions.load(Ordering::Relaxed)
    }
}

/// Should the committing task panic: nothing runs any more, and those
/// waiting hear an internal error instead of waiting for ever.
struct Stopped(Arc<Inner>);

impl Drop for Stopped {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.lock();
            q.running = false;
            q.waiting.clear();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs transactions while uploads wait for one.
    async fn run(self: Arc<Self>) {
        let _stopped = Stopped(self.clone());
        loop {
            let batch: Vec<Waiting> = {
                let mut q = self.lock();
                let n = q.waiting.len().min(self.max);
                if n == 0 {
                    q.running = false;
                    return;
                }
                q.waiting.drain(..n).collect()
            };
            self.batch(batch).await;
        }
    }

    /// One transaction for `batch`, and each file's outcome.
    async fn batch(&self, batch: Vec<Waiting>) {
        let mut puts = Vec::with_capacity(batch.len());
        let mut rest = Vec::with_capacity(batch.len());
        for w in batch {
            puts.push(w.commit.put);
            rest.push((w.commit.path, w.commit.reservation, w.reply));
        }
        // The quota of each, by what its row actually replaces (checked
        // in the transaction, before anything of it is written).
        let outcome = self
            .store
            .ns_put_files(&self.owner, &puts, |i, replaced| {
                rest[i].1.fits(replaced.unwrap_or(Cost::ZERO))
            })
            .await;
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let results: Vec<Result<Option<Cost>, RemoteError>> = match outcome {
            Ok(each) => each
                .into_iter()
                .zip(&rest)
                .map(|(o, (path, _, _))| {
                    o.map_err(|e| match e {
                        Refused::Ns(e) => ns_error(path, e),
                        Refused::Settle(e) => RemoteError::new(
                            e.kind,
                            format!(
                                "{path}: the file it replaces has changed meanwhile, and it does not fit: {}",
                                e.detail
                            ),
                        ),
                    })
                })
                .collect(),
            Err(e) => {
                let e = store_error(&e);
                rest.iter().map(|_| Err(e.clone())).collect()
            }
        };
        for ((put, (_, reservation, reply)), result) in puts.into_iter().zip(rest).zip(results) {
            let ledger = reservation.ledger().clone();
            drop(reservation);
            match result {
                Ok(replaced) => {
                    ledger.give(replaced.unwrap_or(Cost::ZERO));
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    ledger.give(Cost::file(put.file.size));
                    // Not named: its blob and upload go (the reply after
                    // that, as the next transaction runs meanwhile).
                    let (store, owner) = (self.store.clone(), self.owner.clone());
                    tokio::spawn(async move {
                        forget(&store, &owner, &put).await;
                        let _ = reply.send(Err(e));
                    });
                }
            }
        }
    }
}

/// A file not named after all: its blob to the trash, its upload's row
/// gone (best effort: the sweeper collects what is left).
async fn forget(store: &Store, owner: &str, put: &PutFile) {
    if let Some(blob) = &put.file.blob {
        if let Err(e) = store.trash_add(blob).await {
            tracing::warn!(error = %e, "cannot put an unused blob in the trash");
        }
    }
    if let Some(id) = &put.upload {
        if let Err(e) = store.object_upload_end(owner, &put.path, id).await {
            tracing::warn!(error = %e, "cannot forget a finished upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, Limits};
    use crate::store::bans::tests::sqlite;
    use crate::store::namespace::NewFile;

    /// A finished upload of `size` bytes to `path`, counted as an upload
    /// counts it (its entry, and its bytes written), leaning on a file of
    /// `replaced` bytes.
    fn upload(ledger: &Arc<Ledger>, path: &str, size: u64, replaced: u64) -> Commit {
        let mut reservation = ledger.reserve(size, replaced).unwrap();
        ledger.with(|b| b.take(Cost::ENTRY)).unwrap();
        reservation.use_bytes(size);
        Commit {
            path: RemotePath::parse(path).unwrap(),
            put: PutFile {
                path: path.into(),
                file: NewFile {
                    size,
                    blob: Some(format!("blob{path}")),
                    sha256: "00".into(),
                    mtime: 1,
                    mode: 0o644,
                },
                overwrite: replaced > 0,
                upload: None,
            },
            reservation,
        }
    }

    #[tokio::test]
    async fn many_commits_at_once_share_few_transactions_each_with_its_outcome() {
        let (store, _dir) = sqlite().await;
        let committer = Committer::new(store.clone(), "u", 64);
        let limits = Limits {
            bytes: Some(1_000_000),
            entries: None,
        };
        let ledger = Arc::new(Ledger::new(Cost::ZERO, limits));
        // A file there already (/old), and one (/lean, 50 bytes) that an
        // overwrite will lean on and that moves away before its commit.
        for (path, size) in [("/old", 1), ("/lean", 50)] {
            let c = upload(&ledger, path, size, 0);
            committer.commit(c).await.unwrap();
        }
        let before = committer.transactions();
        let files: u64 = 500;
        let mut commits = vec![
            ("/old".to_string(), upload(&ledger, "/old", 9, 0)), // exists
            ("/gone/x".to_string(), upload(&ledger, "/gone/x", 9, 0)),
        ];
        for i in 0..files {
            let path = format!("/f{i}");
            commits.push((path.clone(), upload(&ledger, &path, 1, 0)));
        }
        // The overwrite of /lean fits only while the 50 bytes it replaces
        // are there; they move away before its commit.
        let used = ledger.with(|b| b.used()).bytes;
        let big = upload(&ledger, "/lean", 1_000_000 - used + 50, 50);
        commits.push(("/lean".into(), big));
        store
            .ns_rename("u", "/lean", "/moved", false)
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for (name, c) in commits {
            let committer = committer.clone();
            tasks.spawn(async move { (name, committer.commit(c).await) });
        }
        let mut refused = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (name, outcome) = done.unwrap();
            if let Err(e) = outcome {
                refused.push((name, e.kind));
            }
        }
        refused.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            refused,
            vec![
                ("/gone/x".into(), ErrorKind::NotFound),
                ("/lean".into(), ErrorKind::QuotaExceeded),
                ("/old".into(), ErrorKind::AlreadyExists),
            ]
        );
        let ran = committer.transactions() - before;
        assert!(
            ran * 10 <= files,
            "{ran} transactions for {files} files: they were not batched"
        );
        // Every accepted file is named, and the quota counts exactly the
        // namespace: the refused ones gave theirs back.
        for i in [0, files / 2, files - 1] {
            assert!(store
                .ns_get("u", &format!("/f{i}"))
                .await
                .unwrap()
                .is_some());
        }
        assert_eq!(store.ns_get("u", "/old").await.unwrap().unwrap().size, 1);
        assert!(store.ns_get("u", "/lean").await.unwrap().is_none());
        assert_eq!(
            ledger.with(|b| b.used()),
            store.ns_usage("u").await.unwrap()
        );
        let expected = Cost::file(1)
            + Cost::file(50)
            + Cost {
                bytes: files,
                entries: files,
            };
        assert_eq!(ledger.with(|b| b.used()), expected);
        // The refused files' blobs wait in the trash (their replies come
        // after that).
        let mut trash = store.trash_due(i64::MAX, 10).await.unwrap();
        trash.sort();
        assert_eq!(trash, vec!["blob/gone/x", "blob/lean", "blob/old"]);
    }
}
