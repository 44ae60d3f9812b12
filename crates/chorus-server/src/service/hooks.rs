//! Typed operations on hooks that every surface (API, Discord, config
//! files) shares: finding a hook by id or `webhook_id`, creating an
//! incoming hook with its rules and reply credentials, and a test send.

use axum::http::StatusCode;
use chorus_core::{HookId, HookPatch, IncomingHook, OutgoingPatch};
use serde_json::{Value, json};

use crate::{
    error::{ApiError, ErrorCode},
    service::{self, IncomingSpec},
    state::AppState,
};

/// A hook of either direction.
pub(crate) enum Found {
    Incoming(IncomingHook),
    Outgoing(chorus_core::OutgoingHook),
}

pub(crate) async fn find_any(state: &AppState, id: &str) -> Result<Found, ApiError> {
    let hook_id = resolve(state, id).await?;
    if let Some(h) = state.store.hook(&hook_id).await? {
        return Ok(Found::Incoming(h));
    }
    match state.store.outgoing(&hook_id).await? {
        Some(h) => Ok(Found::Outgoing(h)),
        None => Err(ApiError::not_found(format!("webhook {id} not found"))),
    }
}

pub(crate) async fn resolve(state: &AppState, id: &str) -> Result<HookId, ApiError> {
    if let Ok(hook_id) = id.parse() {
        return Ok(hook_id);
    }
    state.store.hook_by_slug(id).await?.ok_or_else(|| ApiError::not_found(format!("webhook {id} not found")))
}

/// Turn a hook of either direction on or off; a subscription turned on
/// sends what waited.
pub(crate) async fn set_enabled(state: &AppState, found: &Found, enabled: bool) -> Result<Found, ApiError> {
    Ok(match found {
        Found::Incoming(h) => {
            let patch = HookPatch { enabled: Some(enabled), ..HookPatch::default() };
            Found::Incoming(state.store.update_hook(&h.id, patch).await?)
        }
        Found::Outgoing(h) => {
            let patch = OutgoingPatch { enabled: Some(enabled), ..OutgoingPatch::default() };
            let hook = state.store.update_outgoing(&h.id, patch).await?;
            state.emitter.wake();
            Found::Outgoing(hook)
        }
    })
}

/// Change an incoming hook's settings.
pub(crate) async fn update_incoming(
    state: &AppState,
    hook: &IncomingHook,
    patch: HookPatch,
) -> Result<IncomingHook, ApiError> {
    service::check_patch(&patch)?;
    Ok(state.store.update_hook(&hook.id, patch).await?)
}

/// Delete a hook of either direction.
pub(crate) async fn delete(state: &AppState, found: &Found) -> Result<(), ApiError> {
    match found {
        Found::Incoming(h) => state.store.delete_hook(&h.id).await?,
        Found::Outgoing(h) => state.store.delete_outgoing(&h.id).await?,
    }
    Ok(())
}

/// An incoming hook just created, with what came with it.
pub(crate) struct CreatedIncoming {
    pub(crate) hook: IncomingHook,
    /// Shown once, in the creator's answer.
    pub(crate) secret: Option<chorus_core::Secret>,
    pub(crate) commands: Vec<chorus_core::Rule>,
    pub(crate) reply: Option<chorus_core::ReplyConfig>,
}

/// Check and create an incoming hook, its rules and its reply credentials:
/// the typed operation behind `POST /api/webhooks` and the Discord commands.
pub(crate) async fn create_incoming(
    state: &AppState,
    spec: &IncomingSpec,
    created_by: &str,
) -> Result<CreatedIncoming, ApiError> {
    let created = check_incoming(state, spec, created_by, None).await?;
    write_incoming(state, &created).await?;
    Ok(created)
}

/// Check a new incoming hook, its rules and reply credentials, writing
/// nothing. `id`: the id it gets (a restored backup's), instead of a new one.
pub(crate) async fn check_incoming(
    state: &AppState,
    spec: &IncomingSpec,
    created_by: &str,
    id: Option<HookId>,
) -> Result<CreatedIncoming, ApiError> {
    let now = service::now(state);
    let (mut hook, secret) = service::incoming_hook(state, spec, created_by, now).await?;
    if let Some(id) = id {
        hook.id = id;
    }
    let reply = match &spec.reply {
        Some(r) => Some(service::reply_config(state, hook.source, r).await?),
        None => None,
    };
    let commands = service::rules(state, &hook, reply.is_some(), &spec.commands, now).await?;
    Ok(CreatedIncoming { hook, secret, commands, reply })
}

/// Store a hook [`check_incoming`] made.
pub(crate) async fn write_incoming(state: &AppState, c: &CreatedIncoming) -> Result<(), ApiError> {
    state.store.create_hook_with_rules(c.hook.clone(), c.secret.clone(), c.commands.clone()).await?;
    if let Some(r) = &c.reply {
        state.store.set_reply(&c.hook.id, Some(r.clone())).await?;
    }
    Ok(())
}

/// Replace a hook's secret (either direction) with `given` or a generated
/// one; the old one verifies for `grace_secs` more. The new secret (to be
/// shown once) and when the old one stops.
pub(crate) async fn rotate_secret(
    state: &AppState,
    found: &Found,
    given: Option<String>,
    grace_secs: u64,
) -> Result<(chorus_core::Secret, jiff::Timestamp), ApiError> {
    let (id, standard) = match found {
        Found::Incoming(h) if !h.source.has_secret() => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "this hook was created with source {:?} and has no secret to rotate",
                    h.source.as_str()
                ),
            ));
        }
        Found::Incoming(h) => (&h.id, h.source == chorus_core::Source::Standard),
        Found::Outgoing(h) => (&h.id, h.signature == chorus_core::SignatureScheme::Standard),
    };
    let verifies_only = matches!(found, Found::Incoming(_));
    let secret = service::choose_secret_for(standard, verifies_only, given)?;
    let until =
        service::now(state) + jiff::SignedDuration::from_secs(i64::try_from(grace_secs).unwrap_or(i64::MAX));
    state.store.rotate_secret(id, secret.clone(), until).await?;
    tracing::info!(hook = %id, grace_seconds = grace_secs, "webhook secret rotated");
    Ok((secret, until))
}

/// Send a failed delivery again, with a fresh set of attempts.
pub(crate) async fn retry_delivery(state: &AppState, id: &str) -> Result<chorus_core::Delivery, ApiError> {
    let delivery_id: chorus_core::DeliveryId =
        id.parse().map_err(|_| ApiError::not_found(format!("delivery {id} not found")))?;
    let delivery = state.store.retry_delivery(&delivery_id, state.clock.now()).await?;
    state.emitter.wake();
    Ok(delivery)
}

/// Send a realistic sample of the hook's source, signed with its secret,
/// through the whole ingress pipeline (checks, storage, routing, the
/// agent's channel), as if the sender had posted it; answers what the
/// sender would read (202 and its body).
pub(crate) async fn test_incoming(state: &AppState, id: &HookId) -> Result<TestOutcome, ApiError> {
    let (hook, secrets) = state
        .store
        .hook_with_secrets(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook {id} not found")))?;
    let (body, headers) = crate::samples::signed(&hook, secrets.first(), state.clock.now());
    let mut map = axum::http::HeaderMap::new();
    for (name, value) in &headers {
        let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name.as_str()),
            axum::http::HeaderValue::try_from(value.as_str()),
        ) else {
            return Err(ApiError::bad_request(format!("the sample cannot carry header {name}")));
        };
        map.insert(name, value);
    }
    // Sent from inside the hook's allow-list, which guards against other
    // senders, not against this test.
    let peer = hook
        .ip_allowlist
        .iter()
        .find_map(|c| chorus_deliver::Cidr::parse(c).ok())
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), |c| c.addr());
    let source = hook.source;
    // A watched hook's test event goes in the way its watcher's events do.
    let outcome = if source.takes_requests() {
        crate::ingress::ingest(state, hook, &secrets, &map, &body, Some(peer)).await
    } else {
        crate::ingress::ingest_watched(state, hook, &map, &body).await
    };
    let outcome = outcome.map_err(|e| {
        // A sender would get 503 from a disabled agent (retry later); for
        // the person testing, it is the hook's state that is in the way.
        let status = if e.code == ErrorCode::AgentDisabled { StatusCode::CONFLICT } else { e.status };
        ApiError { message: format!("the hook refused the test: {}", e.message), status, ..e }
    })?;
    let mut v = match outcome {
        crate::ingress::Outcome::Stored { event_id, answer: None } => json!({"event_id": event_id}),
        crate::ingress::Outcome::Stored { event_id, answer: Some(text) } => {
            json!({"event_id": event_id, "response": text})
        }
        crate::ingress::Outcome::Duplicate(original) => json!({"event_id": original, "duplicate": true}),
        crate::ingress::Outcome::Challenge(challenge) => json!({"challenge": challenge}),
    };
    v["test"] = json!(true);
    v["source"] = json!(source);
    Ok(TestOutcome { status: StatusCode::ACCEPTED, body: v })
}

/// What a hook's test send came to: the status and body a sender would get.
pub(crate) struct TestOutcome {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}
