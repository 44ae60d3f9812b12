//! The single writer thread and its group commit.

use std::thread;

use chorus_core::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// Most operations committed together; bounds the time any one waits.
const MAX_BATCH: usize = 512;

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
        let result = conn.execute_batch("SAVEPOINT op").map_err(backend).and_then(|()| f(conn));
        let end = if result.is_ok() { "RELEASE op" } else { "ROLLBACK TO op; RELEASE op" };
        let result = match (result, conn.execute_batch(end)) {
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
    pub(crate) fn spawn(mut conn: Connection, queue: usize) -> Self {
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
                    let commit = run_batch(&mut conn, &mut batch);
                    for op in batch.drain(..) {
                        op.complete(commit.clone());
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
