//! Every CLI verb against a running server: the built binary as the client,
//! JSON output parsed, tables read, usage errors exit 2 with one line, a
//! refusal from the server exits 1.

use chorus_testkit::{Process, Reply, TestReceiver};
use serde_json::Value;

use crate::support::{TOKEN, WAIT, exe, init};

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run the client against `base` with the admin token.
async fn cli(base: &str, args: &[&str]) -> Ran {
    cli_with(base, Some(TOKEN), args).await
}

async fn cli_with(base: &str, token: Option<&str>, args: &[&str]) -> Ran {
    let mut cmd = std::process::Command::new(exe());
    cmd.env_remove("CHORUS_API_TOKEN").env_remove("CHORUS_SERVER");
    // No api-token file is found beside this directory.
    cmd.env("CHORUS_DATA_DIR", "/nonexistent/chorus-data");
    cmd.args(["--server", base]);
    if let Some(t) = token {
        cmd.args(["--token", t]);
    }
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Run with `--format json`, expect success, parse the output.
async fn json(base: &str, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let ran = cli(base, &all).await;
    assert_eq!(ran.code, 0, "{args:?}: {}", ran.stderr);
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", ran.stdout))
}

/// Expect a usage error: exit 2 and one line on stderr, nothing on stdout.
async fn usage_error(base: &str, args: &[&str], mentions: &str) {
    let ran = cli(base, args).await;
    assert_eq!(ran.code, 2, "{args:?}: {} {}", ran.stdout, ran.stderr);
    assert_eq!(ran.stderr.trim_end().lines().count(), 1, "{args:?}: {}", ran.stderr);
    assert!(ran.stderr.contains(mentions), "{args:?}: {}", ran.stderr);
    assert!(ran.stdout.is_empty(), "{args:?}: {}", ran.stdout);
}

#[tokio::test]
async fn every_cli_verb_against_a_running_server() {
    init();
    let receiver = TestReceiver::start().await;
    let data = tempfile::tempdir().unwrap();
    // A hook file with its secret written in, found at start and refused.
    let config = data.path().join("config").join("webhooks");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("ops.yaml"),
        "agent: builder\nprovider: github\nsecret: plain-text-secret-123\n",
    )
    .unwrap();
    let env =
        [("CHORUS_API_TOKEN", TOKEN.to_owned()), ("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned())];
    let server = Process::start(exe(), data.path(), &env).await;
    let base = server.base.as_str();
    agent_verbs(base).await;
    let id = incoming_verbs(base).await;
    let out_id = outgoing_verbs(base, &receiver).await;
    // Deleting.
    let deleted = cli(base, &["webhooks", "delete", &id]).await;
    assert_eq!((deleted.code, deleted.stdout.trim()), (0, format!("deleted {id}").as_str()));
    let gone = cli(base, &["webhooks", "info", &id]).await;
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("404"), "{}", gone.stderr);
    assert_eq!(cli(base, &["agents", "remove", "ops"]).await.code, 0);
    assert_eq!(json(base, &["agents", "list"]).await["items"].as_array().unwrap().len(), 1);

    errors_and_completions(base, &out_id).await;
    token_and_audit_verbs(base).await;
}

async fn token_and_audit_verbs(base: &str) {
    let made = json(base, &["tokens", "create", "--name", "dashboard", "--scope", "read"]).await;
    let (id, value) = (made["id"].as_str().unwrap(), made["token"].as_str().unwrap());
    assert_eq!(made["scope"], "read");
    let listed = cli(base, &["tokens", "list"]).await;
    assert!(
        listed.stdout.lines().nth(1).is_some_and(|l| l.starts_with(id) && l.contains("read")),
        "{}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(value), "a token's value is shown once");
    // The read-only token reads, and is refused changes.
    assert_eq!(cli_with(base, Some(value), &["agents", "list"]).await.code, 0);
    let refused = cli_with(base, Some(value), &["agents", "add", "intruder", "--channel", "9"]).await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("403") && refused.stderr.contains("read-only"), "{}", refused.stderr);
    assert!(json(base, &["tokens", "revoke", id]).await["revoked_at"].is_string());
    assert!(cli_with(base, Some(value), &["agents", "list"]).await.stderr.contains("401"));

    let audit = json(base, &["audit", "--limit", "250"]).await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "tokens.revoke");
    assert_eq!(entries[0]["target"], id);
    assert!(entries.iter().all(|e| e["via"] == "cli"), "every change here came through the CLI");
    for action in [
        "agents.create",
        "agents.disable",
        "webhooks.create",
        "webhooks.rotate-secret",
        "webhooks.delete",
        "tokens.create",
    ] {
        assert!(entries.iter().any(|e| e["action"] == action), "{action} not on record");
    }
    assert!(!entries.iter().any(|e| e["target"] == "intruder"), "refused changes are not on record");
    let table = cli(base, &["audit"]).await;
    assert!(table.stdout.starts_with("AT") && table.stdout.contains("tokens.revoke"), "{}", table.stdout);
}

async fn agent_verbs(base: &str) {
    // Agents.
    let added = json(base, &["agents", "add", "builder", "--channel", "4242"]).await;
    assert_eq!(added["name"], "builder");
    assert_eq!(added["channel_id"], "4242");
    json(base, &["agents", "add", "ops", "--channel", "1"]).await;
    let list = json(base, &["agents", "list"]).await;
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["builder", "ops"]);
    let table = cli(base, &["agents", "list"]).await;
    assert_eq!(table.code, 0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("CHANNEL_ID"), "{}", table.stdout);
    assert!(lines[1].starts_with("builder") && lines[1].contains("4242"), "{}", table.stdout);
    assert_eq!(json(base, &["agents", "info", "builder"]).await["enabled"], true);
    let info = cli(base, &["agents", "info", "builder"]).await;
    assert!(
        info.stdout.lines().any(|l| l.starts_with("channel_id") && l.ends_with("4242")),
        "{}",
        info.stdout
    );
    assert_eq!(json(base, &["agents", "update", "builder", "--channel", "4343"]).await["channel_id"], "4343");
    assert_eq!(json(base, &["agents", "disable", "builder"]).await["enabled"], false);
    assert_eq!(json(base, &["agents", "enable", "builder"]).await["enabled"], true);
}

/// Returns the incoming hook's id.
async fn incoming_verbs(base: &str) -> String {
    // Incoming hooks.
    let hook = json(
        base,
        &["webhooks", "create", "--agent", "builder", "--source", "github", "--events", "push,issues"],
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let first_secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(hook["url"].as_str().unwrap().ends_with(&format!("/webhook/builder/{id}")));
    assert_eq!(hook["events"], serde_json::json!(["push", "issues"]));
    let listed = json(base, &["webhooks", "list", "--agent", "builder", "--type", "incoming"]).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let table = cli(base, &["webhooks", "list"]).await;
    assert!(
        table.stdout.lines().nth(1).is_some_and(|l| l.starts_with(&id) && l.contains("github")),
        "{}",
        table.stdout
    );
    let shown = json(base, &["webhooks", "info", &id]).await;
    assert!(shown.get("secret").is_none(), "the secret is shown once: {shown}");
    let updated =
        json(base, &["webhooks", "update", &id, "--name", "app repo", "--rate-limit-per-minute", "120"])
            .await;
    assert_eq!(
        (updated["name"].as_str(), updated["rate_limit_per_minute"].as_u64()),
        (Some("app repo"), Some(120))
    );
    assert_eq!(json(base, &["webhooks", "disable", &id]).await["enabled"], false);
    assert_eq!(json(base, &["webhooks", "enable", &id]).await["enabled"], true);
    let rotated = json(base, &["webhooks", "rotate-secret", &id, "--grace-period-seconds", "60"]).await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.len() >= 16 && new_secret != first_secret);

    // A signed sample through the pipeline, then the log that holds it.
    let tested = json(base, &["webhooks", "test", &id]).await;
    assert_eq!(tested["test"], true, "{tested}");
    let events = json(base, &["webhooks", "events", &id, "--event-type", "push", "--limit", "5"]).await;
    assert_eq!(events["items"][0]["id"].as_str(), tested["event_id"].as_str());
    let none = json(base, &["webhooks", "events", &id, "--event-type", "issues"]).await;
    assert!(none["items"].as_array().unwrap().is_empty(), "{none}");
    routing_rule_verbs(base, &id).await;
    task_verbs(base, &id).await;

    // The file found at start: refused with file, line and field.
    let errors = json(base, &["config-errors"]).await;
    let e = &errors["items"][0];
    assert_eq!(
        (e["file"].as_str(), e["line"].as_u64(), e["field"].as_str()),
        (Some("ops.yaml"), Some(3), Some("secret")),
        "{errors}"
    );
    let table = cli(base, &["config-errors"]).await;
    assert!(table.stdout.contains("ops.yaml") && table.stdout.contains("env:NAME"), "{}", table.stdout);

    id
}

async fn routing_rule_verbs(base: &str, id: &str) {
    let added = json(
        base,
        &[
            "webhooks",
            "command-add",
            id,
            "--trigger",
            "issues.labeled",
            "--action",
            "create_task",
            "--conditions",
            r#"{"label": "urgent"}"#,
            "--priority",
            "-5",
        ],
    )
    .await;
    assert_eq!(
        (added["trigger"].as_str(), added["priority"].as_i64()),
        (Some("issues.labeled"), Some(-5)),
        "{added}"
    );
    let rule = added["id"].as_str().unwrap();
    let listed = json(base, &["webhooks", "commands", id]).await;
    assert_eq!(listed["items"][0]["conditions"]["label"], "urgent");
    let table = cli(base, &["webhooks", "commands", id]).await;
    assert!(table.stdout.lines().nth(1).is_some_and(|l| l.starts_with(rule)), "{}", table.stdout);
    let refused =
        cli(base, &["webhooks", "command-add", id, "--trigger", "push", "--action", "explode"]).await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("explode"), "{}", refused.stderr);
    let removed = cli(base, &["webhooks", "command-remove", id, rule]).await;
    assert_eq!((removed.code, removed.stdout.trim()), (0, format!("removed {rule}").as_str()));
    assert!(json(base, &["webhooks", "commands", id]).await["items"].as_array().unwrap().is_empty());
}

async fn task_verbs(base: &str, id: &str) {
    let rule = json(
        base,
        &[
            "webhooks",
            "command-add",
            id,
            "--trigger",
            "push",
            "--action",
            "create_task",
            "--template",
            "Review {{branch}}",
        ],
    )
    .await;
    let tested = json(base, &["webhooks", "test", id]).await;
    // The router makes the task after ingress answers: poll the log until
    // the event is routed (bounded).
    let mut task = Value::Null;
    for _ in 0..200 {
        let events = json(base, &["webhooks", "events", id, "--limit", "5"]).await;
        let event =
            events["items"].as_array().unwrap().iter().find(|e| e["id"] == tested["event_id"]).cloned();
        if let Some(e) = event.filter(|e| e["status"] != "received") {
            task = e["task_id"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let task = task.as_str().expect("the test push made a task").to_owned();
    let listed = cli(base, &["tasks", "list", "--agent", "builder", "--status", "open"]).await;
    assert!(
        listed.stdout.lines().nth(1).is_some_and(|l| l.starts_with(&task) && l.contains("Review")),
        "{}",
        listed.stdout
    );
    let done = json(base, &["tasks", "complete", &task, "--result", "looked at it"]).await;
    assert_eq!((done["status"].as_str(), done["result"].as_str()), (Some("done"), Some("looked at it")));
    assert_eq!(json(base, &["tasks", "info", &task]).await["status"], "done");
    let again = cli(base, &["tasks", "fail", &task]).await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("409"), "{}", again.stderr);
    let bad = cli(base, &["tasks", "list", "--status", "sleeping"]).await;
    assert_eq!(bad.code, 1);
    // The interaction verbs reach the API: this hook has no reply
    // credentials, so the server refuses with 409.
    let event = tested["event_id"].as_str().unwrap();
    for verb in ["comment", "ask", "respond"] {
        let refused = cli(base, &["webhooks", verb, id, "--event", event, "--message", "hello"]).await;
        assert_eq!(refused.code, 1, "{verb}");
        assert!(
            refused.stderr.contains("409") && refused.stderr.contains("reply"),
            "{verb}: {}",
            refused.stderr
        );
    }
    let removed = cli(base, &["webhooks", "command-remove", id, rule["id"].as_str().unwrap()]).await;
    assert_eq!(removed.code, 0);
}

/// Returns the outgoing subscription's id.
async fn outgoing_verbs(base: &str, receiver: &TestReceiver) -> String {
    // Outgoing subscriptions.
    let out = json(
        base,
        &[
            "webhooks",
            "create",
            "--type",
            "outgoing",
            "--url",
            &receiver.url("/in"),
            "--events",
            "custom.*",
            "--header",
            "X-Team: infra",
            "--auth-type",
            "bearer",
            "--auth-credentials",
            r#"{"token":"subscriber-token"}"#,
            "--retry",
            r#"{"strategy":"fixed","max_attempts":1}"#,
        ],
    )
    .await;
    let out_id = out["id"].as_str().unwrap().to_owned();
    assert_eq!(out["type"], "outgoing");
    // The test send fails (one attempt allowed), to have something to retry.
    receiver.script([Reply::status(500)]);
    json(base, &["webhooks", "test", &out_id]).await;
    let triggered =
        json(base, &["webhooks", "trigger", "--event", "custom.deploy", "--data", r#"{"env":"prod"}"#]).await;
    assert_eq!(triggered["deliveries"].as_array().unwrap().len(), 1);
    let got = receiver.wait_for(2, WAIT).await;
    let deploy = got.iter().find(|r| r.json()["event"] == "custom.deploy").expect("the triggered event");
    assert_eq!(deploy.json()["data"]["env"], "prod");
    assert_eq!(deploy.header("x-team"), Some("infra"));
    assert_eq!(deploy.header("authorization"), Some("Bearer subscriber-token"));
    assert_eq!(json(base, &["webhooks", "pause", &out_id]).await["paused"], true);
    assert_eq!(json(base, &["webhooks", "resume", &out_id]).await["paused"], false);
    // Both outcomes are recorded just after the receiver has answered.
    let deadline = std::time::Instant::now() + WAIT;
    let deliveries = loop {
        let d = json(base, &["webhooks", "deliveries", &out_id, "--limit", "10"]).await;
        if d["items"].as_array().unwrap().iter().all(|i| i["status"] != "pending") {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "deliveries still pending: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let items = deliveries["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{deliveries}");
    let table = cli(base, &["webhooks", "deliveries", &out_id]).await;
    assert!(table.stdout.starts_with("ID") && table.stdout.contains("succeeded"), "{}", table.stdout);
    let stats = json(base, &["webhooks", "stats", &out_id]).await;
    assert!(stats.is_object(), "{stats}");
    let failed = items.iter().find(|i| i["status"] == "failed").expect("the failed test send");
    let delivery = failed["id"].as_str().unwrap();
    let retried = json(base, &["webhooks", "retry", delivery]).await;
    assert_eq!(retried["id"], delivery);
    let again = receiver.wait_for(3, WAIT).await;
    assert_eq!(again[2].header("x-webhook-id"), Some(delivery), "the same delivery sent again");
    json(base, &["webhooks", "recover", &out_id, "--since", "2020-01-01T00:00:00Z"]).await;

    out_id
}

async fn errors_and_completions(base: &str, out_id: &str) {
    // Usage errors: exit 2, one line, nothing sent.
    usage_error(base, &["agents", "add"], "<NAME>").await;
    usage_error(base, &["--format", "xml", "agents", "list"], "xml").await;
    usage_error(base, &["webhooks", "frobnicate"], "frobnicate").await;
    usage_error(base, &["webhooks", "trigger", "--event", "custom.x", "--data", "{bad"], "--data").await;
    usage_error(base, &["webhooks", "recover", out_id, "--since", "yesterday"], "--since").await;
    usage_error(base, &["webhooks", "update", out_id], "nothing to change").await;
    usage_error(base, &["webhooks", "create", "--header", "no-colon"], "--header").await;
    usage_error(base, &["agents", "list", "--server", "ftp://x"], "--server").await;
    usage_error(base, &["webhooks", "events", out_id, "--since", "last week"], "--since").await;
    usage_error(
        base,
        &["webhooks", "command-add", out_id, "--trigger", "x", "--conditions", "{"],
        "--conditions",
    )
    .await;

    // Refusals: exit 1 with the server's reason.
    let refused = cli(base, &["webhooks", "create", "--agent", "ghost"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("400") && refused.stderr.contains("ghost"), "{}", refused.stderr);
    let unauthorized = cli_with(base, None, &["agents", "list"]).await;
    assert_eq!(unauthorized.code, 1);
    assert!(unauthorized.stderr.contains("401"), "{}", unauthorized.stderr);
    let unreachable = cli("http://127.0.0.1:1", &["agents", "list"]).await;
    assert_eq!(unreachable.code, 1);
    assert!(unreachable.stderr.contains("cannot reach"), "{}", unreachable.stderr);
    assert_eq!(
        json(base, &["agents", "list"]).await["items"].as_array().unwrap().len(),
        1,
        "nothing changed"
    );

    // Completions.
    let completions = cli(base, &["completions", "bash"]).await;
    assert_eq!(completions.code, 0);
    assert!(completions.stdout.contains("rotate-secret"), "bash completion names the verbs");
}

/// `agents list` and `webhooks list` show everything, past the API's page
/// size of 250.
#[tokio::test]
async fn lists_follow_every_page() {
    init();
    let data = tempfile::tempdir().unwrap();
    let server = Process::start(exe(), data.path(), &[("CHORUS_API_TOKEN", TOKEN.to_owned())]).await;
    let base = server.base.as_str();
    let http = reqwest::Client::new();
    let creates = (0..260).map(|i| {
        http.post(format!("{base}/api/agents"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"name": format!("agent-{i:03}"), "channel_id": "1"}))
            .send()
    });
    for resp in futures_util::future::join_all(creates).await {
        assert_eq!(resp.unwrap().status(), 201);
    }
    let listed = json(base, &["agents", "list"]).await;
    let names: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 260);
    assert_eq!((names[0], names[259]), ("agent-000", "agent-259"));
    let table = cli(base, &["agents", "list"]).await;
    assert_eq!(table.stdout.lines().count(), 261, "a header and every agent");
}

#[tokio::test]
async fn export_and_import_move_a_team_to_a_new_server() {
    init();
    let http = reqwest::Client::new();
    // Both servers hold the same master key, as replicas and restores do.
    let env = [
        ("CHORUS_API_TOKEN", TOKEN.to_owned()),
        ("CHORUS_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".to_owned()),
    ];
    let (old_dir, new_dir, backup) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old = Process::start(exe(), old_dir.path(), &env).await;
    let (id, _, secret) = crate::support::setup(
        &http,
        &old.base,
        serde_json::json!({"agent": "builder", "name": "deploys", "commands": [{"trigger": "*", "action": "notify"}]}),
    )
    .await;

    let out = backup.path().join("team");
    let out_arg = out.to_str().unwrap();
    let ran = cli(&old.base, &["export", "--out", out_arg, "--secrets"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.starts_with("wrote 2 files to"), "{}", ran.stdout);
    let file = std::fs::read_to_string(out.join("webhooks").join(format!("{id}.json"))).unwrap();
    assert!(file.contains("\"secret\": \"sealed:") && !file.contains(secret.expose()), "{file}");
    assert!(out.join("agents/builder.json").is_file());
    usage_error(&old.base, &["export", "--out", out_arg], "not empty").await;

    let new = Process::start(exe(), new_dir.path(), &env).await;
    let ran = cli(&new.base, &["import", out_arg]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(ran.stdout.trim(), format!("created agent builder\ncreated webhook {id}"));
    // The sender's URL and secret work on the new server.
    let url = format!("{}/webhook/builder/{id}", new.base);
    crate::support::post_signed(&http, &url, &secret, &serde_json::json!({"text": "moved"})).await;

    // A second import changes nothing: the server refuses it (exit 1).
    let again = cli(&new.base, &["import", out_arg]).await;
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(
        again.stderr.contains("409 conflict") && again.stderr.contains("agents/builder.json"),
        "{}",
        again.stderr
    );
    let empty = backup.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    usage_error(&new.base, &["import", empty.to_str().unwrap()], "no backup files").await;
}
