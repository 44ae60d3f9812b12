//! The single writer thread and its group commit.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::{self as std_mpsc, RecvTimeoutError},
    },
    thread,
    time::Duration,
};

use chorus_core::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// Most operations committed together; bounds the time any one waits.
const MAX_BATCH: usize = 512;

/// WAL frames (about 4 KiB each) past which the log is restarted from its
/// beginning.
const RESTART_FRAMES: i64 = 4096;

trait WriteOp: Send {
    fn apply(&mut self, conn: &Connection);
    fn complete(self: Box<Self>, commit: Result<(), String>);
}

struct Op<F, T> {
    f: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<F, T> WriteOp for Op<F, T>
where
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    T: Send,
{
    fn apply(&mut self, conn: &Connection) {
        let f = self.f.take().expect("applied once");
        // A savepoint per operation: a failing one is undone alone and the
        // rest of the batch still commits.
        // Cached statements: these run twice per operation on the hot path.
        let stmt = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop);
        let result = stmt("SAVEPOINT op").map_err(backend).and_then(|()| f(conn));
        let end = if result.is_ok() {
            stmt("RELEASE op")
        } else {
            stmt("ROLLBACK TO op").and_then(|()| stmt("RELEASE op"))
        };
        let result = match (result, end) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(backend(e)),
            (Ok(v), Ok(())) => Ok(v),
        };
        self.result = Some(result);
    }

    fn complete(self: Box<Self>, commit: Result<(), String>) {
        let result = match commit {
            Ok(()) => self.result.expect("applied before completion"),
            Err(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
        };
        // The caller may have gone away (client disconnected); the write stands.
        let _ = self.reply.send(result);
    }
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Handle to the writer thread.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn WriteOp>>,
}

impl Writer {
    /// `restart` is raised by the [`Checkpointer`] when the WAL has grown
    /// past [`RESTART_FRAMES`].
    pub(crate) fn spawn(
        mut conn: Connection,
        queue: usize,
        restart: Arc<AtomicBool>,
        commits: chorus_core::CommitRecorder,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Box<dyn WriteOp>>(queue);
        thread::Builder::new()
            .name("chorus-store-writer".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    let started = std::time::Instant::now();
                    let commit = run_batch(&mut conn, &mut batch);
                    commits
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .record(batch.len(), started.elapsed());
                    for op in batch.drain(..) {
                        op.complete(commit.clone());
                    }
                    if restart.swap(false, Ordering::Relaxed) {
                        restart_wal(&conn);
                    }
                }
            })
            .expect("spawn the store writer thread");
        Self { tx }
    }

    /// Run `f` in the next group commit; resolves once it is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let op = Box::new(Op { f: Some(f), result: None, reply });
        self.tx.try_send(op).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Unavailable("write queue full".into()),
            mpsc::error::TrySendError::Closed(_) => StoreError::Unavailable("store closed".into()),
        })?;
        rx.await.map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }

    /// Free slots in the queue; zero means writes are being refused.
    pub(crate) fn capacity(&self) -> usize {
        self.tx.capacity()
    }
}

fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn WriteOp>]) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string())?;
    for op in batch.iter_mut() {
        op.apply(conn);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.to_string());
    }
    Ok(())
}

/// Under a steady stream of commits a passive checkpoint never catches up
/// with the end of the log, so SQLite never starts the WAL over and it grows
/// without bound (gigabytes within minutes under load), making every append
/// extend the file. A RESTART checkpoint from the one connection that writes
/// has no writer to wait for, only readers (short queries), and afterwards the
/// next commit writes from the start of the file again. Most frames were
/// already copied by the passive checkpoints, so the pause is short.
fn restart_wal(conn: &Connection) {
    match conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => {}
        Ok(_) => tracing::debug!("WAL restart postponed: a reader is still on the log"),
        Err(e) => tracing::warn!(error = %e, "WAL restart failed; will try again"),
    }
}

/// Folds the WAL back into the database file on its own thread.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the
/// threshold, on the writer thread, so every thousandth page or so a group
/// commit (and every request waiting on it) also paid for copying the WAL
/// and syncing the database file. A passive checkpoint from another
/// connection never blocks the writer.
pub(crate) struct Checkpointer {
    /// Dropped with the store, which ends the thread.
    _stop: std_mpsc::Sender<()>,
}

impl Checkpointer {
    /// Raises `restart` when a passive checkpoint leaves the log longer than
    /// [`RESTART_FRAMES`]; the writer then restarts it between two commits.
    pub(crate) fn spawn(conn: Connection, every: Duration, restart: Arc<AtomicBool>) -> Self {
        let (stop, rx) = std_mpsc::channel::<()>();
        thread::Builder::new()
            .name("chorus-store-checkpoint".into())
            .spawn(move || {
                // Columns: busy, frames in the log, frames checkpointed.
                let checkpoint =
                    |mode: &str| match conn
                        .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(1))
                    {
                        Ok(frames) => frames,
                        Err(e) => {
                            tracing::warn!(error = %e, "WAL checkpoint failed; will try again");
                            0
                        }
                    };
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    if checkpoint("PASSIVE") > RESTART_FRAMES {
                        restart.store(true, Ordering::Relaxed);
                    }
                }
                checkpoint("TRUNCATE");
            })
            .expect("spawn the store checkpoint thread");
        Self { _stop: stop }
    }
}
