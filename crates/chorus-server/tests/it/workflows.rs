//! Workflows (seed 003): files and the API, `POST /webhooks/{name}` with
//! its status codes, chaining, approval gates decided by signed clicks and
//! through the API, and what the channel and subscribers are told.

use std::time::Duration;

use chorus_testkit::{
    Reply, TestReceiver,
    interactions::{InteractionSigner, MANAGE_GUILD, SEND_MESSAGES, button_click},
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, github_headers};

/// Wait until run `id` is in `status`, through the API.
async fn run_reaches(app: &TestApp, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, run) = app.api_json(Method::GET, &format!("/api/runs/{id}"), None).await;
        assert_eq!(code, 200, "{run}");
        if run["status"] == status {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "run {id} never reached {status}: {run}");
        // Polling the API for a state, not sleeping in place of one.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post_json(app: &TestApp, name: &str, body: &Value, headers: &[(String, String)]) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let resp = app.post(&format!("{}/webhooks/{name}", app.base), headers, bytes).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn reload(app: &TestApp) -> Value {
    let (status, v) = app.api_json(Method::POST, "/api/workflows/reload", None).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Interactions signed as Discord signs them.
async fn click(app: &TestApp, signer: &InteractionSigner, interaction: &Value) -> Value {
    let body = serde_json::to_vec(interaction).unwrap();
    let headers = signer.headers(&body, chorus_core::Clock::now(&chorus_core::SystemClock).as_second());
    let resp = app.post(&format!("{}/interactions", app.base), &headers, body).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The message carrying the approval buttons, and its buttons' ids.
async fn gate_message(app: &TestApp, channel: &str) -> (Value, String, String) {
    app.discord
        .wait_until("an approval message", WAIT, |d| {
            d.messages().iter().any(|(c, m)| c == channel && m.get("components").is_some())
        })
        .await;
    let (_, message) = app
        .discord
        .messages()
        .into_iter()
        .find(|(c, m)| c == channel && m.get("components").is_some())
        .unwrap();
    let buttons = message["components"][0]["components"].as_array().unwrap().clone();
    let id = |i: usize| buttons[i]["custom_id"].as_str().unwrap().to_owned();
    assert_eq!(buttons[0]["label"], "Approve");
    assert_eq!(buttons[1]["label"], "Deny");
    (message, id(0), id(1))
}

#[tokio::test]
async fn the_seeds_examples_run_as_written() {
    let Some(blocks) = chorus_testkit::seed_yaml("003_") else { return };
    let signer = InteractionSigner::from_seed(3);
    let app = TestApp::start_interactive(&signer).await;
    let receiver = TestReceiver::start().await;
    let review = app.data_dir().join("review.md");
    std::fs::write(&review, "Ship it.\n").unwrap();
    let dir = app.data_dir().join("workflows");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["deploy-notify", "github-push", "process-event"] {
        let block = blocks
            .iter()
            .find(|b| b.contains(&format!("name: {name}\n")))
            .unwrap_or_else(|| panic!("seed 003 has no {name} example"));
        // No network here: the example's endpoint and file become local ones.
        let text = block
            .replace("https://api.example.com/details", &receiver.url("/details"))
            .replace("/tmp/review.md", review.to_str().unwrap());
        std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
    }
    let loaded = reload(&app).await;
    assert_eq!(loaded, json!({"workflows": 3, "errors": []}));

    // deploy-notify: the payload is merged into the args and the shell
    // step's output reaches the next step as previous_output.
    let (status, answer) =
        post_json(&app, "deploy-notify", &json!({"ref": "refs/heads/main", "status": "success"}), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "ok");
    assert_eq!(answer["workflow"], "deploy-notify");
    assert_eq!(answer["warning"], "accepted without a signature (development mode)");
    let steps: Vec<(&str, &str)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["step"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("log-event", "succeeded"), ("record-in-memory", "succeeded")]);
    let memory = app.memory.lock().unwrap().clone();
    assert_eq!(memory.len(), 1);
    assert_eq!(memory[0]["section"], "Deployments");
    assert_eq!(memory[0]["fact"], "Deployment event received");
    assert_eq!(memory[0]["ref"], "refs/heads/main");
    assert_eq!(memory[0]["previous_output"]["stdout"], "Deployment received\n");

    // github-push, signed or not, from GitHub's headers.
    let push = json!({"ref": "refs/heads/main", "repository": {"full_name": "octo/repo"}});
    let headers =
        github_headers("irrelevant-secret-0000", "push", "d-1", &serde_json::to_vec(&push).unwrap());
    let (status, answer) = post_json(&app, "github-push", &push, &headers).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["output"]["stdout"], "Push to repository received\n");

    // process-event: the HTTP step runs, then the gate holds the run.
    let (status, answer) = post_json(&app, "process-event", &json!({"id": 7}), &[]).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["run_status"], "waiting");
    assert_eq!(answer["waiting_for"]["step"], "review");
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].method, "GET");
    assert_eq!(got[0].header("idempotency-key"), Some(format!("{run_id}.0").as_str()));
    let (status, decided) = app.api_json(Method::POST, &format!("/api/runs/{run_id}/approve"), None).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "approved");
    let run = run_reaches(&app, &run_id, "succeeded").await;
    assert_eq!(run["steps"][2]["output"]["text"], "Ship it.\n");
    assert!(run["approvals"][0]["decided_by"].as_str().unwrap().contains("admin token"));
}

#[tokio::test]
async fn an_approval_gate_is_decided_by_a_signed_click_from_someone_allowed() {
    let signer = InteractionSigner::from_seed(4);
    let app = TestApp::start_interactive(&signer).await;
    app.agent("ops", "700").await;
    let definition = json!({
        "name": "deploy",
        "agent": "ops",
        "steps": [
            {"name": "note", "tool": "memory_store", "args": {"section": "Deploys", "fact": "{{ payload.ref }}"}},
            {"name": "ship", "tool": "memory_store", "args": {"fact": "shipped {{ steps.note.output.stored }}"},
             "requires_approval": true},
        ],
    });
    let (status, created) = app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["url"], format!("{}/webhooks/deploy", app.base));

    let (status, answer) = post_json(&app, "deploy", &json!({"ref": "v1.2"}), &[]).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    let (message, approve, deny) = gate_message(&app, "700").await;
    assert!(message["embeds"][0]["title"].as_str().unwrap().contains("deploy → ship"));

    // Someone without Manage Server: refused, only they see it, nothing changes.
    let refused = click(&app, &signer, &button_click("700", "42", SEND_MESSAGES, &[], &deny, &message)).await;
    assert_eq!(refused["type"], 4);
    assert_eq!(refused["data"]["flags"], 64);
    assert!(refused["data"]["content"].as_str().unwrap().contains("Manage Server"));
    let (_, run) = app.api_json(Method::GET, &format!("/api/runs/{run_id}"), None).await;
    assert_eq!(run["status"], "waiting");
    assert_eq!(app.memory.lock().unwrap().len(), 1);

    // Someone with it: the message is edited to show the decision.
    let decided =
        click(&app, &signer, &button_click("700", "43", MANAGE_GUILD, &[], &approve, &message)).await;
    assert_eq!(decided["type"], 7, "{decided}");
    assert_eq!(decided["data"]["components"], json!([]));
    let fields = decided["data"]["embeds"][0]["fields"].as_array().unwrap();
    assert!(
        fields
            .iter()
            .any(|f| f["name"] == "Decision" && f["value"].as_str().unwrap().contains("Approved by <@43>"))
    );
    let run = run_reaches(&app, &run_id, "succeeded").await;
    assert_eq!(run["approvals"][0]["decided_by"], "discord:43 (user43)");
    assert_eq!(app.memory.lock().unwrap()[1]["fact"], "shipped v1.2");

    // A second click on the decided gate changes nothing.
    let again = click(&app, &signer, &button_click("700", "43", MANAGE_GUILD, &[], &deny, &message)).await;
    assert_eq!(again["type"], 4);
    assert!(again["data"]["content"].as_str().unwrap().contains("already approved"), "{again}");

    // The results go to the agent's channel, as seed 003 shows them.
    app.discord
        .wait_until("the run's summary", WAIT, |d| {
            d.messages()
                .iter()
                .any(|(c, m)| c == "700" && m["embeds"][0]["title"] == "Webhook 'deploy' triggered workflow:")
        })
        .await;
    let (_, summary) = app
        .discord
        .messages()
        .into_iter()
        .find(|(_, m)| m["embeds"][0]["title"] == "Webhook 'deploy' triggered workflow:")
        .unwrap();
    let text = summary["embeds"][0]["description"].as_str().unwrap();
    assert!(text.contains("note: success") && text.contains("ship: success"), "{text}");

    // The audit log names the Discord user.
    let (_, audit) = app.api_json(Method::GET, "/api/audit", None).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "runs.approve" && e["via"] == "discord"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_denied_gate_fails_the_run_and_subscribers_hear_it() {
    let signer = InteractionSigner::from_seed(5);
    let app = TestApp::start_interactive(&signer).await;
    app.agent("ops", "701").await;
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200));
    app.outgoing(json!({"url": receiver.url("/events"), "events": ["workflow.*"]})).await;
    let definition = json!({
        "name": "release",
        "agent": "ops",
        "approver_role": "555",
        "steps": [
            {"name": "publish", "tool": "memory_store", "args": {"fact": "published"}, "requires_approval": true},
            {"name": "after", "tool": "memory_store", "args": {"fact": "after"}},
        ],
    });
    let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    assert_eq!(status, 201, "{v}");
    let (status, answer) = post_json(&app, "release", &json!({}), &[]).await;
    assert_eq!(status, 202, "{answer}");
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    let (message, _, deny) = gate_message(&app, "701").await;

    // The workflow names a role: Manage Server alone is not enough.
    let refused = click(&app, &signer, &button_click("701", "50", MANAGE_GUILD, &[], &deny, &message)).await;
    assert!(refused["data"]["content"].as_str().unwrap().contains("<@&555>"), "{refused}");
    let decided =
        click(&app, &signer, &button_click("701", "51", SEND_MESSAGES, &["555"], &deny, &message)).await;
    assert_eq!(decided["type"], 7, "{decided}");
    let run = run_reaches(&app, &run_id, "failed").await;
    assert_eq!(run["steps"][0]["status"], "denied");
    assert_eq!(run["steps"].as_array().unwrap().len(), 1);
    assert!(app.memory.lock().unwrap().is_empty());

    let got = receiver.wait_for(2, WAIT).await;
    let events: Vec<Value> = got.iter().map(chorus_testkit::Received::json).collect();
    assert_eq!(events[0]["event"], "workflow.started");
    assert_eq!(events[1]["event"], "workflow.failed");
    assert_eq!(events[1]["data"]["run_id"], run_id.as_str());
    assert_eq!(events[1]["data"]["steps"][0]["status"], "denied");
}

#[tokio::test]
async fn the_endpoint_answers_the_seeds_status_codes() {
    let app = TestApp::start().await;
    let secret = "workflow-secret-0123456789";
    let definition = json!({
        "name": "signed",
        "secret": secret,
        "steps": [{"name": "say", "tool": "shell_exec", "args": {"command": "echo hi"}}],
    });
    let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    assert_eq!(status, 201, "{v}");
    assert!(v.get("secret").is_none(), "a secret is never shown again: {v}");
    let body = json!({"ref": "refs/heads/main"});
    let bytes = serde_json::to_vec(&body).unwrap();
    let signed = github_headers(secret, "push", "d-1", &bytes);
    let wrong = github_headers("another-secret-0123456789", "push", "d-2", &bytes);

    let code = |r: &Value| r["error"]["code"].as_str().unwrap_or_default().to_owned();
    let (status, r) = post_json(&app, "nope", &body, &signed).await;
    assert_eq!((status, code(&r).as_str()), (404, "not_found"));
    let (status, r) = post_json(&app, "signed", &body, &[]).await;
    assert_eq!((status, code(&r).as_str()), (401, "signature_missing"));
    let (status, r) = post_json(&app, "signed", &body, &wrong).await;
    assert_eq!((status, code(&r).as_str()), (403, "signature_invalid"));
    let (status, r) = post_json(&app, "signed", &body, &signed).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "ok");
    assert_eq!(r["results"][0]["output"]["stdout"], "hi\n");

    let resp = app
        .post(
            &format!("{}/webhooks/signed", app.base),
            &github_headers(secret, "push", "d-3", b"{no"),
            &b"{no"[..],
        )
        .await;
    assert_eq!(resp.status(), 400);

    let (status, _) = app.api_json(Method::POST, "/api/workflows/signed/disable", None).await;
    assert_eq!(status, 200);
    let (status, r) = post_json(&app, "signed", &body, &signed).await;
    assert_eq!((status, code(&r).as_str()), (409, "workflow_disabled"));
    // Unsigned callers never learn it is disabled.
    let (status, _) = post_json(&app, "signed", &body, &[]).await;
    assert_eq!(status, 401);

    // No secret, and development mode off: refused.
    let open = json!({"name": "open", "steps": [{"name": "s", "tool": "memory_store"}]});
    let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(open)).await;
    assert_eq!(status, 201, "{v}");
    let (status, r) = post_json(&app, "open", &body, &[]).await;
    assert_eq!((status, code(&r).as_str()), (401, "signature_missing"));
    assert!(r["error"]["message"].as_str().unwrap().contains("CHORUS_WORKFLOWS_ALLOW_UNSIGNED"));
    assert!(app.memory.lock().unwrap().is_empty());

    // A test run through the API stands in for a signed request.
    let (status, r) = app.api_json(Method::POST, "/api/workflows/open/test", Some(json!({"x": 1}))).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], 200);
    assert_eq!(r["body"]["status"], "ok");
    let (_, runs) = app.api_json(Method::GET, "/api/runs?workflow=open", None).await;
    assert_eq!(runs["items"][0]["test"], true);
}

#[tokio::test]
async fn without_a_workflow_system_the_endpoint_is_503() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let clock: std::sync::Arc<dyn chorus_core::Clock> = std::sync::Arc::new(chorus_core::SystemClock);
    let store = chorus_store::SqliteStore::open(
        dir.path().join("c.db"),
        chorus_store::MasterKey::from_bytes(&[1; 32]).unwrap(),
        clock,
    )
    .unwrap();
    let chorus = chorus_server::Chorus::builder(
        std::sync::Arc::new(store),
        chorus_core::Secret::new(crate::support::TOKEN),
    )
    .build();
    let response = tower::ServiceExt::oneshot(
        chorus.app(),
        http::Request::post("/webhooks/anything").body(axum::body::Body::from("{}")).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn chaining_conditions_and_failures() {
    let signer = InteractionSigner::from_seed(6);
    let app = TestApp::start_interactive(&signer).await;
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(201));
    let definition = json!({
        "name": "chain",
        "steps": [
            {"name": "fetch", "tool": "http_request",
             "args": {"method": "POST", "url": receiver.url("/items/{{ payload.id }}"), "body": {"ref": "{{ payload.ref }}"}}},
            {"name": "only-main", "tool": "memory_store", "when": "payload.ref == 'refs/heads/main'", "args": {"fact": "main"}},
            {"name": "record", "tool": "memory_store", "args": {"fact": "{{ steps.fetch.output.status }}"}},
            {"name": "fails", "tool": "shell_exec", "args": {"argv": ["false"]}, "on_failure": "continue"},
            {"name": "last", "tool": "memory_store", "args": {"fact": "{{ steps.fails.status }}"}},
        ],
    });
    let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    assert_eq!(status, 201, "{v}");
    let (status, answer) = post_json(&app, "chain", &json!({"id": 9, "ref": "refs/heads/dev"}), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<&str> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["succeeded", "skipped", "succeeded", "failed", "succeeded"]);
    assert_eq!(answer["status"], "ok", "on_failure: continue lets the run succeed");
    let got = receiver.received();
    assert_eq!(got[0].path, "/items/9");
    assert_eq!(got[0].json(), json!({"ref": "refs/heads/dev"}));
    let memory = app.memory.lock().unwrap().clone();
    assert_eq!(memory[0]["fact"], 201);
    assert_eq!(memory[1]["fact"], "failed");
    // The record step saw the payload merged in and the skipped step's
    // predecessor as previous_output.
    assert_eq!(memory[0]["previous_output"]["status"], 201);

    // A failing step stops the run by default.
    let stop = json!({"name": "stop", "steps": [
        {"name": "boom", "tool": "shell_exec", "args": {"argv": ["false"]}},
        {"name": "never", "tool": "memory_store", "args": {"fact": "never"}},
    ]});
    app.api_json(Method::POST, "/api/workflows", Some(stop)).await;
    let (status, answer) = post_json(&app, "stop", &json!({}), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "failed");
    assert_eq!(answer["results"].as_array().unwrap().len(), 1);
    assert!(answer["error"].as_str().unwrap().contains("boom"), "{answer}");
}

#[tokio::test]
async fn bad_definitions_are_refused_with_the_field_and_change_nothing() {
    let app = TestApp::start().await;
    let cases = [
        (json!({"name": "a", "steps": [{"name": "s", "tool": "nope"}]}), "steps[0].tool"),
        (
            json!({"name": "a", "steps": [{"name": "s", "tool": "memory_store", "args": {"fact": "{{ payload. }}"}}]}),
            "steps[0].args.fact",
        ),
        (
            json!({"name": "a", "steps": [{"name": "s", "tool": "memory_store"}, {"name": "s", "tool": "memory_store"}]}),
            "steps[1].name",
        ),
        (
            json!({"name": "a", "steps": [{"name": "s", "tool": "shell_exec", "args": {"command": "rm -rf /"}}]}),
            "steps[0].args.command",
        ),
        (
            json!({"name": "a", "steps": [{"name": "s", "tool": "memory_store", "when": "payload =="}]}),
            "steps[0].when",
        ),
        (
            json!({"name": "a", "steps": [{"name": "s", "tool": "memory_store", "timeout": "2h"}]}),
            "steps[0].timeout",
        ),
        (json!({"name": "a/b", "steps": [{"name": "s", "tool": "memory_store"}]}), "name"),
        (json!({"name": "a", "steps": []}), "steps"),
        (json!({"name": "a", "agent": "ghost", "steps": [{"name": "s", "tool": "memory_store"}]}), "agent"),
        (json!({"name": "a", "verify": "none", "steps": [{"name": "s", "tool": "memory_store"}]}), "verify"),
        (json!({"name": "a", "steps": [{"name": "s", "tool": "memory_store", "typo": 1}]}), "steps[0]"),
    ];
    for (definition, field) in cases {
        let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(definition.clone())).await;
        assert_eq!(status, 400, "{definition} → {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{v}");
        assert!(v["error"]["field"].as_str().unwrap_or_default().starts_with(field), "{definition} → {v}");
    }
    let (_, list) = app.api_json(Method::GET, "/api/workflows", None).await;
    assert_eq!(list["items"], json!([]));

    // A file with a problem names file, line and field, and loads nothing.
    let dir = app.data_dir().join("workflows");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        "name: bad\ntrigger: webhook\nsteps:\n  - name: one\n    tool: shell_exec\n    args:\n      command: \"curl evil\"\n",
    )
    .unwrap();
    let loaded = reload(&app).await;
    assert_eq!(loaded["workflows"], 0);
    let error = &loaded["errors"][0];
    assert_eq!(error["file"], "bad.yaml");
    assert_eq!(error["line"], 7, "{error}");
    assert_eq!(error["field"], "steps[0].args.command");
    assert!(error["message"].as_str().unwrap().contains("CHORUS_WORKFLOWS_SHELL_ALLOW"));

    // A file-defined workflow is changed through its file, not the API.
    std::fs::write(dir.join("bad.yaml"), "name: good\nsteps:\n  - name: one\n    tool: memory_store\n")
        .unwrap();
    assert_eq!(reload(&app).await["errors"], json!([]));
    let (status, v) = app
        .api_json(
            Method::PUT,
            "/api/workflows/good",
            Some(json!({"steps": [{"name": "x", "tool": "memory_store"}]})),
        )
        .await;
    assert_eq!(status, 409, "{v}");
    let (status, _) = app.api_json(Method::DELETE, "/api/workflows/good", None).await;
    assert_eq!(status, 409);
    std::fs::remove_file(dir.join("bad.yaml")).unwrap();
    assert_eq!(reload(&app).await["workflows"], 0);
}

/// `/webhook <sub>` or `/workflow <sub>` from a member with `permissions`.
fn workflow_command(command: &str, sub: &str, options: &[(&str, &str)], permissions: &str) -> Value {
    let mut interaction = chorus_testkit::interactions::slash_command("702", permissions, &[sub], options);
    interaction["data"]["name"] = json!(command);
    interaction
}

#[tokio::test]
async fn webhook_list_test_and_workflow_reload_from_discord() {
    let signer = InteractionSigner::from_seed(7);
    let app = TestApp::start_interactive(&signer).await;
    let dir = app.data_dir().join("workflows");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hello.yaml"),
        "name: hello\nsteps:\n  - name: say\n    tool: shell_exec\n    args: {command: echo hello}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("old.yaml"),
        "name: old-hook\nenabled: false\nsteps:\n  - {name: s, tool: memory_store}\n",
    )
    .unwrap();

    // Reloading changes things: it needs the permission.
    let refused = click(&app, &signer, &workflow_command("workflow", "reload", &[], SEND_MESSAGES)).await;
    assert!(refused["data"]["content"].as_str().unwrap().contains("Manage Webhooks"), "{refused}");
    let manage = chorus_testkit::interactions::MANAGE_WEBHOOKS;
    let reloaded = click(&app, &signer, &workflow_command("workflow", "reload", &[], manage)).await;
    assert!(reloaded["data"]["content"].as_str().unwrap().contains("2 loaded"), "{reloaded}");

    let listed = click(&app, &signer, &workflow_command("webhook", "list", &[], SEND_MESSAGES)).await;
    let text = listed["data"]["content"].as_str().unwrap();
    assert!(text.contains(&format!("POST {}/webhooks/hello  [enabled]", app.base)), "{text}");
    assert!(text.contains("/webhooks/old-hook  [disabled]"), "{text}");

    let tested =
        click(&app, &signer, &workflow_command("webhook", "test", &[("name", "hello")], manage)).await;
    let text = tested["data"]["content"].as_str().unwrap();
    assert!(text.starts_with("Testing webhook: hello\nResponse: 200 OK"), "{text}");
    assert!(text.contains("\"workflow\":\"hello\"") && text.contains("hello\\n"), "{text}");
    let tested =
        click(&app, &signer, &workflow_command("webhook", "test", &[("name", "old-hook")], manage)).await;
    assert!(tested["data"]["content"].as_str().unwrap().contains("Response: 409"), "{tested}");

    let (_, audit) = app.api_json(Method::GET, "/api/audit", None).await;
    let actions: Vec<&str> =
        audit["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"workflows.create"), "{audit}");
}

#[tokio::test]
async fn an_undecided_gate_expires_and_wait_steps_pause_durably() {
    let signer = InteractionSigner::from_seed(8);
    let app = TestApp::start_interactive(&signer).await;
    app.agent("ops", "703").await;
    let definition = json!({
        "name": "slow",
        "agent": "ops",
        "approval_timeout": "1s",
        "steps": [
            {"name": "pause", "tool": "wait", "args": {"duration": "1s"}},
            {"name": "ask", "tool": "memory_store", "args": {"fact": "x"}, "requires_approval": true},
        ],
    });
    let (status, v) = app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    assert_eq!(status, 201, "{v}");
    let (status, answer) = post_json(&app, "slow", &json!({}), &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["run_status"], "waiting");
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    let run = run_reaches(&app, &run_id, "failed").await;
    assert_eq!(run["steps"][0]["status"], "succeeded");
    assert_eq!(run["steps"][1]["status"], "expired");
    assert_eq!(run["approvals"][0]["status"], "expired");
    assert!(app.memory.lock().unwrap().is_empty());
    // A late click changes nothing.
    let (message, approve, _) = gate_message(&app, "703").await;
    let late = click(&app, &signer, &button_click("703", "43", MANAGE_GUILD, &[], &approve, &message)).await;
    assert_eq!(late["type"], 4, "{late}");
    let (status, v) = app.api_json(Method::POST, &format!("/api/runs/{run_id}/approve"), None).await;
    assert_eq!(status, 409, "{v}");
    let (status, v) = app.api_json(Method::POST, &format!("/api/runs/{run_id}/cancel"), None).await;
    assert_eq!(status, 409, "{v}");
}

#[tokio::test]
async fn a_cancelled_run_stops_and_says_so() {
    let signer = InteractionSigner::from_seed(9);
    let app = TestApp::start_interactive(&signer).await;
    let definition = json!({
        "name": "held",
        "steps": [{"name": "gate", "tool": "memory_store", "args": {"fact": "x"}, "requires_approval": true}],
    });
    app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    let (_, answer) = post_json(&app, "held", &json!({}), &[]).await;
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    let (status, run) = app.api_json(Method::POST, &format!("/api/runs/{run_id}/cancel"), None).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["approvals"][0]["status"], "denied");
    let (status, _) = app.api_json(Method::POST, &format!("/api/runs/{run_id}/approve"), None).await;
    assert_eq!(status, 409);
    let (status, v) = app.api_json(Method::GET, "/api/runs?status=bogus", None).await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("status")));
    let (_, runs) = app.api_json(Method::GET, "/api/runs?workflow=held&status=cancelled", None).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    assert!(app.memory.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_decision_through_the_api_is_told_in_the_channel() {
    let signer = InteractionSigner::from_seed(10);
    let app = TestApp::start_interactive(&signer).await;
    app.agent("ops", "704").await;
    let definition = json!({
        "name": "api-decided", "agent": "ops",
        "steps": [{"name": "go", "tool": "memory_store", "args": {"fact": "x"}, "requires_approval": true}],
    });
    app.api_json(Method::POST, "/api/workflows", Some(definition)).await;
    let (_, answer) = post_json(&app, "api-decided", &json!({}), &[]).await;
    let run_id = answer["run_id"].as_str().unwrap().to_owned();
    let (status, _) = app.api_json(Method::POST, &format!("/api/runs/{run_id}/deny"), None).await;
    assert_eq!(status, 200);
    app.discord
        .wait_until("the decision in the channel", WAIT, |d| {
            d.messages().iter().any(|(c, m)| {
                c == "704"
                    && m["embeds"][0]["title"].as_str().is_some_and(|t| {
                        t.starts_with("❌ Denied by admin token") && t.ends_with("api-decided → go")
                    })
            })
        })
        .await;
    run_reaches(&app, &run_id, "failed").await;
}
