//! Every management endpoint's answer, as a snapshot: one scripted pass over
//! the API on a pinned clock, with the HTTP side alone (no router, delivery
//! workers or workflow runner, so nothing moves between requests; workflow
//! runs answer as before the runner starts, and their success paths are in
//! workflows.rs). Generated ids, the
//! port and shown-once secrets are redacted; everything else is compared
//! as it is, so a change to any answer's shape shows in review.

use std::{collections::BTreeSet, net::SocketAddr, sync::Arc};

use chorus_core::{ManualClock, Secret, Store};
use chorus_store::{MasterKey, SqliteStore};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TOKEN;

/// Id prefixes Chorus generates (`hk_…`, `evt_…`, …).
const PREFIXES: &[&str] = &[
    "hk_",
    "evt_",
    "dlv_",
    "task_",
    "q_",
    "run_",
    "apr_",
    "tok_",
    "cmd_",
    "chr_",
    "whsec_",
    "whsk_",
    "whpk_",
    "chorus-test-",
];

/// `text` with every generated id replaced by its prefix and a number in
/// order of first appearance (`hk_1`), and the server's address by `BASE`.
fn redact_text(text: &str, base: &str, seen: &mut Vec<String>) -> String {
    let text = text.replace(base, "BASE");
    let mut out = String::new();
    let mut rest = text.as_str();
    'scan: while !rest.is_empty() {
        for prefix in PREFIXES {
            let starts_word = out.chars().last().is_none_or(|c| !c.is_ascii_alphanumeric());
            if starts_word && rest.starts_with(prefix) {
                let tail = &rest[prefix.len()..];
                let len = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .unwrap_or(tail.len());
                if len >= 8 {
                    let id = &rest[..prefix.len() + len];
                    let n = match seen.iter().position(|s| s == id) {
                        Some(i) => i + 1,
                        None => {
                            seen.push(id.to_owned());
                            seen.len()
                        }
                    };
                    out.push_str(prefix);
                    out.push_str(&n.to_string());
                    rest = &rest[prefix.len() + len..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn redact(v: &Value, base: &str, seen: &mut Vec<String>) -> Value {
    match v {
        Value::String(s) => Value::String(redact_text(s, base, seen)),
        Value::Array(items) => Value::Array(items.iter().map(|i| redact(i, base, seen)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    // Shown once and random: their presence is the point.
                    let shown_once = matches!(k.as_str(), "secret" | "token" | "public_key") && v.is_string();
                    // Keys too: a backup's file names hold ids.
                    let key = redact_text(k, base, seen);
                    (key, if shown_once { json!("<shown once>") } else { redact(v, base, seen) })
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

struct Pass {
    http: reqwest::Client,
    base: String,
    seen: Vec<String>,
    log: Vec<Value>,
    visited: BTreeSet<(String, String)>,
}

impl Pass {
    /// Call `method path` (the OpenAPI path is given for coverage) and log
    /// the redacted answer; returns the raw body.
    async fn call(&mut self, method: Method, template: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(TOKEN);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let raw: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let shown = redact(&raw, &self.base, &mut self.seen);
        let op = format!("{method} {template}");
        self.log.push(json!({"op": op, "status": status, "body": shown}));
        self.visited.insert((method.as_str().to_lowercase(), template.to_owned()));
        raw
    }
}

#[tokio::test]
async fn every_management_answer_matches_its_snapshot() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let store = Arc::new(
        SqliteStore::open(
            dir.path().join("chorus.db"),
            MasterKey::from_bytes(&[3; 32]).unwrap(),
            clock.clone(),
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let chorus = chorus_server::Chorus::builder(store.clone() as Arc<dyn Store>, Secret::new(TOKEN))
        .clock(clock)
        .public_base(base.clone())
        .ssrf_guard(chorus_deliver::SsrfGuard::from_list("127.0.0.0/8").unwrap())
        .workflows(
            store.clone() as Arc<dyn chorus_core::WorkflowStore>,
            chorus_server::WorkflowOptions {
                sync_wait: std::time::Duration::ZERO,
                allow_unsigned: true,
                ..chorus_server::WorkflowOptions::default()
            },
        )
        .build();
    // The HTTP side alone: nothing routes or sends between two requests.
    let app = chorus.app().into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut p = Pass {
        http: reqwest::Client::new(),
        base,
        seen: Vec::new(),
        log: Vec::new(),
        visited: BTreeSet::new(),
    };
    scenario(&mut p).await;
    server.abort();

    // Every documented management operation was called.
    let doc = chorus_server::openapi_document();
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if path.starts_with("/api/")
                && path != "/api/openapi.json"
                && !p.visited.contains(&(method.clone(), path.clone()))
            {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "operations without a snapshot: {missing:?}");
    insta::assert_json_snapshot!("management_api", p.log);
}

/// One pass over every operation, in an order where each finds what it
/// needs: agents, hooks and rules, outgoing subscriptions, events and
/// deliveries, interactions, tasks, workflows and runs, tokens, audit.
async fn scenario(p: &mut Pass) {
    let id = hooks_and_rules(p).await;
    let sub = events_and_subscriptions(p, &id).await;
    tasks_workflows_and_runs(p).await;
    tokens_and_audit(p, &sub).await;
}

async fn hooks_and_rules(p: &mut Pass) -> String {
    use Method as M;
    p.call(M::POST, "/api/agents", "/api/agents", Some(json!({"name": "builder", "channel_id": "4242"})))
        .await;
    p.call(M::POST, "/api/agents", "/api/agents", Some(json!({"name": "spare", "channel_id": "77"}))).await;
    p.call(M::GET, "/api/agents", "/api/agents", None).await;
    p.call(M::GET, "/api/agents/{name}", "/api/agents/builder", None).await;
    p.call(M::PATCH, "/api/agents/{name}", "/api/agents/spare", Some(json!({"channel_id": "78"}))).await;
    p.call(M::POST, "/api/agents/{name}/disable", "/api/agents/spare/disable", None).await;
    p.call(M::POST, "/api/agents/{name}/enable", "/api/agents/spare/enable", None).await;

    let hook = p
        .call(
            M::POST,
            "/api/webhooks",
            "/api/webhooks",
            Some(json!({"agent": "builder", "source": "github", "name": "octo", "events": ["push", "issues"],
                        "commands": [{"trigger": "issues.opened", "action": "create_task", "template": "Triage {{ issue.title }}"}]})),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let hooks = |rest: &str| format!("/api/webhooks/{id}{rest}");
    p.call(M::GET, "/api/webhooks", "/api/webhooks", None).await;
    p.call(M::GET, "/api/webhooks/{id}", &hooks(""), None).await;
    p.call(
        M::PATCH,
        "/api/webhooks/{id}",
        &hooks(""),
        Some(json!({"notify": "changes", "threads": true, "reply": {"token": "ghp_snapshot_token_0001"}})),
    )
    .await;
    p.call(
        M::PUT,
        "/api/webhooks/{id}",
        &hooks(""),
        Some(json!({"agent": "builder", "source": "github", "name": "octo", "events": ["push", "issues", "pull_request"],
                    "commands": [{"trigger": "issues.opened", "action": "create_task"}]})),
    )
    .await;
    p.call(M::POST, "/api/webhooks/{id}/disable", &hooks("/disable"), None).await;
    p.call(M::POST, "/api/webhooks/{id}/enable", &hooks("/enable"), None).await;
    p.call(M::POST, "/api/webhooks/{id}/rotate-secret", &hooks("/rotate-secret"), Some(json!({}))).await;

    p.call(M::GET, "/api/webhooks/{id}/commands", &hooks("/commands"), None).await;
    let added = p
        .call(
            M::POST,
            "/api/webhooks/{id}/commands",
            &hooks("/commands"),
            Some(json!({"trigger": "push", "action": "notify", "conditions": {"branch": "main"}})),
        )
        .await;
    let rule = added["id"].as_str().unwrap_or("cmd_x").to_owned();
    let one = |r: &str| hooks(&format!("/commands/{r}"));
    p.call(M::GET, "/api/webhooks/{id}/commands/{command_id}", &one(&rule), None).await;
    p.call(
        M::PUT,
        "/api/webhooks/{id}/commands/{command_id}",
        &one(&rule),
        Some(json!({"trigger": "push", "action": "notify", "priority": 3})),
    )
    .await;
    p.call(M::DELETE, "/api/webhooks/{id}/commands/{command_id}", &one(&rule), None).await;
    p.call(
        M::PUT,
        "/api/webhooks/{id}/commands",
        &hooks("/commands"),
        Some(json!([{"trigger": "issues.opened", "action": "create_task"}, {"trigger": "push", "action": "notify"}])),
    )
    .await;

    id
}

async fn events_and_subscriptions(p: &mut Pass, id: &str) -> String {
    use Method as M;
    let hooks = |rest: &str| format!("/api/webhooks/{id}{rest}");
    // A test send stores an event (no router runs: it stays received).
    let tested = p.call(M::POST, "/api/webhooks/{id}/test", &hooks("/test"), None).await;
    let event = tested["event_id"].as_str().unwrap().to_owned();
    p.call(M::GET, "/api/webhooks/{id}/events", &hooks("/events"), None).await;
    p.call(M::GET, "/api/webhooks/{id}/deliveries", &hooks("/deliveries"), None).await;
    p.call(
        M::POST,
        "/api/webhooks/{id}/comment",
        &hooks("/comment"),
        Some(json!({"event_id": event, "message": "On it."})),
    )
    .await;
    p.call(
        M::POST,
        "/api/webhooks/{id}/ask",
        &hooks("/ask"),
        Some(json!({"event_id": event, "question": "Which release?"})),
    )
    .await;
    p.call(
        M::POST,
        "/api/webhooks/{id}/respond",
        &hooks("/respond"),
        Some(json!({"event_id": event, "response": "v2"})),
    )
    .await;

    let sub = p
        .call(M::POST, "/api/webhooks", "/api/webhooks", Some(json!({"type": "outgoing", "agent": "builder", "url": "http://127.0.0.1:9/hook", "events": ["custom.*"]})))
        .await;
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let subs = |rest: &str| format!("/api/webhooks/{sub_id}{rest}");
    p.call(M::POST, "/api/webhooks/{id}/pause", &subs("/pause"), None).await;
    p.call(M::POST, "/api/webhooks/{id}/resume", &subs("/resume"), None).await;
    let emitted = p
        .call(
            M::POST,
            "/api/events",
            "/api/events",
            Some(json!({"event": "custom.deploy", "agent": "builder", "data": {"version": "2"}})),
        )
        .await;
    let delivery = emitted["deliveries"][0].as_str().unwrap_or("dlv_x").to_owned();
    p.call(M::GET, "/api/webhooks/{id}/stats", &subs("/stats"), None).await;
    p.call(
        M::POST,
        "/api/webhooks/{id}/recover",
        &subs("/recover"),
        Some(json!({"since": "2027-01-15T08:00:00Z"})),
    )
    .await;
    p.call(M::GET, "/api/deliveries", "/api/deliveries", None).await;
    p.call(M::GET, "/api/deliveries/{id}", &format!("/api/deliveries/{delivery}"), None).await;
    p.call(M::POST, "/api/deliveries/{id}/retry", &format!("/api/deliveries/{delivery}/retry"), None).await;

    sub_id
}

async fn tasks_workflows_and_runs(p: &mut Pass) {
    use Method as M;
    p.call(M::GET, "/api/tasks", "/api/tasks", None).await;
    for (method, op, rest, body) in [
        (M::GET, "/api/tasks/{id}", "", None),
        (M::PATCH, "/api/tasks/{id}", "", Some(json!({"title": "Triage"}))),
        (M::POST, "/api/tasks/{id}/complete", "/complete", Some(json!({"result": "done"}))),
        (M::POST, "/api/tasks/{id}/fail", "/fail", Some(json!({"result": "no"}))),
        (M::POST, "/api/tasks/{id}/cancel", "/cancel", None),
    ] {
        p.call(method, op, &format!("/api/tasks/task_00000000000000000000{rest}"), body).await;
    }

    let workflow = json!({"name": "deploy-notify", "trigger": "webhook", "agent": "builder",
                          "steps": [{"name": "gate", "tool": "emit_event", "args": {"event": "custom.deploy"}, "requires_approval": true}]});
    p.call(M::POST, "/api/workflows", "/api/workflows", Some(workflow.clone())).await;
    p.call(M::GET, "/api/workflows", "/api/workflows", None).await;
    p.call(M::GET, "/api/workflows/{name}", "/api/workflows/deploy-notify", None).await;
    let mut changed = workflow;
    changed["description"] = json!("Ask before each deploy");
    p.call(M::PUT, "/api/workflows/{name}", "/api/workflows/deploy-notify", Some(changed)).await;
    p.call(M::POST, "/api/workflows/{name}/disable", "/api/workflows/deploy-notify/disable", None).await;
    p.call(M::POST, "/api/workflows/{name}/enable", "/api/workflows/deploy-notify/enable", None).await;
    p.call(
        M::POST,
        "/api/workflows/{name}/test",
        "/api/workflows/deploy-notify/test",
        Some(json!({"version": "2"})),
    )
    .await;
    p.call(M::POST, "/api/workflows/reload", "/api/workflows/reload", None).await;
    let runs = p.call(M::GET, "/api/runs", "/api/runs", None).await;
    let run = runs["items"][0]["id"].as_str().unwrap_or("run_x").to_owned();
    p.call(M::GET, "/api/runs/{id}", &format!("/api/runs/{run}"), None).await;
    p.call(M::POST, "/api/runs/{id}/approve", &format!("/api/runs/{run}/approve"), Some(json!({}))).await;
    p.call(M::POST, "/api/runs/{id}/deny", &format!("/api/runs/{run}/deny"), Some(json!({}))).await;
    p.call(M::POST, "/api/runs/{id}/cancel", &format!("/api/runs/{run}/cancel"), None).await;
    p.call(M::DELETE, "/api/workflows/{name}", "/api/workflows/deploy-notify", None).await;
}

async fn tokens_and_audit(p: &mut Pass, sub_id: &str) {
    use Method as M;
    let token = p
        .call(M::POST, "/api/tokens", "/api/tokens", Some(json!({"name": "dashboard", "scope": "read"})))
        .await;
    p.call(M::GET, "/api/tokens", "/api/tokens", None).await;
    let token_id = token["id"].as_str().unwrap_or("tok_x").to_owned();
    p.call(M::DELETE, "/api/tokens/{id}", &format!("/api/tokens/{token_id}"), None).await;
    p.call(M::GET, "/api/config/errors", "/api/config/errors", None).await;
    p.call(M::GET, "/api/backup", "/api/backup", None).await;
    let restored = json!({"agents/restored.json": "{\"name\": \"restored\", \"channel_id\": \"42\"}"});
    let backup = json!({"format": "chorus-backup/1", "files": restored});
    p.call(M::POST, "/api/backup/import", "/api/backup/import", Some(backup)).await;

    p.call(M::DELETE, "/api/webhooks/{id}", &format!("/api/webhooks/{sub_id}"), None).await;
    p.call(M::DELETE, "/api/agents/{name}", "/api/agents/spare", None).await;
    p.call(M::GET, "/api/audit", "/api/audit", None).await;
}
