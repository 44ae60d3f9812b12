//! Workflows in the server: `POST /webhooks/{name}` (seed 003's status
//! codes), and the typed operations the API, the CLI, Discord and the
//! workflow files share.

use std::{sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chorus_core::{
    ApprovalId, AuditEntry, Effects, HookId, NewRun, Run, RunId, RunStatus, SecretChange, StoredWorkflow,
    WorkflowStore,
};
use chorus_workflow::{RunSummary, Runner, Workflow};
use serde_json::{Value, json};

use crate::{
    error::{ApiError, ErrorCode},
    state::AppState,
};

/// The workflow system of a running Chorus.
pub struct WorkflowSystem {
    /// Definitions, runs and approvals.
    pub store: Arc<dyn WorkflowStore>,
    /// The step runner.
    pub runner: Runner,
    /// Development mode: workflows without a secret take unsigned requests.
    pub allow_unsigned: bool,
    /// How long the endpoint waits for a run before answering 202.
    pub sync_wait: Duration,
    /// The workflow files' report.
    pub files: crate::ConfigStatus,
    /// File contents last applied, by file name.
    pub(crate) applied: tokio::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl std::fmt::Debug for WorkflowSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowSystem")
            .field("allow_unsigned", &self.allow_unsigned)
            .field("sync_wait", &self.sync_wait)
            .finish_non_exhaustive()
    }
}

/// The workflow system, or 503 while there is none or its runner has not
/// started (seed 003: "workflow system not initialized").
pub(crate) fn system(state: &AppState) -> Result<&Arc<WorkflowSystem>, ApiError> {
    match &state.workflows {
        Some(sys) if sys.runner.is_ready() => Ok(sys),
        _ => Err(ApiError::new(ErrorCode::Unavailable, "the workflow system is not ready").retry_after(5)),
    }
}

/// The workflow system for management: present even before the runner starts.
pub(crate) fn manage(state: &AppState) -> Result<&Arc<WorkflowSystem>, ApiError> {
    state
        .workflows
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "workflows are not enabled in this instance"))
}

/// A definition checked against the registered tools.
pub(crate) fn check(sys: &WorkflowSystem, value: &Value) -> Result<Workflow, ApiError> {
    Workflow::parse(value, sys.runner.tools()).map_err(|e| match e.field {
        Some(field) => ApiError::invalid(field, e.message),
        None => ApiError::bad_request(e.message),
    })
}

/// Where a definition comes from.
pub(crate) enum Origin<'a> {
    /// The API, the CLI or Discord: a file-defined workflow of the same
    /// name is refused.
    Api,
    /// A workflow file.
    File(&'a str),
}

/// Create or replace a workflow from its definition. `create`: refuse a
/// name that exists.
pub(crate) async fn put(
    state: &AppState,
    value: &Value,
    secret: SecretChange,
    origin: Origin<'_>,
    create: bool,
) -> Result<StoredWorkflow, ApiError> {
    let sys = manage(state)?;
    let wf = check(sys, value)?;
    if let Some(agent) = &wf.agent {
        crate::service::existing_agent(state, "agent", agent.as_str()).await?;
    }
    let existing = sys.store.workflow(&wf.name).await?;
    let origin = match (origin, &existing) {
        (_, Some(_)) if create => {
            return Err(ApiError::conflict(format!("workflow {} exists; PUT replaces it", wf.name)));
        }
        (Origin::Api, Some(e)) if e.origin.starts_with("file:") => {
            return Err(ApiError::conflict(format!(
                "workflow {} is defined in {}; edit the file instead",
                wf.name,
                e.origin.trim_start_matches("file:")
            )));
        }
        (Origin::Api, _) => "api".to_owned(),
        (Origin::File(name), _) => format!("file:{name}"),
    };
    let now = state.clock.now();
    let stored = StoredWorkflow {
        id: existing.as_ref().map_or_else(HookId::generate, |e| e.id.clone()),
        name: wf.name.clone(),
        enabled: wf.enabled,
        agent: wf.agent.clone(),
        origin,
        spec: chorus_workflow::without_secret(value),
        has_secret: false,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let action = if existing.is_some() { "workflows.update" } else { "workflows.create" };
    Ok(sys.store.put_workflow(stored, secret, audit(state, action, &wf.name)).await?)
}

/// The audit entry for a change through `state` (the API's or Discord's
/// actor), naming `target`.
pub(crate) fn audit(state: &AppState, action: &str, target: &str) -> Option<AuditEntry> {
    state.actor.clone().map(|e| AuditEntry { action: action.into(), target: Some(target.to_owned()), ..e })
}

/// Turn a workflow on or off.
pub(crate) async fn set_enabled(
    state: &AppState,
    name: &str,
    enabled: bool,
) -> Result<StoredWorkflow, ApiError> {
    let sys = manage(state)?;
    let mut wf = sys.store.workflow(name).await?.ok_or_else(|| not_found(name))?;
    wf.enabled = enabled;
    if let Some(map) = wf.spec.as_object_mut() {
        map.insert("enabled".into(), Value::Bool(enabled));
    }
    wf.updated_at = state.clock.now();
    let action = if enabled { "workflows.enable" } else { "workflows.disable" };
    Ok(sys.store.put_workflow(wf, SecretChange::Keep, audit(state, action, name)).await?)
}

pub(crate) fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("no workflow named {name}"))
}

/// `POST /webhooks/{name}`.
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let sys = system(&state)?.clone();
    let (parts, body) = request.into_parts();
    let body = crate::ingress::read_body(body, &parts.headers, state.settings.max_body_bytes).await?;
    let (answer_status, answer) =
        trigger(&state, &sys, &name, &parts.headers, &body, Trigger::Sender).await?;
    Ok((answer_status, Json(answer)).into_response())
}

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// A sender, whose request is verified.
    Sender,
    /// `workflows test` through the API, Discord or the CLI: already
    /// authenticated, so not verified, and marked as a test.
    Test,
}

/// Seed 003's checks, in its order: the workflow exists (404), the
/// request is signed (401) correctly (403), the workflow is enabled (409);
/// then its rate limit (429). Returns the workflow and whether it was
/// accepted unsigned (development mode).
async fn admit(
    state: &AppState,
    sys: &WorkflowSystem,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    how: Trigger,
) -> Result<(StoredWorkflow, bool), ApiError> {
    let (stored, secret) = sys.store.workflow_secret(name).await?.ok_or_else(|| not_found(name))?;
    let wf = check(sys, &stored.spec).map_err(|e| ApiError {
        cause: Some(e.message),
        ..ApiError::new(ErrorCode::Internal, "the stored definition no longer checks")
    })?;
    let now = state.clock.now();
    let mut unsigned = false;
    if how == Trigger::Sender {
        match &secret {
            Some(secret) => {
                chorus_verify::verify(wf.verify, None, std::slice::from_ref(secret), headers, body, now)
                    .map_err(|e| {
                        let code = if e.is_missing() {
                            ErrorCode::SignatureMissing
                        } else {
                            ErrorCode::SignatureInvalid
                        };
                        ApiError::new(code, e.to_string())
                    })?;
            }
            None if sys.allow_unsigned => unsigned = true,
            None => {
                return Err(ApiError::new(
                    ErrorCode::SignatureMissing,
                    "this workflow has no secret, and unsigned workflows are off (set a secret, or \
                     CHORUS_WORKFLOWS_ALLOW_UNSIGNED=true for development)",
                ));
            }
        }
    }
    if !stored.enabled {
        return Err(ApiError::new(ErrorCode::WorkflowDisabled, format!("workflow {name} is disabled")));
    }
    if how == Trigger::Sender {
        state.take_rate(&stored.id, wf.rate_limit_per_minute, now).await?;
    }
    Ok((stored, unsigned))
}

/// The HTTP-free core of the endpoint: check (seed 003's order: 404, 401,
/// 403, 409), commit the run, wait a moment for it, and say how it went.
pub(crate) async fn trigger(
    state: &AppState,
    sys: &WorkflowSystem,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    how: Trigger,
) -> Result<(StatusCode, Value), ApiError> {
    let (stored, unsigned) = admit(state, sys, name, headers, body, how).await?;
    let payload: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::new(ErrorCode::MalformedBody, format!("body is not valid JSON: {e}")))?
    };
    if unsigned {
        tracing::warn!(
            workflow = name,
            "workflow run accepted without a signature (CHORUS_WORKFLOWS_ALLOW_UNSIGNED)"
        );
    }
    let run = NewRun {
        id: RunId::generate(),
        workflow: stored,
        payload,
        headers: crate::ingress::kept_headers(headers),
        unsigned,
        test: how == Trigger::Test,
        created_at: state.clock.now(),
    };
    let run_id = run.id.clone();
    let mut settled = sys.runner.settled();
    let effects = Effects { events: vec![chorus_workflow::started_event(&run)], ..Effects::default() };
    sys.store.start_run(run, effects).await?;
    sys.runner.wake();
    state.emitter.wake();
    let waited = tokio::time::timeout(sys.sync_wait, async {
        loop {
            match settled.recv().await {
                Ok(id) if id == run_id => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    let run =
        sys.store.run(&run_id).await?.ok_or_else(|| ApiError::new(ErrorCode::Internal, "run vanished"))?;
    Ok(answer(state, &run, waited.is_ok()))
}

/// What the sender hears: 200 with the results when the run ended in
/// time, else 202 with where to follow it.
fn answer(state: &AppState, run: &Run, settled: bool) -> (StatusCode, Value) {
    let name = &run.workflow;
    if settled && run.status.is_final() {
        let results: Vec<Value> = run
            .steps
            .iter()
            .map(|s| json!({"step": s.name, "status": s.status.as_str(), "output": crate::service::views::excerpt(&s.output), "error": s.error}))
            .collect();
        let status = if run.status == RunStatus::Succeeded { "ok" } else { run.status.as_str() };
        let mut body = json!({"status": status, "workflow": name, "run_id": run.id, "results": results});
        if let Some(e) = &run.error {
            body["error"] = json!(e);
        }
        if run.unsigned {
            body["warning"] = json!("accepted without a signature (development mode)");
        }
        return (StatusCode::OK, body);
    }
    let mut body = json!({
        "status": "accepted",
        "workflow": name,
        "run_id": run.id,
        "run_status": run.status.as_str(),
        "run_url": format!("{}/api/runs/{}", state.settings.public_base, run.id),
    });
    if let Some(gate) = run.approvals.iter().find(|a| a.status == chorus_core::ApprovalStatus::Pending) {
        body["waiting_for"] =
            json!({"approval": gate.id, "step": gate.step_name, "expires_at": gate.expires_at});
    }
    (StatusCode::ACCEPTED, body)
}

/// Decide an approval gate; the run goes on (or fails) at once. `tell`:
/// post the decision in the agent's channel (a click edits its own
/// message instead).
pub(crate) async fn decide(
    state: &AppState,
    gate: &ApprovalId,
    approve: bool,
    by: &str,
    tell: bool,
) -> Result<chorus_core::Approval, ApiError> {
    let sys = manage(state)?;
    let action = if approve { "runs.approve" } else { "runs.deny" };
    let mut effects = Effects::default();
    if tell
        && let Some(gate) = sys.store.approval(gate).await?
        && let Some(run) = sys.store.run(&gate.run_id).await?
    {
        let mark = if approve { "✅ Approved" } else { "❌ Denied" };
        let message = chorus_core::Message {
            color: Some(if approve { 0x002E_CC71 } else { 0x00E7_4C3C }),
            footer: Some(format!("{} · {}", run.id, gate.id)),
            ..chorus_core::Message::titled(format!("{mark} by {by}: {} → {}", run.workflow, gate.step_name))
        };
        effects.deliveries.extend(channel_message(state, &run, &message).await?);
    }
    let decided = sys
        .store
        .decide(gate, approve, by, state.clock.now(), effects, audit(state, action, gate.as_str()))
        .await?;
    sys.runner.wake();
    state.emitter.wake();
    Ok(decided)
}

/// A message about `run` for its agent's channel, if it has an agent with one.
async fn channel_message(
    state: &AppState,
    run: &Run,
    message: &chorus_core::Message,
) -> Result<Option<chorus_core::NewDelivery>, ApiError> {
    let Some(agent) = run.spec.get("agent").and_then(Value::as_str).and_then(|a| a.parse().ok()) else {
        return Ok(None);
    };
    let Some(target) = chorus_deliver::target_for(state.store.as_ref(), &agent).await? else {
        return Ok(None);
    };
    Ok(Some(chorus_core::NewDelivery {
        id: chorus_core::DeliveryId::generate(),
        event_id: None,
        hook_id: run.workflow_id.clone(),
        target,
        payload: serde_json::to_value(message).expect("a message serializes"),
        due_at: state.clock.now(),
    }))
}

/// The pending gate of `run`, for deciding by run id.
pub(crate) async fn pending_gate(state: &AppState, run: &RunId) -> Result<ApprovalId, ApiError> {
    let sys = manage(state)?;
    let run = sys.store.run(run).await?.ok_or_else(|| ApiError::not_found(format!("no run {run}")))?;
    run.approvals
        .iter()
        .find(|a| a.status == chorus_core::ApprovalStatus::Pending)
        .map(|a| a.id.clone())
        .ok_or_else(|| ApiError::conflict(format!("run {} is not waiting for an approval", run.id)))
}

/// Stop a run; its agent is told and `workflow.failed` is emitted.
pub(crate) async fn cancel(state: &AppState, id: &RunId) -> Result<Run, ApiError> {
    let sys = manage(state)?;
    let run = sys.store.run(id).await?.ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
    if run.status.is_final() {
        return Err(ApiError::conflict(format!("run {id} is already {}", run.status.as_str())));
    }
    let now = state.clock.now();
    let summary =
        RunSummary { run: &run, steps: &run.steps, status: RunStatus::Cancelled, error: Some("cancelled") };
    let mut effects = Effects { events: vec![summary.event(now)], ..Effects::default() };
    effects.deliveries.extend(channel_message(state, &run, &summary.message()).await?);
    let run = sys.store.cancel_run(id, now, effects, audit(state, "runs.cancel", id.as_str())).await?;
    state.emitter.wake();
    Ok(run)
}
