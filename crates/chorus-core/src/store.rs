use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::{
    Agent, AgentName, AgentPatch, ApiToken, Attempt, AuditEntry, BreakerTrip, Delivery, DeliveryCounts,
    DeliveryId, DeliveryStatus, Event, EventId, EventStatus, HookId, HookPatch, HookStats, HttpSpec,
    IncomingHook, NewAgent, NewApiToken, NewAttempt, NewDelivery, NewEvent, NewOutgoingEvent, OutgoingAuth,
    OutgoingHook, OutgoingPatch, Rule, RuleOutcome, Secret, Target, TargetKind, Task, TaskQuery, TaskStatus,
};

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// Its id or name.
        id: String,
    },
    /// The thing already exists, or the change conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// An argument the store cannot use, such as a malformed page cursor.
    #[error("{0}")]
    Invalid(String),
    /// The store is shutting down or overloaded; try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A sealed value could not be opened (wrong master key, or tampering).
    #[error("could not open a sealed secret: wrong master key or corrupted data")]
    Unseal,
    /// The database failed.
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The result of [`Store::ingest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Committed under this id.
    Stored(EventId),
    /// The hook already has an event with this delivery key.
    Duplicate(EventId),
}

/// One page of a listing, newest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Filters for [`Store::events`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this hook's events.
    pub hook_id: Option<HookId>,
    /// Only events in this state.
    pub status: Option<EventStatus>,
    /// Only this event type, or this family (`pull_request` takes
    /// `pull_request.opened`).
    pub event_type: Option<String>,
    /// Only events received at or after this time.
    pub since: Option<Timestamp>,
    /// Only events received before this time.
    pub until: Option<Timestamp>,
    /// Page size.
    pub limit: usize,
    /// From a previous page.
    pub cursor: Option<String>,
}

/// Filters for [`Store::deliveries`].
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only this hook's deliveries.
    pub hook_id: Option<HookId>,
    /// Only this event's deliveries.
    pub event_id: Option<EventId>,
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Page size.
    pub limit: usize,
    /// From a previous page.
    pub cursor: Option<String>,
}

/// Where an event held for an aggregation window goes: the window in which
/// it was received, or, when that one's summary already went out (the
/// event was routed late, after a crash), the window of the moment it is
/// routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSlot {
    /// The hook.
    pub hook: HookId,
    /// The end of the window the event was received in.
    pub ends_at: Timestamp,
    /// The end of the window current when it was routed.
    pub if_closed: Timestamp,
}

/// The outcome of routing one event, committed in one transaction: the
/// decision and every job it makes land together or not at all.
#[derive(Debug, Clone)]
pub struct RoutedEvent {
    /// The event.
    pub event_id: EventId,
    /// `Routed`, `Filtered` or `Unmatched`.
    pub status: EventStatus,
    /// The deliveries it produced.
    pub deliveries: Vec<NewDelivery>,
    /// What each rule did.
    pub outcomes: Vec<RuleOutcome>,
    /// Tasks its rules created.
    pub tasks: Vec<Task>,
    /// Questions its `ask` rules put to agents.
    pub questions: Vec<crate::Question>,
    /// State kept per subject (a pull request's reviews), as it stands
    /// after this event.
    pub subjects: Vec<SubjectUpdate>,
    /// The aggregation window the event is held for.
    pub window: Option<WindowSlot>,
}

impl RoutedEvent {
    /// An event that produced nothing but a status.
    pub fn bare(event_id: EventId, status: EventStatus) -> Self {
        Self {
            event_id,
            status,
            deliveries: vec![],
            outcomes: vec![],
            tasks: vec![],
            questions: vec![],
            subjects: vec![],
            window: None,
        }
    }
}

/// The new state of one subject of a hook's events.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectUpdate {
    /// The hook.
    pub hook_id: HookId,
    /// The subject (`github:<owner>/<repo>#<number>`).
    pub subject: String,
    /// Its state.
    pub state: serde_json::Value,
}

/// A delivery claimed for an attempt, with what the sink needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// For a Discord-webhook target: the agent's webhook URL, unsealed.
    pub webhook_url: Option<Secret>,
    /// For an HTTP target: the subscription, unsealed.
    pub http: Option<HttpSpec>,
    /// For a forward: the incoming hook's current secret, which signs it.
    pub signing_secret: Option<Secret>,
    /// For a reply: the hook's source and reply credentials, unsealed.
    pub reply: Option<(crate::Source, crate::ReplyConfig)>,
    /// Set when this delivery went out packed with others (see
    /// [`Store::mark_packed`]) and no outcome was recorded: a crash cut the
    /// send off. The same pack is sent again so the receiver's deduplication
    /// (Discord's nonce) can recognise it.
    pub pack: Option<String>,
    /// The chat message already showing this delivery's subject (see
    /// [`crate::Message::subject`]): the send edits it instead of posting a
    /// new one. Set by the delivery engine just before the send.
    pub edit: Option<String>,
    /// The Discord thread already holding this delivery's pull request or
    /// incident (see [`crate::Message::thread`]): the send goes there. Set
    /// by the delivery engine just before the send.
    pub thread: Option<String>,
}

/// A management API response kept for its `Idempotency-Key`, so a retried
/// request gets the first answer instead of a second change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// SHA-256 of method, path and body: the same key with another request
    /// is refused.
    pub request_hash: [u8; 32],
    /// The status code.
    pub status: u16,
    /// The JSON body, which may hold a secret shown once (kept sealed).
    pub body: Vec<u8>,
    /// When the first answer was given.
    pub created_at: Timestamp,
}

impl IdempotentResponse {
    /// How long a key holds its answer; after that it may be used afresh.
    pub const WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
}

/// What the store holds, counted for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Events by status (`received`, `routed`, `filtered`, …).
    pub events: Vec<(String, u64)>,
    /// Deliveries by target kind and status.
    pub deliveries: Vec<(String, String, u64)>,
    /// When the longest-waiting pending delivery was due.
    pub oldest_due: Option<Timestamp>,
    /// Workflow runs by status.
    pub runs: Vec<(String, u64)>,
    /// Tasks by status.
    pub tasks: Vec<(String, u64)>,
    /// The group commits of this process (ingress's on PostgreSQL, every
    /// write's on SQLite) since it started.
    pub commits: CommitStats,
}

/// Group commits as two histograms: how many writes each carried, and how
/// long each took to be durable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Commits carrying at most each of [`CommitStats::SIZES`] writes
    /// (cumulative, as Prometheus counts buckets).
    pub size_buckets: [u64; 9],
    /// Writes carried in all.
    pub size_sum: u64,
    /// Commits that took at most each of [`CommitStats::MICROS`].
    pub latency_buckets: [u64; 10],
    /// Time taken in all, in microseconds.
    pub latency_sum_micros: u64,
    /// Commits made.
    pub count: u64,
}

impl CommitStats {
    /// Upper bounds of the size buckets.
    pub const SIZES: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
    /// Upper bounds of the latency buckets, in microseconds (0.5 ms to 1 s).
    pub const MICROS: [u64; 10] =
        [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

    /// One commit of `size` writes that took `took`.
    pub fn record(&mut self, size: usize, took: Duration) {
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        for (bucket, bound) in self.size_buckets.iter_mut().zip(Self::SIZES) {
            *bucket += u64::from(size <= bound);
        }
        for (bucket, bound) in self.latency_buckets.iter_mut().zip(Self::MICROS) {
            *bucket += u64::from(micros <= bound);
        }
        self.size_sum = self.size_sum.saturating_add(size);
        self.latency_sum_micros = self.latency_sum_micros.saturating_add(micros);
        self.count += 1;
    }
}

/// Where a store's writers put their [`CommitStats`]; shared with the
/// store that reports them.
pub type CommitRecorder = std::sync::Arc<std::sync::Mutex<CommitStats>>;

/// What the management plane (API, CLI, Discord commands, config files)
/// reads and changes: agents, hooks and their rules, tokens, the audit
/// log, tasks and questions, subscriptions, and the event and delivery log.
#[async_trait]
pub trait ManagementStore: Send + Sync + 'static {
    /// What the store holds, counted (events, deliveries, the retry queue's
    /// oldest due time, workflow runs, tasks).
    async fn counts(&self) -> Result<StoreCounts, StoreError>;
    /// Create an agent; `Conflict` if the name is taken.
    async fn create_agent(&self, agent: NewAgent) -> Result<Agent, StoreError>;
    /// One agent.
    async fn agent(&self, name: &AgentName) -> Result<Option<Agent>, StoreError>;
    /// All agents, by name.
    async fn agents(&self) -> Result<Vec<Agent>, StoreError>;
    /// Change an agent.
    async fn update_agent(&self, name: &AgentName, patch: AgentPatch) -> Result<Agent, StoreError>;
    /// Delete an agent and its hooks; its events and deliveries stay for the record.
    async fn delete_agent(&self, name: &AgentName) -> Result<(), StoreError>;
    /// The routing rules of a hook, highest priority first, then oldest.
    async fn rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError>;
    /// Insert a rule, or replace the one with the same id; `NotFound` if
    /// the hook is gone.
    async fn put_rule(&self, command: Rule) -> Result<(), StoreError>;
    /// Remove one rule; `NotFound` if the hook has no rule with that id.
    async fn delete_rule(&self, hook: &HookId, id: &str) -> Result<(), StoreError>;
    /// Make `rules` the hook's whole rule set, in one transaction.
    async fn replace_rules(&self, hook: &HookId, rules: Vec<Rule>) -> Result<(), StoreError>;
    /// The response saved under an `Idempotency-Key`, if any.
    async fn idempotent(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError>;
    /// Save a response under its key; the first one saved wins.
    async fn save_idempotent(&self, key: &str, response: IdempotentResponse) -> Result<(), StoreError>;
    /// Create a hook with its secret (sealed before it is written).
    async fn create_hook(&self, hook: IncomingHook, secret: Option<Secret>) -> Result<(), StoreError> {
        self.create_hook_with_rules(hook, secret, Vec::new()).await
    }
    /// Create a hook with its secret and its routing rules, in one transaction.
    async fn create_hook_with_rules(
        &self,
        hook: IncomingHook,
        secret: Option<Secret>,
        rules: Vec<Rule>,
    ) -> Result<(), StoreError>;
    /// One hook.
    async fn hook(&self, id: &HookId) -> Result<Option<IncomingHook>, StoreError>;
    /// The id of the incoming hook with this user-chosen id (`webhook_id`).
    async fn hook_by_slug(&self, slug: &str) -> Result<Option<HookId>, StoreError>;
    /// Set (sealed) or clear a hook's reply credentials; `NotFound` for an
    /// unknown hook.
    async fn set_reply(&self, id: &HookId, reply: Option<crate::ReplyConfig>) -> Result<(), StoreError>;
    /// A hook's reply credentials, unsealed.
    async fn reply(&self, id: &HookId) -> Result<Option<crate::ReplyConfig>, StoreError>;
    /// Give a hook (incoming or outgoing) a new secret. The one it replaces
    /// stays valid until `grace_until`: it still verifies incoming requests,
    /// and outgoing deliveries signed with the `standard` scheme carry a
    /// signature with it too. `NotFound` for an unknown hook, `Conflict` for
    /// an incoming hook created without a secret.
    async fn rotate_secret(
        &self,
        id: &HookId,
        secret: Secret,
        grace_until: Timestamp,
    ) -> Result<(), StoreError>;
    /// Store a new API token.
    async fn create_token(&self, token: NewApiToken) -> Result<(), StoreError>;
    /// All API tokens, revoked ones included, oldest first.
    async fn tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// The unrevoked token whose value hashes to `hash`.
    async fn token_by_hash(&self, hash: [u8; 32]) -> Result<Option<ApiToken>, StoreError>;
    /// Revoke a token; it is refused from then on. `NotFound` if unknown.
    async fn revoke_token(&self, id: &str) -> Result<ApiToken, StoreError>;
    /// Put a change on record.
    async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// Changes on record, newest first.
    async fn audit(&self, limit: usize, cursor: Option<String>) -> Result<Page<AuditEntry>, StoreError>;
    /// Hooks, optionally of one agent, oldest first.
    async fn hooks(&self, agent: Option<&AgentName>) -> Result<Vec<IncomingHook>, StoreError>;
    /// Change a hook.
    async fn update_hook(&self, id: &HookId, patch: HookPatch) -> Result<IncomingHook, StoreError>;
    /// Delete a hook; its events and deliveries stay for the record.
    async fn delete_hook(&self, id: &HookId) -> Result<(), StoreError>;
    /// One event.
    async fn event(&self, id: &EventId) -> Result<Option<Event>, StoreError>;
    /// The incoming log, newest first.
    async fn events(&self, query: EventQuery) -> Result<Page<Event>, StoreError>;
    /// One question.
    async fn question(&self, id: &str) -> Result<Option<crate::Question>, StoreError>;
    /// The questions about an event, oldest first.
    async fn questions(&self, event: &EventId) -> Result<Vec<crate::Question>, StoreError>;
    /// An interaction with an event's source, in one transaction: the
    /// deliveries that carry it (a comment, an answer), a new question, and
    /// a question now answered (`Conflict` if it was answered already).
    async fn interact(
        &self,
        deliveries: Vec<NewDelivery>,
        asked: Option<crate::Question>,
        answered: Option<(String, String, Timestamp)>,
    ) -> Result<(), StoreError>;
    /// Tasks, newest first.
    async fn tasks(&self, query: TaskQuery) -> Result<Page<Task>, StoreError>;
    /// One task.
    async fn task(&self, id: &str) -> Result<Option<Task>, StoreError>;
    /// Finish an open task (`Done`, `Failed` or `Cancelled`) with a result,
    /// emit `events` about it and queue `deliveries` (the result commented
    /// back on the source), in one transaction. `NotFound` for an unknown
    /// task, `Conflict` for one already finished.
    async fn finish_task(
        &self,
        id: &str,
        status: TaskStatus,
        result: Option<String>,
        now: Timestamp,
        events: Vec<NewOutgoingEvent>,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Task, StoreError>;
    /// Change an open task's title or body.
    async fn update_task(
        &self,
        id: &str,
        title: Option<String>,
        body: Option<String>,
        now: Timestamp,
    ) -> Result<Task, StoreError>;
    /// One delivery.
    async fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError>;
    /// Deliveries, newest first.
    async fn deliveries(&self, query: DeliveryQuery) -> Result<Page<Delivery>, StoreError>;
    /// A delivery's attempts, first first.
    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<Attempt>, StoreError>;
    /// Deliveries by state.
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError>;
    /// Create an outgoing subscription with its signing secret and credentials.
    async fn create_outgoing(
        &self,
        hook: OutgoingHook,
        secret: Secret,
        auth: OutgoingAuth,
    ) -> Result<(), StoreError>;
    /// One outgoing subscription.
    async fn outgoing(&self, id: &HookId) -> Result<Option<OutgoingHook>, StoreError>;
    /// One outgoing subscription with its signing secret and credentials,
    /// unsealed (for a backup that keeps them sealed under its own key).
    async fn outgoing_with_secrets(&self, id: &HookId) -> Result<Option<HttpSpec>, StoreError>;
    /// Outgoing subscriptions, optionally of one agent, oldest first.
    async fn outgoing_hooks(&self, agent: Option<&AgentName>) -> Result<Vec<OutgoingHook>, StoreError>;
    /// Change an outgoing subscription.
    async fn update_outgoing(&self, id: &HookId, patch: OutgoingPatch) -> Result<OutgoingHook, StoreError>;
    /// Delete an outgoing subscription and its pending deliveries.
    async fn delete_outgoing(&self, id: &HookId) -> Result<(), StoreError>;
    /// Make a failed delivery pending again, due now, with a fresh set of attempts.
    async fn retry_delivery(&self, id: &DeliveryId, now: Timestamp) -> Result<Delivery, StoreError>;
    /// Retry every failed delivery of a hook created since `since`; returns how many.
    async fn recover(&self, hook: &HookId, since: Timestamp, now: Timestamp) -> Result<u64, StoreError>;
    /// Delivery figures of a hook at `now`.
    async fn hook_stats(&self, hook: &HookId, now: Timestamp) -> Result<HookStats, StoreError>;
}

/// What ingress needs on every request: the hook with its secrets, its
/// answering rules, and the durable store of what arrived; and where
/// watchers (the Docker engine's stream) left off.
#[async_trait]
pub trait IngressStore: Send + Sync + 'static {
    /// What ingress needs to answer a sender at once: the hook's whole rule
    /// set when some rule `respond`s, else nothing. Read on every request,
    /// so stores cache it.
    async fn ingress_rules(&self, hook: &HookId) -> Result<Vec<Rule>, StoreError>;
    /// One hook with the secrets that verify for it (several during a rotation).
    async fn hook_with_secrets(&self, id: &HookId)
    -> Result<Option<(IncomingHook, Vec<Secret>)>, StoreError>;
    /// Commit an incoming event durably, or find the event it duplicates.
    async fn ingest(&self, event: NewEvent) -> Result<IngestOutcome, StoreError>;
    /// Where the watcher `name` left off (its last committed position).
    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Move the watcher `name`'s position to `value`.
    async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Take one of the `per_minute` requests `key` (a hook's or a
    /// workflow's id) may make, from a bucket of a minute's worth refilled
    /// continuously, counted by the store so that every process serving it
    /// shares one budget. [`RateDecision::Local`] (the default): one
    /// process serves this store, and the caller counts in memory.
    async fn take_rate(
        &self,
        key: &HookId,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<RateDecision, StoreError> {
        let _ = (key, per_minute, now);
        Ok(RateDecision::Local)
    }
}

/// The answer of [`IngressStore::take_rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The store does not count: the caller does, in memory.
    Local,
    /// Within the budget; one request is taken from it.
    Allowed,
    /// Over the budget: try again in this many seconds.
    Wait(u64),
}

/// What the event router claims and commits: events to route, the
/// decisions they became, aggregation windows and per-subject state.
#[async_trait]
pub trait RoutingStore: Send + Sync + 'static {
    /// Events waiting to be routed, oldest first, leased for `lease` so that
    /// a crashed router's events are picked up again.
    async fn claim_events(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;
    /// Record how events were routed, with their deliveries, tasks and
    /// subject states, in one transaction.
    async fn route_events(&self, routed: Vec<RoutedEvent>) -> Result<(), StoreError>;
    /// Aggregation windows that have ended by `now` and are not yet
    /// summarised: `(hook, window end)`, oldest first.
    async fn due_windows(&self, now: Timestamp) -> Result<Vec<(HookId, Timestamp)>, StoreError>;
    /// The events held for a window, oldest first.
    async fn window_events(&self, hook: &HookId, ends_at: Timestamp) -> Result<Vec<Event>, StoreError>;
    /// The earliest end of an open window, so the router wakes for it.
    async fn next_window(&self) -> Result<Option<Timestamp>, StoreError>;
    /// Close a window with its summary's deliveries, in one transaction.
    /// `false` (and nothing written) when it was closed already.
    async fn close_window(
        &self,
        hook: &HookId,
        ends_at: Timestamp,
        deliveries: Vec<NewDelivery>,
    ) -> Result<bool, StoreError>;
    /// The state kept for a subject of a hook's events, if any.
    async fn subject_state(
        &self,
        hook: &HookId,
        subject: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
}

/// What the delivery engine claims and records: due deliveries, packs,
/// attempts, the messages that show each subject, and the breaker's count.
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Due deliveries of the given kinds, oldest first, leased for `lease`;
    /// none for a target in `skip` (destinations served one send at a time
    /// that are busy).
    async fn claim_deliveries(
        &self,
        kinds: &[TargetKind],
        skip: &[Target],
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Due deliveries of one target, oldest first, leased for `lease`.
    async fn claim_target(
        &self,
        target: &Target,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Put a claimed delivery back, due at `until`, without counting an
    /// attempt (the destination's own limit held it back, or it waits for
    /// its subscription's probe). A pack stays a pack.
    async fn defer_delivery(&self, id: &DeliveryId, until: Timestamp) -> Result<(), StoreError>;
    /// Take the half-open probe of subscription `hook`: its circuit breaker
    /// opened (`threshold` failures in a row) and its cooldown has run out
    /// by `now`. Its other deliveries are held until `until` while one
    /// attempt finds out whether the destination is back; that attempt's
    /// breaker step then closes the breaker or opens it again. `false` when
    /// the breaker is closed, still open, or another sender took the probe.
    async fn begin_probe(
        &self,
        hook: &HookId,
        threshold: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Before claimed deliveries go out as one send: tag them with `pack`
    /// and give them one lease (the longest of theirs), so that after a crash
    /// they come back together and are sent as the same pack again.
    async fn mark_packed(&self, ids: &[DeliveryId], pack: &str) -> Result<(), StoreError>;
    /// Mark `agent` degraded (Discord refuses its webhook URL) unless it is
    /// already; `true` when this call marked it. Its webhook deliveries are
    /// not claimed until the URL is replaced.
    async fn degrade_agent(&self, agent: &AgentName, reason: &str) -> Result<bool, StoreError>;
    /// The chat message showing `subject` at `target`, recorded by an
    /// earlier attempt's [`NewAttempt::subject_messages`].
    async fn subject_message(&self, target: &Target, subject: &str) -> Result<Option<String>, StoreError>;
    /// Record attempts and their deliveries' new states, all in one
    /// transaction (a packed send's outcome lands for all of it or for none).
    /// Clears the deliveries' packs; keeps each attempt's subject message;
    /// takes each attempt's breaker step, answering the subscriptions it
    /// disabled.
    async fn record_attempts(&self, attempts: Vec<NewAttempt>) -> Result<Vec<BreakerTrip>, StoreError>;
    /// Record one attempt and the delivery's new state, in one transaction.
    async fn record_attempt(&self, attempt: NewAttempt) -> Result<Vec<BreakerTrip>, StoreError> {
        self.record_attempts(vec![attempt]).await
    }
    /// The earliest `next_attempt_at` of pending deliveries of these kinds,
    /// so the engine sleeps exactly until the next one is due.
    async fn next_due(&self, kinds: &[TargetKind]) -> Result<Option<Timestamp>, StoreError>;
    /// This process has nothing more to send to `target` for now: another
    /// process sharing the store may take it over at once rather than when
    /// this one's claim on it runs out. A no-op where one process serves
    /// the store.
    async fn release_target(&self, target: &Target) -> Result<(), StoreError> {
        let _ = target;
        Ok(())
    }
}

/// Outgoing events: stored with one delivery per subscription that wants
/// them, in one transaction.
#[async_trait]
pub trait OutgoingStore: Send + Sync + 'static {
    /// Store an emitted event and one delivery per enabled subscription that
    /// wants it, in one transaction. Returns the deliveries' ids.
    async fn emit(&self, event: NewOutgoingEvent) -> Result<Vec<DeliveryId>, StoreError>;
    /// Queue one delivery to one subscription (test sends), bypassing its
    /// event filter.
    async fn emit_to(&self, event: NewOutgoingEvent, hook: &HookId) -> Result<DeliveryId, StoreError>;
}

/// Everything Chorus keeps, as one handle: each consumer's part above,
/// plus readiness, audited writes and retention. Implemented for SQLite
/// and PostgreSQL in chorus-store; the server and the workers see only
/// these traits.
///
/// Every method that changes something commits before it returns.
#[async_trait]
pub trait Store: ManagementStore + IngressStore + RoutingStore + DeliveryStore + OutgoingStore {
    /// Whether the store can take writes now.
    async fn ready(&self) -> Result<(), StoreError>;
    /// A handle on this store whose first change is put on record as
    /// `entry` in the same transaction as the change itself (a change that
    /// fails records nothing). Later changes through the handle are not
    /// audited again.
    fn audited(&self, entry: AuditEntry) -> std::sync::Arc<dyn Store>;
    /// Delete finished deliveries, their attempts, and routed events older than `before`.
    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError>;
    /// Call `on_change` whenever another process sharing this store commits
    /// work for this one's router or engine, until the returned guard is
    /// dropped. `None` (the default): no other process shares the store,
    /// so the wake-ups a process gives itself are enough.
    fn watch(&self, on_change: std::sync::Arc<dyn Fn(Change) + Send + Sync>) -> Option<WatchGuard> {
        let _ = on_change;
        None
    }
}

/// Work another process committed, as [`Store::watch`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Events to route.
    Events,
    /// Deliveries to send.
    Deliveries,
    /// Hooks, agents or rules changed; the store has already dropped what
    /// it had cached of them.
    Settings,
}

/// Keeps a [`Store::watch`] going; dropping it stops it.
pub struct WatchGuard(pub Box<dyn Send + Sync>);

impl std::fmt::Debug for WatchGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchGuard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_fall_in_cumulative_buckets() {
        let mut stats = CommitStats::default();
        stats.record(1, Duration::from_micros(300));
        stats.record(20, Duration::from_millis(7));
        stats.record(1_000, Duration::from_secs(2));
        assert_eq!(stats.size_buckets, [1, 1, 1, 1, 1, 2, 2, 2, 2]);
        assert_eq!(stats.latency_buckets, [1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!((stats.count, stats.size_sum, stats.latency_sum_micros), (3, 1_021, 2_007_300));
    }
}
