//! Outgoing webhooks (subscriptions): checking and creating them, changing
//! them, and their view, for the API and the Discord commands alike.

use chorus_core::{
    AgentName, HookId, HttpMethod, OutgoingAuth, OutgoingHook, OutgoingPatch, RetryPolicy, RetryStrategy,
    SignatureScheme, is_valid_pattern,
};
use serde::Deserialize;
use serde_json::Value;

use super::views::{OutgoingView, ShownOnce};
use crate::api::double_option;
use crate::{error::ApiError, state::AppState};

const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1_000..=120_000;
const ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=25;
const DELAY_MS: std::ops::RangeInclusive<u64> = 100..=86_400_000;
const CONCURRENCY: std::ops::RangeInclusive<u32> = 1..=100;
/// Headers Chorus sets itself; a subscription cannot override them.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "user-agent",
    "authorization",
    "transfer-encoding",
    "connection",
];
const RESERVED_PREFIXES: &[&str] = &["x-webhook-", "x-chorus-", "webhook-"];

/// A new outgoing subscription: `events` are sent to `url`, signed.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOutgoing {
    #[serde(rename = "type")]
    #[schemars(with = "super::views::OutgoingKind")]
    _kind: String,
    /// Only this agent's events.
    #[schemars(regex(pattern = AgentName::PATTERN))]
    agent: Option<String>,
    name: Option<String>,
    #[schemars(url)]
    url: String,
    /// Event names from the catalogue, `prefix.*` patterns, `custom.<name>`, or `*`.
    events: Vec<String>,
    #[serde(default)]
    method: HttpMethod,
    /// Headers sent with each request.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    headers: serde_json::Map<String, Value>,
    #[serde(default)]
    auth: OutgoingAuth,
    #[serde(default)]
    signature: SignatureScheme,
    /// The signing secret; generated when absent.
    #[schemars(length(min = 16, max = 256))]
    secret: Option<String>,
    #[schemars(range(min = 1_000, max = 120_000))]
    timeout_ms: Option<u64>,
    retry: Option<RetryInput>,
    #[schemars(range(min = super::RATE_MIN, max = super::RATE_MAX))]
    rate_limit_per_minute: Option<u32>,
    #[schemars(range(min = 1, max = 100))]
    max_concurrency: Option<u32>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

impl CreateOutgoing {
    /// A subscription of `url` to `events`, every other setting default.
    pub(crate) fn new(agent: Option<String>, name: Option<String>, url: String, events: Vec<String>) -> Self {
        Self {
            _kind: "outgoing".into(),
            agent,
            name,
            url,
            events,
            method: HttpMethod::default(),
            headers: serde_json::Map::new(),
            auth: OutgoingAuth::default(),
            signature: SignatureScheme::default(),
            secret: None,
            timeout_ms: None,
            retry: None,
            rate_limit_per_minute: None,
            max_concurrency: None,
            enabled: true,
        }
    }
}

/// How failed deliveries are retried; what is absent keeps its default.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Retry")]
pub(crate) struct RetryInput {
    strategy: Option<RetryStrategy>,
    /// Attempts in all, the first included.
    #[schemars(range(min = 1, max = 25))]
    max_attempts: Option<u32>,
    #[schemars(range(min = 100, max = 86_400_000))]
    initial_delay_ms: Option<u64>,
    #[schemars(range(min = 100, max = 86_400_000))]
    max_delay_ms: Option<u64>,
    jitter: Option<bool>,
}

/// Changes to an outgoing subscription; what is absent stays.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateOutgoing {
    name: Option<String>,
    #[schemars(url)]
    url: Option<String>,
    events: Option<Vec<String>>,
    method: Option<HttpMethod>,
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    headers: Option<serde_json::Map<String, Value>>,
    auth: Option<OutgoingAuth>,
    #[schemars(range(min = 1_000, max = 120_000))]
    timeout_ms: Option<u64>,
    retry: Option<RetryInput>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(range(min = super::RATE_MIN, max = super::RATE_MAX))]
    rate_limit_per_minute: Option<Option<u32>>,
    #[schemars(range(min = 1, max = 100))]
    max_concurrency: Option<u32>,
    enabled: Option<bool>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    v: T,
    range: &std::ops::RangeInclusive<T>,
) -> Result<T, ApiError> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(bad(format!("{name} must be between {} and {}", range.start(), range.end())))
    }
}

fn retry_policy(input: Option<RetryInput>, base: RetryPolicy) -> Result<RetryPolicy, ApiError> {
    let Some(r) = input else { return Ok(base) };
    let policy = RetryPolicy {
        strategy: r.strategy.unwrap_or(base.strategy),
        max_attempts: Some(in_range(
            "retry.max_attempts",
            r.max_attempts.or(base.max_attempts).unwrap_or(3),
            &ATTEMPTS,
        )?),
        initial_delay_ms: in_range(
            "retry.initial_delay_ms",
            r.initial_delay_ms.unwrap_or(base.initial_delay_ms),
            &DELAY_MS,
        )?,
        max_delay_ms: in_range("retry.max_delay_ms", r.max_delay_ms.unwrap_or(base.max_delay_ms), &DELAY_MS)?,
        jitter: r.jitter.unwrap_or(base.jitter),
    };
    if policy.max_delay_ms < policy.initial_delay_ms {
        return Err(bad("retry.max_delay_ms must not be below retry.initial_delay_ms"));
    }
    Ok(policy)
}

fn check_header_name(name: &str, what: &str) -> Result<String, ApiError> {
    let lower = name.to_ascii_lowercase();
    if http::HeaderName::try_from(name).is_err() {
        return Err(bad(format!("{what} {name:?} is not a header name")));
    }
    if RESERVED.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(bad(format!("{what} {name:?} is set by Chorus and cannot be overridden")));
    }
    Ok(name.to_owned())
}

fn headers(map: serde_json::Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    if map.len() > 20 {
        return Err(bad("at most 20 custom headers"));
    }
    map.into_iter()
        .map(|(k, v)| {
            let name = check_header_name(&k, "header")?;
            let value =
                v.as_str().ok_or_else(|| bad(format!("header {k:?} must have a string value")))?.to_owned();
            if http::HeaderValue::from_str(&value).is_err() {
                return Err(bad(format!("header {k:?} has an invalid value")));
            }
            Ok((name, value))
        })
        .collect()
}

fn check_auth(auth: &OutgoingAuth) -> Result<(), ApiError> {
    let nonempty = |v: &str, f: &str| {
        if v.is_empty() { Err(bad(format!("auth.{f} must not be empty"))) } else { Ok(()) }
    };
    match auth {
        OutgoingAuth::None => Ok(()),
        OutgoingAuth::Basic { username, password } => {
            nonempty(username, "username")?;
            if username.contains(':') {
                return Err(bad("auth.username must not contain ':'"));
            }
            nonempty(password, "password")
        }
        OutgoingAuth::Bearer { token } => nonempty(token, "token"),
        OutgoingAuth::ApiKey { header_name, key } => {
            check_header_name(header_name, "auth.header_name")?;
            nonempty(key, "key")
        }
    }
}

fn check_events(events: &[String]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Err(bad("events must name at least one event (or \"*\")"));
    }
    match events.iter().find(|e| !is_valid_pattern(e)) {
        Some(e) => Err(bad(format!(
            "unknown event {e:?}: use names from the catalogue (e.g. agent.commit), prefix.* patterns, or custom.<name>"
        ))),
        None => Ok(()),
    }
}

pub(crate) async fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    state.guard.check_url(url).await.map(|u| u.to_string()).map_err(|e| bad(format!("url: {e}")))
}

fn header_pairs(map: serde_json::Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    headers(map)
}

pub(crate) async fn create(
    state: &AppState,
    body: Value,
    created_by: &str,
) -> Result<OutgoingView, ApiError> {
    let body: CreateOutgoing = serde_json::from_value(body).map_err(|e| bad(e.to_string()))?;
    let auth = body.auth.clone();
    let (hook, secret) = create_typed(state, body, created_by).await?;
    // Shown once, here. A `whsk_` key signs `v1a`: receivers verify with
    // its public key, which comes with it.
    Ok(OutgoingView { shown_once: ShownOnce::secret(&secret), ..OutgoingView::of(&hook, Some(&auth)) })
}

/// Check and create an outgoing subscription: the typed operation behind
/// `POST /api/webhooks` and the Discord commands. Returns it with its
/// secret, to be shown once.
pub(crate) async fn create_typed(
    state: &AppState,
    body: CreateOutgoing,
    created_by: &str,
) -> Result<(OutgoingHook, chorus_core::Secret), ApiError> {
    let (hook, secret, auth) = check_new(state, body, created_by).await?;
    state.store.create_outgoing(hook.clone(), secret.clone(), auth).await?;
    tracing::info!(hook = %hook.id, "outgoing webhook created");
    Ok((hook, secret))
}

/// Check a new subscription, writing nothing: it, its signing secret and
/// its credentials.
pub(crate) async fn check_new(
    state: &AppState,
    body: CreateOutgoing,
    created_by: &str,
) -> Result<(OutgoingHook, chorus_core::Secret, OutgoingAuth), ApiError> {
    let agent = match body.agent {
        Some(a) => {
            let name: AgentName = a.parse().map_err(|e: chorus_core::IdError| bad(e.to_string()))?;
            if state.store.agent(&name).await?.is_none() {
                return Err(bad(format!("agent {name} does not exist")));
            }
            Some(name)
        }
        None => None,
    };
    check_events(&body.events)?;
    check_auth(&body.auth)?;
    let headers = header_pairs(body.headers)?;
    let url = check_url(state, &body.url).await?;
    let secret = crate::service::choose_secret(body.signature == SignatureScheme::Standard, body.secret)?;
    let now = crate::service::now(state);
    let hook = OutgoingHook {
        id: HookId::generate(),
        agent,
        name: body.name.unwrap_or_else(|| "outgoing webhook".into()),
        url,
        events: body.events,
        method: body.method,
        headers,
        signature: body.signature,
        timeout_ms: in_range(
            "timeout_ms",
            body.timeout_ms.unwrap_or(OutgoingHook::DEFAULT_TIMEOUT_MS),
            &TIMEOUT_MS,
        )?,
        retry: retry_policy(body.retry, OutgoingHook::DEFAULT_RETRY)?,
        rate_limit_per_minute: body
            .rate_limit_per_minute
            .map(|r| in_range("rate_limit_per_minute", r, &crate::service::RATE))
            .transpose()?,
        max_concurrency: in_range(
            "max_concurrency",
            body.max_concurrency.unwrap_or(OutgoingHook::DEFAULT_CONCURRENCY),
            &CONCURRENCY,
        )?,
        enabled: body.enabled,
        paused: false,
        consecutive_failures: 0,
        breaker_until: None,
        disabled_reason: None,
        created_at: now,
        created_by: created_by.into(),
        updated_at: now,
    };
    Ok((hook, secret, body.auth))
}

/// Pause a subscription (its deliveries wait) or resume it (they go).
pub(crate) async fn set_paused(
    state: &AppState,
    hook: &OutgoingHook,
    paused: bool,
) -> Result<OutgoingHook, ApiError> {
    let patch = OutgoingPatch { paused: Some(paused), ..OutgoingPatch::default() };
    let hook = state.store.update_outgoing(&hook.id, patch).await?;
    if !paused {
        state.emitter.wake();
    }
    tracing::info!(hook = %hook.id, paused, "outgoing webhook pause state changed");
    Ok(hook)
}

/// Send again every delivery of `hook` that failed since `since`; how many.
pub(crate) async fn recover(
    state: &AppState,
    hook: &OutgoingHook,
    since: jiff::Timestamp,
) -> Result<u64, ApiError> {
    let n = state.store.recover(&hook.id, since, state.clock.now()).await?;
    state.emitter.wake();
    Ok(n)
}

pub(crate) async fn update(
    state: &AppState,
    current: &OutgoingHook,
    body: Value,
) -> Result<OutgoingView, ApiError> {
    let body: UpdateOutgoing = serde_json::from_value(body).map_err(|e| bad(e.to_string()))?;
    if let Some(e) = &body.events {
        check_events(e)?;
    }
    if let Some(a) = &body.auth {
        check_auth(a)?;
    }
    if body.name.as_ref().is_some_and(|n| n.trim().is_empty() || n.len() > 200) {
        return Err(bad("name must be 1 to 200 characters"));
    }
    let url = match &body.url {
        Some(u) => Some(check_url(state, u).await?),
        None => None,
    };
    let patch = OutgoingPatch {
        name: body.name,
        url,
        events: body.events,
        method: body.method,
        headers: body.headers.map(header_pairs).transpose()?,
        auth: body.auth.clone(),
        timeout_ms: body.timeout_ms.map(|t| in_range("timeout_ms", t, &TIMEOUT_MS)).transpose()?,
        retry: body.retry.map(|r| retry_policy(Some(r), current.retry)).transpose()?,
        rate_limit_per_minute: match body.rate_limit_per_minute {
            Some(Some(r)) => Some(Some(in_range("rate_limit_per_minute", r, &crate::service::RATE)?)),
            other => other,
        },
        max_concurrency: body
            .max_concurrency
            .map(|c| in_range("max_concurrency", c, &CONCURRENCY))
            .transpose()?,
        enabled: body.enabled,
        paused: None,
        disabled_reason: None,
    };
    let hook = state.store.update_outgoing(&current.id, patch).await?;
    state.emitter.wake();
    Ok(OutgoingView::of(&hook, body.auth.as_ref()))
}
