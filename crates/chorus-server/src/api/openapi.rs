//! `GET /api/openapi.json`: the management API as an OpenAPI 3.1 document,
//! built from the operation table below. A test checks the table against
//! the router's paths and methods, so a route cannot go undocumented.

use axum::{Json, response::IntoResponse};
use serde_json::{Map, Value, json};

pub(super) const PATH: &str = "/api/openapi.json";

/// What `AgentName` accepts.
const AGENT_NAME: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";
/// A Discord id: a positive 64-bit integer in decimal.
const SNOWFLAKE: &str = "^[1-9][0-9]{0,18}$";

pub(super) async fn serve() -> impl IntoResponse {
    Json(document())
}

/// One operation: method, path, tag, summary, query parameters, request
/// body schema, success status and its body schema.
struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    query: Vec<(&'static str, Value)>,
    body: Option<Value>,
    ok: u16,
    answer: Option<Value>,
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

    fn body(mut self, schema: Value) -> Self {
        self.body = Some(schema);
        self
    }

    fn answers(mut self, status: u16, schema: Value) -> Self {
        self.ok = status;
        self.answer = Some(schema);
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

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn list_of(item: &Value) -> Value {
    json!({
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}},
    })
}

fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

fn status(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// Every operation under `/api`.
fn operations() -> Vec<Op> {
    let mut ops = hook_operations();
    ops.extend(workflow_operations());
    ops
}

fn workflow_operations() -> Vec<Op> {
    vec![
        op("get", "/api/workflows", "workflows", "Workflows, by name, with the workflow files' errors")
            .answers(200, json!({"type": "object", "properties": {"items": {"type": "array", "items": r("Workflow")}, "errors": {"type": "array"}}})),
        op("post", "/api/workflows", "workflows", "Create a workflow").body(r("WorkflowDefinition")).answers(201, r("Workflow")),
        op("post", "/api/workflows/reload", "workflows", "Read the workflows directory again now")
            .answers(200, json!({"type": "object", "properties": {"workflows": {"type": "integer"}, "errors": {"type": "array"}}})),
        op("get", "/api/workflows/{name}", "workflows", "One workflow").answers(200, r("Workflow")),
        op("put", "/api/workflows/{name}", "workflows", "Replace a workflow's definition")
            .body(r("WorkflowDefinition"))
            .answers(200, r("Workflow")),
        op("delete", "/api/workflows/{name}", "workflows", "Delete a workflow (its runs stay)"),
        op("post", "/api/workflows/{name}/enable", "workflows", "Enable a workflow").answers(200, r("Workflow")),
        op("post", "/api/workflows/{name}/disable", "workflows", "Disable a workflow (senders get 409)").answers(200, r("Workflow")),
        op("post", "/api/workflows/{name}/test", "workflows", "Run a workflow with this body, as a sender would")
            .body(json!({}))
            .answers(200, json!({"type": "object", "properties": {"status": {"type": "integer"}, "body": {"type": "object"}}})),
        op("get", "/api/runs", "workflows", "Workflow runs, newest first")
            .paged()
            .query("workflow", json!({"type": "string"}))
            .query("status", status(&["running", "waiting", "succeeded", "failed", "cancelled"]))
            .answers(200, list_of(&r("Run"))),
        op("get", "/api/runs/{id}", "workflows", "One run with each step's outcome").answers(200, r("Run")),
        op("post", "/api/runs/{id}/approve", "workflows", "Approve the run's waiting gate").answers(200, r("Decision")),
        op("post", "/api/runs/{id}/deny", "workflows", "Deny the run's waiting gate").answers(200, r("Decision")),
        op("post", "/api/runs/{id}/cancel", "workflows", "Stop a run").answers(200, r("Run")),
    ]
}

fn hook_operations() -> Vec<Op> {
    let hook = "/api/webhooks/{id}";
    vec![
        op("get", PATH, "meta", "This document"),
        op("post", "/api/agents", "agents", "Create an agent").body(r("CreateAgent")).answers(201, r("Agent")),
        op("get", "/api/agents", "agents", "List agents").paged().answers(200, list_of(&r("Agent"))),
        op("get", "/api/agents/{name}", "agents", "One agent").answers(200, r("Agent")),
        op("patch", "/api/agents/{name}", "agents", "Change an agent").body(r("UpdateAgent")).answers(200, r("Agent")),
        op("delete", "/api/agents/{name}", "agents", "Delete an agent and its hooks"),
        op("post", "/api/agents/{name}/enable", "agents", "Enable an agent").answers(200, r("Agent")),
        op("post", "/api/agents/{name}/disable", "agents", "Disable an agent").answers(200, r("Agent")),
        op("post", "/api/webhooks", "webhooks", "Create an incoming hook or an outgoing subscription")
            .body(json!({"anyOf": [r("CreateIncoming"), r("CreateOutgoing")]}))
            .answers(201, r("Webhook")),
        op("get", "/api/webhooks", "webhooks", "List hooks of both directions")
            .paged()
            .query("agent", json!({"type": "string"}))
            .query("type", status(&["incoming", "outgoing"]))
            .answers(200, list_of(&r("Webhook"))),
        op("get", hook, "webhooks", "One hook").answers(200, r("Webhook")),
        op("patch", hook, "webhooks", "Change a hook")
            .body(json!({"anyOf": [r("UpdateIncoming"), r("UpdateOutgoing")]}))
            .answers(200, r("Webhook")),
        op("put", hook, "webhooks", "Replace an incoming hook's settings and rules (seed 001's update)")
            .body(r("CreateIncoming"))
            .answers(200, r("Webhook")),
        op("delete", hook, "webhooks", "Delete a hook"),
        op("post", "/api/webhooks/{id}/enable", "webhooks", "Enable a hook").answers(200, r("Webhook")),
        op("post", "/api/webhooks/{id}/disable", "webhooks", "Disable a hook").answers(200, r("Webhook")),
        op("post", "/api/webhooks/{id}/pause", "webhooks", "Hold an outgoing hook's deliveries").answers(200, r("Webhook")),
        op("post", "/api/webhooks/{id}/resume", "webhooks", "Send what a paused hook held").answers(200, r("Webhook")),
        op("post", "/api/webhooks/{id}/rotate-secret", "webhooks", "Replace the secret; the old one verifies for a grace period")
            .body(r("RotateSecret"))
            .answers(200, r("Webhook")),
        op("post", "/api/webhooks/{id}/test", "webhooks", "Send a sample through the hook")
            .answers(202, json!({"type": "object"})),
        op("post", "/api/webhooks/{id}/recover", "webhooks", "Retry failed deliveries since a time")
            .body(r("Recover"))
            .answers(200, json!({"type": "object", "properties": {"recovered": {"type": "integer"}}})),
        op("get", "/api/webhooks/{id}/stats", "webhooks", "Delivery figures of a hook").answers(200, r("Stats")),
        op("get", "/api/webhooks/{id}/events", "webhooks", "The incoming log of a hook")
            .paged()
            .query("status", status(&["received", "routed", "filtered", "unmatched"]))
            .query("event_type", json!({"type": "string"}))
            .query("since", json!({"type": "string", "format": "date-time"}))
            .query("until", json!({"type": "string", "format": "date-time"}))
            .answers(200, list_of(&r("Event"))),
        op("get", "/api/webhooks/{id}/deliveries", "webhooks", "Deliveries of a hook")
            .paged()
            .query("status", status(&["pending", "succeeded", "failed"]))
            .answers(200, list_of(&r("Delivery"))),
        op("post", "/api/webhooks/{id}/comment", "interact", "Comment on an event's thread at its source")
            .body(r("InteractComment"))
            .answers(202, json!({"type": "object", "properties": {"event_id": {"type": "string"}, "delivery_id": {"type": "string"}}})),
        op("post", "/api/webhooks/{id}/ask", "interact", "Ask the source's people a question about an event")
            .body(r("InteractAsk"))
            .answers(201, r("Question")),
        op("post", "/api/webhooks/{id}/respond", "interact", "Answer an event's source (and its open question)")
            .body(r("InteractRespond"))
            .answers(202, json!({"type": "object", "properties": {"event_id": {"type": "string"}, "delivery_id": {"type": "string"}, "question_id": nullable("string")}})),
        op("get", "/api/webhooks/{id}/commands", "commands", "Routing rules of a hook").answers(200, list_of(&r("Command"))),
        op("post", "/api/webhooks/{id}/commands", "commands", "Add a routing rule").body(r("RuleSpec")).answers(201, r("Command")),
        op("put", "/api/webhooks/{id}/commands", "commands", "Replace the whole rule set")
            .body(json!({"type": "array", "items": r("RuleSpec"), "maxItems": 100}))
            .answers(200, list_of(&r("Command"))),
        op("get", "/api/webhooks/{id}/commands/{command_id}", "commands", "One routing rule").answers(200, r("Command")),
        op("put", "/api/webhooks/{id}/commands/{command_id}", "commands", "Replace a routing rule")
            .body(r("RuleSpec"))
            .answers(200, r("Command")),
        op("delete", "/api/webhooks/{id}/commands/{command_id}", "commands", "Remove a routing rule"),
        op("get", "/api/deliveries", "deliveries", "Deliveries of every hook")
            .paged()
            .query("status", status(&["pending", "succeeded", "failed"]))
            .answers(200, list_of(&r("Delivery"))),
        op("get", "/api/deliveries/{id}", "deliveries", "One delivery with its attempts").answers(200, r("Delivery")),
        op("post", "/api/deliveries/{id}/retry", "deliveries", "Send a delivery again now").answers(202, r("Delivery")),
        op("post", "/api/events", "events", "Emit an outgoing event")
            .body(r("Emit"))
            .answers(202, json!({"type": "object", "properties": {"event_id": {"type": "string"}, "deliveries": {"type": "array", "items": {"type": "string"}}}})),
        op("get", "/api/tasks", "tasks", "Tasks created by rules, newest first")
            .paged()
            .query("agent", json!({"type": "string"}))
            .query("status", status(&["open", "done", "failed", "cancelled"]))
            .answers(200, list_of(&r("Task"))),
        op("get", "/api/tasks/{id}", "tasks", "One task").answers(200, r("Task")),
        op("patch", "/api/tasks/{id}", "tasks", "Change an open task's title or body").body(r("TaskPatch")).answers(200, r("Task")),
        op("post", "/api/tasks/{id}/complete", "tasks", "Complete a task (emits agent.task_complete and task.executed)")
            .body(r("TaskOutcome"))
            .answers(200, r("Task")),
        op("post", "/api/tasks/{id}/fail", "tasks", "Fail a task (emits task.failed)").body(r("TaskOutcome")).answers(200, r("Task")),
        op("post", "/api/tasks/{id}/cancel", "tasks", "Cancel a task").body(r("TaskOutcome")).answers(200, r("Task")),
        op("post", "/api/tokens", "access", "Create an API token (shown once)").body(r("CreateToken")).answers(201, r("Token")),
        op("get", "/api/tokens", "access", "List API tokens").answers(200, list_of(&r("Token"))),
        op("delete", "/api/tokens/{id}", "access", "Revoke an API token").answers(200, r("Token")),
        op("get", "/api/audit", "access", "Changes on record, newest first").paged().answers(200, list_of(&r("AuditEntry"))),
        op("get", "/api/config/errors", "config", "Config files that could not be applied").answers(200, r("ConfigErrors")),
        op("get", "/metrics", "metrics", "Counters and gauges in Prometheus's text format").text("text/plain"),
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
        } else if let Some(schema) = &o.answer {
            ok["content"] = json!({"application/json": {"schema": schema}});
        } else if o.ok != 204 {
            ok["content"] = json!({"application/json": {"schema": {}}});
        }
        if o.ok == 201 {
            ok["links"] = Value::Object(links(o, &ops));
        }
        responses.insert(o.ok.to_string(), ok);
        responses.insert(
            "default".into(),
            json!({"description": "an error", "content": {"application/json": {"schema": r("Error")}}}),
        );
        let mut operation = json!({
            "operationId": operation_id(o.method, o.path),
            "tags": [o.tag],
            "summary": o.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = &o.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body}}});
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
            "schemas": schemas(),
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

fn schemas() -> Value {
    let mut all = Map::new();
    for group in [
        agent_schemas(),
        hook_schemas(),
        outgoing_schemas(),
        log_schemas(),
        task_schemas(),
        access_schemas(),
        workflow_schemas(),
        reply_schemas(),
    ] {
        if let Value::Object(m) = group {
            all.extend(m);
        }
    }
    Value::Object(all)
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn agent_schemas() -> Value {
    let time = time();
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}},
            }},
        },
        "Agent": {
            "type": "object",
            "required": ["name", "enabled"],
            "properties": {
                "name": {"type": "string"},
                "channel_id": nullable("string"),
                "discord_webhook_url": {"type": ["string", "null"], "description": "masked"},
                "enabled": {"type": "boolean"},
                "degraded": {"type": ["string", "null"], "description": "why Discord refuses the webhook URL; its messages wait until it is replaced"},
                "created_at": time,
                "updated_at": time,
            },
        },
        "CreateAgent": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "pattern": AGENT_NAME},
                "channel_id": {"type": "string", "pattern": SNOWFLAKE, "description": "a Discord channel id"},
                "discord_webhook_url": {"type": "string"},
                "enabled": {"type": "boolean"},
            },
        },
        "UpdateAgent": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "channel_id": {"type": ["string", "null"], "pattern": SNOWFLAKE},
                "discord_webhook_url": nullable("string"),
                "enabled": {"type": "boolean"},
            },
        },
    })
}

fn hook_schemas() -> Value {
    let time = time();
    let strings = strings();
    json!({
        "Webhook": {"anyOf": [r("IncomingHook"), r("OutgoingHook")]},
        "IncomingHook": {
            "type": "object",
            "required": ["id", "type", "agent", "source", "url"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "incoming"},
                "agent": {"type": "string"},
                "name": {"type": "string"},
                "source": {"type": "string"},
                "enabled": {"type": "boolean"},
                "rate_limit_per_minute": {"type": "integer"},
                "ip_allowlist": strings,
                "template": nullable("string"),
                "events": strings,
                "aggregate": {"type": ["string", "null"], "description": "the aggregation window, like 5m"},
                "notify": {"type": "string", "enum": ["every", "changes"]},
                "threads": {"type": "boolean"},
                "url": {"type": "string"},
                "webhook_id": {"type": "string"},
                "endpoint": {"type": "string"},
                "secret": {"type": ["string", "null"], "description": "only in the answer to a create or a rotation"},
                "commands": {"type": "array", "items": r("Command")},
                "reply": {"type": ["object", "null"], "description": "reply credentials, the token masked"},
                "created_at": time,
                "created_by": {"type": "string"},
                "updated_at": time,
            },
        },
        "OutgoingHook": {
            "type": "object",
            "required": ["id", "type", "url", "events"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "outgoing"},
                "agent": nullable("string"),
                "name": {"type": "string"},
                "url": {"type": "string"},
                "events": strings,
                "method": {"type": "string"},
                "headers": {"type": "object"},
                "signature": {"type": "string"},
                "timeout_ms": {"type": "integer"},
                "retry": {"type": "object"},
                "enabled": {"type": "boolean"},
                "paused": {"type": "boolean"},
                "consecutive_failures": {"type": "integer"},
                "disabled_reason": nullable("string"),
                "secret": {"type": "string", "description": "only in the answer to a create or a rotation"},
                "created_at": time,
                "updated_at": time,
            },
        },
        "CreateIncoming": {
            "type": "object",
            "additionalProperties": false,
            "description": "agent is required unless a command names one",
            "properties": {
                "agent": {"type": "string"},
                "webhook_id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{2,63}$"},
                "endpoint": {"type": "string", "description": "computed; ignored on input"},
                "type": {"const": "incoming"},
                "name": {"type": "string"},
                "source": {"type": "string", "enum": chorus_core::Source::ALL.map(chorus_core::Source::as_str)},
                "secret": {"type": "string", "minLength": 16, "maxLength": 256},
                "enabled": {"type": "boolean"},
                "rate_limit_per_minute": {"type": "integer", "minimum": crate::service::RATE.start(), "maximum": crate::service::RATE.end()},
                "ip_allowlist": strings,
                "template": {"type": "string"},
                "events": strings,
                "aggregate": {"type": ["string", "integer", "null"], "description": "1m to 24h, like 5m or seconds; off for none"},
                "notify": {"type": "string", "enum": ["every", "changes"]},
                "threads": {"type": "boolean"},
                "generic": {"type": "object"},
                "commands": {"type": "array", "items": r("RuleSpec"), "maxItems": 100},
                "reply": r("Reply"),
            },
        },
        "UpdateIncoming": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string"},
                "enabled": {"type": "boolean"},
                "rate_limit_per_minute": {"type": "integer", "minimum": crate::service::RATE.start(), "maximum": crate::service::RATE.end()},
                "ip_allowlist": strings,
                "template": nullable("string"),
                "events": strings,
                "aggregate": {"type": ["string", "integer", "null"], "description": "1m to 24h, like 5m; null or off for none"},
                "notify": {"type": "string", "enum": ["every", "changes"]},
                "threads": {"type": "boolean"},
                "reply": {"anyOf": [r("Reply"), {"type": "null"}]},
            },
        },
    })
}

fn outgoing_schemas() -> Value {
    let time = time();
    let strings = strings();
    json!({
        "CreateOutgoing": {
            "type": "object",
            "required": ["type", "url", "events"],
            "additionalProperties": false,
            "properties": {
                "type": {"const": "outgoing"},
                "agent": {"type": "string"},
                "name": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
                "events": strings,
                "method": {"type": "string", "enum": ["POST", "PUT", "PATCH"]},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "auth": {"type": "object"},
                "signature": {"type": "string", "enum": ["chorus", "standard"]},
                "secret": {"type": "string"},
                "timeout_ms": {"type": "integer"},
                "retry": {"type": "object"},
                "rate_limit_per_minute": {"type": "integer"},
                "max_concurrency": {"type": "integer"},
                "enabled": {"type": "boolean"},
            },
        },
        "UpdateOutgoing": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
                "events": strings,
                "method": {"type": "string", "enum": ["POST", "PUT", "PATCH"]},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "auth": {"type": "object"},
                "timeout_ms": {"type": "integer"},
                "retry": {"type": "object"},
                "rate_limit_per_minute": nullable("integer"),
                "max_concurrency": {"type": "integer"},
                "enabled": {"type": "boolean"},
            },
        },
        "RotateSecret": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "grace_period_seconds": {"type": "integer", "minimum": 0, "maximum": 2_592_000, "default": 86_400},
                "secret": {"type": "string"},
            },
        },
        "Recover": {
            "type": "object",
            "required": ["since"],
            "additionalProperties": false,
            "properties": {"since": time},
        },
    })
}

fn log_schemas() -> Value {
    let time = time();
    json!({
        "Command": {
            "type": "object",
            "required": ["id", "hook_id", "trigger", "action", "priority"],
            "properties": {
                "id": {"type": "string"},
                "hook_id": {"type": "string"},
                "trigger": {"type": "string"},
                "action": {"type": "string"},
                "agent": nullable("string"),
                "template": nullable("string"),
                "conditions": {"type": "object"},
                "url": nullable("string"),
                "priority": {"type": "integer"},
                "stop": {"type": "boolean"},
                "reply": {"type": "boolean"},
                "signature": nullable("string"),
                "created_at": time,
            },
        },
        "RuleSpec": {
            "type": "object",
            "required": ["trigger"],
            "additionalProperties": false,
            "properties": {
                "trigger": {"type": "string", "minLength": 1, "maxLength": 100},
                "action": {"type": "string", "enum": ["notify", "create_task", "comment", "respond", "forward"]},
                "agent": {"type": "string"},
                "template": {"type": "string"},
                "conditions": {"type": "object", "maxProperties": 20},
                "url": {"type": "string", "format": "uri"},
                "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
                "stop": {"type": "boolean"},
                "reply": {"type": "boolean", "description": "create_task: comment the result back on the source"},
                "signature": {"type": "string", "enum": ["chorus", "standard"], "description": "forward only"},
            },
        },
        "Event": {
            "type": "object",
            "required": ["id", "hook_id", "event_type", "status"],
            "properties": {
                "id": {"type": "string"},
                "hook_id": {"type": "string"},
                "agent": {"type": "string"},
                "source": {"type": "string"},
                "event_type": {"type": "string"},
                "delivery_key": nullable("string"),
                "status": {"type": "string"},
                "received_at": time,
                "size": {"type": "integer"},
                "matched_command": nullable("string"),
                "task_id": nullable("string"),
                "response_sent": {"type": "boolean"},
                "rules": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Delivery": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {
                "id": {"type": "string"},
                "event_id": nullable("string"),
                "hook_id": nullable("string"),
                "target": {},
                "status": {"type": "string"},
                "attempts": {"type": "integer"},
                "next_attempt_at": time,
                "last_error": nullable("string"),
                "created_at": time,
                "updated_at": time,
                "attempt_log": {"type": "array"},
            },
        },
        "Stats": {"type": "object"},
        "Emit": {
            "type": "object",
            "required": ["event"],
            "additionalProperties": false,
            "properties": {
                "event": {"anyOf": [
                    {"type": "string", "enum": chorus_core::EVENT_CATALOGUE},
                    {"type": "string", "pattern": "^custom\\.[a-z0-9_-]{1,40}$", "description": "custom.*"},
                ]},
                "agent": {"type": "string", "pattern": AGENT_NAME},
                "data": {},
                "metadata": {},
            },
        },
    })
}

fn task_schemas() -> Value {
    let time = time();
    json!({
        "Task": {
            "type": "object",
            "required": ["id", "agent", "title", "status"],
            "properties": {
                "id": {"type": "string"},
                "agent": {"type": "string"},
                "title": {"type": "string"},
                "body": {"type": "string"},
                "url": nullable("string"),
                "hook_id": nullable("string"),
                "event_id": nullable("string"),
                "rule_id": nullable("string"),
                "status": {"type": "string", "enum": ["open", "done", "failed", "cancelled"]},
                "result": nullable("string"),
                "reply": {"type": "boolean"},
                "created_at": time,
                "updated_at": time,
            },
        },
        "Question": {
            "type": "object",
            "required": ["id", "hook_id", "event_id", "question", "status"],
            "properties": {
                "id": {"type": "string"},
                "hook_id": {"type": "string"},
                "event_id": {"type": "string"},
                "agent": {"type": "string"},
                "question": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "answered"]},
                "answer": nullable("string"),
                "created_at": time,
                "answered_at": {"type": ["string", "null"], "format": "date-time"},
                "delivery_id": {"type": "string"},
            },
        },
        "InteractComment": {
            "type": "object",
            "required": ["event_id", "message"],
            "additionalProperties": false,
            "properties": {"event_id": {"type": "string"}, "message": {"type": "string", "minLength": 1, "maxLength": 65536, "pattern": "\\S"}},
        },
        "InteractAsk": {
            "type": "object",
            "required": ["event_id", "question"],
            "additionalProperties": false,
            "properties": {"event_id": {"type": "string"}, "question": {"type": "string", "minLength": 1, "maxLength": 65536, "pattern": "\\S"}},
        },
        "InteractRespond": {
            "type": "object",
            "required": ["event_id", "response"],
            "additionalProperties": false,
            "properties": {"event_id": {"type": "string"}, "response": {"type": "string", "minLength": 1, "maxLength": 65536, "pattern": "\\S"}},
        },
        "TaskPatch": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
                "body": {"type": "string", "maxLength": 20000},
            },
        },
        "TaskOutcome": {
            "type": "object",
            "additionalProperties": false,
            "properties": {"result": {"type": "string", "maxLength": 20000}},
        },
    })
}

fn reply_schemas() -> Value {
    json!({
        "Reply": {
            "type": "object",
            "required": ["token"],
            "additionalProperties": false,
            "description": "credentials for comment rules: github, gitlab and jira sources",
            "properties": {
                "token": {"type": "string", "minLength": 1, "maxLength": 1000},
                "email": {"type": "string", "format": "email"},
                "api_url": {"type": "string", "format": "uri"},
            },
        },
    })
}

fn workflow_schemas() -> Value {
    let time = time();
    json!({
        "WorkflowDefinition": {
            "type": "object",
            "required": ["name", "steps"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"},
                "description": {"type": "string"},
                "trigger": {"type": "string", "enum": ["webhook"]},
                "enabled": {"type": "boolean"},
                "agent": {"type": "string", "pattern": AGENT_NAME},
                "secret": {"type": ["string", "null"], "minLength": 16, "maxLength": 256},
                "verify": {"type": "string", "enum": ["github", "chorus", "gitlab", "standard", "slack", "stripe", "jira", "sentry", "circleci", "bitbucket", "gitea"]},
                "approver_role": {"type": "string", "pattern": SNOWFLAKE},
                "approval_timeout": {"type": ["string", "integer"]},
                "rate_limit_per_minute": {"type": "integer", "minimum": 1, "maximum": 100_000},
                "steps": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "required": ["name", "tool"],
                        "additionalProperties": false,
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "maxLength": 100},
                            "tool": {"type": "string"},
                            "args": {"type": "object"},
                            "requires_approval": {"type": "boolean"},
                            "when": {"type": "string"},
                            "timeout": {"type": ["string", "integer"]},
                            "on_failure": {"type": "string", "enum": ["stop", "continue"]},
                        },
                    },
                },
            },
        },
        "Workflow": {
            "type": "object",
            "required": ["id", "name", "url", "enabled", "origin", "signed", "definition"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "url": {"type": "string"},
                "enabled": {"type": "boolean"},
                "agent": nullable("string"),
                "origin": {"type": "string"},
                "signed": {"type": "boolean"},
                "definition": {"type": "object"},
                "created_at": time,
                "updated_at": time,
            },
        },
        "Run": {
            "type": "object",
            "required": ["id", "workflow", "status", "steps"],
            "properties": {
                "id": {"type": "string"},
                "workflow": {"type": "string"},
                "status": {"type": "string", "enum": ["running", "waiting", "succeeded", "failed", "cancelled"]},
                "steps_total": {"type": "integer"},
                "steps": {"type": "array", "items": {"type": "object"}},
                "approvals": {"type": "array", "items": {"type": "object"}},
                "error": nullable("string"),
                "test": {"type": "boolean"},
                "unsigned": {"type": "boolean"},
                "created_at": time,
                "updated_at": time,
            },
        },
        "Decision": {
            "type": "object",
            "required": ["run_id", "approval", "status"],
            "properties": {
                "run_id": {"type": "string"},
                "approval": {"type": "string"},
                "step": {"type": "string"},
                "status": {"type": "string", "enum": ["approved", "denied"]},
                "decided_by": {"type": "string"},
                "decided_at": time,
            },
        },
    })
}

fn access_schemas() -> Value {
    let time = time();
    json!({
        "CreateToken": {
            "type": "object",
            "required": ["name", "scope"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 100},
                "scope": {"type": "string", "enum": ["admin", "read"]},
            },
        },
        "Token": {
            "type": "object",
            "required": ["id", "name", "scope"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "scope": {"type": "string", "enum": ["admin", "read"]},
                "created_at": time,
                "revoked_at": {"type": ["string", "null"], "format": "date-time"},
                "token": {"type": "string", "description": "only in the answer to a create"},
            },
        },
        "AuditEntry": {
            "type": "object",
            "required": ["at", "actor", "via", "action"],
            "properties": {
                "at": time,
                "actor": {"type": "string"},
                "via": {"type": "string", "enum": ["api", "cli", "discord", "config"]},
                "action": {"type": "string"},
                "target": nullable("string"),
            },
        },
        "ConfigErrors": {
            "type": "object",
            "required": ["items"],
            "properties": {
                "directory": nullable("string"),
                "items": {"type": "array", "items": {
                    "type": "object",
                    "required": ["file", "line", "message"],
                    "properties": {
                        "file": {"type": "string"},
                        "line": {"type": "integer", "minimum": 1},
                        "field": nullable("string"),
                        "message": {"type": "string"},
                    },
                }},
            },
        },

    })
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
