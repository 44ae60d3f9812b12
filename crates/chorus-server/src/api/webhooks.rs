use axum::{
    Json,
    extract::Path,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use chorus_core::{
    AgentName, DeliveryQuery, DeliveryStatus, EventQuery, EventStatus, HookId, HookPatch, IncomingHook,
    Source,
};
use serde::Deserialize;
use serde_json::Value;

use super::{Api, Routes};
use super::{PageParams, double_option};
use crate::service::outgoing;
use crate::{
    error::{ApiError, ApiJson, ApiQuery},
    service::{
        self, IncomingSpec,
        hooks::{self, CreatedIncoming, Found, create_incoming, find_any, resolve, test_incoming},
        views::{
            DeliveryView, EventView, IncomingView, OutgoingView, Page, RecoveredView, ReplyView, ShownOnce,
            TestSentView, WebhookView,
        },
    },
    state::AppState,
};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/webhooks", post(create).get(list))
        .route("/api/webhooks/{id}", get(show).patch(update).put(replace).delete(remove))
        .route("/api/webhooks/{id}/enable", post(enable))
        .route("/api/webhooks/{id}/disable", post(disable))
        .route("/api/webhooks/{id}/events", get(events))
        .route("/api/webhooks/{id}/deliveries", get(deliveries))
        .route("/api/webhooks/{id}/pause", post(pause))
        .route("/api/webhooks/{id}/resume", post(resume))
        .route("/api/webhooks/{id}/stats", get(stats))
        .route("/api/webhooks/{id}/test", post(test))
        .route("/api/webhooks/{id}/recover", post(recover))
        .route("/api/webhooks/{id}/rotate-secret", post(rotate_secret))
}

async fn find_outgoing(
    state: &AppState,
    id: &str,
    what: &str,
) -> Result<chorus_core::OutgoingHook, ApiError> {
    match find_any(state, id).await? {
        Found::Outgoing(h) => Ok(h),
        Found::Incoming(_) => Err(ApiError::bad_request(format!("{what} applies to outgoing webhooks"))),
    }
}

/// How long a replaced secret keeps verifying unless the caller says.
const DEFAULT_GRACE_SECONDS: u64 = 24 * 60 * 60;
/// The longest grace period a rotation may ask for (30 days).
const MAX_GRACE_SECONDS: u64 = 30 * 24 * 60 * 60;

/// A rotation: an empty body rotates to a generated secret with a day's
/// grace.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RotateSecret")]
pub(super) struct RotateBody {
    /// Seconds the replaced secret stays valid; 0 ends it now.
    #[schemars(range(max = MAX_GRACE_SECONDS), extend("default" = DEFAULT_GRACE_SECONDS))]
    grace_period_seconds: Option<u64>,
    /// A secret to use instead of a generated one.
    #[schemars(length(min = 16, max = 256))]
    secret: Option<String>,
}

/// `POST /api/webhooks/{id}/rotate-secret`: a new secret, shown once; the
/// old one stays valid for the grace period so senders can switch without
/// a failed delivery.
async fn rotate_secret(
    Api(state): Api,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<WebhookView>, ApiError> {
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?
    };
    let grace = body.grace_period_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(ApiError::bad_request(format!(
            "grace_period_seconds must be at most {MAX_GRACE_SECONDS} (30 days)"
        )));
    }
    let found = find_any(&state, &id).await?;
    let (secret, until) = hooks::rotate_secret(&state, &found, body.secret, grace).await?;
    // Shown once, here, like at creation.
    let shown_once = ShownOnce { previous_secret_expires_at: Some(until), ..ShownOnce::secret(&secret) };
    Ok(Json(match found {
        Found::Incoming(h) => {
            WebhookView::Incoming(Box::new(IncomingView { shown_once, ..IncomingView::of(&state, &h) }))
        }
        Found::Outgoing(h) => {
            WebhookView::Outgoing(Box::new(OutgoingView { shown_once, ..OutgoingView::of(&h, None) }))
        }
    }))
}

/// Changes to an incoming hook; what is absent stays.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UpdateIncoming")]
pub(super) struct UpdateHook {
    name: Option<String>,
    enabled: Option<bool>,
    #[schemars(range(min = service::RATE_MIN, max = service::RATE_MAX))]
    rate_limit_per_minute: Option<u32>,
    /// Addresses and CIDR ranges senders may post from; empty: any.
    ip_allowlist: Option<Vec<String>>,
    /// A message template; `null` goes back to the source's formatter.
    #[serde(default, deserialize_with = "double_option")]
    template: Option<Option<String>>,
    /// Event types to keep; empty: every one.
    events: Option<Vec<String>>,
    /// A window (`5m`, 1m to 24h), or `null` / `"off"` for a message per event.
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(schema_with = "service::aggregate_schema")]
    aggregate: Option<Option<Value>>,
    /// `every` event, or only `changes` of CI results and alerts.
    #[schemars(extend("enum" = ["every", "changes"]))]
    notify: Option<String>,
    /// A Discord thread per pull request and incident.
    threads: Option<bool>,
    /// Reply credentials; `null` removes them.
    #[serde(default, deserialize_with = "double_option")]
    reply: Option<Option<service::ReplySpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    agent: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default = "super::default_limit")]
    limit: usize,
    cursor: Option<String>,
}

/// Hooks of both directions are listed in creation order.
fn list_key(created: jiff::Timestamp, id: &HookId) -> String {
    format!("{:020}.{id}", created.as_millisecond().max(0))
}

/// One incoming hook as it is shown alone: with its rules and reply
/// credentials.
async fn detailed(state: &AppState, h: &IncomingHook) -> Result<IncomingView, ApiError> {
    let rules = state.store.rules(&h.id).await?;
    let reply = state.store.reply(&h.id).await?;
    Ok(IncomingView::of(state, h).with_details(&rules, reply.as_ref()))
}

/// A hook's id from what a caller wrote: its id, or its user-chosen
/// `webhook_id`.
async fn find(state: &AppState, id: &str) -> Result<IncomingHook, ApiError> {
    let hook_id = resolve(state, id).await?;
    state.store.hook(&hook_id).await?.ok_or_else(|| ApiError::not_found(format!("webhook {id} not found")))
}

async fn create(Api(state): Api, ApiJson(body): ApiJson<Value>) -> Result<impl IntoResponse, ApiError> {
    create_hook(&state, body, "api").await
}

/// Create a hook of either direction from an API body. The answer carries
/// the secret, this once.
async fn create_hook(
    state: &AppState,
    body: Value,
    created_by: &str,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    match body.get("type").map(|t| t.as_str().unwrap_or_default()) {
        None | Some("incoming") => {}
        Some("outgoing") => {
            let created = outgoing::create(state, body, created_by).await?;
            return Ok((StatusCode::CREATED, Json(WebhookView::Outgoing(Box::new(created)))));
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!("type must be incoming or outgoing, not {other:?}")));
        }
    }
    let spec: IncomingSpec =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let CreatedIncoming { hook, secret, commands, reply } = create_incoming(state, &spec, created_by).await?;
    tracing::info!(hook = %hook.id, agent = %hook.agent, source = %hook.source, "webhook created");
    let mut v = IncomingView::of(state, &hook).with_details(&commands, reply.as_ref());
    match &secret {
        // Shown once, here; no later response carries it.
        Some(s) => {
            v.shown_once = ShownOnce { secret: Some(Some(s.expose().to_owned())), ..ShownOnce::default() }
        }
        None => {
            v.shown_once.secret = Some(None);
            if hook.source != Source::Docker {
                v.warning =
                    Some("source \"none\": requests are not verified; anyone who knows the URL can post");
            }
        }
    }
    Ok((StatusCode::CREATED, Json(WebhookView::Incoming(Box::new(v)))))
}

async fn list(
    Api(state): Api,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    let agent = params
        .agent
        .map(|a| a.parse::<AgentName>().map_err(|e| ApiError::bad_request(e.to_string())))
        .transpose()?;
    let (incoming, outgoing) = match params.kind.as_deref() {
        None => (true, true),
        Some("incoming") => (true, false),
        Some("outgoing") => (false, true),
        Some(other) => {
            return Err(ApiError::bad_request(format!("type must be incoming or outgoing, not {other:?}")));
        }
    };
    let limit = PageParams { limit: params.limit, cursor: None, status: None }.limit()?;
    let mut keyed = Vec::new();
    if incoming {
        keyed.extend(state.store.hooks(agent.as_ref()).await?.iter().map(|h| {
            (list_key(h.created_at, &h.id), WebhookView::Incoming(Box::new(IncomingView::of(&state, h))))
        }));
    }
    if outgoing {
        keyed.extend(state.store.outgoing_hooks(agent.as_ref()).await?.iter().map(|h| {
            (list_key(h.created_at, &h.id), WebhookView::Outgoing(Box::new(OutgoingView::of(h, None))))
        }));
    }
    Ok(Json(super::keyed_page(keyed, limit, params.cursor.as_deref())))
}

async fn show(Api(state): Api, Path(id): Path<String>) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(match find_any(&state, &id).await? {
        Found::Incoming(h) => WebhookView::Incoming(Box::new(detailed(&state, &h).await?)),
        Found::Outgoing(h) => WebhookView::Outgoing(Box::new(OutgoingView::of(&h, None))),
    }))
}

async fn update(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<WebhookView>, ApiError> {
    let current = match find_any(&state, &id).await? {
        Found::Outgoing(h) => {
            return Ok(Json(WebhookView::Outgoing(Box::new(outgoing::update(&state, &h, body).await?))));
        }
        Found::Incoming(h) => h,
    };
    let hook_id = current.id.clone();
    let body: UpdateHook = serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let reply = match &body.reply {
        None => None,
        Some(None) => Some(None),
        Some(Some(r)) => Some(Some(service::reply_config(&state, current.source, r).await?)),
    };
    if reply == Some(None)
        && state.store.rules(&hook_id).await?.iter().any(|c| c.action == chorus_core::Action::Comment)
    {
        return Err(ApiError::invalid(
            "reply",
            "the hook's comment rules need its reply credentials; remove them first",
        ));
    }
    let aggregate_secs = match &body.aggregate {
        None => None,
        Some(None) => Some(None),
        Some(Some(v)) => Some(service::parse_aggregate(v)?),
    };
    let patch = HookPatch {
        name: body.name,
        enabled: body.enabled,
        rate_limit_per_minute: body.rate_limit_per_minute,
        ip_allowlist: body.ip_allowlist,
        template: body.template,
        events: body.events,
        aggregate_secs,
        notify_changes: body.notify.as_deref().map(service::parse_notify).transpose()?,
        threads: body.threads,
    };
    let hook = hooks::update_incoming(&state, &current, patch).await?;
    if let Some(reply) = reply {
        state.store.set_reply(&hook_id, reply).await?;
    }
    let reply = state.store.reply(&hook_id).await?;
    let v = IncomingView { reply: Some(ReplyView::of(reply.as_ref())), ..IncomingView::of(&state, &hook) };
    Ok(Json(WebhookView::Incoming(Box::new(v))))
}

/// `PUT`: seed 001's "update webhook". The body has the shape of a create;
/// the hook's settings and rule set become what it says. The agent, source
/// and `webhook_id` name the hook and cannot change; credentials (`secret`,
/// `reply`) stay unless given, and a different secret goes through
/// rotate-secret instead.
async fn replace(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<WebhookView>, ApiError> {
    let current = match find_any(&state, &id).await? {
        Found::Incoming(h) => h,
        Found::Outgoing(_) => {
            return Err(ApiError::bad_request(
                "PUT replaces incoming hooks; change an outgoing one with PATCH",
            ));
        }
    };
    if body.get("type").is_some_and(|t| t != "incoming") {
        return Err(ApiError::invalid("type", "the hook is incoming"));
    }
    let spec: IncomingSpec =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = service::now(&state);
    let (fresh, _) = service::incoming_hook(&state, &spec, &current.created_by, now).await?;
    if fresh.agent != current.agent {
        return Err(ApiError::invalid("agent", "the agent of a hook cannot change (its URL names it)"));
    }
    if fresh.source != current.source || fresh.generic != current.generic {
        return Err(ApiError::invalid("source", "the source of a hook cannot change; create a new hook"));
    }
    if spec.webhook_id.is_some() && fresh.slug != current.slug {
        return Err(ApiError::invalid("webhook_id", "the webhook_id of a hook cannot change"));
    }
    if let Some(given) = &spec.secret {
        let secrets = state.store.hook_with_secrets(&current.id).await?.map(|(_, s)| s).unwrap_or_default();
        if secrets.first().is_none_or(|s| *s != chorus_core::Secret::new(given.clone())) {
            return Err(ApiError::invalid(
                "secret",
                "a different secret: use POST /api/webhooks/{id}/rotate-secret",
            ));
        }
    }
    let reply = match &spec.reply {
        Some(r) => Some(service::reply_config(&state, current.source, r).await?),
        None => None,
    };
    let can_reply = reply.is_some() || state.store.reply(&current.id).await?.is_some();
    let commands = service::rules(&state, &current, can_reply, &spec.commands, now).await?;
    let patch = HookPatch {
        name: Some(fresh.name),
        enabled: Some(fresh.enabled),
        rate_limit_per_minute: Some(fresh.rate_limit_per_minute),
        ip_allowlist: Some(fresh.ip_allowlist),
        template: Some(fresh.template),
        events: Some(fresh.events),
        aggregate_secs: Some(fresh.aggregate_secs),
        notify_changes: Some(fresh.notify_changes),
        threads: Some(fresh.threads),
    };
    let hook = state.store.update_hook(&current.id, patch).await?;
    if let Some(r) = reply {
        state.store.set_reply(&current.id, Some(r)).await?;
    }
    state.store.replace_rules(&current.id, commands).await?;
    Ok(Json(WebhookView::Incoming(Box::new(detailed(&state, &hook).await?))))
}

async fn set_enabled(state: &AppState, id: &str, enabled: bool) -> Result<Json<WebhookView>, ApiError> {
    let found = hooks::set_enabled(state, &find_any(state, id).await?, enabled).await?;
    Ok(Json(match found {
        Found::Incoming(h) => WebhookView::Incoming(Box::new(IncomingView::of(state, &h))),
        Found::Outgoing(h) => WebhookView::Outgoing(Box::new(OutgoingView::of(&h, None))),
    }))
}

async fn set_paused(state: &AppState, id: &str, paused: bool) -> Result<Json<WebhookView>, ApiError> {
    let h = find_outgoing(state, id, if paused { "pause" } else { "resume" }).await?;
    let hook = service::outgoing::set_paused(state, &h, paused).await?;
    Ok(Json(WebhookView::Outgoing(Box::new(OutgoingView::of(&hook, None)))))
}

async fn pause(Api(state): Api, Path(id): Path<String>) -> Result<Json<WebhookView>, ApiError> {
    set_paused(&state, &id, true).await
}

async fn resume(Api(state): Api, Path(id): Path<String>) -> Result<Json<WebhookView>, ApiError> {
    set_paused(&state, &id, false).await
}

async fn stats(Api(state): Api, Path(id): Path<String>) -> Result<Json<chorus_core::HookStats>, ApiError> {
    let hook_id = match find_any(&state, &id).await? {
        Found::Incoming(h) => h.id,
        Found::Outgoing(h) => h.id,
    };
    let figures = state.store.hook_stats(&hook_id, state.clock.now()).await?;
    Ok(Json(figures))
}

/// `POST /api/webhooks/{id}/test`. Outgoing: a sample `webhook.test`
/// delivery. Incoming: a realistic sample of the hook's source, signed with
/// its secret, through the whole ingress pipeline (checks, storage, routing,
/// the agent's channel), as if the sender had posted it.
async fn test(Api(state): Api, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let hook = match find_any(&state, &id).await? {
        Found::Incoming(h) => {
            let tested = test_incoming(&state, &h.id).await?;
            return Ok((tested.status, Json(tested.body)).into_response());
        }
        Found::Outgoing(h) => h,
    };
    let emitted = state.emitter.test(&hook.id).await.map_err(ApiError::from)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestSentView { event_id: emitted.event_id, delivery_id: emitted.deliveries.into_iter().next() }),
    )
        .into_response())
}

/// Failed deliveries since a time go again.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Recover")]
pub(super) struct RecoverBody {
    since: jiff::Timestamp,
}

async fn recover(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RecoverBody>,
) -> Result<Json<RecoveredView>, ApiError> {
    let h = find_outgoing(&state, &id, "recover").await?;
    let n = service::outgoing::recover(&state, &h, body.since).await?;
    Ok(Json(RecoveredView { recovered: n }))
}

async fn enable(Api(state): Api, Path(id): Path<String>) -> Result<Json<WebhookView>, ApiError> {
    set_enabled(&state, &id, true).await
}

async fn disable(Api(state): Api, Path(id): Path<String>) -> Result<Json<WebhookView>, ApiError> {
    set_enabled(&state, &id, false).await
}

async fn remove(Api(state): Api, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    hooks::delete(&state, &find_any(&state, &id).await?).await?;
    tracing::info!(hook = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `?status=&event_type=&since=&until=&limit=&cursor=` of the incoming log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventParams {
    #[serde(default = "super::default_limit")]
    limit: usize,
    cursor: Option<String>,
    status: Option<String>,
    event_type: Option<String>,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
}

async fn events(
    Api(state): Api,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<EventParams>,
) -> Result<Json<Page<EventView>>, ApiError> {
    let hook = find(&state, &id).await?;
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => Some(EventStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = EventStatus::ALL.iter().map(|x| x.as_str()).collect();
            ApiError::invalid("status", format!("status {s:?}: use {}", names.join(", ")))
        })?),
    };
    if let (Some(since), Some(until)) = (params.since, params.until)
        && since >= until
    {
        return Err(ApiError::invalid("since", "since must be before until"));
    }
    let limit = PageParams { limit: params.limit, cursor: None, status: None }.limit()?;
    let page = state
        .store
        .events(EventQuery {
            hook_id: Some(hook.id),
            status,
            event_type: params.event_type.filter(|t| !t.is_empty()),
            since: params.since,
            until: params.until,
            limit,
            cursor: params.cursor,
        })
        .await?;
    Ok(Json(Page { items: page.items.iter().map(EventView::of).collect(), next_cursor: page.next_cursor }))
}

async fn deliveries(
    Api(state): Api,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    let (hook_id, with_attempts) = match find_any(&state, &id).await? {
        Found::Incoming(h) => (h.id, false),
        Found::Outgoing(h) => (h.id, true),
    };
    let status = parse_delivery_status(params.status.as_deref())?;
    let query = DeliveryQuery {
        hook_id: Some(hook_id),
        event_id: None,
        status,
        limit: params.limit()?,
        cursor: params.cursor,
    };
    let page = state.store.deliveries(query).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for d in &page.items {
        let mut v = DeliveryView::of(d);
        if with_attempts {
            v.event = Some(d.payload["event"].clone());
            v.attempt_log = Some(state.store.attempts(&d.id).await?);
        }
        items.push(v);
    }
    Ok(Json(Page { items, next_cursor: page.next_cursor }))
}

pub(super) fn parse_delivery_status(s: Option<&str>) -> Result<Option<DeliveryStatus>, ApiError> {
    s.map(|s| {
        DeliveryStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = DeliveryStatus::ALL.iter().map(|x| x.as_str()).collect();
            ApiError::invalid("status", format!("status {s:?}: use {}", names.join(", ")))
        })
    })
    .transpose()
}
