//! Outgoing webhooks: subscriptions to Chorus events, delivered as signed JSON.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{AgentName, EventId, HookId, RetryPolicy, RetryStrategy, Secret};

/// Events Chorus can emit, by name. Names under `custom.` (and `custom`
/// itself) are accepted too.
pub const EVENT_CATALOGUE: &[&str] = &[
    "agent.task_complete",
    "agent.file_changed",
    "agent.commit",
    "agent.error",
    "agent.session_saved",
    "agent.started",
    "agent.stopped",
    "agent.failed",
    "workflow.started",
    "workflow.completed",
    "workflow.failed",
    "task.scheduled",
    "task.executed",
    "task.failed",
    "api.key.created",
    "api.key.revoked",
    "api.limit.exceeded",
    "system.health.degraded",
    "system.health.restored",
    "custom",
    "webhook.disabled",
    "webhook.test",
    "delivery.exhausted",
];

/// Whether `name` is an event Chorus can emit.
pub fn is_known_event(name: &str) -> bool {
    EVENT_CATALOGUE.contains(&name)
        || name.strip_prefix("custom.").is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 100
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

/// Whether a subscription pattern is valid: a known event, `*`, or
/// `prefix.*` where some known event (or `custom.`) starts with `prefix.`.
pub fn is_valid_pattern(pattern: &str) -> bool {
    if pattern == "*" || is_known_event(pattern) {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) if !prefix.is_empty() => {
            let dotted = format!("{prefix}.");
            prefix == "custom" || EVENT_CATALOGUE.iter().any(|e| e.starts_with(&dotted))
        }
        _ => false,
    }
}

/// Whether `event` matches a subscription `pattern`.
pub fn pattern_matches(pattern: &str, event: &str) -> bool {
    // Subscription patterns are checked by `is_valid_pattern`, a subset of
    // the one event grammar.
    crate::event_matches(pattern, event)
}

/// How a request to a subscriber is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SignatureScheme {
    /// `X-Chorus-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    #[default]
    Chorus,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
}

/// The HTTP method of outgoing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// POST.
    #[default]
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

impl HttpMethod {
    /// The method name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
        }
    }
}

/// Credentials sent to a subscriber. Stored sealed.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutgoingAuth {
    /// None.
    #[default]
    None,
    /// `Authorization: Basic …`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer …`.
    Bearer {
        /// The token.
        token: String,
    },
    /// A key in a header of the subscriber's choosing.
    ApiKey {
        /// The header, e.g. `X-API-Key`.
        header_name: String,
        /// The key.
        key: String,
    },
}

impl std::fmt::Debug for OutgoingAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl OutgoingAuth {
    /// `none`, `basic`, `bearer` or `api_key`.
    pub fn kind(&self) -> &'static str {
        match self {
            OutgoingAuth::None => "none",
            OutgoingAuth::Basic { .. } => "basic",
            OutgoingAuth::Bearer { .. } => "bearer",
            OutgoingAuth::ApiKey { .. } => "api_key",
        }
    }

    /// The non-secret parts, for views: secrets are never shown.
    pub fn public_view(&self) -> serde_json::Value {
        match self {
            OutgoingAuth::None => serde_json::json!({"type": "none"}),
            OutgoingAuth::Basic { username, .. } => {
                serde_json::json!({"type": "basic", "username": username})
            }
            OutgoingAuth::Bearer { .. } => serde_json::json!({"type": "bearer"}),
            OutgoingAuth::ApiKey { header_name, .. } => {
                serde_json::json!({"type": "api_key", "header_name": header_name})
            }
        }
    }
}

/// A subscription: where events go and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingHook {
    /// Id (`hk_…`), also the payload's `webhook_id`.
    pub id: HookId,
    /// Only events of this agent, when set.
    pub agent: Option<AgentName>,
    /// Human-readable name.
    pub name: String,
    /// Where to send.
    pub url: String,
    /// Event names and `prefix.*` patterns.
    pub events: Vec<String>,
    /// HTTP method.
    pub method: HttpMethod,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Signature scheme.
    pub signature: SignatureScheme,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
    /// Retry schedule.
    pub retry: RetryPolicy,
    /// Requests a minute to this destination; `None` for no limit.
    pub rate_limit_per_minute: Option<u32>,
    /// Sends in flight at once to this destination.
    pub max_concurrency: u32,
    /// Disabled hooks receive nothing (events are not queued for them).
    pub enabled: bool,
    /// Paused hooks queue events and send them after resume.
    pub paused: bool,
    /// Failed attempts in a row (reset by a success).
    pub consecutive_failures: u32,
    /// While the circuit breaker is open: its deliveries wait until then.
    pub breaker_until: Option<Timestamp>,
    /// Why the hook was disabled automatically, if it was.
    pub disabled_reason: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Last change.
    pub updated_at: Timestamp,
}

impl OutgoingHook {
    /// Default per-attempt timeout: 30 s.
    pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
    /// Default schedule: 3 attempts, exponential from 1 s to 60 s, with jitter.
    pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
        strategy: RetryStrategy::Exponential,
        max_attempts: Some(3),
        initial_delay_ms: 1_000,
        max_delay_ms: 60_000,
        jitter: true,
    };
    /// Default concurrency per destination.
    pub const DEFAULT_CONCURRENCY: u32 = 8;

    /// Whether this hook wants `event` from `agent`.
    pub fn wants(&self, event: &str, agent: Option<&AgentName>) -> bool {
        let agent_ok = match (&self.agent, agent) {
            (None, _) => true,
            (Some(scope), Some(a)) => scope == a,
            (Some(_), None) => false,
        };
        agent_ok && self.events.iter().any(|p| pattern_matches(p, event))
    }
}

/// A partial update of an [`OutgoingHook`].
#[derive(Debug, Clone, Default)]
pub struct OutgoingPatch {
    /// New name.
    pub name: Option<String>,
    /// New URL (checked by the caller).
    pub url: Option<String>,
    /// New event patterns.
    pub events: Option<Vec<String>>,
    /// New method.
    pub method: Option<HttpMethod>,
    /// New headers.
    pub headers: Option<Vec<(String, String)>>,
    /// New credentials.
    pub auth: Option<OutgoingAuth>,
    /// New timeout.
    pub timeout_ms: Option<u64>,
    /// New schedule.
    pub retry: Option<RetryPolicy>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// New concurrency.
    pub max_concurrency: Option<u32>,
    /// Enable or disable (enabling clears the failure count).
    pub enabled: Option<bool>,
    /// Pause or resume.
    pub paused: Option<bool>,
    /// Why it was disabled.
    pub disabled_reason: Option<Option<String>>,
}

/// An event to emit.
#[derive(Debug, Clone)]
pub struct NewOutgoingEvent {
    /// Its id.
    pub id: EventId,
    /// Its name (checked with [`is_known_event`]).
    pub event: String,
    /// The agent it concerns, if any.
    pub agent: Option<AgentName>,
    /// Event data.
    pub data: serde_json::Value,
    /// Free-form metadata.
    pub metadata: serde_json::Value,
    /// When it happened.
    pub at: Timestamp,
}

impl NewOutgoingEvent {
    /// The body every attempt to subscription `hook` sends (docs/outgoing.md):
    /// `webhook_id`, `event`, `timestamp`, `data`, `metadata`. Fixed when the
    /// delivery is stored, so retries send the same bytes.
    pub fn wire_payload(&self, hook: &HookId) -> serde_json::Value {
        serde_json::json!({
            "webhook_id": hook,
            "event": self.event,
            "timestamp": self.at,
            "data": self.data,
            "metadata": self.metadata,
        })
    }
}

/// What a subscription needs to send one delivery, resolved when claimed.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    /// The subscription.
    pub hook: OutgoingHook,
    /// Its signing secret.
    pub secret: Secret,
    /// The secret it replaced, while a rotation's grace period lasts.
    pub previous_secret: Option<Secret>,
    /// Its credentials.
    pub auth: OutgoingAuth,
}

/// Delivery figures of one subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HookStats {
    /// Attempts in the last hour.
    pub attempts_last_hour: u64,
    /// Successful attempts in the last hour.
    pub succeeded_last_hour: u64,
    /// Attempts in the last day.
    pub attempts_last_day: u64,
    /// Successful attempts in the last day.
    pub succeeded_last_day: u64,
    /// Success rate over the last day (0–1), `None` without attempts.
    pub success_rate: Option<f64>,
    /// Median attempt latency over the last day.
    pub p50_ms: Option<u64>,
    /// 95th percentile attempt latency over the last day.
    pub p95_ms: Option<u64>,
    /// Deliveries waiting.
    pub pending: u64,
    /// Deliveries given up on.
    pub failed: u64,
    /// The last day hour by hour, oldest first (24 hours, the last one
    /// ending now).
    pub hourly: Vec<HourStats>,
}

/// Attempts in one hour of a subscription's last day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HourStats {
    /// Where the hour begins.
    pub start: Timestamp,
    /// Attempts in it.
    pub attempts: u64,
    /// Successful attempts in it.
    pub succeeded: u64,
    /// Median attempt latency in it.
    pub p50_ms: Option<u64>,
}

impl HookStats {
    /// Figures of the attempts `(started at, duration in ms, succeeded)`
    /// of the day before `now` (deliveries' counts left at zero).
    pub fn of_attempts(attempts: impl IntoIterator<Item = (Timestamp, u64, bool)>, now: Timestamp) -> Self {
        const HOUR_MS: i64 = 3_600_000;
        let mut stats = HookStats::default();
        let mut all = Vec::new();
        let mut hours: Vec<(u64, u64, Vec<u64>)> = vec![(0, 0, Vec::new()); 24];
        for (at, duration, ok) in attempts {
            let ago = now.as_millisecond() - at.as_millisecond();
            if !(0..24 * HOUR_MS).contains(&ago) {
                continue;
            }
            let hour = &mut hours[23 - usize::try_from(ago / HOUR_MS).unwrap_or(0)];
            hour.0 += 1;
            hour.1 += u64::from(ok);
            hour.2.push(duration);
            stats.attempts_last_day += 1;
            stats.succeeded_last_day += u64::from(ok);
            if ago < HOUR_MS {
                stats.attempts_last_hour += 1;
                stats.succeeded_last_hour += u64::from(ok);
            }
            all.push(duration);
        }
        all.sort_unstable();
        stats.p50_ms = percentile(&all, 0.50);
        stats.p95_ms = percentile(&all, 0.95);
        stats.success_rate = (stats.attempts_last_day > 0)
            .then(|| stats.succeeded_last_day as f64 / stats.attempts_last_day as f64);
        stats.hourly = hours
            .into_iter()
            .enumerate()
            .map(|(i, (attempts, succeeded, mut latencies))| {
                latencies.sort_unstable();
                let back = i64::try_from(24 - i).unwrap_or(24) * HOUR_MS;
                HourStats {
                    start: Timestamp::from_millisecond(now.as_millisecond() - back).unwrap_or(now),
                    attempts,
                    succeeded,
                    p50_ms: percentile(&latencies, 0.50),
                }
            })
            .collect();
        stats
    }
}

/// The `p` quantile of `sorted` (nearest rank).
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_days_attempts_fall_in_their_hours() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let ago = |minutes: i64| now - jiff::SignedDuration::from_mins(minutes);
        let stats = HookStats::of_attempts(
            [
                (ago(0), 10, true),
                (ago(59), 30, false),
                (ago(61), 20, true),
                (ago(23 * 60 + 59), 40, true),
                (ago(24 * 60), 99, true),
            ],
            now,
        );
        assert_eq!((stats.attempts_last_day, stats.succeeded_last_day), (4, 3));
        assert_eq!((stats.attempts_last_hour, stats.succeeded_last_hour), (2, 1));
        assert_eq!((stats.p50_ms, stats.p95_ms), (Some(20), Some(40)));
        assert_eq!(stats.hourly.len(), 24);
        let hour = |h: &HourStats| (h.attempts, h.succeeded, h.p50_ms);
        assert_eq!(hour(&stats.hourly[23]), (2, 1, Some(10)));
        assert_eq!(hour(&stats.hourly[22]), (1, 1, Some(20)));
        assert_eq!(hour(&stats.hourly[0]), (1, 1, Some(40)));
        assert_eq!(stats.hourly[0].start, ago(24 * 60));
        assert_eq!(stats.hourly[23].start, ago(60));
    }

    #[test]
    fn catalogue_and_patterns() {
        assert!(is_known_event("agent.commit"));
        assert!(is_known_event("custom.deploy.done"));
        assert!(!is_known_event("agent.unknown"));
        assert!(!is_known_event("custom."));
        assert!(!is_known_event("custom.a b"));
        assert!(is_valid_pattern("agent.*"));
        assert!(is_valid_pattern("api.key.*"));
        assert!(is_valid_pattern("custom.*"));
        assert!(is_valid_pattern("*"));
        assert!(!is_valid_pattern("nope.*"));
        assert!(!is_valid_pattern(".*"));
        assert!(pattern_matches("agent.*", "agent.commit"));
        assert!(pattern_matches("api.*", "api.key.created"));
        assert!(!pattern_matches("agent.*", "agentx.commit"));
        assert!(!pattern_matches("agent.commit", "agent.error"));
    }

    #[test]
    fn agent_scope() {
        let now = Timestamp::UNIX_EPOCH;
        let mut hook = OutgoingHook {
            id: HookId::generate(),
            agent: Some("builder".parse().unwrap()),
            name: "n".into(),
            url: "https://example.com".into(),
            events: vec!["agent.*".into()],
            method: HttpMethod::Post,
            headers: vec![],
            signature: SignatureScheme::Chorus,
            timeout_ms: 1000,
            retry: OutgoingHook::DEFAULT_RETRY,
            rate_limit_per_minute: None,
            max_concurrency: 1,
            enabled: true,
            paused: false,
            consecutive_failures: 0,
            breaker_until: None,
            disabled_reason: None,
            created_at: now,
            created_by: "t".into(),
            updated_at: now,
        };
        let builder: AgentName = "builder".parse().unwrap();
        let other: AgentName = "other".parse().unwrap();
        assert!(hook.wants("agent.commit", Some(&builder)));
        assert!(!hook.wants("agent.commit", Some(&other)));
        assert!(!hook.wants("agent.commit", None));
        hook.agent = None;
        assert!(hook.wants("agent.commit", None));
        assert!(!hook.wants("task.failed", None));
    }
}
