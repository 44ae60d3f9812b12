use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use chorus_core::{
    Attempt, BreakerStep, ClaimedDelivery, Clock, DeliveryStatus, DeliveryStore, NewAttempt, RetryPolicy,
    SendError, SendOutcome, Sink, SubjectMessage, Target,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tokio::{
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::{emitter::Emitter, retry::next_delay};

/// Deliveries the worker of a serial target (a chat channel) holds at once:
/// enough for the sink to see a backlog (past the digest threshold) and pack
/// it into few sends.
const SERIAL_BATCH: usize = 100;

/// What an attempt's outcome means for an outgoing subscription once it is
/// recorded: whether its retries ran out.
struct FollowUp {
    exhausted: bool,
    error: Option<String>,
}

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
    /// Failed attempts in a row after which an outgoing subscription's
    /// circuit breaker opens: its deliveries wait, new events still queue.
    pub breaker_threshold: u32,
    /// How long the breaker first stays open; each failure after doubles
    /// it, up to an hour.
    pub breaker_cooldown: Duration,
    /// How long a subscription may keep failing, every attempt, before it
    /// is disabled (and `webhook.disabled` emitted).
    pub breaker_disable_after: Duration,
    /// How long channel messages wait after Discord refuses the bot token
    /// (401) before one is tried again: each 401 spends the budget of
    /// invalid requests (10,000 in 10 minutes) that gets an address banned.
    pub bot_token_hold: Duration,
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
            breaker_cooldown: Duration::from_secs(30),
            breaker_disable_after: Duration::from_secs(72 * 3600),
            bot_token_hold: Duration::from_secs(600),
        }
    }
}

/// Claims due deliveries and sends them through a sink.
pub struct Engine {
    /// The engine's part of the store, and nothing else.
    store: Arc<dyn DeliveryStore>,
    sink: Arc<dyn Sink>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    config: EngineConfig,
    recorded: Arc<watch::Sender<u64>>,
    emitter: Option<Emitter>,
    /// Serial targets with a worker; the main claim skips them.
    busy: Mutex<Vec<Target>>,
    /// Until when channel messages are not claimed: Discord refused the
    /// bot token. `None`: the token works (or was not yet refused).
    bot_held_until: Mutex<Option<Timestamp>>,
}

/// Frees a serial target when its worker ends, however it ends.
struct BusyGuard {
    engine: Arc<Engine>,
    target: Target,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut busy = self.engine.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        busy.retain(|t| *t != self.target);
    }
}

impl Engine {
    /// `wake` is notified whenever deliveries are committed.
    pub fn new(
        store: Arc<dyn DeliveryStore>,
        sink: Arc<dyn Sink>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            sink,
            clock,
            wake,
            config,
            recorded: Arc::new(watch::channel(0).0),
            emitter: None,
            busy: Mutex::new(Vec::new()),
            bot_held_until: Mutex::new(None),
        }
    }

    /// How long until held channel messages may be tried again (the idle
    /// wait when nothing is held).
    fn until_bot_released(&self) -> Duration {
        let held = *self.bot_held_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.map_or(self.config.idle, |until| {
            Duration::try_from(until.duration_since(self.clock.now())).unwrap_or(Duration::ZERO)
        })
    }

    /// The kinds to claim now: channel messages wait while the bot token
    /// is held.
    fn claimable(&self, kinds: &[chorus_core::TargetKind]) -> Vec<chorus_core::TargetKind> {
        let held = self.bot_held_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.clock.now();
        kinds
            .iter()
            .copied()
            .filter(|k| {
                *k != chorus_core::TargetKind::DiscordChannel || held.is_none_or(|until| until <= now)
            })
            .collect()
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
                let skip = this.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                match this
                    .store
                    .claim_deliveries(
                        &this.claimable(&kinds),
                        &skip,
                        this.clock.now(),
                        this.config.lease,
                        free,
                    )
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming deliveries failed; will retry");
                        Vec::new()
                    }
                }
            };
            let got = claimed.len();
            let claimed = this.half_open(claimed).await;
            let mut serial: Vec<(Target, VecDeque<ClaimedDelivery>)> = Vec::new();
            let mut tasks = 0;
            for job in claimed {
                if this.sink.serial(job.delivery.target.kind()) {
                    match serial.iter_mut().find(|(t, _)| *t == job.delivery.target) {
                        Some((_, queue)) => queue.push_back(job),
                        None => serial.push((job.delivery.target.clone(), VecDeque::from([job]))),
                    }
                    continue;
                }
                let permit = permits.clone().acquire_owned().await.expect("semaphore open");
                let this = this.clone();
                tasks += 1;
                inflight.spawn(async move {
                    // Recorded either way; nothing waits behind this one.
                    let _ = this.attempt(std::slice::from_ref(&job)).await;
                    drop(permit);
                });
            }
            for (target, queue) in serial {
                let permit = permits.clone().acquire_owned().await.expect("semaphore open");
                this.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(target.clone());
                let guard = BusyGuard { engine: this.clone(), target };
                let shutdown = shutdown.clone();
                tasks += 1;
                inflight.spawn(async move {
                    guard.engine.clone().serve_target(&guard.target, queue, &shutdown).await;
                    drop(guard);
                    drop(permit);
                });
            }
            if tasks > 0 && tasks == free {
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
            let wait = this.until_next_due(&this.claimable(&kinds)).await.min(this.until_bot_released());
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

    /// A subscription whose breaker has run its cooldown sends one delivery
    /// as a probe; its other deliveries go back unattempted and wait until
    /// the probe's outcome closes the breaker or opens it again. So a
    /// receiver that is still down costs one attempt per cooldown, not one
    /// per waiting delivery, and one that is back is not flooded at once.
    async fn half_open(&self, claimed: Vec<ClaimedDelivery>) -> Vec<ClaimedDelivery> {
        let threshold = self.config.breaker_threshold;
        if claimed.iter().all(|j| j.http.as_ref().is_none_or(|s| s.hook.consecutive_failures < threshold)) {
            return claimed;
        }
        let now = self.clock.now();
        let (mut probing, mut waiting) = (Vec::new(), Vec::new());
        let (mut send, mut held) = (Vec::with_capacity(claimed.len()), Vec::new());
        for job in claimed {
            let Some(hook) =
                job.http.as_ref().map(|s| &s.hook).filter(|h| h.consecutive_failures >= threshold)
            else {
                send.push(job);
                continue;
            };
            if probing.contains(&hook.id) || waiting.contains(&hook.id) {
                held.push(job);
                continue;
            }
            // Long enough for the probe's attempt to be recorded; if it never
            // is (a crash), the next probe goes then.
            let until =
                now + SignedDuration::from_millis(hook.timeout_ms as i64) + SignedDuration::from_secs(30);
            match self.store.begin_probe(&hook.id, threshold, now, until).await {
                Ok(true) => {
                    tracing::info!(hook = %hook.id, "circuit breaker half-open: one delivery probes the destination");
                    probing.push(hook.id.clone());
                    send.push(job);
                }
                Ok(false) => {
                    waiting.push(hook.id.clone());
                    held.push(job);
                }
                Err(e) => {
                    tracing::warn!(hook = %hook.id, error = %e, "could not take the breaker's probe; sending");
                    send.push(job);
                }
            }
        }
        self.release(held.into_iter(), now).await;
        send
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

    /// Send the deliveries of one serial target in order, packing what the
    /// sink can carry together, until none of that target is due.
    ///
    /// One worker per target: its sends never overlap, so the channel sees
    /// events in order and its rate limit is met by waiting, not by 429s.
    /// It starts from the target's oldest delivery (all a general claim
    /// takes of an ordered target) and claims the rest itself, in order.
    async fn serve_target(
        &self,
        target: &Target,
        mut queue: VecDeque<ClaimedDelivery>,
        shutdown: &CancellationToken,
    ) {
        loop {
            if queue.len() < SERIAL_BATCH && !shutdown.is_cancelled() {
                let room = SERIAL_BATCH - queue.len();
                match self.store.claim_target(target, self.clock.now(), self.config.lease, room).await {
                    Ok(more) => queue.extend(more),
                    Err(e) => tracing::warn!(error = %e, "claiming deliveries failed; will retry"),
                }
            }
            if queue.is_empty() {
                // Another process sharing the store may send to it now.
                if let Err(e) = self.store.release_target(target).await {
                    tracing::warn!(error = %e, "could not release a target; its claim will run out instead");
                }
                return;
            }
            if shutdown.is_cancelled() {
                // Unsent: back to the store now, without counting an attempt.
                self.release(queue.drain(..), self.clock.now()).await;
                return;
            }
            let n = match queue[0].pack.clone() {
                // A crash cut this pack's send off: send the same pack again
                // so Discord's nonce recognises it if it did arrive.
                Some(pack) => {
                    let (mut same, rest): (VecDeque<_>, VecDeque<_>) =
                        queue.drain(..).partition(|job| job.pack.as_deref() == Some(pack.as_str()));
                    let n = same.len();
                    same.extend(rest);
                    queue = same;
                    n
                }
                None => {
                    let pending = queue.make_contiguous();
                    let fresh = pending.iter().take_while(|job| job.pack.is_none()).count();
                    self.sink.pack(&pending[..fresh]).clamp(1, fresh)
                }
            };
            let mut batch: Vec<ClaimedDelivery> = queue.drain(..n).collect();
            if batch.len() > 1 && batch[0].pack.is_none() {
                let ids: Vec<chorus_core::DeliveryId> =
                    batch.iter().map(|job| job.delivery.id.clone()).collect();
                let pack = ids[0].to_string();
                match self.store.mark_packed(&ids, &pack).await {
                    Ok(()) => batch.iter_mut().for_each(|job| job.pack = Some(pack.clone())),
                    Err(e) => {
                        // Unmarked, a crash mid-send would bring these back
                        // as a different pack that Discord cannot recognise:
                        // send one alone, whose nonce is its own id.
                        tracing::warn!(error = %e, "could not mark a pack; sending one at a time");
                        for job in batch.drain(1..).rev() {
                            queue.push_front(job);
                        }
                    }
                }
            }
            if let [job] = batch.as_mut_slice() {
                self.find_subject_message(job).await;
            }
            if let Err(Some(later)) = self.attempt(&batch).await {
                // The rest waits behind the send that will be retried, so
                // order holds.
                self.release(queue.drain(..), later).await;
                return;
            }
        }
    }

    /// Point a message about a subject at the chat message already showing
    /// that subject, so the sink edits it, and a message about a pull
    /// request or incident at its thread.
    async fn find_subject_message(&self, job: &mut ClaimedDelivery) {
        for (field, key) in [("subject", None), ("thread", Some(THREAD))] {
            let Some(name) = job.delivery.payload.get(field).and_then(Value::as_str) else { continue };
            let name = match key {
                Some(prefix) => format!("{prefix}{name}"),
                None => name.to_owned(),
            };
            match self.store.subject_message(&job.delivery.target, &name).await {
                Ok(found) if key.is_some() => job.thread = found,
                Ok(found) => job.edit = found,
                // A new message or thread instead: worse to read, nothing lost.
                Err(e) => {
                    tracing::warn!(delivery = %job.delivery.id, error = %e, "could not look up the subject's message");
                }
            }
        }
    }

    /// Put claimed deliveries back, due at `at`, without counting an attempt.
    async fn release(&self, jobs: impl Iterator<Item = ClaimedDelivery>, at: Timestamp) {
        for job in jobs {
            if let Err(e) = self.store.defer_delivery(&job.delivery.id, at).await {
                tracing::error!(delivery = %job.delivery.id, error = %e, "could not release delivery");
            }
        }
    }

    /// Make one attempt for `jobs` (one delivery, or several the sink packed
    /// into one send) and record it for each. `Err(Some(at))`: not sent, to
    /// be tried again at `at`; `Err(None)`: failed for good.
    async fn attempt(&self, jobs: &[ClaimedDelivery]) -> Result<(), Option<Timestamp>> {
        let started_at = self.clock.now();
        let started = std::time::Instant::now();
        let result = match jobs {
            [one] => self.sink.send(one).await,
            _ => self.sink.send_packed(jobs).await,
        };
        if jobs.len() > 1 && matches!(result, Err(SendError::Permanent { .. })) {
            // One bad message must not sink the others packed with it: send
            // each on its own so only the bad one fails.
            for (i, job) in jobs.iter().enumerate() {
                if let Err(Some(at)) = Box::pin(self.attempt(std::slice::from_ref(job))).await {
                    self.release(jobs[i + 1..].iter().cloned(), at).await;
                    return Err(Some(at));
                }
            }
            return Ok(());
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        let now = self.clock.now();
        if let Err(SendError::Throttled { retry_after }) = &result {
            let until = now + SignedDuration::try_from(*retry_after).unwrap_or(SignedDuration::from_secs(1));
            self.release(jobs.iter().cloned(), until).await;
            return Err(Some(until));
        }
        let mut later = None;
        let mut records = Vec::with_capacity(jobs.len());
        let mut follow_ups = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (record, follow_up) = self.outcome(job, &result, started_at, duration_ms, now);
            if record.status == DeliveryStatus::Pending {
                let next = record.next_attempt_at;
                later = Some(later.map_or(next, |l: Timestamp| l.max(next)));
            }
            records.push(record);
            follow_ups.push(follow_up);
        }
        // A pack is retried whole, at one time: the same members again, so
        // Discord recognises the send if an earlier one arrived.
        if let Some(later) = later {
            for record in records.iter_mut().filter(|r| r.status == DeliveryStatus::Pending) {
                record.next_attempt_at = later;
            }
        }
        // One transaction for a whole pack: after a crash its deliveries are
        // either all recorded or all sent again as the same pack.
        let trips = match self.store.record_attempts(records).await {
            Ok(trips) => trips,
            Err(e) => {
                // The leases run out and the deliveries are attempted again; the
                // sink's idempotency (Discord nonce, stable webhook id) absorbs the repeat.
                tracing::error!(deliveries = jobs.len(), error = %e, "could not record attempts");
                Vec::new()
            }
        };
        for trip in trips {
            let spec = jobs.iter().filter_map(|j| j.http.as_ref()).find(|s| s.hook.id == trip.hook);
            self.disabled(&trip, spec).await;
        }
        match (&result, &jobs[0].delivery.target) {
            (Err(SendError::Broken { message, .. }), Target::DiscordWebhook { agent }) => {
                self.degrade(agent, message).await;
            }
            (Err(SendError::Broken { message, .. }), Target::DiscordChannel { .. }) => {
                self.hold_bot(message).await;
            }
            (Ok(_), Target::DiscordChannel { .. }) => self.release_bot().await,
            _ => {}
        }
        for (job, follow_up) in jobs.iter().zip(follow_ups) {
            if let Some(spec) = &job.http {
                self.after_http_attempt(job, spec, follow_up).await;
            }
        }
        self.recorded.send_modify(|n| *n += jobs.len() as u64);
        if result.is_ok() { Ok(()) } else { Err(later) }
    }

    /// One delivery's attempt record, and what the circuit breaker needs.
    fn outcome(
        &self,
        job: &ClaimedDelivery,
        result: &Result<SendOutcome, SendError>,
        started_at: Timestamp,
        duration_ms: u64,
        now: Timestamp,
    ) -> (NewAttempt, FollowUp) {
        let delivery = &job.delivery;
        let id = delivery.id.clone();
        let number = delivery.attempts + 1;
        let policy = match (&job.http, &delivery.target) {
            (Some(spec), _) => spec.hook.retry,
            (None, Target::Forward { .. } | Target::Reply { .. }) => RetryPolicy::FORWARD,
            (None, _) => self.config.policy,
        };
        let mut exhausted = false;
        let mut gone = None;
        let (status, next, status_code, error, excerpt) = match result.clone() {
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
            // Sent and refused for good reason: it waits, held, until the
            // destination is replaced (the agent is marked degraded), or
            // for a channel, until the bot token is tried again.
            Err(SendError::Broken { status, message }) => {
                let next = match delivery.target {
                    Target::DiscordChannel { .. } => {
                        now + SignedDuration::try_from(self.config.bot_token_hold)
                            .unwrap_or(SignedDuration::MAX)
                    }
                    _ => now,
                };
                (DeliveryStatus::Pending, next, status, Some(message), None)
            }
            Err(SendError::Throttled { .. }) => unreachable!("released before recording"),
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
                delivery_id: id,
                number,
                started_at,
                duration_ms,
                status_code,
                error: error.clone(),
                response_excerpt: excerpt,
            },
            status,
            next_attempt_at: next,
            subject_messages: subject_messages(job, result),
            breaker: job.http.as_ref().map(|spec| BreakerStep {
                hook: spec.hook.id.clone(),
                succeeded: result.is_ok(),
                threshold: self.config.breaker_threshold,
                cooldown: self.config.breaker_cooldown,
                disable_after: self.config.breaker_disable_after,
                gone: gone.clone(),
            }),
        };
        (record, FollowUp { exhausted, error })
    }

    /// Hold every channel message for [`EngineConfig::bot_token_hold`]:
    /// Discord refused the bot token. Subscribers hear it once, when the
    /// token goes from working to refused.
    async fn hold_bot(&self, reason: &str) {
        let until = self.clock.now()
            + SignedDuration::try_from(self.config.bot_token_hold).unwrap_or(SignedDuration::MAX);
        let was =
            self.bot_held_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(until);
        if was.is_some() {
            return;
        }
        tracing::error!(%reason, retry_at = %until, "Discord refuses the bot token; channel messages wait");
        self.health(
            "system.health.degraded",
            serde_json::json!({"component": "discord_bot", "reason": reason}),
        )
        .await;
    }

    /// A channel message went out: a refused bot token works again.
    async fn release_bot(&self) {
        let was = self.bot_held_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if was.is_some() {
            tracing::info!("Discord takes the bot token again; channel messages go out");
            self.health("system.health.restored", serde_json::json!({"component": "discord_bot"})).await;
        }
    }

    async fn health(&self, event: &str, data: Value) {
        if let Some(emitter) = &self.emitter
            && let Err(e) = emitter.emit(event, None, data, Value::Null).await
        {
            tracing::error!(error = %e, event, "could not emit a health event");
        }
    }

    /// Hold an agent's webhook deliveries until its URL is replaced, and
    /// tell subscribers once.
    async fn degrade(&self, agent: &chorus_core::AgentName, reason: &str) {
        match self.store.degrade_agent(agent, reason).await {
            Ok(true) => {
                tracing::warn!(agent = %agent, %reason, "Discord refuses the agent's webhook URL; its messages wait");
                if let Some(emitter) = &self.emitter {
                    let data =
                        serde_json::json!({"agent": agent, "component": "discord_webhook", "reason": reason});
                    if let Err(e) =
                        emitter.emit("system.health.degraded", Some(agent.clone()), data, Value::Null).await
                    {
                        tracing::error!(error = %e, "could not emit system.health.degraded");
                    }
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(agent = %agent, error = %e, "could not mark the agent degraded"),
        }
    }

    /// Tell subscribers a subscription was disabled (its breaker tripped in
    /// the attempt's transaction).
    async fn disabled(&self, trip: &chorus_core::BreakerTrip, spec: Option<&chorus_core::HttpSpec>) {
        tracing::warn!(hook = %trip.hook, reason = %trip.reason, "outgoing webhook disabled");
        let Some(emitter) = &self.emitter else { return };
        let data = serde_json::json!({
            "webhook_id": trip.hook,
            "url": spec.map(|s| s.hook.url.clone()),
            "reason": trip.reason,
        });
        let agent = spec.and_then(|s| s.hook.agent.clone());
        if let Err(e) = emitter.emit("webhook.disabled", agent, data, Value::Null).await {
            tracing::error!(error = %e, "could not emit webhook.disabled");
        }
    }

    /// The operational events of an outgoing delivery's attempt.
    async fn after_http_attempt(
        &self,
        job: &ClaimedDelivery,
        spec: &chorus_core::HttpSpec,
        follow_up: FollowUp,
    ) {
        let FollowUp { exhausted, error } = follow_up;
        let event = job.delivery.payload["event"].as_str().unwrap_or_default();
        // Operational events about operational events would feed themselves.
        let operational = matches!(event, "webhook.disabled" | "delivery.exhausted");
        if exhausted
            && !operational
            && let Some(emitter) = &self.emitter
        {
            let data = serde_json::json!({
                "webhook_id": spec.hook.id,
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

/// How a thread's key is kept beside subjects' messages.
const THREAD: &str = "thread:";

/// The chat message a successful send of a message about a subject created
/// or edited, and the thread it started, to be kept with its attempt.
fn subject_messages(job: &ClaimedDelivery, result: &Result<SendOutcome, SendError>) -> Vec<SubjectMessage> {
    let Ok(outcome) = result else { return Vec::new() };
    let field = |name: &str| job.delivery.payload.get(name).and_then(Value::as_str);
    let mut kept = Vec::new();
    if let (Some(subject), Some(message_id)) = (field("subject"), &outcome.message_id) {
        kept.push(SubjectMessage { subject: subject.to_owned(), message_id: message_id.clone() });
    }
    if let (Some(thread), Some(thread_id)) = (field("thread"), &outcome.thread_id) {
        kept.push(SubjectMessage { subject: format!("{THREAD}{thread}"), message_id: thread_id.clone() });
    }
    kept
}
