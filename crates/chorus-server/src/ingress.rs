//! `POST /webhook/{agent}/{hook_id}`: the hot path.
//!
//! Order of checks (ARCHITECTURE.md): body size → agent and hook exist →
//! IP allow-list and signature → hook enabled → agent enabled → rate limit →
//! body format → dedupe → durable store. Only a caller holding the secret
//! learns whether a hook is disabled, and invalid requests never spend the
//! sender's rate budget.

use std::net::{IpAddr, SocketAddr};

use axum::{
    Json,
    body::Body,
    extract::{ConnectInfo, Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use chorus_core::{AgentName, EventId, HookId, IngestOutcome, NewEvent, Source};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::{Value, json};

use chorus_deliver::Cidr;

use crate::{error::ApiError, error::ErrorCode, state::AppState};

/// Headers kept with an event (beside the body) are capped in number and size.
const HEADERS_MAX: usize = 64;
const HEADER_VALUE_MAX: usize = 1024;

fn too_large(max: usize) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("body is larger than {max} bytes"))
}

fn unknown_hook() -> ApiError {
    // One answer for "no such agent" and "no such hook under it", so the
    // response does not tell which part of a guessed URL was right.
    ApiError::not_found("no such agent or hook")
}

pub(crate) async fn read_body(body: Body, headers: &HeaderMap, max: usize) -> Result<Bytes, ApiError> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > max as u64
    {
        return Err(too_large(max));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large(max)),
        Err(e) => Err(ApiError::bad_request(format!("could not read the body: {e}"))),
    }
}

pub(crate) fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !chorus_verify::headers::SENSITIVE.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            let v = value.to_str().ok()?;
            Some((name.as_str().to_owned(), v.chars().take(HEADER_VALUE_MAX).collect()))
        })
        .take(HEADERS_MAX)
        .collect()
}

/// The sender's address: the connection's peer, unless that peer is a
/// trusted proxy; then the nearest address in `X-Forwarded-For` that is not
/// one (addresses further left could be written by the sender itself).
fn sender_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    let mut sender = peer;
    for hop in hops.iter().rev() {
        match hop {
            // A hop we cannot read ends what can be believed.
            None => return sender,
            Some(ip) if is_trusted(*ip) => sender = *ip,
            Some(ip) => return *ip,
        }
    }
    sender
}

/// Handle one incoming webhook at `/webhook/{agent}/{hook_id}`.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path((agent, hook_id)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let (Ok(agent_name), Ok(hook_id)) = (agent.parse::<AgentName>(), hook_id.parse::<HookId>()) else {
        return Err(unknown_hook());
    };
    accept(state, hook_id, request, |hook| hook.agent == agent_name).await
}

/// The same, at seed 001's `/webhooks/{provider}/{webhook_id}`: the hook's
/// id or its user-chosen `webhook_id`, under its own source's name.
pub(crate) async fn receive_by_provider(
    State(state): State<AppState>,
    Path((provider, id)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let hook_id = match id.parse::<HookId>() {
        Ok(h) => h,
        Err(_) => state.store.hook_by_slug(&id).await?.ok_or_else(unknown_hook)?,
    };
    accept(state, hook_id, request, |hook| hook.source.as_str() == provider).await
}

/// Everything after the URL named a hook; `belongs` checks the rest of the
/// URL against it (a wrong agent or provider answers as an unknown hook).
async fn accept(
    state: AppState,
    hook_id: HookId,
    request: Request,
    belongs: impl Fn(&chorus_core::IncomingHook) -> bool,
) -> Result<Response, ApiError> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let peer = peer.map(|p| sender_ip(p, request.headers(), &state.settings.trusted_proxies));
    let (parts, body) = request.into_parts();
    let found = state.store.hook_with_secrets(&hook_id).await.map(|h| h.filter(|(hook, _)| belongs(hook)));
    let source = match &found {
        Ok(Some((hook, _))) => hook.source.as_str(),
        _ => "unknown",
    };
    let answer = async {
        let body = read_body(body, &parts.headers, state.settings.max_body_bytes).await?;
        state.metrics.body(body.len());
        let Some((hook, secrets)) = found? else {
            return Err(unknown_hook());
        };
        answer(&state, hook, &secrets, &parts.headers, &body, peer).await
    }
    .await;
    let status = match &answer {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status.as_u16(),
    };
    state.metrics.request(source, status);
    answer
}

/// What a sender hears for a request matched to `hook`.
async fn answer(
    state: &AppState,
    hook: chorus_core::IncomingHook,
    secrets: &[chorus_core::Secret],
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<IpAddr>,
) -> Result<Response, ApiError> {
    let source = hook.source;
    Ok(match ingest(state, hook, secrets, headers, body, peer).await? {
        Outcome::Stored { event_id, answer: None } => {
            (StatusCode::ACCEPTED, Json(json!({"event_id": event_id}))).into_response()
        }
        // Slack shows `text` to the user (slash commands, interactivity).
        Outcome::Stored { answer: Some(text), .. } if source == Source::Slack => {
            (StatusCode::OK, Json(json!({"text": text}))).into_response()
        }
        Outcome::Stored { event_id, answer: Some(text) } => {
            (StatusCode::ACCEPTED, Json(json!({"event_id": event_id, "response": text}))).into_response()
        }
        Outcome::Duplicate(original) => {
            (StatusCode::OK, Json(json!({"event_id": original, "duplicate": true}))).into_response()
        }
        Outcome::Challenge(challenge) => Json(json!({"challenge": challenge})).into_response(),
    })
}

/// What ingress made of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Committed under this id; `answer` is a `respond` rule's answer.
    Stored { event_id: EventId, answer: Option<String> },
    /// The hook already has an event with this delivery id.
    Duplicate(EventId),
    /// A Slack `url_verification` challenge to echo; nothing stored.
    Challenge(String),
}

/// The HTTP-free core of ingress, for a request already read and matched to
/// `hook`: checks (in ARCHITECTURE's order), durable store, and a respond
/// rule's answer. The handler and the hook test both call it.
pub(crate) async fn ingest(
    state: &AppState,
    hook: chorus_core::IncomingHook,
    secrets: &[chorus_core::Secret],
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<IpAddr>,
) -> Result<Outcome, ApiError> {
    let Some(agent) = state.store.agent(&hook.agent).await? else {
        return Err(unknown_hook());
    };
    let now = state.clock.now();
    admit(state, &hook, &agent, secrets, headers, body, peer, now)?;
    state.take_rate(&hook.id, hook.rate_limit_per_minute, now).await?;
    commit(state, hook, headers, body).await
}

/// Store what a watcher (the Docker engine's event stream) read for `hook`:
/// the sender is Chorus itself, so neither signature, allow-list nor rate
/// limit applies; the enabled flags and everything after do.
pub(crate) async fn ingest_watched(
    state: &AppState,
    hook: chorus_core::IncomingHook,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Outcome, ApiError> {
    let Some(agent) = state.store.agent(&hook.agent).await? else {
        return Err(unknown_hook());
    };
    switched_on(&hook, &agent)?;
    commit(state, hook, headers, body).await
}

/// Read an admitted body as its format and commit it.
async fn commit(
    state: &AppState,
    hook: chorus_core::IncomingHook,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Outcome, ApiError> {
    let now = state.clock.now();
    // Only what the source's descriptor reads; the router reads the rest
    // from the stored body.
    let parsed: Option<Value> = match chorus_providers::ingress_view(hook.source, body) {
        Ok(v) => Some(v),
        Err(e) if hook.source.expects_json() => {
            return Err(ApiError::new(ErrorCode::MalformedBody, format!("body is not valid JSON: {e}")));
        }
        Err(_) => None,
    };
    let provider = chorus_providers::of(hook.source);
    // A handshake to echo (Slack checks a new Events API URL this way).
    if let Some(challenge) = parsed.as_ref().and_then(|v| provider.challenge(v)) {
        return Ok(Outcome::Challenge(challenge));
    }
    let event_type =
        chorus_providers::event_type(hook.source, headers, parsed.as_ref().unwrap_or(&Value::Null));
    let event = NewEvent {
        id: EventId::generate(),
        hook_id: hook.id.clone(),
        agent: hook.agent.clone(),
        source: hook.source,
        delivery_key: provider.delivery_key(headers, parsed.as_ref()),
        event_type: event_type.clone(),
        headers: kept_headers(headers),
        body: body.to_vec(),
        received_at: now,
    };
    match state.store.ingest(event).await? {
        IngestOutcome::Stored(event_id) => {
            state.events.notify_one();
            tracing::debug!(hook = %hook.id, event = %event_id, "webhook stored");
            // Committed: now the sender may hear a rule's answer.
            let answer =
                if parsed.is_some() { respond(state, &hook, &event_type, body).await? } else { None };
            Ok(Outcome::Stored { event_id, answer })
        }
        IngestOutcome::Duplicate(original) => {
            tracing::info!(hook = %hook.id, event = %original, "duplicate delivery ignored");
            Ok(Outcome::Duplicate(original))
        }
    }
}

/// The answer of the first `respond` rule that fires for this event, if
/// the hook has one. Rules are evaluated as the router will evaluate them
/// (all of them, in order, `stop` included), without the state kept per
/// subject, which only the router reads.
async fn respond(
    state: &AppState,
    hook: &chorus_core::IncomingHook,
    event_type: &str,
    body: &[u8],
) -> Result<Option<String>, ApiError> {
    let rules = state.store.ingress_rules(&hook.id).await?;
    if rules.is_empty() || !hook.routes(event_type) {
        return Ok(None);
    }
    // The view refused what this parse would refuse; `Null` is never seen.
    let payload: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let ctx =
        chorus_rules::context(hook.source, event_type, &payload, &chorus_rules::SubjectState::default());
    for verdict in chorus_rules::evaluate(&rules, event_type, &ctx) {
        if let chorus_rules::Verdict::Fired(rule) = verdict
            && rule.action == chorus_core::Action::Respond
        {
            let template = rule.template.as_deref().unwrap_or_default();
            match chorus_rules::render(template, &ctx) {
                Ok(text) => return Ok(Some(text)),
                Err(e) => {
                    tracing::info!(hook = %hook.id, rule = %rule.id, error = %e, "respond template failed");
                }
            }
        }
    }
    Ok(None)
}

/// Everything between "the hook exists" and the rate limit: allow-list,
/// signature, enabled flags, in that order.
#[allow(clippy::too_many_arguments)]
fn admit(
    state: &AppState,
    hook: &chorus_core::IncomingHook,
    agent: &chorus_core::Agent,
    secrets: &[chorus_core::Secret],
    headers: &HeaderMap,
    body: &[u8],
    peer: Option<std::net::IpAddr>,
    now: jiff::Timestamp,
) -> Result<(), ApiError> {
    if !hook.ip_allowlist.is_empty() {
        let allowed = peer.is_some_and(|ip| {
            hook.ip_allowlist.iter().filter_map(|c| Cidr::parse(c).ok()).any(|c| c.contains(ip))
        });
        if !allowed {
            return Err(ApiError::new(
                ErrorCode::IpNotAllowed,
                "sender address is not in the hook's allow-list",
            ));
        }
    }
    if !hook.source.takes_requests() {
        return Err(ApiError::new(
            ErrorCode::WatchedHook,
            format!("this hook is fed by the {} watcher and takes no requests", hook.source.as_str()),
        ));
    }
    if let Err(e) = chorus_verify::verify(hook.source, hook.generic.as_ref(), secrets, headers, body, now) {
        tracing::info!(hook = %hook.id, reason = %e, "webhook rejected");
        state.metrics.verification_failure(hook.source.as_str(), verify_reason(&e));
        return Err(if e.is_missing() {
            ApiError::new(ErrorCode::SignatureMissing, e.to_string())
        } else {
            ApiError::new(ErrorCode::SignatureInvalid, e.to_string())
        });
    }
    switched_on(hook, agent)
}

/// Whether the hook and its agent take events: both enabled.
fn switched_on(hook: &chorus_core::IncomingHook, agent: &chorus_core::Agent) -> Result<(), ApiError> {
    if !hook.enabled {
        return Err(ApiError::new(ErrorCode::HookDisabled, "this hook is disabled"));
    }
    if !agent.enabled {
        return Err(ApiError::new(ErrorCode::AgentDisabled, "this agent is disabled"));
    }
    Ok(())
}

/// A refused signature's reason, as `/metrics` labels it.
fn verify_reason(e: &chorus_verify::VerifyError) -> &'static str {
    use chorus_verify::VerifyError as E;
    match e {
        E::MissingHeader(_) => "missing_header",
        E::MalformedHeader(_) => "malformed_header",
        E::InvalidSignature => "invalid_signature",
        E::TimestampOutOfTolerance => "timestamp",
        E::BadSecret => "bad_secret",
        E::NoRequests => "no_requests",
        _ => "other",
    }
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Straight from the sender: the header is the sender's to forge.
        assert_eq!(sender_ip(ip("198.51.100.9"), &headers(&["203.0.113.7"]), &trusted), ip("198.51.100.9"));
        // Through our proxy: the nearest untrusted hop, not a forged one left of it.
        let h = headers(&["192.0.2.1, 203.0.113.7", "10.0.0.2"]);
        assert_eq!(sender_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        // A proxy without the header, or only proxies in it.
        assert_eq!(sender_ip(ip("10.0.0.1"), &headers(&[]), &trusted), ip("10.0.0.1"));
        assert_eq!(sender_ip(ip("10.0.0.1"), &headers(&["10.0.0.3"]), &trusted), ip("10.0.0.3"));
        // An unreadable hop ends the walk at the last proxy.
        assert_eq!(sender_ip(ip("10.0.0.1"), &headers(&["203.0.113.7, unknown"]), &trusted), ip("10.0.0.1"));
        // No trusted proxies configured: never believed.
        assert_eq!(sender_ip(ip("10.0.0.1"), &headers(&["203.0.113.7"]), &[]), ip("10.0.0.1"));
    }
}
