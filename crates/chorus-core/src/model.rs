use std::{fmt, str::FromStr};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{AgentName, DeliveryId, EventId, HookId, Secret};

/// An agent: a named destination, bound to a Discord channel or a Discord
/// webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The name used in hook URLs.
    pub name: AgentName,
    /// Discord channel snowflake, for delivery through the bot.
    pub channel_id: Option<String>,
    /// Discord webhook URL, for setups without a bot. It embeds a token, so
    /// it is stored sealed and treated as a secret.
    pub discord_webhook_url: Option<Secret>,
    /// A disabled agent answers 503 to its hooks.
    pub enabled: bool,
    /// Why Discord refuses the agent's webhook URL (deleted, or a bad
    /// token): its messages wait, unsent, until the URL is replaced.
    pub degraded: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// What it takes to create an [`Agent`].
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// The name used in hook URLs.
    pub name: AgentName,
    /// Discord channel snowflake.
    pub channel_id: Option<String>,
    /// Discord webhook URL.
    pub discord_webhook_url: Option<Secret>,
    /// Whether the agent starts enabled.
    pub enabled: bool,
}

/// A partial update of an [`Agent`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    /// New channel, or `Some(None)` to clear it.
    pub channel_id: Option<Option<String>>,
    /// New Discord webhook URL, or `Some(None)` to clear it.
    pub discord_webhook_url: Option<Option<Secret>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Who sends to a hook: picks both the signature scheme and the formatter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `X-Chorus-Signature-256: sha256=<hex>` over the raw body.
    Chorus,
    /// GitHub: `X-Hub-Signature-256`, event in `X-GitHub-Event`.
    Github,
    /// GitLab: `X-Gitlab-Token`, event in `X-Gitlab-Event`.
    Gitlab,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
    /// Slack: `X-Slack-Signature` v0 with `X-Slack-Request-Timestamp`.
    Slack,
    /// Stripe: `Stripe-Signature: t=…,v1=…`.
    Stripe,
    /// Jira Cloud: `X-Hub-Signature: sha256=<hex>` over the raw body (the
    /// webhook's secret), event in the body's `webhookEvent`.
    Jira,
    /// Sentry integrations: `Sentry-Hook-Signature: <hex>` over the raw
    /// body (the client secret), event in `Sentry-Hook-Resource`.
    Sentry,
    /// CircleCI: `circleci-signature: v1=<hex>` over the raw body, event in
    /// `circleci-event-type`.
    Circleci,
    /// Bitbucket Cloud and Server: `X-Hub-Signature: sha256=<hex>`, event
    /// in `X-Event-Key`.
    Bitbucket,
    /// Gitea and Forgejo: `X-Gitea-Signature: <hex>` (or
    /// `X-Forgejo-Signature`), event in `X-Gitea-Event`.
    Gitea,
    /// Events of a Docker engine, read by Chorus's watcher from the
    /// engine's event stream (`CHORUS_DOCKER_HOST`); the hook's URL takes no
    /// requests.
    Docker,
    /// HMAC-SHA256 over the body in a configurable header and encoding.
    Generic,
    /// No verification; only when a hook is explicitly created that way.
    None,
}

impl Source {
    /// Every source, in documentation order.
    pub const ALL: [Source; 14] = [
        Source::Chorus,
        Source::Github,
        Source::Gitlab,
        Source::Standard,
        Source::Slack,
        Source::Stripe,
        Source::Jira,
        Source::Sentry,
        Source::Circleci,
        Source::Bitbucket,
        Source::Gitea,
        Source::Docker,
        Source::Generic,
        Source::None,
    ];

    /// The lowercase name used in the API and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Chorus => "chorus",
            Source::Github => "github",
            Source::Gitlab => "gitlab",
            Source::Standard => "standard",
            Source::Slack => "slack",
            Source::Stripe => "stripe",
            Source::Jira => "jira",
            Source::Sentry => "sentry",
            Source::Circleci => "circleci",
            Source::Bitbucket => "bitbucket",
            Source::Gitea => "gitea",
            Source::Docker => "docker",
            Source::Generic => "generic",
            Source::None => "none",
        }
    }

    /// Whether requests must carry a valid signature or token.
    pub fn has_secret(self) -> bool {
        !matches!(self, Source::None | Source::Docker)
    }

    /// Whether the hook's URL takes requests: a Docker hook is fed by the
    /// engine watcher instead.
    pub fn takes_requests(self) -> bool {
        self != Source::Docker
    }

    /// Whether the body is JSON (Slack sends form-encoded slash commands and
    /// interactivity payloads, and JSON for the Events API).
    pub fn expects_json(self) -> bool {
        self != Source::Slack
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source name that Chorus does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown source {0:?}; expected one of chorus, github, gitlab, standard, slack, stripe, jira, sentry, circleci, bitbucket, gitea, generic, none"
)]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL.into_iter().find(|src| src.as_str() == s).ok_or_else(|| UnknownSource(s.to_owned()))
    }
}

/// How a `generic` hook's signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lowercase or uppercase hex.
    #[default]
    Hex,
    /// Standard base64.
    Base64,
}

/// Settings of the `generic` scheme: HMAC-SHA256 of the raw body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GenericScheme {
    /// Header carrying the signature.
    #[serde(default = "GenericScheme::default_header")]
    pub header: String,
    /// Encoding of the MAC.
    #[serde(default)]
    pub encoding: SignatureEncoding,
    /// A prefix before the MAC such as `sha256=`; accepted when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl GenericScheme {
    fn default_header() -> String {
        "X-Signature".to_owned()
    }
}

impl Default for GenericScheme {
    fn default() -> Self {
        Self { header: Self::default_header(), encoding: SignatureEncoding::Hex, prefix: None }
    }
}

/// An incoming hook: where a sender posts, and what Chorus does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingHook {
    /// Unguessable id, the last segment of the hook URL.
    pub id: HookId,
    /// The agent whose channel receives the messages.
    pub agent: AgentName,
    /// Human-readable name.
    pub name: String,
    /// A user-chosen id (seed 001's `webhook_id`), unique, usable in place
    /// of `id` in the API and in `/webhooks/{source}/{webhook_id}`.
    pub slug: Option<String>,
    /// Verification scheme and formatter.
    pub source: Source,
    /// Settings for [`Source::Generic`].
    pub generic: Option<GenericScheme>,
    /// A disabled hook answers 409 to senders holding its secret.
    pub enabled: bool,
    /// Token-bucket size and refill per minute.
    pub rate_limit_per_minute: u32,
    /// Allowed sender networks (CIDR); empty allows all.
    pub ip_allowlist: Vec<String>,
    /// A custom message template (minijinja), replacing the formatter's text.
    pub template: Option<String>,
    /// Event types to route (e.g. `push`, `pull_request.opened`); empty routes all.
    pub events: Vec<String>,
    /// Collect events for windows of this many seconds and post one
    /// summary at each window's end, instead of a message per event.
    pub aggregate_secs: Option<u32>,
    /// Post a finished CI run or an alert only when its result changes
    /// (it breaks, or it is fixed), not every time it repeats.
    pub notify_changes: bool,
    /// Give each pull request and incident a Discord thread, where its
    /// later events go (channels of a bot only).
    pub threads: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Who created it: `api`, `cli`, `discord:<user>`, `config:<file>`.
    pub created_by: String,
    /// Last change.
    pub updated_at: Timestamp,
}

impl IncomingHook {
    /// Default rate limit, from the Chorus spec: 60 requests a minute.
    pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 60;
    /// Aggregation windows: one minute to a day.
    pub const AGGREGATE_SECS: std::ops::RangeInclusive<u32> = 60..=86_400;

    /// The end of the aggregation window `at` falls in: windows are aligned
    /// to multiples of their length since the epoch, so every replica and
    /// every restart agrees on them.
    pub fn window_end(&self, at: Timestamp) -> Option<Timestamp> {
        let len = i64::from(self.aggregate_secs?);
        let secs = at.as_second();
        Timestamp::from_second(secs - secs.rem_euclid(len) + len).ok()
    }

    /// Whether `event_type` passes this hook's event filter.
    ///
    /// A filter entry matches the event type exactly, or its part before the
    /// action (`pull_request` matches `pull_request.opened`).
    pub fn routes(&self, event_type: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|f| event_matches(f, event_type))
    }
}

/// Whether an event filter, trigger or subscription pattern matches
/// `event_type`: the one grammar for all three. A pattern matches the type
/// exactly, or as its family (`pull_request` matches `pull_request.opened`),
/// or as a glob where `*` is any run of characters and `?` one character
/// (`pull_request.*`, `jira:issue_*`, `*`).
pub fn event_matches(pattern: &str, event_type: &str) -> bool {
    if pattern.contains(['*', '?']) {
        return glob_matches(pattern, event_type);
    }
    pattern == event_type || event_type.strip_prefix(pattern).is_some_and(|rest| rest.starts_with('.'))
}

/// `*`/`?` glob match over bytes, case-sensitive.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    // Iterative, with one backtrack point: linear in practice and never
    // exponential, whatever the pattern.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == t[ti] || p[pi] == b'?') {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// How Chorus writes back to a hook's source (comments on GitHub or GitLab
/// issues and merge requests, Jira issues): the API base and credentials.
/// Kept sealed like a secret; never shown after it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyConfig {
    /// API base: `https://api.github.com` (GitHub Enterprise:
    /// `https://<host>/api/v3`), `https://gitlab.com/api/v4`, or the Jira
    /// site (`https://<site>.atlassian.net`). `None`: the provider's public API.
    pub api_url: Option<String>,
    /// Jira Cloud: the account's email (with `token` as its API token, sent
    /// as Basic auth); without it the token is sent as a bearer token.
    pub email: Option<String>,
    /// The access token.
    pub token: Secret,
}

impl ReplyConfig {
    /// The API base to use for `source`.
    pub fn base(&self, source: Source) -> Option<String> {
        let default = match source {
            Source::Github => Some("https://api.github.com"),
            Source::Gitlab => Some("https://gitlab.com/api/v4"),
            _ => None,
        };
        self.api_url.clone().or(default.map(str::to_owned)).map(|u| u.trim_end_matches('/').to_owned())
    }
}

/// A partial update of an [`IncomingHook`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct HookPatch {
    /// New name.
    pub name: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New rate limit.
    pub rate_limit_per_minute: Option<u32>,
    /// New allow-list.
    pub ip_allowlist: Option<Vec<String>>,
    /// New template, or `Some(None)` to clear it.
    pub template: Option<Option<String>>,
    /// New event filter.
    pub events: Option<Vec<String>>,
    /// New aggregation window, or `Some(None)` to post each event again.
    pub aggregate_secs: Option<Option<u32>>,
    /// Notify on changes only, or on every event.
    pub notify_changes: Option<bool>,
    /// A thread per pull request and incident, or not.
    pub threads: Option<bool>,
}

/// Where an incoming event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Stored, not yet routed.
    Received,
    /// Turned into deliveries.
    Routed,
    /// Dropped by the hook's event filter (kept for the log).
    Filtered,
    /// The hook has rules and none of them fired.
    Unmatched,
}

impl EventStatus {
    /// Every state.
    pub const ALL: [EventStatus; 4] =
        [EventStatus::Received, EventStatus::Routed, EventStatus::Filtered, EventStatus::Unmatched];

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Received => "received",
            EventStatus::Routed => "routed",
            EventStatus::Filtered => "filtered",
            EventStatus::Unmatched => "unmatched",
        }
    }
}

/// A stored incoming event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Chorus's id.
    pub id: EventId,
    /// The hook it came through.
    pub hook_id: HookId,
    /// The hook's agent.
    pub agent: AgentName,
    /// The hook's source when it arrived.
    pub source: Source,
    /// e.g. `push`, `pull_request.opened`, `Merge Request Hook`.
    pub event_type: String,
    /// The sender's delivery id (`X-GitHub-Delivery`, `webhook-id`, …).
    pub delivery_key: Option<String>,
    /// Selected request headers (never signature or token headers).
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as verified.
    pub body: Vec<u8>,
    /// Arrival time.
    pub received_at: Timestamp,
    /// Routing state.
    pub status: EventStatus,
    /// What each rule of the hook did with it (empty for a hook without rules).
    pub outcomes: Vec<crate::RuleOutcome>,
}

/// What ingress hands to the store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Chorus's id for it.
    pub id: EventId,
    /// The hook it came through.
    pub hook_id: HookId,
    /// The hook's agent.
    pub agent: AgentName,
    /// The hook's source.
    pub source: Source,
    /// Event type.
    pub event_type: String,
    /// The sender's delivery id, for deduplication.
    pub delivery_key: Option<String>,
    /// Selected headers.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// Arrival time.
    pub received_at: Timestamp,
}

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A channel, through the bot token.
    DiscordChannel {
        /// Channel snowflake.
        channel_id: String,
    },
    /// An agent's Discord webhook URL, resolved when sending so the sealed
    /// URL is never copied into the job.
    DiscordWebhook {
        /// The agent whose URL to use.
        agent: AgentName,
    },
    /// A comment back on the source of an incoming hook's event: the
    /// payload holds the API path and body; the hook's reply credentials
    /// are resolved when claimed, so a changed token applies to retries.
    Reply {
        /// The incoming hook.
        hook_id: HookId,
    },
    /// An outgoing subscription; its URL, credentials and secret are
    /// resolved when the delivery is claimed, so changes apply to retries.
    Http {
        /// The subscription.
        hook_id: HookId,
    },
    /// A rule's `forward`: the payload holds the URL, body and content
    /// type; the incoming hook's secret signs it, resolved when claimed.
    Forward {
        /// The incoming hook whose rule forwards.
        hook_id: HookId,
    },
}

impl Target {
    /// Which kind of target this is.
    pub fn kind(&self) -> crate::TargetKind {
        match self {
            Target::DiscordChannel { .. } => crate::TargetKind::DiscordChannel,
            Target::DiscordWebhook { .. } => crate::TargetKind::DiscordWebhook,
            Target::Http { .. } | Target::Forward { .. } | Target::Reply { .. } => crate::TargetKind::Http,
        }
    }
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// Delivered.
    Succeeded,
    /// Given up on (permanent error or attempts exhausted); can be retried by hand.
    Failed,
}

impl DeliveryStatus {
    /// Every state.
    pub const ALL: [DeliveryStatus; 3] =
        [DeliveryStatus::Pending, DeliveryStatus::Succeeded, DeliveryStatus::Failed];

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// One message for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Stable id, reused by every attempt.
    pub id: DeliveryId,
    /// The event it came from.
    pub event_id: Option<EventId>,
    /// The hook it belongs to.
    pub hook_id: HookId,
    /// Destination.
    pub target: Target,
    /// The message (a serialized [`crate::Message`]).
    pub payload: serde_json::Value,
    /// State.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// Attempts made before the last manual retry; the retry policy counts
    /// from here, so a retried delivery gets a fresh set.
    pub attempt_base: u32,
    /// When the next attempt is due.
    pub next_attempt_at: Timestamp,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A delivery to create.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Stable id.
    pub id: DeliveryId,
    /// The event it came from.
    pub event_id: Option<EventId>,
    /// The hook it belongs to.
    pub hook_id: HookId,
    /// Destination.
    pub target: Target,
    /// The message.
    pub payload: serde_json::Value,
    /// When the first attempt is due.
    pub due_at: Timestamp,
}

/// One attempt at a delivery, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Attempt {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it took.
    pub duration_ms: u64,
    /// HTTP status, when a response arrived.
    pub status_code: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
    /// The first KiB of the response body.
    pub response_excerpt: Option<String>,
}

/// An attempt to record, with the delivery's new state.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    /// The attempt itself.
    pub attempt: Attempt,
    /// The delivery's state after it.
    pub status: DeliveryStatus,
    /// When to try again, for `Pending`.
    pub next_attempt_at: Timestamp,
    /// The chat message that now shows the delivery's subject, and the
    /// thread it started, kept (in the same transaction) so the subject's
    /// next message edits it or goes into the thread.
    pub subject_messages: Vec<SubjectMessage>,
    /// For an outgoing subscription's delivery: its circuit breaker's step,
    /// taken in the attempt's own transaction.
    pub breaker: Option<BreakerStep>,
}

/// What an attempt does to its subscription's circuit breaker: a success
/// ends a run of failures; a failure lengthens it. From `threshold`
/// failures in a row the breaker opens: the subscription's deliveries wait
/// for `cooldown`, doubled with each failure after (up to an hour), while new
/// events still queue for it. A run of failures that has lasted
/// `disable_after`, or the destination's 410, disables the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerStep {
    /// The subscription.
    pub hook: HookId,
    /// Whether the attempt succeeded.
    pub succeeded: bool,
    /// Failures in a row that open the breaker.
    pub threshold: u32,
    /// How long the breaker first stays open.
    pub cooldown: std::time::Duration,
    /// How long a run of failures may last before the subscription is
    /// disabled.
    pub disable_after: std::time::Duration,
    /// The destination said it is gone (HTTP 410): disable now, saying this.
    pub gone: Option<String>,
}

impl BreakerStep {
    /// Longest the breaker stays open at a time.
    pub const MAX_OPEN: std::time::Duration = std::time::Duration::from_secs(3600);

    /// How long the breaker stays open after `failures` in a row: the
    /// cooldown, doubled for each failure past the threshold, at most
    /// [`BreakerStep::MAX_OPEN`].
    pub fn open_for(&self, failures: u32) -> std::time::Duration {
        let doublings = failures.saturating_sub(self.threshold).min(16);
        self.cooldown.saturating_mul(1 << doublings).min(Self::MAX_OPEN)
    }
}

/// A subscription an attempt disabled, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerTrip {
    /// The subscription.
    pub hook: HookId,
    /// Why, as `disabled_reason` now says.
    pub reason: String,
}

/// The chat message showing a [`crate::Message::subject`] at a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectMessage {
    /// The subject.
    pub subject: String,
    /// The message's id at the destination.
    pub message_id: String,
}

/// Counts of deliveries by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryCounts {
    /// Waiting.
    pub pending: u64,
    /// Delivered.
    pub succeeded: u64,
    /// Given up on.
    pub failed: u64,
}

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RetryStrategy {
    /// Delay doubles each time.
    Exponential,
    /// Delay grows by the initial delay each time.
    Linear,
    /// The same delay each time.
    Fixed,
}

/// A retry schedule, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RetryPolicy {
    /// Spacing.
    pub strategy: RetryStrategy,
    /// Attempts in all, the first included; `None` retries until it succeeds.
    pub max_attempts: Option<u32>,
    /// Delay before the second attempt.
    pub initial_delay_ms: u64,
    /// Upper bound of any delay.
    pub max_delay_ms: u64,
    /// Randomise each delay to avoid thundering herds.
    #[serde(default = "yes")]
    pub jitter: bool,
}

fn yes() -> bool {
    true
}

impl RetryPolicy {
    /// A rule's `forward`: ten attempts over about an hour and a half, then
    /// the delivery is failed and can be retried by hand.
    pub const FORWARD: RetryPolicy = RetryPolicy {
        strategy: RetryStrategy::Exponential,
        max_attempts: Some(10),
        initial_delay_ms: 1_000,
        max_delay_ms: 1_800_000,
        jitter: true,
    };

    /// Chat deliveries: a Discord outage delays messages, it never drops
    /// them, so retry without limit, backing off to five minutes.
    pub const CHAT: RetryPolicy = RetryPolicy {
        strategy: RetryStrategy::Exponential,
        max_attempts: None,
        initial_delay_ms: 1_000,
        max_delay_ms: 300_000,
        jitter: true,
    };
}
