//! What the management surfaces show: typed views of agents, hooks, rules,
//! events, deliveries, tokens and workflows. The API answers with them,
//! the Discord commands read them, and the OpenAPI document's answer
//! schemas are generated from them, so the document cannot drift from
//! what is sent.

use chorus_core::{
    Action, Agent, AgentName, ApiToken, Attempt, Delivery, DeliveryCounts, DeliveryId, DeliveryStatus, Event,
    EventId, EventStatus, GenericScheme, HookId, HttpMethod, IncomingHook, OutgoingAuth, OutgoingHook,
    Question, RetryPolicy, Rule, RuleOutcome, SignatureScheme, Source,
};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::state::AppState;

/// One page of a list, and the cursor of the next (none on the last).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}Page")]
pub(crate) struct Page<T> {
    /// This page's items.
    pub(crate) items: Vec<T>,
    /// Pass as `cursor` for the next page.
    pub(crate) next_cursor: Option<String>,
}

/// A whole list, unpaged.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "{T}List")]
pub(crate) struct List<T> {
    pub(crate) items: Vec<T>,
}

/// A marker serialized as one fixed string: a hook's `type`.
macro_rules! fixed_kind {
    ($name:ident, $text:literal) => {
        #[doc = concat!("Always `", $text, "`.")]
        #[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
        pub(crate) enum $name {
            #[serde(rename = $text)]
            #[doc = concat!("`", $text, "`")]
            Only,
        }
    };
}

fixed_kind!(IncomingKind, "incoming");
fixed_kind!(OutgoingKind, "outgoing");

/// An agent; the Discord webhook URL's token is masked.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Agent")]
pub(crate) struct AgentView {
    pub(crate) name: AgentName,
    /// The Discord channel its messages go to through the bot.
    pub(crate) channel_id: Option<String>,
    /// Its Discord webhook URL, the token masked.
    pub(crate) discord_webhook_url: Option<String>,
    pub(crate) enabled: bool,
    /// Why Discord refuses the webhook URL; its messages wait until it is
    /// replaced.
    pub(crate) degraded: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl AgentView {
    pub(crate) fn of(agent: &Agent) -> Self {
        let masked =
            agent.discord_webhook_url.as_ref().map(|u| match chorus_discord::parse_webhook_url(u.expose()) {
                Some((id, _)) => format!("https://discord.com/api/webhooks/{id}/****"),
                None => "****".to_owned(),
            });
        Self {
            name: agent.name.clone(),
            channel_id: agent.channel_id.clone(),
            discord_webhook_url: masked,
            enabled: agent.enabled,
            degraded: agent.degraded.clone(),
            created_at: agent.created_at,
            updated_at: agent.updated_at,
        }
    }
}

/// Credentials shown once: in the answer to a create or a rotation.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct ShownOnce {
    /// The signing secret; null for a hook that verifies nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<Option<String>>,
    /// A Standard Webhooks `whsk_` secret's public key, for receivers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) public_key: Option<String>,
    /// Until when the replaced secret still verifies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous_secret_expires_at: Option<Timestamp>,
}

impl ShownOnce {
    pub(crate) fn secret(secret: &chorus_core::Secret) -> Self {
        Self {
            secret: Some(Some(secret.expose().to_owned())),
            public_key: chorus_verify::standard_public_key(secret),
            previous_secret_expires_at: None,
        }
    }
}

/// Reply credentials as views show them: never the token.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ReplyCredentials")]
pub(crate) struct ReplyView {
    pub(crate) api_url: Option<String>,
    pub(crate) email: Option<String>,
    /// Always masked.
    pub(crate) token: &'static str,
}

impl ReplyView {
    pub(crate) fn of(reply: Option<&chorus_core::ReplyConfig>) -> Option<Self> {
        reply.map(|r| Self { api_url: r.api_url.clone(), email: r.email.clone(), token: "********" })
    }
}

/// An incoming hook.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "IncomingHook")]
pub(crate) struct IncomingView {
    pub(crate) id: HookId,
    pub(crate) agent: AgentName,
    #[serde(rename = "type")]
    pub(crate) kind: IncomingKind,
    pub(crate) name: String,
    pub(crate) source: Source,
    pub(crate) enabled: bool,
    pub(crate) rate_limit_per_minute: u32,
    pub(crate) ip_allowlist: Vec<String>,
    pub(crate) template: Option<String>,
    pub(crate) events: Vec<String>,
    /// The aggregation window, like `5m`; none: a message per event.
    pub(crate) aggregate: Option<String>,
    /// `every` event, or only `changes` of a CI result or an alert.
    #[schemars(extend("enum" = ["every", "changes"]))]
    pub(crate) notify: &'static str,
    pub(crate) threads: bool,
    /// Where senders post.
    pub(crate) url: String,
    pub(crate) webhook_id: String,
    pub(crate) endpoint: String,
    pub(crate) created_at: Timestamp,
    pub(crate) created_by: String,
    pub(crate) updated_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) generic: Option<GenericScheme>,
    /// Its routing rules (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) commands: Option<Vec<CommandView>>,
    /// Its reply credentials, the token masked (not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reply: Option<Option<ReplyView>>,
    #[serde(flatten)]
    pub(crate) shown_once: ShownOnce,
    /// Something the caller should know about what was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<&'static str>,
}

impl IncomingView {
    pub(crate) fn of(state: &AppState, h: &IncomingHook) -> Self {
        let webhook_id = h.slug.clone().unwrap_or_else(|| h.id.to_string());
        Self {
            id: h.id.clone(),
            agent: h.agent.clone(),
            kind: IncomingKind::Only,
            name: h.name.clone(),
            source: h.source,
            enabled: h.enabled,
            rate_limit_per_minute: h.rate_limit_per_minute,
            ip_allowlist: h.ip_allowlist.clone(),
            template: h.template.clone(),
            events: h.events.clone(),
            aggregate: super::show_aggregate(h.aggregate_secs),
            notify: super::show_notify(h.notify_changes),
            threads: h.threads,
            url: state.hook_url(h.agent.as_str(), h.id.as_str()),
            endpoint: format!("/webhooks/{}/{webhook_id}", h.source),
            webhook_id,
            created_at: h.created_at,
            created_by: h.created_by.clone(),
            updated_at: h.updated_at,
            generic: h.generic.clone(),
            commands: None,
            reply: None,
            shown_once: ShownOnce::default(),
            warning: None,
        }
    }

    /// With its rules and reply credentials, as one hook is shown.
    #[must_use]
    pub(crate) fn with_details(mut self, rules: &[Rule], reply: Option<&chorus_core::ReplyConfig>) -> Self {
        self.commands = Some(rules.iter().map(CommandView::of).collect());
        self.reply = Some(ReplyView::of(reply));
        self
    }
}

/// An outgoing subscription.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "OutgoingHook")]
pub(crate) struct OutgoingView {
    pub(crate) id: HookId,
    pub(crate) agent: Option<AgentName>,
    #[serde(rename = "type")]
    pub(crate) kind: OutgoingKind,
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) events: Vec<String>,
    pub(crate) method: HttpMethod,
    pub(crate) headers: Map<String, Value>,
    pub(crate) signature: SignatureScheme,
    pub(crate) timeout_ms: u64,
    pub(crate) retry: RetryPolicy,
    pub(crate) rate_limit_per_minute: Option<u32>,
    pub(crate) max_concurrency: u32,
    pub(crate) enabled: bool,
    pub(crate) paused: bool,
    pub(crate) consecutive_failures: u32,
    /// While the circuit breaker is open (after repeated failures): its
    /// deliveries wait until then, and new events still queue for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) breaker_open_until: Option<Timestamp>,
    /// Why the circuit breaker or the receiver turned it off.
    pub(crate) disabled_reason: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) created_by: String,
    pub(crate) updated_at: Timestamp,
    /// How Chorus authenticates to the receiver, credentials masked (only
    /// in the answer to a create).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auth: Option<Value>,
    #[serde(flatten)]
    pub(crate) shown_once: ShownOnce,
}

impl OutgoingView {
    pub(crate) fn of(h: &OutgoingHook, auth: Option<&OutgoingAuth>) -> Self {
        Self {
            id: h.id.clone(),
            agent: h.agent.clone(),
            kind: OutgoingKind::Only,
            name: h.name.clone(),
            url: h.url.clone(),
            events: h.events.clone(),
            method: h.method,
            headers: h.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect(),
            signature: h.signature,
            timeout_ms: h.timeout_ms,
            retry: h.retry,
            rate_limit_per_minute: h.rate_limit_per_minute,
            max_concurrency: h.max_concurrency,
            enabled: h.enabled,
            paused: h.paused,
            consecutive_failures: h.consecutive_failures,
            breaker_open_until: h.breaker_until,
            disabled_reason: h.disabled_reason.clone(),
            created_at: h.created_at,
            created_by: h.created_by.clone(),
            updated_at: h.updated_at,
            auth: auth.map(OutgoingAuth::public_view),
            shown_once: ShownOnce::default(),
        }
    }
}

/// A hook of either direction.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Webhook")]
pub(crate) enum WebhookView {
    Incoming(Box<IncomingView>),
    Outgoing(Box<OutgoingView>),
}

/// A routing rule.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Command")]
pub(crate) struct CommandView {
    pub(crate) id: String,
    pub(crate) hook_id: HookId,
    pub(crate) trigger: String,
    pub(crate) action: Action,
    pub(crate) agent: Option<AgentName>,
    pub(crate) template: Option<String>,
    pub(crate) conditions: Map<String, Value>,
    pub(crate) url: Option<String>,
    pub(crate) priority: i32,
    pub(crate) stop: bool,
    pub(crate) reply: bool,
    /// `forward` rules: how the forwarded request is signed.
    pub(crate) signature: Option<SignatureScheme>,
    pub(crate) created_at: Timestamp,
}

impl CommandView {
    pub(crate) fn of(c: &Rule) -> Self {
        Self {
            id: c.id.clone(),
            hook_id: c.hook_id.clone(),
            trigger: c.trigger.clone(),
            action: c.action,
            agent: c.agent.clone(),
            template: c.template.clone(),
            conditions: c.conditions.clone(),
            url: c.url.clone(),
            priority: c.priority,
            stop: c.stop,
            reply: c.reply,
            signature: (c.action == Action::Forward).then_some(c.signature),
            created_at: c.created_at,
        }
    }
}

/// An event in a hook's incoming log.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Event")]
pub(crate) struct EventView {
    pub(crate) id: EventId,
    pub(crate) hook_id: HookId,
    pub(crate) agent: AgentName,
    pub(crate) source: Source,
    pub(crate) event_type: String,
    /// The provider's delivery id, which deduplicates retries.
    pub(crate) delivery_key: Option<String>,
    pub(crate) status: EventStatus,
    pub(crate) received_at: Timestamp,
    /// The body's size in bytes.
    pub(crate) size: usize,
    /// The first rule that fired.
    pub(crate) matched_command: Option<String>,
    /// The task a rule created.
    pub(crate) task_id: Option<String>,
    /// Whether a `respond` rule answered the source.
    pub(crate) response_sent: bool,
    /// What each rule did with the event.
    pub(crate) rules: Vec<RuleOutcome>,
}

impl EventView {
    pub(crate) fn of(e: &Event) -> Self {
        use chorus_core::RuleResult;
        Self {
            id: e.id.clone(),
            hook_id: e.hook_id.clone(),
            agent: e.agent.clone(),
            source: e.source,
            event_type: e.event_type.clone(),
            delivery_key: e.delivery_key.clone(),
            status: e.status,
            received_at: e.received_at,
            size: e.body.len(),
            matched_command: e
                .outcomes
                .iter()
                .find(|o| o.result == RuleResult::Fired)
                .map(|o| o.rule_id.clone()),
            task_id: e.outcomes.iter().find_map(|o| o.task_id.clone()),
            response_sent: e
                .outcomes
                .iter()
                .any(|o| o.action == Action::Respond && o.result == RuleResult::Fired),
            rules: e.outcomes.clone(),
        }
    }
}

/// A delivery: a message or request on its way, and its attempts.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Delivery")]
pub(crate) struct DeliveryView {
    pub(crate) id: DeliveryId,
    pub(crate) event_id: Option<EventId>,
    pub(crate) hook_id: HookId,
    pub(crate) target: chorus_core::Target,
    pub(crate) status: DeliveryStatus,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Timestamp,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    /// An outgoing delivery's event name (in a subscription's list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) event: Option<Value>,
    /// What is sent (one delivery only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<Value>,
    /// Every attempt, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attempt_log: Option<Vec<Attempt>>,
}

impl DeliveryView {
    pub(crate) fn of(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            hook_id: d.hook_id.clone(),
            target: d.target.clone(),
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            updated_at: d.updated_at,
            event: None,
            payload: None,
            attempt_log: None,
        }
    }
}

/// Deliveries of every hook, with the counts by state.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "DeliveryList")]
pub(crate) struct DeliveryList {
    pub(crate) items: Vec<DeliveryView>,
    pub(crate) next_cursor: Option<String>,
    pub(crate) counts: DeliveryCounts,
    /// Whether a bot token is set, so channel deliveries can be sent.
    pub(crate) discord_bot_configured: bool,
}

/// An API token; the token itself only in the answer to its create.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Token")]
pub(crate) struct TokenView {
    #[serde(flatten)]
    pub(crate) token: ApiToken,
    /// The bearer token, shown once.
    #[serde(skip_serializing_if = "Option::is_none", rename = "token")]
    pub(crate) value: Option<String>,
}

/// A question asked at an event's source, and the delivery carrying it.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Question")]
pub(crate) struct AskedView {
    #[serde(flatten)]
    pub(crate) question: Question,
    pub(crate) delivery_id: DeliveryId,
}

/// A comment or an answer on its way to an event's source.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Written")]
#[allow(clippy::struct_field_names)]
pub(crate) struct WrittenView {
    pub(crate) event_id: EventId,
    pub(crate) delivery_id: DeliveryId,
    /// The question the answer closed (`respond`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) question_id: Option<Option<String>>,
}

/// An outgoing event and the deliveries it became.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Emitted")]
pub(crate) struct EmittedView {
    pub(crate) event_id: EventId,
    pub(crate) deliveries: Vec<DeliveryId>,
}

/// A test event sent to a subscription.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "TestSent")]
pub(crate) struct TestSentView {
    pub(crate) event_id: EventId,
    pub(crate) delivery_id: Option<DeliveryId>,
}

/// How many failed deliveries were set to go again.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Recovered")]
pub(crate) struct RecoveredView {
    pub(crate) recovered: u64,
}

/// Config or workflow files that could not be applied.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "ConfigErrors")]
pub(crate) struct ConfigErrorsView {
    /// The directory read, when there is one.
    pub(crate) directory: Option<String>,
    pub(crate) items: Vec<crate::config_files::ConfigFileError>,
}

/// A workflow.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Workflow")]
pub(crate) struct WorkflowView {
    pub(crate) id: HookId,
    pub(crate) name: String,
    /// Where senders post to start a run.
    pub(crate) url: String,
    pub(crate) enabled: bool,
    pub(crate) agent: Option<AgentName>,
    /// `api`, or the file it was read from.
    pub(crate) origin: String,
    /// Whether senders must sign.
    pub(crate) signed: bool,
    /// The definition, without its secret.
    pub(crate) definition: Value,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl WorkflowView {
    pub(crate) fn of(state: &AppState, w: &chorus_core::StoredWorkflow) -> Self {
        Self {
            id: w.id.clone(),
            name: w.name.clone(),
            url: format!("{}/webhooks/{}", state.settings.public_base, w.name),
            enabled: w.enabled,
            agent: w.agent.clone(),
            origin: w.origin.clone(),
            signed: w.has_secret,
            definition: w.spec.clone(),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// The workflows, and the workflow files that could not be read.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Workflows")]
pub(crate) struct WorkflowsView {
    pub(crate) items: Vec<WorkflowView>,
    pub(crate) errors: Vec<crate::config_files::ConfigFileError>,
}

/// What a reload of the workflows directory found.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Reloaded")]
pub(crate) struct ReloadedView {
    /// Workflows there are now.
    pub(crate) workflows: usize,
    pub(crate) errors: Vec<crate::config_files::ConfigFileError>,
}

/// What a sender would have got from a test run.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "WorkflowTest")]
pub(crate) struct WorkflowTestView {
    /// The HTTP status.
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// One step of a run.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "RunStep")]
pub(crate) struct StepView {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) status: chorus_core::StepStatus,
    /// What the tool returned (cut to about 1 KiB in lists).
    pub(crate) output: Value,
    pub(crate) error: Option<String>,
    pub(crate) started_at: Timestamp,
    pub(crate) duration_ms: u64,
}

/// An approval gate of a run.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "RunApproval")]
pub(crate) struct ApprovalView {
    pub(crate) id: chorus_core::ApprovalId,
    pub(crate) step: u32,
    pub(crate) step_name: String,
    pub(crate) status: chorus_core::ApprovalStatus,
    pub(crate) decided_by: Option<String>,
    pub(crate) decided_at: Option<Timestamp>,
    pub(crate) expires_at: Timestamp,
}

/// A workflow run.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Run")]
pub(crate) struct RunView {
    pub(crate) id: chorus_core::RunId,
    pub(crate) workflow: String,
    pub(crate) status: chorus_core::RunStatus,
    pub(crate) steps_total: usize,
    pub(crate) steps: Vec<StepView>,
    pub(crate) approvals: Vec<ApprovalView>,
    pub(crate) error: Option<String>,
    /// When a waiting step wakes.
    pub(crate) wake_at: Option<Timestamp>,
    /// Started by the API's test, not by a sender.
    pub(crate) test: bool,
    /// Accepted without a signature.
    pub(crate) unsigned: bool,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) finished_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<&'static str>,
    /// The body that started it (one run only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<Value>,
}

impl RunView {
    /// `full`: one run, with whole outputs and its payload; lists cut
    /// outputs to an excerpt.
    pub(crate) fn of(run: &chorus_core::Run, full: bool) -> Self {
        let steps = run
            .steps
            .iter()
            .map(|s| StepView {
                index: s.index,
                name: s.name.clone(),
                status: s.status,
                output: if full { s.output.clone() } else { excerpt(&s.output) },
                error: s.error.clone(),
                started_at: s.started_at,
                duration_ms: s.duration_ms,
            })
            .collect();
        let approvals = run
            .approvals
            .iter()
            .map(|a| ApprovalView {
                id: a.id.clone(),
                step: a.step,
                step_name: a.step_name.clone(),
                status: a.status,
                decided_by: a.decided_by.clone(),
                decided_at: a.decided_at,
                expires_at: a.expires_at,
            })
            .collect();
        Self {
            id: run.id.clone(),
            workflow: run.workflow.clone(),
            status: run.status,
            steps_total: run.spec.get("steps").and_then(Value::as_array).map_or(0, Vec::len),
            steps,
            approvals,
            error: run.error.clone(),
            wake_at: run.wake_at,
            test: run.test,
            unsigned: run.unsigned,
            created_at: run.created_at,
            updated_at: run.updated_at,
            finished_at: run.finished_at,
            warning: run.unsigned.then_some("accepted without a signature (CHORUS_WORKFLOWS_ALLOW_UNSIGNED)"),
            payload: full.then(|| run.payload.clone()),
        }
    }
}

/// A value cut to about 1 KiB of JSON, for lists and summaries.
pub(crate) fn excerpt(v: &Value) -> Value {
    let text = v.to_string();
    if text.len() <= 1024 {
        return v.clone();
    }
    let cut: String = text.chars().take(1024).collect();
    Value::String(format!("{cut}…"))
}

/// A decision at an approval gate.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "Decision")]
pub(crate) struct DecisionView {
    pub(crate) run_id: chorus_core::RunId,
    pub(crate) approval: chorus_core::ApprovalId,
    pub(crate) step: String,
    pub(crate) status: chorus_core::ApprovalStatus,
    pub(crate) decided_by: Option<String>,
    pub(crate) decided_at: Option<Timestamp>,
}
