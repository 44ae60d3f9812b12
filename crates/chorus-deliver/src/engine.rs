use std::{sync::Arc, time::Duration};

use chorus_core::{
    Attempt, ClaimedDelivery, Clock, DeliveryStatus, NewAttempt, RetryPolicy, SendError, Sink, Store,
};
use jiff::SignedDuration;
use tokio::{
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::retry::next_delay;

/// Tuning for [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sends in flight at once.
    pub concurrency: usize,
    /// How long a claimed delivery is reserved; longer than any send can
    /// take (including a rate-limit wait inside the sink).
    pub lease: Duration,
    /// The retry schedule of chat deliveries.
    pub policy: RetryPolicy,
    /// Upper bound of an idle wait.
    pub idle: Duration,
    /// How long shutdown waits for sends in flight.
    pub drain: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            lease: Duration::from_secs(300),
            policy: RetryPolicy::CHAT,
            idle: Duration::from_secs(5),
            drain: Duration::from_secs(20),
        }
    }
}

/// Claims due deliveries and sends them through a sink.
pub struct Engine {
    store: Arc<dyn Store>,
    sink: Arc<dyn Sink>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    config: EngineConfig,
    recorded: Arc<watch::Sender<u64>>,
}

impl Engine {
    /// `wake` is notified whenever deliveries are committed.
    pub fn new(
        store: Arc<dyn Store>,
        sink: Arc<dyn Sink>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        config: EngineConfig,
    ) -> Self {
        Self { store, sink, clock, wake, config, recorded: Arc::new(watch::channel(0).0) }
    }

    /// The number of attempts recorded so far; changes after each one.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Deliver until `shutdown` is cancelled, then let sends in flight finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let kinds = self.sink.kinds();
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let mut inflight = JoinSet::new();
        let this = Arc::new(self);
        loop {
            while inflight.try_join_next().is_some() {}
            let notified = this.wake.notified();
            let free = permits.available_permits();
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match this.store.claim_deliveries(&kinds, this.clock.now(), this.config.lease, free).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming deliveries failed; will retry");
                        Vec::new()
                    }
                }
            };
            let got = claimed.len();
            for job in claimed {
                let permit = permits.clone().acquire_owned().await.expect("semaphore open");
                let this = this.clone();
                inflight.spawn(async move {
                    this.attempt(job).await;
                    drop(permit);
                });
            }
            if got > 0 && got == free {
                // Saturated: wait for a slot rather than for new work.
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = inflight.join_next() => {}
                }
                continue;
            }
            if got > 0 {
                continue;
            }
            let wait = this.until_next_due(&kinds).await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = notified => {}
                _ = inflight.join_next(), if !inflight.is_empty() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        let drained =
            tokio::time::timeout(this.config.drain, async { while inflight.join_next().await.is_some() {} });
        if drained.await.is_err() {
            tracing::warn!(
                "shutdown: sends still in flight were abandoned; their leases expire and they are retried"
            );
        }
    }

    async fn until_next_due(&self, kinds: &[chorus_core::TargetKind]) -> Duration {
        match self.store.next_due(kinds).await {
            Ok(Some(at)) => {
                let ms = at.duration_since(self.clock.now()).as_millis().max(0);
                Duration::from_millis(ms as u64).min(self.config.idle)
            }
            _ => self.config.idle,
        }
    }

    /// Make one attempt and record it.
    async fn attempt(&self, job: ClaimedDelivery) {
        let number = job.delivery.attempts + 1;
        let started_at = self.clock.now();
        let started = std::time::Instant::now();
        let result = self.sink.send(&job).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let now = self.clock.now();
        let (status, next, status_code, error, excerpt) = match result {
            Ok(outcome) => (DeliveryStatus::Succeeded, now, outcome.status, None, outcome.response_excerpt),
            Err(SendError::Permanent { status, message }) => {
                (DeliveryStatus::Failed, now, status, Some(message), None)
            }
            Err(SendError::Retryable { status, message, retry_after }) => {
                let exhausted = self.config.policy.max_attempts.is_some_and(|max| number >= max);
                if exhausted {
                    (DeliveryStatus::Failed, now, status, Some(message), None)
                } else {
                    let delay = next_delay(&self.config.policy, number, retry_after);
                    let next = now + SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
                    (DeliveryStatus::Pending, next, status, Some(message), None)
                }
            }
        };
        let id = job.delivery.id.clone();
        match status {
            DeliveryStatus::Succeeded => tracing::debug!(delivery = %id, attempt = number, "delivered"),
            DeliveryStatus::Pending => {
                tracing::info!(delivery = %id, attempt = number, error = ?error, retry_at = %next, "delivery failed; will retry");
            }
            DeliveryStatus::Failed => {
                tracing::warn!(delivery = %id, attempt = number, error = ?error, "delivery failed permanently");
            }
        }
        let record = NewAttempt {
            attempt: Attempt {
                delivery_id: id.clone(),
                number,
                started_at,
                duration_ms,
                status_code,
                error,
                response_excerpt: excerpt,
            },
            status,
            next_attempt_at: next,
        };
        if let Err(e) = self.store.record_attempt(record).await {
            // The lease runs out and the delivery is attempted again; the
            // sink's idempotency (Discord nonce) absorbs the repeat.
            tracing::error!(delivery = %id, error = %e, "could not record attempt");
        }
        self.recorded.send_modify(|n| *n += 1);
    }
}
