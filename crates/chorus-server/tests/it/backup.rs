//! Backups: what one server exports, a second imports, and the second then
//! serves the same senders, rules, workflows and subscribers.

use chorus_core::Secret;
use chorus_testkit::{Reply, TestReceiver};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, github_headers};

const HOOK_SECRET: &str = "github-hook-secret-0123456789";
const REPLY_TOKEN: &str = "ghp_reply-token-0123456789";
const BEARER: &str = "subscriber-bearer-0123456789";
const SUB_SECRET: &str = "subscription-secret-0123456789";
const WORKFLOW_SECRET: &str = "workflow-secret-0123456789";
const WEBHOOK_URL: &str = "https://discord.com/api/webhooks/123/agent-webhook-token-0123456789";

/// A team on `app`: two agents (one reachable only by its webhook URL), a
/// GitHub hook with rules and reply credentials, a workflow and a
/// subscription, each with a secret. Returns the hook's and the
/// subscription's ids.
async fn team(app: &TestApp, receiver: &TestReceiver) -> (String, String) {
    app.agent("builder", "4242").await;
    let (status, v) = app
        .api_json(
            Method::POST,
            "/api/agents",
            Some(json!({"name": "hooked", "discord_webhook_url": WEBHOOK_URL})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "github", "name": "Pushes", "secret": HOOK_SECRET,
            "webhook_id": "pushes", "rate_limit_per_minute": 120, "events": ["push", "issues"],
            "reply": {"token": REPLY_TOKEN},
            "commands": [
                {"trigger": "push", "action": "create_task", "template": "Review {{ ref }}", "priority": 5},
                {"trigger": "issues.opened", "action": "comment", "template": "Seen."},
            ],
        }))
        .await;
    let definition = json!({
        "name": "deploy", "agent": "builder", "secret": WORKFLOW_SECRET,
        "steps": [{"name": "remember", "tool": "memory_store", "args": {"fact": "deployed"}}],
    });
    let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    assert_eq!(status, 201, "{v}");
    let (sub, _) = app
        .outgoing(json!({
            "url": receiver.url("/in"), "events": ["agent.commit"], "secret": SUB_SECRET,
            "auth": {"type": "bearer", "token": BEARER}, "headers": {"X-Team": "infra"},
        }))
        .await;
    (hook.id, sub)
}

async fn export(app: &TestApp, secrets: bool) -> Value {
    let path = if secrets { "/api/backup?secrets=true" } else { "/api/backup" };
    let (status, v) = app.api_json(Method::GET, path, None).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn import(app: &TestApp, files: &Value) -> (u16, Value) {
    app.api_json(
        Method::POST,
        "/api/backup/import",
        Some(json!({"format": "chorus-backup/1", "files": files})),
    )
    .await
}

async fn count(app: &TestApp, path: &str) -> usize {
    let (status, v) = app.api_json(Method::GET, path, None).await;
    assert_eq!(status, 200, "{v}");
    v["items"].as_array().unwrap().len()
}

/// Agents, hooks, workflows and subscriptions on `app`.
async fn inventory(app: &TestApp) -> [usize; 4] {
    [
        count(app, "/api/agents").await,
        count(app, "/api/webhooks?limit=250").await,
        count(app, "/api/workflows").await,
        count(app, "/api/tasks").await,
    ]
}

#[tokio::test]
async fn a_backup_with_secrets_serves_the_same_senders_on_a_new_server() {
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200));
    let old = TestApp::start().await;
    let (hook_id, sub_id) = team(&old, &receiver).await;
    let backup = export(&old, true).await;
    let text = backup.to_string();
    for secret in [HOOK_SECRET, REPLY_TOKEN, BEARER, SUB_SECRET, WORKFLOW_SECRET, "agent-webhook-token"] {
        assert!(!text.contains(secret), "{secret} is in the backup in plain text");
    }
    let files = &backup["files"];
    assert!(files[format!("webhooks/{hook_id}.json")].is_string(), "{files}");
    assert!(files[format!("subscriptions/{sub_id}.json")].is_string(), "{files}");
    assert_eq!(backup["secrets"], true);

    // A new server with the same master key takes it whole.
    let new = TestApp::start().await;
    let (status, made) = import(&new, files).await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["agents"], json!(["builder", "hooked"]));
    assert_eq!(made["webhooks"][0]["id"], hook_id.as_str());
    assert!(made["webhooks"][0].get("secret").is_none(), "the backup's secret is kept: {made}");

    // The sender keeps its URL's id and secret: the push is accepted and
    // the rule makes its task.
    let body =
        serde_json::to_vec(&json!({"ref": "refs/heads/main", "repository": {"full_name": "o/r"}})).unwrap();
    let url = format!("{}/webhook/builder/{hook_id}", new.base);
    let resp = new.post(&url, &github_headers(HOOK_SECRET, "push", "d-1", &body), body).await;
    assert_eq!(resp.status(), 202);
    let accepted: Value = resp.json().await.unwrap();
    let event = crate::rules::routed(&new, &hook_id, accepted["event_id"].as_str().unwrap()).await;
    let task = event["task_id"].as_str().expect("the rule made a task");
    let (_, task) = new.api_json(Method::GET, &format!("/api/tasks/{task}"), None).await;
    assert_eq!(task["title"], "Review refs/heads/main", "{task}");
    let (_, rules) = new.api_json(Method::GET, &format!("/api/webhooks/{hook_id}/commands"), None).await;
    let triggers: Vec<&str> =
        rules["items"].as_array().unwrap().iter().map(|r| r["trigger"].as_str().unwrap()).collect();
    assert_eq!(triggers, ["push", "issues.opened"]);
    let (_, shown) = new.api_json(Method::GET, "/api/webhooks/pushes", None).await;
    assert_eq!(
        (shown["rate_limit_per_minute"].as_u64(), shown["reply"]["token"].as_str()),
        (Some(120), Some("********"))
    );

    // The workflow still wants its secret.
    let wf = serde_json::to_vec(&json!({"go": true})).unwrap();
    let resp = new
        .post(
            &format!("{}/webhooks/deploy", new.base),
            &github_headers(WORKFLOW_SECRET, "push", "w-1", &wf),
            wf.clone(),
        )
        .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let resp = new.post(&format!("{}/webhooks/deploy", new.base), &[], wf).await;
    assert_eq!(resp.status(), 401);

    // The subscriber gets the same id, credentials and signing secret.
    new.emit("agent.commit", None, json!({"sha": "abc"})).await;
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(got.json()["webhook_id"], sub_id.as_str());
    assert_eq!(got.header("authorization"), Some(format!("Bearer {BEARER}").as_str()));
    assert_eq!(got.header("x-team"), Some("infra"));
    let signature = got.header("x-chorus-signature-256").unwrap();
    assert_eq!(signature, chorus_verify::sign_body_hex(&Secret::new(SUB_SECRET), &got.body));

    // Importing the same files again changes nothing and says why.
    let before = inventory(&new).await;
    let (status, again) = import(&new, files).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "conflict");
    assert!(again["error"]["message"].as_str().unwrap().contains("agents/builder.json"), "{again}");
    assert_eq!(inventory(&new).await, before);
}

#[tokio::test]
async fn a_backup_without_secrets_needs_them_back_and_makes_new_ones_where_it_can() {
    let receiver = TestReceiver::start().await;
    let old = TestApp::start().await;
    let (hook_id, _) = team(&old, &receiver).await;
    let backup = export(&old, false).await;
    assert_eq!(backup["secrets"], false);
    assert!(!backup.to_string().contains("sealed:"), "{backup}");

    // Agent `hooked` has only its webhook URL, and the reply token and
    // the bearer token are gone: the import says so, file by file, and
    // keeps nothing.
    let new = TestApp::start().await;
    let (status, refused) = import(&new, &backup["files"]).await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("agents/hooked.json"), "{message}");
    assert_eq!(refused["error"]["field"], "files[\"agents/hooked.json\"]", "{refused}");
    assert_eq!(inventory(&new).await, [0, 0, 0, 0]);

    // With those given back as references (here sealed under the
    // server's key, as `--secrets` would have written them), the rest
    // comes back; the hook and the subscription get new secrets, shown
    // once in the answer.
    let mut files = backup["files"].clone();
    let edit = |files: &mut Value, path: &str, f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(files[path].as_str().unwrap()).unwrap();
        f(&mut v);
        files[path] = Value::String(v.to_string());
    };
    let key = chorus_store::MasterKey::from_bytes(&[9; 32]).unwrap();
    let token = key.seal_reference(&Secret::new("a-token-given-back-0123456789"));
    edit(&mut files, "agents/hooked.json", &|v| v["discord_webhook_url"] = json!(WEBHOOK_URL));
    edit(&mut files, &format!("webhooks/{hook_id}.json"), &|v| v["reply"]["token"] = json!(token));
    let sub = files.as_object().unwrap().keys().find(|k| k.starts_with("subscriptions/")).unwrap().clone();
    edit(&mut files, &sub, &|v| v["auth"]["token"] = json!(token));
    let (status, made) = import(&new, &files).await;
    assert_eq!(status, 400, "a plain webhook URL is not a reference: {made}");
    edit(&mut files, "agents/hooked.json", &|v| v["discord_webhook_url"] = json!(token));
    let (status, made) = import(&new, &files).await;
    assert_eq!(status, 400, "not a Discord webhook URL: {made}");
    assert_eq!(made["error"]["field"], "files[\"agents/hooked.json\"]", "{made}");
    edit(&mut files, "agents/hooked.json", &|v| {
        v.as_object_mut().unwrap().remove("discord_webhook_url");
    });
    edit(&mut files, "agents/hooked.json", &|v| v["channel_id"] = json!("777"));
    let (status, made) = import(&new, &files).await;
    assert_eq!(status, 200, "{made}");
    let secret = made["webhooks"][0]["secret"].as_str().expect("a new secret, shown once").to_owned();
    assert_ne!(secret, HOOK_SECRET);
    assert!(made["subscriptions"][0]["secret"].is_string(), "{made}");
    let body = serde_json::to_vec(&json!({"ref": "refs/heads/main"})).unwrap();
    let url = format!("{}/webhook/builder/{hook_id}", new.base);
    let old_secret = new.post(&url, &github_headers(HOOK_SECRET, "push", "d-1", &body), body.clone()).await;
    assert_eq!(old_secret.status(), 403);
    let new_secret = new.post(&url, &github_headers(&secret, "push", "d-2", &body), body).await;
    assert_eq!(new_secret.status(), 202);
}

#[tokio::test]
async fn bad_backups_are_refused_whole_with_each_problem_located() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let before = inventory(&app).await;
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();

    let (status, v) = app
        .api_json(Method::POST, "/api/backup/import", Some(json!({"format": "chorus-backup/9", "files": {}})))
        .await;
    assert_eq!(
        (status, code(&v).as_str(), v["error"]["field"].as_str()),
        (400, "invalid_request", Some("format"))
    );

    // Good files beside bad ones: nothing is kept, every problem is named
    // with its file and line.
    let other_key = chorus_store::MasterKey::from_bytes(&[1; 32]).unwrap();
    let files = json!({
        "agents/planning.yaml": "name: planning\nchannel_id: \"5151\"\n",
        "webhooks/a.yaml": "agent: planning\nprovider: github\ncommands:\n  - trigger: push\n    action: explode\n",
        "webhooks/b.yaml": format!("agent: planning\nprovider: github\nsecret: {}\n", other_key.seal_reference(&Secret::new("sealed-elsewhere-0123456789"))),
        "webhooks/c.yaml": "agent: planning\nprovider: github\nsecret: hunter2-hunter2-hunter2\n",
        "webhooks/d.json": "{\"agent\": \"planning\",\n \"provider\": ",
        "subscriptions/e.yaml": "type: outgoing\nurl: http://127.0.0.1:9/x\nevents: [agent.commit]\nauth: {type: basic, username: u}\n",
        "notes/readme.json": "{}",
    });
    let (status, v) = import(&app, &files).await;
    assert_eq!(status, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    for expected in [
        "webhooks/a.yaml:5: commands[0].action",
        "webhooks/b.yaml:3: secret: this sealed: value does not open",
        "webhooks/c.yaml:3: secret: secrets in config files are references",
        "webhooks/d.json:2:",
        "subscriptions/e.yaml:4: auth: missing field `password`",
        "notes/readme.json:1:",
    ] {
        assert!(message.contains(expected), "{expected:?} not in:\n{message}");
    }
    assert!(!message.contains("hunter2"), "a secret is never echoed: {message}");
    assert_eq!(inventory(&app).await, before, "nothing is kept, not even the good agent");

    // An agent that exists is a conflict.
    let (status, v) =
        import(&app, &json!({"agents/builder.json": "{\"name\": \"builder\", \"channel_id\": \"1\"}"})).await;
    assert_eq!((status, code(&v).as_str()), (409, "conflict"));

    // A read-only token may export without secrets, not with them, and
    // may not import.
    let (_, token) =
        app.api_json(Method::POST, "/api/tokens", Some(json!({"name": "reader", "scope": "read"}))).await;
    let reader = token["token"].as_str().unwrap();
    let get = |path: &str| app.http.get(format!("{}{path}", app.base)).bearer_auth(reader).send();
    assert_eq!(get("/api/backup").await.unwrap().status(), 200);
    assert_eq!(get("/api/backup?secrets=true").await.unwrap().status(), 403);
    let posted = app
        .http
        .post(format!("{}/api/backup/import", app.base))
        .bearer_auth(reader)
        .json(&json!({"format": "chorus-backup/1", "files": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 403);
    assert_eq!(inventory(&app).await, before);
}

#[tokio::test]
async fn hooks_from_config_files_are_left_to_their_files() {
    let mut app = TestApp::start().await;
    app.agent("builder", "4242").await;
    app.config_file("from-file.yaml", Some("agent: builder\nprovider: github\n")).await;
    let backup = export(&app, false).await;
    let webhooks = backup["files"].as_object().unwrap().keys().filter(|k| k.starts_with("webhooks/")).count();
    assert_eq!(webhooks, 0, "{backup}");
    assert!(backup["skipped"][0].as_str().unwrap().contains("config file from-file"), "{backup}");
}

#[tokio::test]
async fn a_large_team_fits_in_one_import() {
    let app = TestApp::start().await;
    // Three files near the per-file limit: over the API's usual 2 MiB.
    let padding = " ".repeat(900 * 1024);
    let files: serde_json::Map<String, Value> = (1..=3)
        .map(|i| {
            (
                format!("agents/a{i}.json"),
                json!(format!("{{\"name\": \"a{i}\",{padding}\"channel_id\": \"{i}\"}}")),
            )
        })
        .collect();
    let (status, made) = import(&app, &Value::Object(files)).await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["agents"], json!(["a1", "a2", "a3"]));
}
