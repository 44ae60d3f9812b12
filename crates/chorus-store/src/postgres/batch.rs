//! Group commit for ingress on PostgreSQL: concurrent `ingest` calls wait
//! in a bounded queue, and a few workers each take what is waiting and
//! commit it as one multi-row insert in one transaction, so many senders
//! share one round trip and one WAL flush. Each caller is answered only
//! after the commit that holds its event: acknowledged still means
//! committed.

use std::{collections::HashMap, sync::Arc};

use chorus_core::{EventId, IngestOutcome, NewEvent, StoreError};
use deadpool_postgres::Pool;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Columns, EVENTS_CHANNEL, json, ms, pg};

/// Events one commit carries at most.
const BATCH: usize = 256;
/// Commits in flight at once.
const WORKERS: usize = 4;
/// Events waiting beyond this are refused (`Unavailable`, a 503 with
/// `Retry-After`) rather than queued without bound.
const QUEUE: usize = 16_384;

type Job = (NewEvent, oneshot::Sender<Result<IngestOutcome, StoreError>>);

/// The queue in front of the workers.
pub(crate) struct Batcher {
    queue: mpsc::Sender<Job>,
    /// The workers' commits, for `/metrics`.
    pub(crate) commits: chorus_core::CommitRecorder,
}

impl Batcher {
    /// Start the workers on `pool`.
    pub(crate) fn start(pool: &Pool) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let commits = chorus_core::CommitRecorder::default();
        for _ in 0..WORKERS {
            tokio::spawn(work(pool.clone(), rx.clone(), commits.clone()));
        }
        Self { queue, commits }
    }

    /// Commit `event` with whatever else is waiting; answered after the commit.
    pub(crate) async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue.try_send((event, tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Unavailable("ingest queue full".into()),
            mpsc::error::TrySendError::Closed(_) => StoreError::Unavailable("store closed".into()),
        })?;
        rx.await.map_err(|_| StoreError::Unavailable("ingest worker stopped".into()))?
    }
}

async fn work(pool: Pool, rx: Arc<Mutex<mpsc::Receiver<Job>>>, commits: chorus_core::CommitRecorder) {
    loop {
        let mut jobs = Vec::new();
        {
            // One worker gathers at a time: it takes the first job that
            // comes and everything queued behind it.
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            jobs.push(first);
            while jobs.len() < BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let events: Vec<&NewEvent> = jobs.iter().map(|(e, _)| e).collect();
        let started = std::time::Instant::now();
        let committed = commit(&pool, &events).await;
        commits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(events.len(), started.elapsed());
        match committed {
            Ok(outcomes) => {
                for ((event, reply), outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome.ok_or_else(|| {
                        StoreError::Backend(format!("event {} went missing from its batch", event.id).into())
                    }));
                }
            }
            // A batch that fails (a malformed row, a lost connection)
            // fails no one else's event: each goes again on its own.
            Err(_) if jobs.len() > 1 => {
                for (event, reply) in jobs {
                    let alone = commit(&pool, &[&event]).await.and_then(|mut o| {
                        o.pop().flatten().ok_or_else(|| StoreError::Backend("event went missing".into()))
                    });
                    let _ = reply.send(alone);
                }
            }
            Err(e) => {
                if let Some((_, reply)) = jobs.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
}

/// Insert `events` in one transaction; each one's outcome, in order.
async fn commit(pool: &Pool, events: &[&NewEvent]) -> Result<Vec<Option<IngestOutcome>>, StoreError> {
    let mut client = pool.get().await.map_err(|e| StoreError::Unavailable(format!("database: {e}")))?;
    let tx = client.transaction().await.map_err(pg)?;
    let column = |f: &dyn Fn(&NewEvent) -> String| events.iter().map(|e| f(e)).collect::<Vec<_>>();
    let ids = column(&|e| e.id.to_string());
    let hooks = column(&|e| e.hook_id.to_string());
    let agents = column(&|e| e.agent.to_string());
    let sources = column(&|e| e.source.as_str().to_owned());
    let types = column(&|e| e.event_type.clone());
    let keys: Vec<Option<&str>> = events.iter().map(|e| e.delivery_key.as_deref()).collect();
    let headers = column(&|e| json(&e.headers));
    let bodies: Vec<&[u8]> = events.iter().map(|e| e.body.as_slice()).collect();
    let received: Vec<i64> = events.iter().map(|e| ms(e.received_at)).collect();
    // One statement for the batch; the unique index on (hook_id,
    // delivery_key) decides duplicates, within the batch too and between
    // replicas receiving the same retry at once. Rows go in the order they
    // came, so `seq` follows arrival.
    let inserted = tx
        .query(
            "INSERT INTO events (id, hook_id, agent, source, event_type, delivery_key, headers, body,
                                 received_at, status)
             SELECT id, hook_id, agent, source, event_type, delivery_key, headers, body, received_at, 'received'
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::bytea[], $9::bigint[])
                  WITH ORDINALITY AS t(id, hook_id, agent, source, event_type, delivery_key, headers, body,
                                       received_at, n)
             ORDER BY n
             ON CONFLICT DO NOTHING
             RETURNING id",
            &[&ids, &hooks, &agents, &sources, &types, &keys, &headers, &bodies, &received],
        )
        .await
        .map_err(pg)?;
    let stored: std::collections::HashSet<String> =
        inserted.iter().map(|r| r.col::<String>("id")).collect::<Result<_, _>>()?;
    let mut originals: HashMap<(String, String), EventId> = HashMap::new();
    if stored.len() < events.len() {
        let (dup_hooks, dup_keys): (Vec<&str>, Vec<&str>) = events
            .iter()
            .filter(|e| !stored.contains(e.id.as_str()))
            .filter_map(|e| Some((e.hook_id.as_str(), e.delivery_key.as_deref()?)))
            .unzip();
        for row in tx
            .query(
                "SELECT e.id, e.hook_id, e.delivery_key FROM events e
                 JOIN unnest($1::text[], $2::text[]) AS d(hook_id, delivery_key)
                   ON e.hook_id = d.hook_id AND e.delivery_key = d.delivery_key",
                &[&dup_hooks, &dup_keys],
            )
            .await
            .map_err(pg)?
        {
            originals.insert((row.col("hook_id")?, row.col("delivery_key")?), row.parsed("id")?);
        }
    }
    if !stored.is_empty() {
        tx.execute("SELECT pg_notify($1, current_schema())", &[&EVENTS_CHANNEL]).await.map_err(pg)?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(events
        .iter()
        .map(|e| {
            if stored.contains(e.id.as_str()) {
                return Some(IngestOutcome::Stored(e.id.clone()));
            }
            let key = (e.hook_id.to_string(), e.delivery_key.clone()?);
            originals.get(&key).cloned().map(IngestOutcome::Duplicate)
        })
        .collect())
}
