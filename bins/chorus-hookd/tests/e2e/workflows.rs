//! Workflow runs across `kill -9` of the built binary: while an HTTP step
//! is in flight, and while a run waits at an approval gate. After each
//! restart the run resumes at the first step without a recorded outcome;
//! each step's effect happens once, and each HTTP step carries one key.

use std::{collections::BTreeMap, time::Duration};

use chorus_core::Secret;
use chorus_testkit::{FakeDiscord, Process, Reply, TestReceiver};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{WAIT, api, env_for, exe, init};

async fn run_reaches(http: &reqwest::Client, base: &str, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let run = api(http, base, Method::GET, &format!("/api/runs/{id}"), None).await;
        if run["status"] == status {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "run never reached {status}: {run}");
        // Polling the API for a state, not sleeping in place of one.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_run_resumes_after_kill_9_in_flight_and_at_a_gate_and_each_step_acts_once() {
    init();
    let discord = FakeDiscord::start().await;
    let receiver = TestReceiver::start().await;
    // The first request of the HTTP step hangs: it is in flight at the kill.
    receiver.script([Reply::status(200).after(Duration::from_secs(120))]);
    receiver.set_default(Reply::status(200));
    let data = tempfile::tempdir().unwrap();
    let mut env = env_for(Some(&discord));
    env.push(("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned()));
    env.push(("CHORUS_WORKFLOWS_SYNC_WAIT_MS", "200".to_owned()));
    let mut server = Process::start(exe(), data.path(), &env).await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    api(&http, &base, Method::POST, "/api/agents", Some(json!({"name": "builder", "channel_id": "4242"})))
        .await;
    let secret = "deploy-secret-0123456789abcdef";
    let definition = json!({
        "name": "deploy",
        "agent": "builder",
        "secret": secret,
        "steps": [
            {"name": "announce", "tool": "discord_message", "args": {"content": "deploying {{ payload.ref }}"}},
            {"name": "call", "tool": "http_request",
             "args": {"method": "POST", "url": receiver.url("/deploy"), "body": {"ref": "{{ payload.ref }}"}}},
            {"name": "gate", "tool": "emit_event", "requires_approval": true,
             "args": {"event": "custom.deployed", "data": {"ref": "{{ payload.ref }}"}}},
            {"name": "after", "tool": "http_request", "args": {"method": "POST", "url": receiver.url("/after")}},
        ],
    });
    api(&http, &base, Method::POST, "/api/workflows", Some(definition)).await;

    let body = serde_json::to_vec(&json!({"ref": "v2.0"})).unwrap();
    let resp = http
        .post(format!("{base}/webhooks/deploy"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", chorus_verify::sign_body_hex(&Secret::new(secret), &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "the HTTP step is still running");
    let run_id = resp.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_owned();

    // Kill while the HTTP step is in flight.
    receiver.wait_for_arrivals(1, WAIT).await;
    server.kill().await;
    let mut server = Process::start(exe(), data.path(), &env).await;
    let base = server.base.clone();
    let run = run_reaches(&http, &base, &run_id, "waiting").await;
    assert_eq!(run["steps"].as_array().unwrap().len(), 2, "{run}");
    assert_eq!(run["approvals"][0]["status"], "pending");

    // Kill while the run waits at the gate; it still waits after.
    server.kill().await;
    let restarted = Process::start(exe(), data.path(), &env).await;
    let base = restarted.base.clone();
    let run = api(&http, &base, Method::GET, &format!("/api/runs/{run_id}"), None).await;
    assert_eq!(run["status"], "waiting", "{run}");
    let decided = api(&http, &base, Method::POST, &format!("/api/runs/{run_id}/approve"), None).await;
    assert_eq!(decided["status"], "approved");
    let run = run_reaches(&http, &base, &run_id, "succeeded").await;
    let statuses: Vec<&str> =
        run["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["succeeded"; 4]);

    // One key per HTTP step, however often it was sent: the request cut
    // off by the kill arrived (three arrivals in all) but never finished.
    receiver.wait_for_arrivals(3, WAIT).await;
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in receiver.received() {
        keys.entry(r.path.clone()).or_default().push(r.header("idempotency-key").unwrap().to_owned());
    }
    assert_eq!(keys["/deploy"].len(), 1, "answered once, after the restart: {keys:?}");
    assert!(keys["/deploy"].iter().all(|k| *k == format!("{run_id}.1")), "{keys:?}");
    assert_eq!(keys["/after"], [format!("{run_id}.3")]);

    // The announcement was posted once, though the run started twice more.
    discord
        .wait_until("the run's summary", WAIT, |d| {
            d.messages()
                .iter()
                .any(|(_, m)| m["embeds"][0]["title"] == "Webhook 'deploy' triggered workflow:")
        })
        .await;
    let announced = discord
        .messages()
        .iter()
        .filter(|(c, m)| c == "4242" && m["embeds"][0]["description"] == "deploying v2.0")
        .count();
    assert_eq!(announced, 1);
    let gates = discord.messages().iter().filter(|(_, m)| m.get("components").is_some()).count();
    assert_eq!(gates, 1, "one approval message");
    drop(restarted);
}
