//! The service layer: typed management operations that every surface
//! calls (the REST API's handlers, the Discord commands, config files, the
//! hook test), so each accepts the same input and answers the same errors.
//! Nothing here knows HTTP requests; nothing outside calls an API handler.
//!
//! A module of chorus-server rather than a crate of its own: the operations
//! need `AppState` (store, emitter, SSRF guard, settings), which the server
//! builds, and the API, Discord and config-file surfaces live in this crate
//! too. Submodules hold each aggregate's operations: `agents`, `hooks`
//! (find, create, test), `outgoing` (subscriptions), `interact` (writing
//! back to a source); validation of hook specs and rules is here.

pub(crate) mod agents;
pub(crate) mod backup;
pub(crate) mod hooks;
pub(crate) mod interact;
pub(crate) mod outgoing;
pub(crate) mod rules;
pub(crate) mod views;

use chorus_core::{Action, AgentName, GenericScheme, HookId, HookPatch, IncomingHook, Rule, Secret, Source};
use chorus_deliver::Cidr;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{error::ApiError, state::AppState};

/// Requests a minute a hook (incoming or outgoing) may allow; the API,
/// config files, Discord and the OpenAPI document all read this one range.
pub(crate) const RATE: std::ops::RangeInclusive<u32> = RATE_MIN..=RATE_MAX;
pub(crate) const RATE_MIN: u32 = 1;
pub(crate) const RATE_MAX: u32 = 100_000;
/// Shortest secret a user may bring (GitHub accepts anything; we do not).
const SECRET_MIN: usize = 16;
/// Most routing rules a hook may have.
pub(crate) const COMMANDS_MAX: usize = 100;

/// A new incoming hook. `agent` is required unless a command names one.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CreateIncoming")]
pub(crate) struct IncomingSpec {
    /// The agent; when absent, the first rule's agent (as seed 001 writes hooks).
    pub(crate) agent: Option<String>,
    /// `incoming`, the default.
    #[serde(rename = "type", default)]
    #[schemars(extend("enum" = ["incoming"]))]
    pub(crate) _kind: Option<String>,
    pub(crate) name: Option<String>,
    /// Who sends: picks the signature scheme and the formatter (also
    /// accepted as `provider`).
    #[serde(alias = "provider")]
    #[schemars(with = "Option<Source>")]
    pub(crate) source: Option<String>,
    /// The signing secret; generated when absent.
    #[schemars(length(min = 16, max = 256))]
    pub(crate) secret: Option<String>,
    /// A user-chosen id for the hook's URL.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{2,63}$"))]
    pub(crate) webhook_id: Option<String>,
    /// Computed by Chorus; accepted and ignored.
    #[serde(default, rename = "endpoint")]
    pub(crate) _endpoint: Option<String>,
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
    #[schemars(range(min = RATE_MIN, max = RATE_MAX))]
    pub(crate) rate_limit_per_minute: Option<u32>,
    /// Addresses and CIDR ranges senders may post from; empty: any.
    #[serde(default)]
    pub(crate) ip_allowlist: Vec<String>,
    /// A message template instead of the source's formatter.
    pub(crate) template: Option<String>,
    /// Event types to keep; empty: every one.
    #[serde(default)]
    pub(crate) events: Vec<String>,
    /// An aggregation window: `5m`, `1h` (1m to 24h), or seconds; `off`
    /// for a message per event.
    #[serde(default)]
    #[schemars(schema_with = "aggregate_schema")]
    pub(crate) aggregate: Option<Value>,
    /// `every` (the default) or `changes`: CI results and alerts only when
    /// they break or are fixed.
    #[schemars(extend("enum" = ["every", "changes"]))]
    pub(crate) notify: Option<String>,
    /// A Discord thread per pull request and incident.
    #[serde(default)]
    pub(crate) threads: bool,
    /// Settings of a `generic` source's HMAC signature.
    pub(crate) generic: Option<GenericScheme>,
    /// Routing rules.
    #[serde(default)]
    #[schemars(length(max = COMMANDS_MAX))]
    pub(crate) commands: Vec<RuleSpec>,
    /// Credentials for writing back to the source (`comment` rules).
    pub(crate) reply: Option<ReplySpec>,
}

/// An aggregation window as callers write it: `5m`, seconds, or off.
pub(crate) fn aggregate_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["string", "integer", "null"]})
}

impl IncomingSpec {
    /// A hook for `agent` with every default: source `chorus`, a generated
    /// secret, enabled, no rules.
    pub(crate) fn for_agent(agent: &str) -> Self {
        Self {
            agent: Some(agent.to_owned()),
            _kind: None,
            name: None,
            source: None,
            secret: None,
            webhook_id: None,
            _endpoint: None,
            enabled: true,
            rate_limit_per_minute: None,
            ip_allowlist: Vec::new(),
            template: None,
            events: Vec::new(),
            aggregate: None,
            notify: None,
            threads: false,
            generic: None,
            commands: Vec::new(),
            reply: None,
        }
    }
}

/// Credentials for writing back to a github, gitlab or jira source.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Reply")]
pub(crate) struct ReplySpec {
    /// An API token of the source.
    #[schemars(length(min = 1, max = 1000))]
    pub(crate) token: String,
    /// Jira: the account the token belongs to.
    #[schemars(email)]
    pub(crate) email: Option<String>,
    /// The source's API; Jira: your site.
    #[schemars(url)]
    pub(crate) api_url: Option<String>,
}

/// Check reply credentials for a hook of `source`.
pub(crate) async fn reply_config(
    state: &AppState,
    source: Source,
    spec: &ReplySpec,
) -> Result<chorus_core::ReplyConfig, ApiError> {
    if !chorus_deliver::reply::can_comment(source) {
        return Err(ApiError::invalid(
            "reply",
            format!("Chorus writes back to github, gitlab and jira sources, not {source}"),
        ));
    }
    let token = spec.token.trim();
    if token.is_empty() || token.len() > 1000 || token.chars().any(char::is_control) {
        return Err(ApiError::invalid("reply.token", "the token must be 1 to 1000 characters"));
    }
    if let Some(email) = &spec.email
        && (email.len() > 320 || !email.contains('@') || email.chars().any(char::is_whitespace))
    {
        return Err(ApiError::invalid("reply.email", "reply.email must be an email address"));
    }
    if source == Source::Jira && spec.api_url.is_none() {
        return Err(ApiError::invalid("reply.api_url", "a Jira reply needs api_url: your Jira site"));
    }
    let api_url = match &spec.api_url {
        Some(u) => Some(
            state
                .guard
                .check_url(u)
                .await
                .map(|u| u.as_str().trim_end_matches('/').to_owned())
                .map_err(|e| ApiError::invalid("reply.api_url", format!("reply.api_url: {e}")))?,
        ),
        None => None,
    };
    Ok(chorus_core::ReplyConfig { api_url, email: spec.email.clone(), token: Secret::new(token) })
}

fn yes() -> bool {
    true
}

fn notify() -> String {
    Action::Notify.as_str().to_owned()
}

/// A routing rule: when `trigger` matches an event and `conditions`
/// hold, `action` fires.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    /// An event type, its prefix (`issues` fires on `issues.opened`), or `*`.
    #[schemars(length(min = 1, max = 100))]
    pub(crate) trigger: String,
    #[serde(default = "notify")]
    #[schemars(with = "Action")]
    pub(crate) action: String,
    /// The agent whose channel or tasks it fires for; the hook's when absent.
    pub(crate) agent: Option<String>,
    /// The message, comment or task text, as a template over the event.
    pub(crate) template: Option<String>,
    /// Conditions over the event's fields.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 20))]
    pub(crate) conditions: Map<String, Value>,
    /// `forward`: where to send the event.
    #[schemars(url)]
    pub(crate) url: Option<String>,
    /// Higher runs first.
    #[serde(default)]
    #[schemars(range(min = -1000, max = 1000))]
    pub(crate) priority: i32,
    /// No later rule runs after this one fires.
    #[serde(default)]
    pub(crate) stop: bool,
    /// `create_task`: comment the result back on the source.
    #[serde(default)]
    pub(crate) reply: bool,
    /// `forward`: `chorus` (default) or `standard`.
    #[schemars(with = "Option<chorus_core::SignatureScheme>")]
    pub(crate) signature: Option<String>,
}

/// The secret a user brought, checked, or a generated one. `standard`:
/// a Standard Webhooks `whsec_` key.
pub(crate) fn choose_secret(standard: bool, given: Option<String>) -> Result<Secret, ApiError> {
    choose_secret_for(standard, false, given)
}

/// [`choose_secret`]; `verifies_only`: the secret only verifies (an
/// incoming hook), so a Standard Webhooks `whpk_` public key will do.
pub(crate) fn choose_secret_for(
    standard: bool,
    verifies_only: bool,
    given: Option<String>,
) -> Result<Secret, ApiError> {
    match given {
        Some(s) if s.len() < SECRET_MIN || s.len() > 256 => {
            Err(ApiError::invalid("secret", format!("secret must be {SECRET_MIN} to 256 characters")))
        }
        Some(s) => {
            let secret = Secret::new(s);
            let signs = chorus_verify::sign_standard(&secret, "probe", 0, b"").is_ok();
            let verifies = signs || chorus_verify::standard_public_key(&secret).is_some();
            if standard && !(signs || (verifies_only && verifies)) {
                return Err(ApiError::invalid(
                    "secret",
                    if verifies_only {
                        "a standard secret is whsec_ (HMAC), whsk_ or whpk_ (Ed25519) followed by base64"
                    } else {
                        "a standard signing secret is whsec_ (HMAC) or whsk_ (Ed25519) followed by base64"
                    },
                ));
            }
            Ok(secret)
        }
        None if standard => Ok(Secret::generate_standard()),
        None => Ok(Secret::generate()),
    }
}

fn check_rate(rate: u32) -> Result<u32, ApiError> {
    if RATE.contains(&rate) {
        Ok(rate)
    } else {
        Err(ApiError::invalid(
            "rate_limit_per_minute",
            format!("rate_limit_per_minute must be between {} and {}", RATE.start(), RATE.end()),
        ))
    }
}

fn check_allowlist(list: &[String]) -> Result<(), ApiError> {
    list.iter().enumerate().try_for_each(|(i, c)| {
        Cidr::parse(c)
            .map(|_| ())
            .map_err(|e| ApiError::invalid(format!("ip_allowlist[{i}]"), format!("ip_allowlist: {e}")))
    })
}

/// An event type or trigger: `push`, `issues.opened`, `jira:issue_created`, `*`.
fn check_event_name(field: &str, e: &str) -> Result<(), ApiError> {
    if e.is_empty() || e.len() > 100 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(field, format!("{field}: {e:?} is not an event type")));
    }
    Ok(())
}

fn check_events(events: &[String]) -> Result<(), ApiError> {
    events.iter().enumerate().try_for_each(|(i, e)| {
        check_event_name("events", e).map_err(|err| ApiError { field: Some(format!("events[{i}]")), ..err })
    })
}

fn check_template(template: Option<&str>) -> Result<(), ApiError> {
    if let Some(t) = template {
        chorus_format::validate_template(t)
            .map_err(|e| ApiError::invalid("template", format!("template: {e}")))?;
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("name", "name must be 1 to 200 characters"));
    }
    Ok(())
}

/// An existing agent named `name`.
pub(crate) async fn existing_agent(state: &AppState, field: &str, name: &str) -> Result<AgentName, ApiError> {
    let agent: AgentName =
        name.parse().map_err(|e: chorus_core::IdError| ApiError::invalid(field, e.to_string()))?;
    if state.store.agent(&agent).await?.is_none() {
        return Err(ApiError::invalid(field, format!("agent {agent} does not exist; create it first")));
    }
    Ok(agent)
}

/// Check `spec` and build the hook (with a fresh id) and its secret: the one
/// given, a generated one, or none for source `none`.
pub(crate) async fn incoming_hook(
    state: &AppState,
    spec: &IncomingSpec,
    created_by: &str,
    now: Timestamp,
) -> Result<(IncomingHook, Option<Secret>), ApiError> {
    let (named, field) = match (&spec.agent, spec.commands.iter().position(|c| c.agent.is_some())) {
        (Some(a), _) => (a.clone(), "agent".to_owned()),
        (None, Some(i)) => {
            (spec.commands[i].agent.clone().unwrap_or_default(), format!("commands[{i}].agent"))
        }
        (None, None) => {
            return Err(ApiError::invalid("agent", "missing: the agent whose channel gets the messages"));
        }
    };
    let agent = existing_agent(state, &field, &named).await?;
    let slug = spec.webhook_id.as_deref().map(check_slug).transpose()?;
    let source: Source = match &spec.source {
        Some(s) => {
            s.parse().map_err(|e: chorus_core::UnknownSource| ApiError::invalid("source", e.to_string()))?
        }
        None => Source::Chorus,
    };
    if spec.generic.is_some() && source != Source::Generic {
        return Err(ApiError::invalid("generic", "generic settings apply only to source \"generic\""));
    }
    if let Some(g) = &spec.generic
        && http::HeaderName::try_from(g.header.as_str()).is_err()
    {
        return Err(ApiError::invalid(
            "generic.header",
            format!("generic.header {:?} is not a header name", g.header),
        ));
    }
    let secret = match (source, &spec.secret) {
        (Source::None | Source::Docker, Some(_)) => {
            return Err(ApiError::invalid("secret", format!("source {:?} takes no secret", source.as_str())));
        }
        (Source::None | Source::Docker, None) => None,
        (source, given) => Some(choose_secret_for(source == Source::Standard, true, given.clone())?),
    };
    let rate = check_rate(spec.rate_limit_per_minute.unwrap_or(IncomingHook::DEFAULT_RATE_LIMIT_PER_MINUTE))?;
    if let Some(n) = &spec.name {
        check_name(n)?;
    }
    check_allowlist(&spec.ip_allowlist)?;
    check_events(&spec.events)?;
    check_template(spec.template.as_deref())?;
    let aggregate_secs = spec.aggregate.as_ref().map(parse_aggregate).transpose()?.flatten();
    let hook = IncomingHook {
        id: HookId::generate(),
        slug,
        name: spec.name.clone().unwrap_or_else(|| format!("{source} hook")),
        agent,
        source,
        generic: spec.generic.clone(),
        enabled: spec.enabled,
        rate_limit_per_minute: rate,
        ip_allowlist: spec.ip_allowlist.clone(),
        template: spec.template.clone(),
        events: spec.events.clone(),
        aggregate_secs,
        notify_changes: spec.notify.as_deref().map(parse_notify).transpose()?.unwrap_or(false),
        threads: spec.threads,
        created_at: now,
        created_by: created_by.to_owned(),
        updated_at: now,
    };
    Ok((hook, secret))
}

/// An aggregation window as written: `5m`, `2h`, `90s`, seconds as a
/// number; `off`, `null` or `0` for none. One minute to a day.
pub(crate) fn parse_aggregate(v: &Value) -> Result<Option<u32>, ApiError> {
    let bad = || {
        ApiError::invalid("aggregate", "aggregate is a window of 1m to 24h (like 5m, 1h, or seconds), or off")
    };
    let secs: u64 = match v {
        Value::Null => return Ok(None),
        Value::String(s) if s == "off" || s == "none" || s == "0" => return Ok(None),
        Value::Number(n) if n.as_u64() == Some(0) => return Ok(None),
        Value::Number(n) => n.as_u64().ok_or_else(bad)?,
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (digits, unit) = s.split_at(split);
            let n: u64 = digits.parse().map_err(|_| bad())?;
            match unit {
                "" | "s" => n,
                "m" | "min" => n.saturating_mul(60),
                "h" => n.saturating_mul(3600),
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    };
    let secs = u32::try_from(secs).map_err(|_| bad())?;
    if !IncomingHook::AGGREGATE_SECS.contains(&secs) {
        return Err(bad());
    }
    Ok(Some(secs))
}

/// `notify` as written: `every` or `changes`.
pub(crate) fn parse_notify(v: &str) -> Result<bool, ApiError> {
    match v {
        "every" => Ok(false),
        "changes" => Ok(true),
        _ => Err(ApiError::invalid("notify", "notify is every (the default) or changes")),
    }
}

/// `notify` as shown.
pub(crate) fn show_notify(changes: bool) -> &'static str {
    if changes { "changes" } else { "every" }
}

/// An aggregation window as shown: `5m`, `1h`, `90s`.
pub(crate) fn show_aggregate(secs: Option<u32>) -> Option<String> {
    secs.map(|s| match s {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    })
}

/// A user-chosen hook id: 3 to 64 of `a-z 0-9 - _`, starting with a
/// letter or digit, and never one that reads as a Chorus id.
fn check_slug(slug: &str) -> Result<String, ApiError> {
    let ok = (3..=64).contains(&slug.len())
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && slug.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !slug.starts_with("hk_");
    if ok {
        Ok(slug.to_owned())
    } else {
        Err(ApiError::invalid(
            "webhook_id",
            "webhook_id must be 3 to 64 of a-z, 0-9, - and _, start with a letter or digit, and not start with hk_",
        ))
    }
}

/// Check a partial update of an incoming hook.
pub(crate) fn check_patch(patch: &HookPatch) -> Result<(), ApiError> {
    if let Some(r) = patch.rate_limit_per_minute {
        check_rate(r)?;
    }
    if let Some(l) = &patch.ip_allowlist {
        check_allowlist(l)?;
    }
    if let Some(e) = &patch.events {
        check_events(e)?;
    }
    if let Some(t) = &patch.template {
        check_template(t.as_deref())?;
    }
    if let Some(n) = &patch.name {
        check_name(n)?;
    }
    Ok(())
}

/// Check a routing rule of `hook` and build it. `id` keeps an existing
/// rule's identity on update.
async fn rule(
    state: &AppState,
    hook: &IncomingHook,
    can_reply: bool,
    spec: &RuleSpec,
    id: Option<String>,
    now: Timestamp,
) -> Result<Rule, ApiError> {
    let action = Action::parse(&spec.action).ok_or_else(|| {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        ApiError::invalid("action", format!("action {:?} is not one of {}", spec.action, names.join(", ")))
    })?;
    if spec.reply && action != Action::CreateTask {
        return Err(ApiError::invalid("reply", "reply applies to create_task: the result is commented back"));
    }
    if action == Action::Comment || spec.reply {
        let field = if action == Action::Comment { "action" } else { "reply" };
        if !chorus_deliver::reply::can_comment(hook.source) {
            return Err(ApiError::invalid(
                field,
                format!("comments go back to github, gitlab and jira sources, not {}", hook.source),
            ));
        }
        if !can_reply {
            return Err(ApiError::invalid(
                field,
                "comments need the hook's reply credentials: set reply (token, and for Jira email and api_url) first",
            ));
        }
    }
    if action == Action::Respond && spec.template.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err(ApiError::invalid("template", "respond needs a template: the answer the sender gets"));
    }
    let agent = match &spec.agent {
        Some(a) => Some(existing_agent(state, "agent", a).await?),
        None => None,
    };
    let url = match (action, &spec.url) {
        (Action::Forward, None) => {
            return Err(ApiError::invalid("url", "a forward needs the url to forward to"));
        }
        (Action::Forward, Some(u)) => Some(
            state
                .guard
                .check_url(u)
                .await
                .map(|u| u.to_string())
                .map_err(|e| ApiError::invalid("url", format!("url: {e}")))?,
        ),
        (_, Some(_)) => return Err(ApiError::invalid("url", "url applies only to the forward action")),
        (_, None) => None,
    };
    let signature = match (action, spec.signature.as_deref()) {
        (Action::Forward, Some(_)) if !hook.source.has_secret() => {
            return Err(ApiError::invalid(
                "signature",
                "a hook without a secret has nothing to sign forwards with",
            ));
        }
        (_, None) | (Action::Forward, Some("chorus")) => chorus_core::SignatureScheme::Chorus,
        (Action::Forward, Some("standard")) => chorus_core::SignatureScheme::Standard,
        (Action::Forward, Some(other)) => {
            return Err(ApiError::invalid(
                "signature",
                format!("signature {other:?} is not chorus or standard"),
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid("signature", "signature applies only to the forward action"));
        }
    };
    if !(-1000..=1000).contains(&spec.priority) {
        return Err(ApiError::invalid("priority", "priority must be between -1000 and 1000"));
    }
    let rule = Rule {
        id: id.unwrap_or_else(|| chorus_core::random_token("cmd_", 12)),
        hook_id: hook.id.clone(),
        trigger: spec.trigger.clone(),
        action,
        agent,
        template: spec.template.clone(),
        conditions: spec.conditions.clone(),
        url,
        priority: spec.priority,
        stop: spec.stop,
        reply: spec.reply,
        signature,
        created_at: now,
    };
    chorus_rules::check(&rule, hook.source).map_err(|e| ApiError::invalid(e.field.clone(), e.to_string()))?;
    Ok(rule)
}

/// Check every rule of a set; errors name the rule (`commands[2].action`).
pub(crate) async fn rules(
    state: &AppState,
    hook: &IncomingHook,
    can_reply: bool,
    specs: &[RuleSpec],
    now: Timestamp,
) -> Result<Vec<Rule>, ApiError> {
    if specs.len() > COMMANDS_MAX {
        return Err(ApiError::invalid("commands", format!("at most {COMMANDS_MAX} commands a hook")));
    }
    let mut out = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        // Creation times step by a millisecond so equal priorities keep the
        // order in which they were written.
        let at = now + jiff::SignedDuration::from_millis(i as i64);
        out.push(
            rule(state, hook, can_reply, spec, None, at)
                .await
                .map_err(|e| e.within(&format!("commands[{i}]")))?,
        );
    }
    Ok(out)
}

/// The time as the store keeps it (milliseconds), so answers match later reads.
pub(crate) fn now(state: &AppState) -> Timestamp {
    state.clock.now().round(jiff::Unit::Millisecond).unwrap_or_else(|_| state.clock.now())
}
