//! The step runner: claims due runs, runs their steps in order and commits
//! each step's outcome (with its effects) before the next one starts, so a
//! run killed at any point resumes at the first step without an outcome.

use std::{sync::Arc, time::Duration};

use chorus_core::{
    AgentName, Approval, ApprovalId, ApprovalStatus, Button, ButtonStyle, Clock, DeliveryId, Effects,
    EventId, Message, NewDelivery, NewOutgoingEvent, Run, RunId, RunStatus, StepCommit, StepRecord,
    StepStatus, Store, StoreError, WorkflowStore,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    def::{OnFailure, Step, Workflow},
    template,
    tool::{ToolCall, Tools, WAIT},
};

/// Tuning for [`Runner`].
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Runs advanced at once.
    pub concurrency: usize,
    /// How long a claimed run is held before another runner may take it
    /// (renewed at every step; longer than the longest step).
    pub lease: Duration,
    /// How long shutdown waits for steps in flight before leaving them to
    /// resume on the next start.
    pub shutdown_grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            concurrency: 8,
            lease: crate::def::STEP_TIMEOUT_MAX + Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Prefix of the approve button's id: `chorus:approve:<approval id>`.
pub const APPROVE_PREFIX: &str = "chorus:approve:";
/// Prefix of the deny button's id.
pub const DENY_PREFIX: &str = "chorus:deny:";

/// A button id's decision and approval, if it is one of ours.
pub fn parse_button(custom_id: &str) -> Option<(bool, ApprovalId)> {
    let (approve, id) = if let Some(id) = custom_id.strip_prefix(APPROVE_PREFIX) {
        (true, id)
    } else {
        (false, custom_id.strip_prefix(DENY_PREFIX)?)
    };
    Some((approve, id.parse().ok()?))
}

/// Runs workflows. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn WorkflowStore>,
    agents: Arc<dyn Store>,
    tools: Tools,
    clock: Arc<dyn Clock>,
    wake: Notify,
    deliveries: Arc<Notify>,
    settled: tokio::sync::broadcast::Sender<RunId>,
    ready: tokio::sync::watch::Sender<bool>,
    config: RunnerConfig,
}

impl Runner {
    /// A runner over `store`, with `tools`; `agents` says where an agent's
    /// messages go and `deliveries` wakes the delivery engine.
    pub fn new(
        store: Arc<dyn WorkflowStore>,
        agents: Arc<dyn Store>,
        tools: Tools,
        clock: Arc<dyn Clock>,
        deliveries: Arc<Notify>,
        config: RunnerConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                agents,
                tools,
                clock,
                wake: Notify::new(),
                deliveries,
                settled: tokio::sync::broadcast::Sender::new(1024),
                ready: tokio::sync::watch::Sender::new(false),
                config,
            }),
        }
    }

    /// The registered tools.
    pub fn tools(&self) -> &Tools {
        &self.inner.tools
    }

    /// Runs became due (a new run, a decision): look now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Whether the runner has started (the workflow endpoint answers 503
    /// before).
    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// Mark the runner ready without running it (for an embedder that
    /// drives [`Runner::advance_due`] itself).
    pub fn set_ready(&self) {
        self.inner.ready.send_replace(true);
    }

    /// Ids of runs that paused (at a gate or a `wait`) or ended, as they do.
    pub fn settled(&self) -> tokio::sync::broadcast::Receiver<RunId> {
        self.inner.settled.subscribe()
    }

    /// Advance due runs until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut running: JoinSet<()> = JoinSet::new();
        self.set_ready();
        loop {
            let free = self.inner.config.concurrency.saturating_sub(running.len());
            let mut claimed_any = false;
            if free > 0 {
                match self.inner.store.claim_runs(self.inner.clock.now(), self.inner.config.lease, free).await
                {
                    Ok(runs) => {
                        claimed_any = !runs.is_empty();
                        for run in runs {
                            let this = self.clone();
                            running.spawn(async move { this.advance(run).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "workflows: could not claim runs"),
                }
            }
            if claimed_any && running.len() < self.inner.config.concurrency {
                continue;
            }
            let sleep = self.sleep_for().await;
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
        // Steps in flight get a moment to finish; what is cut off resumes
        // from its last committed step on the next start.
        let _ = tokio::time::timeout(self.inner.config.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        running.abort_all();
    }

    /// Until the next waiting run is due, at most a minute.
    async fn sleep_for(&self) -> Duration {
        let max = Duration::from_secs(60);
        match self.inner.store.next_wake().await {
            Ok(Some(at)) => {
                let now = self.inner.clock.now();
                Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO).min(max)
            }
            _ => max,
        }
    }

    /// Claim and advance the runs due now, once; for embedders and tests
    /// that drive the runner themselves.
    pub async fn advance_due(&self) -> Result<usize, StoreError> {
        let runs = self.inner.store.claim_runs(self.inner.clock.now(), self.inner.config.lease, 64).await?;
        let n = runs.len();
        for run in runs {
            self.advance(run).await;
        }
        Ok(n)
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Run `run`'s steps until it waits or ends.
    async fn advance(&self, mut run: Run) {
        let id = run.id.clone();
        let workflow = match Workflow::parse(&run.spec, &self.inner.tools) {
            Ok(w) => w,
            Err(e) => {
                // A tool unregistered since the run started, say.
                let error = format!("the workflow cannot run: {e}");
                let commit = self.finish(&run, None, RunStatus::Failed, Some(error), None).await;
                self.commit(commit).await;
                self.settle(&id);
                return;
            }
        };
        loop {
            match self.step(&workflow, &mut run).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    if !matches!(e, StoreError::Conflict(_)) {
                        tracing::warn!(run = %id, error = %e, "workflows: could not record a step; it will resume");
                    }
                    break;
                }
            }
        }
        self.settle(&id);
    }

    fn settle(&self, id: &RunId) {
        let _ = self.inner.settled.send(id.clone());
    }

    async fn commit(&self, commit: StepCommit) -> bool {
        let has_deliveries = !commit.effects.deliveries.is_empty() || !commit.effects.events.is_empty();
        match self.inner.store.commit_step(commit).await {
            Ok(()) => {
                if has_deliveries {
                    self.inner.deliveries.notify_one();
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "workflows: could not record the run's end");
                false
            }
        }
    }

    /// Take the next step of `run`. `Ok(true)` when another step follows now.
    async fn step(&self, workflow: &Workflow, run: &mut Run) -> Result<bool, StoreError> {
        let index = run.steps.len();
        let Some(step) = workflow.steps.get(index) else {
            let commit = self.finish(run, None, RunStatus::Succeeded, None, None).await;
            self.inner.store.commit_step(commit).await?;
            self.inner.deliveries.notify_one();
            return Ok(false);
        };
        let ctx = context(run);
        let started = self.now();
        if let Some(when) = &step.when {
            match when.eval(&ctx) {
                Ok(true) => {}
                Ok(false) => {
                    let record = record(index, step, StepStatus::Skipped, Value::Null, None, started, 0);
                    return self.record(workflow, run, record, Effects::default(), None).await;
                }
                Err(e) => {
                    let error = format!("when: {e}");
                    let record =
                        record(index, step, StepStatus::Failed, Value::Null, Some(error), started, 0);
                    return self.record(workflow, run, record, Effects::default(), None).await;
                }
            }
        }
        if step.requires_approval {
            let gate = run.approvals.iter().find(|a| a.step as usize == index).cloned();
            match gate.map(|g| (g.status, g)) {
                None => return self.open_gate(workflow, run, index, step, &ctx).await,
                Some((ApprovalStatus::Pending, gate)) if gate.expires_at > started => {
                    // Claimed before it was due (a restart): wait on.
                    self.inner.store.commit_step(waiting(run, gate.expires_at, started)).await?;
                    return Ok(false);
                }
                Some((ApprovalStatus::Pending | ApprovalStatus::Expired, gate)) => {
                    let error = format!("approval expired at {} with no decision", gate.expires_at);
                    let record =
                        record(index, step, StepStatus::Expired, Value::Null, Some(error), started, 0);
                    return self.record(workflow, run, record, Effects::default(), Some(gate.id)).await;
                }
                Some((ApprovalStatus::Denied, gate)) => {
                    let by = gate.decided_by.as_deref().unwrap_or("someone");
                    let record = record(
                        index,
                        step,
                        StepStatus::Denied,
                        Value::Null,
                        Some(format!("denied by {by}")),
                        started,
                        0,
                    );
                    return self.record(workflow, run, record, Effects::default(), None).await;
                }
                Some((ApprovalStatus::Approved, _)) => {}
            }
        }
        if step.tool == WAIT {
            return self.wait_step(workflow, run, index, step, &ctx, started).await;
        }
        let (status, output, error, effects) = self.call(workflow, run, index, step, &ctx).await;
        let took = Duration::try_from(self.now().duration_since(started)).unwrap_or_default();
        let record = record(index, step, status, output, error, started, took.as_millis() as u64);
        self.record(workflow, run, record, effects, None).await
    }

    /// Call the step's tool, bounded by its timeout.
    async fn call(
        &self,
        workflow: &Workflow,
        run: &Run,
        index: usize,
        step: &Step,
        ctx: &Value,
    ) -> (StepStatus, Value, Option<String>, Effects) {
        let tool = self.inner.tools.get(&step.tool).expect("checked when parsed").clone();
        let args = match template::render(&Value::Object(step.args.clone()), ctx) {
            Ok(Value::Object(args)) => args,
            Ok(_) => unreachable!("an object renders to an object"),
            Err(e) => {
                return (StepStatus::Failed, Value::Null, Some(format!("args: {e}")), Effects::default());
            }
        };
        let args =
            if tool.merges_payload() { merged(&run.payload, &ctx["previous_output"], args) } else { args };
        let call = ToolCall {
            args,
            idempotency_key: idempotency_key(&run.id, index),
            run_id: run.id.clone(),
            workflow: workflow.name.clone(),
            workflow_id: run.workflow_id.clone(),
            step: step.name.clone(),
            agent: workflow.agent.clone(),
            payload: Arc::new(run.payload.clone()),
            timeout: step.timeout,
        };
        match tokio::time::timeout(step.timeout, tool.call(call)).await {
            Ok(Ok(out)) => (StepStatus::Succeeded, out.value, None, out.effects),
            Ok(Err(e)) => (StepStatus::Failed, Value::Null, Some(e.0), Effects::default()),
            Err(_) => (
                StepStatus::Failed,
                Value::Null,
                Some(format!("timed out after {}s", step.timeout.as_secs())),
                Effects::default(),
            ),
        }
    }

    async fn wait_step(
        &self,
        workflow: &Workflow,
        run: &mut Run,
        index: usize,
        step: &Step,
        ctx: &Value,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if let Some(until) = run.wake_at
            && until <= now
        {
            let record =
                record(index, step, StepStatus::Succeeded, json!({"waited_until": until}), None, now, 0);
            return self.record(workflow, run, record, Effects::default(), None).await;
        }
        let rendered = template::render(&Value::Object(step.args.clone()), ctx);
        let duration = rendered
            .map_err(|e| format!("args: {e}"))
            .and_then(|a| crate::def::parse_duration(&a["duration"]))
            .and_then(|d| {
                if d > crate::def::WAIT_MAX { Err("a wait is at most 30 days".to_owned()) } else { Ok(d) }
            });
        match duration {
            Ok(d) => {
                let until = now + SignedDuration::try_from(d).unwrap_or(SignedDuration::ZERO);
                self.inner.store.commit_step(waiting(run, until, now)).await?;
                Ok(false)
            }
            Err(e) => {
                let record = record(index, step, StepStatus::Failed, Value::Null, Some(e), now, 0);
                self.record(workflow, run, record, Effects::default(), None).await
            }
        }
    }

    /// Reach an approval gate: record it, post Approve / Deny, and wait.
    async fn open_gate(
        &self,
        workflow: &Workflow,
        run: &mut Run,
        index: usize,
        step: &Step,
        ctx: &Value,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let expires_at =
            now + SignedDuration::try_from(workflow.approval_timeout).unwrap_or(SignedDuration::ZERO);
        let gate = Approval {
            id: ApprovalId::generate(),
            run_id: run.id.clone(),
            step: index as u32,
            step_name: step.name.clone(),
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            expires_at,
            created_at: now,
        };
        let mut commit = waiting(run, expires_at, now);
        if let Some(agent) = &workflow.agent {
            let preview = template::render(&Value::Object(step.args.clone()), ctx).map_or_else(
                |e| format!("(arguments do not render: {e})"),
                |v| serde_json::to_string_pretty(&v).unwrap_or_default(),
            );
            let message = gate_message(workflow, run, step, &gate, &preview);
            if let Some(d) = self.message(run, agent, &message).await {
                commit.effects.deliveries.push(d);
            }
        }
        commit.approval = Some(gate);
        self.inner.store.commit_step(commit).await?;
        self.inner.deliveries.notify_one();
        Ok(false)
    }

    /// Commit a step's record, ending the run when it was the last step or
    /// a failure stops it. `Ok(true)` when the run goes on.
    async fn record(
        &self,
        workflow: &Workflow,
        run: &mut Run,
        record: StepRecord,
        effects: Effects,
        expired: Option<ApprovalId>,
    ) -> Result<bool, StoreError> {
        let index = record.index as usize;
        let stop = match record.status {
            StepStatus::Failed => workflow.steps[index].on_failure == OnFailure::Stop,
            StepStatus::Denied | StepStatus::Expired => true,
            StepStatus::Succeeded | StepStatus::Skipped => false,
        };
        let last = index + 1 == workflow.steps.len();
        let now = self.now();
        let mut commit = if stop {
            let error = format!("step {}: {}", record.name, record.error.as_deref().unwrap_or("failed"));
            self.finish(run, Some(record.clone()), RunStatus::Failed, Some(error), Some(workflow)).await
        } else if last {
            self.finish(run, Some(record.clone()), RunStatus::Succeeded, None, Some(workflow)).await
        } else {
            StepCommit {
                run_id: run.id.clone(),
                step: Some(record.clone()),
                status: RunStatus::Running,
                wake_at: None,
                error: None,
                approval: None,
                expired: None,
                effects: Effects::default(),
                now,
                lease_until: Some(now + lease(&self.inner.config)),
            }
        };
        commit.effects.extend(effects);
        commit.expired = expired;
        let notify = !commit.effects.deliveries.is_empty() || !commit.effects.events.is_empty();
        self.inner.store.commit_step(commit).await?;
        if notify {
            self.inner.deliveries.notify_one();
        }
        run.steps.push(record);
        run.wake_at = None;
        Ok(!stop && !last)
    }

    /// The commit that ends `run`: its summary posted to the agent and
    /// `workflow.completed` or `workflow.failed` emitted.
    async fn finish(
        &self,
        run: &Run,
        last: Option<StepRecord>,
        status: RunStatus,
        error: Option<String>,
        workflow: Option<&Workflow>,
    ) -> StepCommit {
        let now = self.now();
        let mut steps = run.steps.clone();
        steps.extend(last.clone());
        let mut effects = Effects::default();
        let summary = RunSummary { run, steps: &steps, status, error: error.as_deref() };
        effects.events.push(summary.event(now));
        let agent = workflow.and_then(|w| w.agent.clone()).or_else(|| spec_agent(&run.spec));
        if let Some(agent) = agent
            && let Some(d) = self.message(run, &agent, &summary.message()).await
        {
            effects.deliveries.push(d);
        }
        StepCommit {
            run_id: run.id.clone(),
            step: last,
            status,
            wake_at: None,
            error,
            approval: None,
            expired: None,
            effects,
            now,
            lease_until: None,
        }
    }

    /// A message to `agent`'s channel, if it has one.
    async fn message(&self, run: &Run, agent: &AgentName, message: &Message) -> Option<NewDelivery> {
        match chorus_deliver::target_for(self.inner.agents.as_ref(), agent).await {
            Ok(Some(target)) => Some(NewDelivery {
                id: DeliveryId::generate(),
                event_id: None,
                hook_id: run.workflow_id.clone(),
                target,
                payload: serde_json::to_value(message).expect("a message serializes"),
                due_at: self.now(),
            }),
            Ok(None) => {
                tracing::warn!(run = %run.id, %agent, "workflows: the agent has no channel; nothing posted");
                None
            }
            Err(e) => {
                tracing::warn!(run = %run.id, %agent, error = %e, "workflows: agent lookup failed; nothing posted");
                None
            }
        }
    }
}

fn lease(config: &RunnerConfig) -> SignedDuration {
    SignedDuration::try_from(config.lease).unwrap_or(SignedDuration::from_mins(15))
}

fn spec_agent(spec: &Value) -> Option<AgentName> {
    spec.get("agent")?.as_str()?.parse().ok()
}

fn waiting(run: &Run, until: Timestamp, now: Timestamp) -> StepCommit {
    StepCommit {
        run_id: run.id.clone(),
        step: None,
        status: RunStatus::Waiting,
        wake_at: Some(until),
        error: None,
        approval: None,
        expired: None,
        effects: Effects::default(),
        now,
        lease_until: None,
    }
}

fn record(
    index: usize,
    step: &Step,
    status: StepStatus,
    output: Value,
    error: Option<String>,
    started_at: Timestamp,
    duration_ms: u64,
) -> StepRecord {
    StepRecord {
        index: index as u32,
        name: step.name.clone(),
        status,
        output,
        error,
        started_at,
        duration_ms,
    }
}

/// The key a step carries on every attempt, a resumed one included.
pub fn idempotency_key(run: &RunId, index: usize) -> String {
    format!("{run}.{index}")
}

/// The payload's fields beneath the step's own arguments, with
/// `previous_output` beside them (seed 003's context merge).
fn merged(payload: &Value, previous: &Value, args: Map<String, Value>) -> Map<String, Value> {
    let mut out = match payload {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    out.extend(args);
    out.entry("previous_output").or_insert_with(|| previous.clone());
    out
}

/// What templates and `when` see.
pub fn context(run: &Run) -> Value {
    let mut steps = Map::new();
    let mut previous = Value::Null;
    for s in &run.steps {
        steps.insert(
            s.name.clone(),
            json!({"status": s.status.as_str(), "output": s.output, "error": s.error}),
        );
        if s.status != StepStatus::Skipped {
            previous = s.output.clone();
        }
    }
    let headers: Map<String, Value> =
        run.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone()))).collect();
    json!({
        "payload": run.payload,
        "headers": headers,
        "previous_output": previous,
        "steps": steps,
        "run": {"id": run.id, "workflow": run.workflow, "test": run.test, "unsigned": run.unsigned},
        "workflow": run.workflow,
    })
}

fn gate_message(workflow: &Workflow, run: &Run, step: &Step, gate: &Approval, preview: &str) -> Message {
    let preview: String = preview.chars().take(900).collect();
    Message {
        description: format!(
            "Run `{}` is waiting before step **{}** (`{}`). Approve to run it and the rest of the workflow; \
             deny to stop the run. Without a decision it is denied <t:{}:R>.\n\n\
             From a terminal: `chorus-hookd runs approve {}` or `chorus-hookd runs deny {}`.",
            run.id,
            step.name,
            step.tool,
            gate.expires_at.as_second(),
            run.id,
            run.id
        ),
        color: Some(0x00F1_C40F),
        footer: Some(format!("workflow {} · {} · {}", workflow.name, run.id, gate.id)),
        buttons: vec![
            Button {
                id: format!("{APPROVE_PREFIX}{}", gate.id),
                label: "Approve".into(),
                style: ButtonStyle::Success,
            },
            Button {
                id: format!("{DENY_PREFIX}{}", gate.id),
                label: "Deny".into(),
                style: ButtonStyle::Danger,
            },
        ],
        ..Message::titled(format!("Approval needed: {} → {}", workflow.name, step.name))
    }
    .field("Arguments", format!("```json\n{preview}\n```"), false)
}

/// How a step's state reads in a summary.
fn word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Succeeded => "success",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
        StepStatus::Denied => "denied",
        StepStatus::Expired => "expired",
    }
}

/// A finished run, as its message and its outgoing event tell it.
pub struct RunSummary<'a> {
    /// The run.
    pub run: &'a Run,
    /// Its steps, the last one included.
    pub steps: &'a [StepRecord],
    /// How it ended.
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<&'a str>,
}

impl RunSummary<'_> {
    /// Seed 003's notification: "Webhook 'deploy-notify' triggered
    /// workflow:" with one line per step.
    pub fn message(&self) -> Message {
        let mut lines: Vec<String> = self
            .steps
            .iter()
            .map(|s| match &s.error {
                Some(e) if s.status != StepStatus::Succeeded => {
                    let e: String = e.chars().take(300).collect();
                    format!("  {}: {} ({e})", s.name, word(s.status))
                }
                _ => format!("  {}: {}", s.name, word(s.status)),
            })
            .collect();
        if self.status == RunStatus::Cancelled {
            lines.push("  (cancelled)".into());
        }
        let mut notes = Vec::new();
        if self.run.unsigned {
            notes.push("⚠️ accepted without a signature (CHORUS_WORKFLOWS_ALLOW_UNSIGNED)");
        }
        if self.run.test {
            notes.push("test run");
        }
        let mut description = format!("```\n{}\n```", lines.join("\n"));
        if !notes.is_empty() {
            description = format!("{description}\n{}", notes.join(" · "));
        }
        Message {
            description,
            color: Some(match self.status {
                RunStatus::Succeeded => 0x002E_CC71,
                RunStatus::Cancelled => 0x0095_A5A6,
                _ => 0x00E7_4C3C,
            }),
            footer: Some(format!("{} · {}", self.run.id, self.status.as_str())),
            ..Message::titled(format!("Webhook '{}' triggered workflow:", self.run.workflow))
        }
    }

    /// `workflow.completed`, or `workflow.failed` for a failed or cancelled run.
    pub fn event(&self, at: Timestamp) -> NewOutgoingEvent {
        let name = if self.status == RunStatus::Succeeded { "workflow.completed" } else { "workflow.failed" };
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| json!({"name": s.name, "status": s.status.as_str(), "error": s.error, "duration_ms": s.duration_ms}))
            .collect();
        NewOutgoingEvent {
            id: EventId::generate(),
            event: name.into(),
            agent: spec_agent(&self.run.spec),
            data: json!({
                "run_id": self.run.id,
                "workflow": self.run.workflow,
                "status": self.status.as_str(),
                "error": self.error,
                "steps": steps,
                "test": self.run.test,
                "unsigned": self.run.unsigned,
            }),
            metadata: json!({"workflow_id": self.run.workflow_id}),
            at,
        }
    }
}

/// `workflow.started` for a run just accepted.
pub fn started_event(run: &chorus_core::NewRun) -> NewOutgoingEvent {
    NewOutgoingEvent {
        id: EventId::generate(),
        event: "workflow.started".into(),
        agent: run.workflow.agent.clone(),
        data: json!({
            "run_id": run.id,
            "workflow": run.workflow.name,
            "test": run.test,
            "unsigned": run.unsigned,
        }),
        metadata: json!({"workflow_id": run.workflow.id}),
        at: run.created_at,
    }
}
