//! `GET /api/openapi.json`: the management API as an OpenAPI 3.1 document.
//! The operation table below names each operation's request and answer
//! types; their schemas are generated from those types (the ones the
//! handlers deserialize and serialize), so the document cannot drift from
//! the code. A test checks the table against the router's paths and
//! methods, so a route cannot go undocumented.

use axum::{Json, response::IntoResponse};
use chorus_core::{AuditEntry, HookStats, Task};
use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::{access, events, interact, tasks, webhooks};
use crate::{
    error::ErrorBody,
    service::{
        IncomingSpec, RuleSpec,
        agents::CreateAgent,
        backup::{Backup, ExportView, ImportedView},
        outgoing::{CreateOutgoing, UpdateOutgoing},
        views::{
            AgentView, AskedView, CommandView, ConfigErrorsView, DecisionView, DeliveryList, DeliveryView,
            EmittedView, EventView, List, Page, RecoveredView, ReloadedView, RunView, TokenView, WebhookView,
            WorkflowTestView, WorkflowView, WorkflowsView, WrittenView,
        },
    },
};

pub(super) const PATH: &str = "/api/openapi.json";

pub(super) async fn serve() -> impl IntoResponse {
    Json(document())
}

/// A schema made by the document's generator: a `$ref` to a component for
/// named types.
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// One operation: method, path, tag, summary, query parameters, request
/// body type, success status and its answer type.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    query: Vec<(&'static str, Value)>,
    body: Option<SchemaFn>,
    ok: u16,
    answer: Option<SchemaFn>,
    /// The success answer's media type, when it is not JSON.
    text: Option<&'static str>,
}

fn op(method: &'static str, path: &'static str, tag: &'static str, summary: &'static str) -> Op {
    let ok = if method == "delete" { 204 } else { 200 };
    Op { method, path, tag, summary, query: Vec::new(), body: None, ok, answer: None, text: None }
}

impl Op {
    fn query(mut self, name: &'static str, schema: Value) -> Self {
        self.query.push((name, schema));
        self
    }

    fn body<T: JsonSchema>(mut self) -> Self {
        self.body = Some(SchemaGenerator::subschema_for::<T>);
        self
    }

    fn answers<T: JsonSchema>(mut self, status: u16) -> Self {
        self.ok = status;
        self.answer = Some(SchemaGenerator::subschema_for::<T>);
        self
    }

    fn text(mut self, media_type: &'static str) -> Self {
        self.text = Some(media_type);
        self
    }

    fn paged(self) -> Self {
        self.query("limit", json!({"type": "integer", "minimum": 1, "maximum": 250, "default": 50}))
            .query("cursor", json!({"type": "string"}))
    }
}

fn status(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// `POST /api/webhooks` takes either direction's create.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum CreateWebhook {
    Incoming(IncomingSpec),
    Outgoing(CreateOutgoing),
}

/// `PATCH /api/webhooks/{id}` takes either direction's changes.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum UpdateWebhook {
    Incoming(webhooks::UpdateHook),
    Outgoing(UpdateOutgoing),
}

/// A hook's whole rule set.
#[derive(JsonSchema)]
#[serde(transparent)]
#[allow(dead_code)]
struct RuleSet(#[schemars(length(max = crate::service::COMMANDS_MAX))] Vec<RuleSpec>);

/// Every operation under `/api`.
fn operations() -> Vec<Op> {
    let mut ops = hook_operations();
    ops.extend(delivery_and_task_operations());
    ops.extend(workflow_operations());
    ops
}

fn workflow_operations() -> Vec<Op> {
    vec![
        op("get", "/api/workflows", "workflows", "Workflows, by name, with the workflow files' errors")
            .answers::<WorkflowsView>(200),
        op("post", "/api/workflows", "workflows", "Create a workflow")
            .body::<chorus_workflow::WorkflowDefinition>()
            .answers::<WorkflowView>(201),
        op("post", "/api/workflows/reload", "workflows", "Read the workflows directory again now")
            .answers::<ReloadedView>(200),
        op("get", "/api/workflows/{name}", "workflows", "One workflow").answers::<WorkflowView>(200),
        op("put", "/api/workflows/{name}", "workflows", "Replace a workflow's definition")
            .body::<chorus_workflow::WorkflowDefinition>()
            .answers::<WorkflowView>(200),
        op("delete", "/api/workflows/{name}", "workflows", "Delete a workflow (its runs stay)"),
        op("post", "/api/workflows/{name}/enable", "workflows", "Enable a workflow")
            .answers::<WorkflowView>(200),
        op("post", "/api/workflows/{name}/disable", "workflows", "Disable a workflow (senders get 409)")
            .answers::<WorkflowView>(200),
        op(
            "post",
            "/api/workflows/{name}/test",
            "workflows",
            "Run a workflow with this body, as a sender would",
        )
        .body::<Value>()
        .answers::<WorkflowTestView>(200),
        op("get", "/api/runs", "workflows", "Workflow runs, newest first")
            .paged()
            .query("workflow", json!({"type": "string"}))
            .query("status", status(&["running", "waiting", "succeeded", "failed", "cancelled"]))
            .answers::<Page<RunView>>(200),
        op("get", "/api/runs/{id}", "workflows", "One run with each step's outcome").answers::<RunView>(200),
        op("post", "/api/runs/{id}/approve", "workflows", "Approve the run's waiting gate")
            .answers::<DecisionView>(200),
        op("post", "/api/runs/{id}/deny", "workflows", "Deny the run's waiting gate")
            .answers::<DecisionView>(200),
        op("post", "/api/runs/{id}/cancel", "workflows", "Stop a run").answers::<RunView>(200),
    ]
}

fn hook_operations() -> Vec<Op> {
    let hook = "/api/webhooks/{id}";
    vec![
        op("get", PATH, "meta", "This document"),
        op("post", "/api/agents", "agents", "Create an agent")
            .body::<CreateAgent>()
            .answers::<AgentView>(201),
        op("get", "/api/agents", "agents", "List agents").paged().answers::<Page<AgentView>>(200),
        op("get", "/api/agents/{name}", "agents", "One agent").answers::<AgentView>(200),
        op("patch", "/api/agents/{name}", "agents", "Change an agent")
            .body::<super::agents::UpdateAgent>()
            .answers::<AgentView>(200),
        op("delete", "/api/agents/{name}", "agents", "Delete an agent and its hooks"),
        op("post", "/api/agents/{name}/enable", "agents", "Enable an agent").answers::<AgentView>(200),
        op("post", "/api/agents/{name}/disable", "agents", "Disable an agent").answers::<AgentView>(200),
        op("post", "/api/webhooks", "webhooks", "Create an incoming hook or an outgoing subscription")
            .body::<CreateWebhook>()
            .answers::<WebhookView>(201),
        op("get", "/api/webhooks", "webhooks", "List hooks of both directions")
            .paged()
            .query("agent", json!({"type": "string"}))
            .query("type", status(&["incoming", "outgoing"]))
            .answers::<Page<WebhookView>>(200),
        op("get", hook, "webhooks", "One hook").answers::<WebhookView>(200),
        op("patch", hook, "webhooks", "Change a hook").body::<UpdateWebhook>().answers::<WebhookView>(200),
        op("put", hook, "webhooks", "Replace an incoming hook's settings and rules (seed 001's update)")
            .body::<IncomingSpec>()
            .answers::<WebhookView>(200),
        op("delete", hook, "webhooks", "Delete a hook"),
        op("post", "/api/webhooks/{id}/enable", "webhooks", "Enable a hook").answers::<WebhookView>(200),
        op("post", "/api/webhooks/{id}/disable", "webhooks", "Disable a hook").answers::<WebhookView>(200),
        op("post", "/api/webhooks/{id}/pause", "webhooks", "Hold an outgoing hook's deliveries")
            .answers::<WebhookView>(200),
        op("post", "/api/webhooks/{id}/resume", "webhooks", "Send what a paused hook held")
            .answers::<WebhookView>(200),
        op(
            "post",
            "/api/webhooks/{id}/rotate-secret",
            "webhooks",
            "Replace the secret; the old one verifies for a grace period",
        )
        .body::<webhooks::RotateBody>()
        .answers::<WebhookView>(200),
        op("post", "/api/webhooks/{id}/test", "webhooks", "Send a sample through the hook")
            .answers::<Value>(202),
        op("post", "/api/webhooks/{id}/recover", "webhooks", "Retry failed deliveries since a time")
            .body::<webhooks::RecoverBody>()
            .answers::<RecoveredView>(200),
        op("get", "/api/webhooks/{id}/stats", "webhooks", "Delivery figures of a hook")
            .answers::<HookStats>(200),
        op("get", "/api/webhooks/{id}/events", "webhooks", "The incoming log of a hook")
            .paged()
            .query("status", status(&["received", "routed", "filtered", "unmatched"]))
            .query("event_type", json!({"type": "string"}))
            .query("since", json!({"type": "string", "format": "date-time"}))
            .query("until", json!({"type": "string", "format": "date-time"}))
            .answers::<Page<EventView>>(200),
        op("get", "/api/webhooks/{id}/deliveries", "webhooks", "Deliveries of a hook")
            .paged()
            .query("status", status(&["pending", "succeeded", "failed"]))
            .answers::<Page<DeliveryView>>(200),
        op("post", "/api/webhooks/{id}/comment", "interact", "Comment on an event's thread at its source")
            .body::<interact::CommentBody>()
            .answers::<WrittenView>(202),
        op("post", "/api/webhooks/{id}/ask", "interact", "Ask the source's people a question about an event")
            .body::<interact::AskBody>()
            .answers::<AskedView>(201),
        op(
            "post",
            "/api/webhooks/{id}/respond",
            "interact",
            "Answer an event's source (and its open question)",
        )
        .body::<interact::RespondBody>()
        .answers::<WrittenView>(202),
        op("get", "/api/webhooks/{id}/commands", "commands", "Routing rules of a hook")
            .answers::<List<CommandView>>(200),
        op("post", "/api/webhooks/{id}/commands", "commands", "Add a routing rule")
            .body::<RuleSpec>()
            .answers::<CommandView>(201),
        op("put", "/api/webhooks/{id}/commands", "commands", "Replace the whole rule set")
            .body::<RuleSet>()
            .answers::<List<CommandView>>(200),
        op("get", "/api/webhooks/{id}/commands/{command_id}", "commands", "One routing rule")
            .answers::<CommandView>(200),
        op("put", "/api/webhooks/{id}/commands/{command_id}", "commands", "Replace a routing rule")
            .body::<RuleSpec>()
            .answers::<CommandView>(200),
        op("delete", "/api/webhooks/{id}/commands/{command_id}", "commands", "Remove a routing rule"),
    ]
}

fn delivery_and_task_operations() -> Vec<Op> {
    vec![
        op("get", "/api/deliveries", "deliveries", "Deliveries of every hook")
            .paged()
            .query("status", status(&["pending", "succeeded", "failed"]))
            .answers::<DeliveryList>(200),
        op("get", "/api/deliveries/{id}", "deliveries", "One delivery with its attempts")
            .answers::<DeliveryView>(200),
        op("post", "/api/deliveries/{id}/retry", "deliveries", "Send a delivery again now")
            .answers::<DeliveryView>(202),
        op("post", "/api/events", "events", "Emit an outgoing event")
            .body::<events::EmitBody>()
            .answers::<EmittedView>(202),
        op("get", "/api/tasks", "tasks", "Tasks created by rules, newest first")
            .paged()
            .query("agent", json!({"type": "string"}))
            .query("status", status(&["open", "done", "failed", "cancelled"]))
            .answers::<Page<Task>>(200),
        op("get", "/api/tasks/{id}", "tasks", "One task").answers::<Task>(200),
        op("patch", "/api/tasks/{id}", "tasks", "Change an open task's title or body")
            .body::<tasks::Patch>()
            .answers::<Task>(200),
        op(
            "post",
            "/api/tasks/{id}/complete",
            "tasks",
            "Complete a task (emits agent.task_complete and task.executed)",
        )
        .body::<tasks::Outcome>()
        .answers::<Task>(200),
        op("post", "/api/tasks/{id}/fail", "tasks", "Fail a task (emits task.failed)")
            .body::<tasks::Outcome>()
            .answers::<Task>(200),
        op("post", "/api/tasks/{id}/cancel", "tasks", "Cancel a task")
            .body::<tasks::Outcome>()
            .answers::<Task>(200),
        op("post", "/api/tokens", "access", "Create an API token (shown once)")
            .body::<access::CreateToken>()
            .answers::<TokenView>(201),
        op("get", "/api/tokens", "access", "List API tokens").answers::<List<TokenView>>(200),
        op("delete", "/api/tokens/{id}", "access", "Revoke an API token").answers::<TokenView>(200),
        op("get", "/api/audit", "access", "Changes on record, newest first")
            .paged()
            .answers::<Page<AuditEntry>>(200),
        op("get", "/api/config/errors", "config", "Config files that could not be applied")
            .answers::<ConfigErrorsView>(200),
        op("get", "/api/backup", "config", "Agents, hooks, workflows and subscriptions as backup files")
            .query("secrets", json!({"type": "boolean", "default": false}))
            .answers::<ExportView>(200),
        op("post", "/api/backup/import", "config", "Create what backup files describe; all or nothing")
            .body::<Backup>()
            .answers::<ImportedView>(200),
        op("get", "/metrics", "metrics", "Counters and gauges in Prometheus's text format")
            .text("text/plain"),
    ]
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// OpenAPI links from a create to what can be done with what it made:
/// `POST /api/webhooks` → every `/api/webhooks/{id}…` operation, its `id`
/// taken from the answer. Clients (and schemathesis) follow them.
fn links(created: &Op, all: &[Op]) -> Map<String, Value> {
    let key = if created.path == "/api/agents" { "/name" } else { "/id" };
    let prefix = format!("{}/{{", created.path);
    let mut out = Map::new();
    for target in all.iter().filter(|t| t.path.starts_with(&prefix)) {
        let new_param = target.path[prefix.len()..].split('}').next().unwrap_or_default();
        let mut parameters = Map::new();
        for param in path_parameters(created.path) {
            let name = param["name"].as_str().unwrap_or_default().to_owned();
            parameters.insert(name.clone(), json!(format!("$request.path.{name}")));
        }
        parameters.insert(new_param.to_owned(), json!(format!("$response.body#{key}")));
        out.insert(
            operation_id(target.method, target.path),
            json!({"operationId": operation_id(target.method, target.path), "parameters": parameters}),
        );
    }
    out
}

/// The document.
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = generator.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    let ops = operations();
    for o in &ops {
        let mut parameters = path_parameters(o.path);
        parameters.extend(
            o.query.iter().map(|(name, schema)| json!({"name": name, "in": "query", "schema": schema})),
        );
        if o.method == "post" {
            parameters.push(json!({
                "name": "Idempotency-Key",
                "in": "header",
                "description": "retries with the same key get the first answer for a day",
                "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
            }));
        }
        let mut responses = Map::new();
        let mut ok = json!({"description": "success"});
        if let Some(media_type) = o.text {
            ok["content"] = json!({media_type: {"schema": {"type": "string"}}});
        } else if let Some(schema) = o.answer {
            ok["content"] = json!({"application/json": {"schema": schema(&mut generator)}});
        } else if o.ok != 204 {
            ok["content"] = json!({"application/json": {"schema": {}}});
        }
        if o.ok == 201 {
            ok["links"] = Value::Object(links(o, &ops));
        }
        responses.insert(o.ok.to_string(), ok);
        responses.insert(
            "default".into(),
            json!({"description": "an error", "content": {"application/json": {"schema": error}}}),
        );
        let mut operation = json!({
            "operationId": operation_id(o.method, o.path),
            "tags": [o.tag],
            "summary": o.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = o.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body(&mut generator)}}});
        }
        if o.path == PATH {
            operation["security"] = json!([]);
        }
        let entry = paths.entry(o.path).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Chorus management API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Agents, incoming hooks, outgoing subscriptions, routing rules, deliveries, tokens and the audit log.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": generator.take_definitions(true),
        },
    })
}

/// `post /api/webhooks/{id}/rotate-secret` → `post_webhooks_id_rotate_secret`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .trim_start_matches("/api/")
        .split('/')
        .map(|s| s.trim_matches(['{', '}']).replace(['-', '.'], "_"))
        .collect();
    format!("{method}_{}", words.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_and_refs_resolve() {
        let doc = document();
        let mut ids = std::collections::HashSet::new();
        for (_, item) in doc["paths"].as_object().unwrap() {
            for (_, op) in item.as_object().unwrap() {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_owned()), "{op}");
            }
        }
        let text = doc.to_string();
        for name in text.split("#/components/schemas/").skip(1).map(|s| s.split('"').next().unwrap()) {
            assert!(doc["components"]["schemas"].get(name).is_some(), "unresolved $ref {name}");
        }
    }
}
