use std::{sync::Arc, time::Duration};

use chorus_core::{
    Attempt, ClaimedDelivery, Clock, DeliveryStatus, NewAttempt, OutgoingPatch, RetryPolicy, SendError, Sink,
    Store,
};
use jiff::SignedDuration;
use serde_json::Value;
use tokio::{
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::{emitter::Emitter, retry::next_delay};

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
    /// Failed attempts in a row after which an outgoing subscription is
    /// disabled (and `webhook.disabled` emitted).
    pub breaker_threshold: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            lease: Duration::from_secs(300),
            policy: RetryPolicy::CHAT,
            idle: Duration::from_secs(5),
            drain: Duration::from_secs(20),
            breaker_threshold: 10,
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
    emitter: Option<Emitter>,
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
        Self { store, sink, clock, wake, config, recorded: Arc::new(watch::channel(0).0), emitter: None }
    }

    /// Emit operational events (`webhook.disabled`, `delivery.exhausted`) through `emitter`.
    #[must_use]
    pub fn with_emitter(mut self, emitter: Emitter) -> Self {
        self.emitter = Some(emitter);
        self
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
        let delivery = &job.delivery;
        let id = delivery.id.clone();
        let number = delivery.attempts + 1;
        let policy = job.http.as_ref().map_or(self.config.policy, |spec| spec.hook.retry);
        let started_at = self.clock.now();
        let started = std::time::Instant::now();
        let result = self.sink.send(&job).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let now = self.clock.now();
        if let Err(SendError::Throttled { retry_after }) = &result {
            let until = now + SignedDuration::try_from(*retry_after).unwrap_or(SignedDuration::from_secs(1));
            if let Err(e) = self.store.defer_delivery(&id, until).await {
                tracing::error!(delivery = %id, error = %e, "could not defer delivery");
            }
            return;
        }
        let succeeded = result.is_ok();
        let mut exhausted = false;
        let mut gone = None;
        let (status, next, status_code, error, excerpt) = match result {
            Ok(outcome) => (DeliveryStatus::Succeeded, now, outcome.status, None, outcome.response_excerpt),
            Err(SendError::Permanent { status, message }) => {
                (DeliveryStatus::Failed, now, status, Some(message), None)
            }
            Err(SendError::Gone { message }) => {
                gone = Some(message.clone());
                (DeliveryStatus::Failed, now, Some(410), Some(message), None)
            }
            Err(SendError::Retryable { status, message, retry_after }) => {
                if policy.max_attempts.is_some_and(|max| number - delivery.attempt_base >= max) {
                    exhausted = true;
                    (DeliveryStatus::Failed, now, status, Some(message), None)
                } else {
                    let delay = next_delay(&policy, number - delivery.attempt_base, retry_after);
                    let next = now + SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
                    (DeliveryStatus::Pending, next, status, Some(message), None)
                }
            }
            Err(SendError::Throttled { .. }) => unreachable!("handled above"),
        };
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
                error: error.clone(),
                response_excerpt: excerpt,
            },
            status,
            next_attempt_at: next,
        };
        if let Err(e) = self.store.record_attempt(record).await {
            // The lease runs out and the delivery is attempted again; the
            // sink's idempotency (Discord nonce, stable webhook id) absorbs the repeat.
            tracing::error!(delivery = %id, error = %e, "could not record attempt");
        }
        if let Some(spec) = &job.http {
            self.after_http_attempt(&job, spec, succeeded, gone, exhausted, error).await;
        }
        self.recorded.send_modify(|n| *n += 1);
    }

    /// The circuit breaker and the operational events of outgoing deliveries.
    async fn after_http_attempt(
        &self,
        job: &ClaimedDelivery,
        spec: &chorus_core::HttpSpec,
        succeeded: bool,
        gone: Option<String>,
        exhausted: bool,
        error: Option<String>,
    ) {
        let hook = &spec.hook.id;
        let failures = match self.store.note_outcome(hook, succeeded).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(hook = %hook, error = %e, "could not update the failure count");
                return;
            }
        };
        let reason = match gone {
            Some(message) => Some(format!("the destination answered 410 Gone ({message})")),
            None if !succeeded && failures >= self.config.breaker_threshold => {
                Some(format!("{failures} failed attempts in a row"))
            }
            None => None,
        };
        let event = job.delivery.payload["event"].as_str().unwrap_or_default();
        // Operational events about operational events would feed themselves.
        let operational = matches!(event, "webhook.disabled" | "delivery.exhausted");
        if let Some(reason) = reason {
            let patch = OutgoingPatch {
                enabled: Some(false),
                disabled_reason: Some(Some(reason.clone())),
                ..OutgoingPatch::default()
            };
            match self.store.update_outgoing(hook, patch).await {
                Ok(_) => {
                    tracing::warn!(hook = %hook, %reason, "outgoing webhook disabled");
                    if let Some(emitter) = &self.emitter {
                        let data =
                            serde_json::json!({"webhook_id": hook, "url": spec.hook.url, "reason": reason});
                        if let Err(e) =
                            emitter.emit("webhook.disabled", spec.hook.agent.clone(), data, Value::Null).await
                        {
                            tracing::error!(error = %e, "could not emit webhook.disabled");
                        }
                    }
                }
                Err(e) => tracing::error!(hook = %hook, error = %e, "could not disable the webhook"),
            }
        }
        if exhausted
            && !operational
            && let Some(emitter) = &self.emitter
        {
            let data = serde_json::json!({
                "webhook_id": hook,
                "delivery_id": job.delivery.id,
                "event": event,
                "attempts": job.delivery.attempts + 1,
                "last_error": error,
            });
            if let Err(e) =
                emitter.emit("delivery.exhausted", spec.hook.agent.clone(), data, Value::Null).await
            {
                tracing::error!(error = %e, "could not emit delivery.exhausted");
            }
        }
    }
}
