use std::time::Duration;

use chorus_core::{Secret, Source};
use chorus_testkit::{Reply, TestReceiver};
use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, WAIT};

/// Verify a delivery with Python: the official Standard Webhooks library, or
/// an independent HMAC for the chorus scheme. Returns false where Python is
/// not configured (a notice is printed).
pub(crate) fn python_verifies(scheme: &str, secret: &str, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let Some(python) = chorus_testkit::python() else { return false };
    let script = r#"
import sys, json, hmac, hashlib
req = json.load(sys.stdin)
body = req["body"].encode()
if req["scheme"] == "standard":
    from standardwebhooks.webhooks import Webhook
    Webhook(req["secret"]).verify(body, req["headers"])
else:
    want = "sha256=" + hmac.new(req["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, req["headers"]["x-chorus-signature-256"]), "hmac mismatch"
print("verified")
"#;
    let input = json!({
        "scheme": scheme,
        "secret": secret,
        "headers": headers.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "body": String::from_utf8(body.to_vec()).unwrap(),
    });
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python refused the signature: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim() == "verified"
}

#[tokio::test]
async fn outgoing_webhook_fires_on_event() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    app.outgoing(json!({"url": receiver.url("/hook"), "events": ["agent.task_complete"]})).await;
    let deliveries = app.emit("agent.task_complete", None, json!({"task": "build"})).await;
    assert_eq!(deliveries.len(), 1);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hook");
    assert_eq!(got[0].json()["data"]["task"], "build");
    // An event nobody subscribed to makes no delivery.
    assert!(app.emit("agent.error", None, json!({})).await.is_empty());
}

#[tokio::test]
async fn outgoing_webhook_sends_correct_payload() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    let (hook, secret) = app
        .outgoing(json!({
            "url": receiver.url("/in"),
            "events": ["agent.commit"],
            "headers": {"X-Team": "infra"},
            "auth": {"type": "bearer", "token": "subscriber-token"},
            "method": "PUT",
        }))
        .await;
    let (status, _) = app
        .api_json(
            Method::POST,
            "/api/events",
            Some(json!({"event": "agent.commit", "data": {"sha": "abc123"}, "metadata": {"source": "test"}})),
        )
        .await;
    assert_eq!(status, 202);
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(got.method, "PUT");
    let body = got.json();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["webhook_id", "event", "timestamp", "data", "metadata"]);
    assert_eq!(body["webhook_id"], hook.as_str());
    assert_eq!(body["event"], "agent.commit");
    assert_eq!(body["data"], json!({"sha": "abc123"}));
    assert_eq!(body["metadata"], json!({"source": "test"}));
    assert!(body["timestamp"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
    assert!(got.header("user-agent").unwrap().starts_with("Chorus-Webhook/"));
    assert_eq!(got.header("x-webhook-event"), Some("agent.commit"));
    assert!(got.header("x-webhook-id").unwrap().starts_with("dlv_"));
    assert!(got.header("x-webhook-timestamp").unwrap().parse::<jiff::Timestamp>().is_ok());
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-team"), Some("infra"));
    assert_eq!(got.header("authorization"), Some("Bearer subscriber-token"));
    let signature = got.header("x-chorus-signature-256").unwrap();
    assert_eq!(signature, chorus_verify::sign_body_hex(&Secret::new(&secret), &got.body));
    python_verifies("chorus", &secret, &[("x-chorus-signature-256", signature)], &got.body);
}

/// A delivery's Standard Webhooks headers, as pairs and as a map.
fn standard_headers(got: &chorus_testkit::Received) -> ([(&'static str, &str); 3], http::HeaderMap) {
    let pairs = ["webhook-id", "webhook-timestamp", "webhook-signature"].map(|k| (k, got.header(k).unwrap()));
    let mut map = http::HeaderMap::new();
    for (k, v) in pairs {
        map.insert(k, v.parse().unwrap());
    }
    (pairs, map)
}

#[tokio::test]
async fn standard_webhooks_signatures_verify_with_the_official_library() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    let (_, secret) = app
        .outgoing(json!({"url": receiver.url("/std"), "events": ["custom.*"], "signature": "standard"}))
        .await;
    assert!(secret.starts_with("whsec_"));
    app.emit("custom.deploy", None, json!({"env": "prod"})).await;
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    let (headers, map) = standard_headers(&got);
    assert_eq!(got.header("webhook-id"), got.header("x-webhook-id"), "webhook-id is the stable delivery id");
    let now = chorus_core::Clock::now(&chorus_core::SystemClock);
    chorus_verify::verify(Source::Standard, None, &[Secret::new(&secret)], &map, &got.body, now).unwrap();
    python_verifies("standard", &secret, &headers, &got.body);
}

/// After a rotation, a `standard` delivery carries a signature with each
/// secret while the grace period lasts, so the receiver verifies with
/// either; the official library accepts both.
#[tokio::test]
async fn rotated_standard_subscription_signs_with_both_secrets() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    let (hook, old) = app
        .outgoing(json!({"url": receiver.url("/std"), "events": ["custom.*"], "signature": "standard"}))
        .await;
    let (status, v) =
        app.api_json(Method::POST, &format!("/api/webhooks/{hook}/rotate-secret"), Some(json!({}))).await;
    assert_eq!(status, 200, "{v}");
    let new = v["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    app.emit("custom.deploy", None, json!({"env": "prod"})).await;
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    let signature = got.header("webhook-signature").unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    let (headers, map) = standard_headers(&got);
    let now = chorus_core::Clock::now(&chorus_core::SystemClock);
    for secret in [&old, &new] {
        chorus_verify::verify(Source::Standard, None, &[Secret::new(secret)], &map, &got.body, now).unwrap();
        python_verifies("standard", secret, &headers, &got.body);
    }
    let wrong = Secret::generate_standard();
    assert!(chorus_verify::verify(Source::Standard, None, &[wrong], &map, &got.body, now).is_err());
}

#[tokio::test]
async fn outgoing_webhook_retries_on_failure() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    receiver.script([
        Reply::status(500),
        Reply::status(500),
        Reply::status(429).header("retry-after", "1"),
        Reply::status(200),
    ]);
    let (hook, _) = app
        .outgoing(json!({
            "url": receiver.url("/flaky"),
            "events": ["task.failed"],
            "retry": {"strategy": "fixed", "max_attempts": 5, "initial_delay_ms": 200, "max_delay_ms": 200, "jitter": false},
        }))
        .await;
    app.emit("task.failed", None, json!({"task": 7})).await;
    let got = receiver.wait_for(4, WAIT).await;
    app.wait_attempts(4).await;
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(190) && gaps[1] >= Duration::from_millis(190), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(990), "Retry-After: 1 not honoured: {gaps:?}");
    let ids: Vec<&str> = got.iter().map(|r| r.header("x-webhook-id").unwrap()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "the delivery id changed between attempts");
    let (_, history) = app.api_json(Method::GET, &format!("/api/webhooks/{hook}/deliveries"), None).await;
    let delivery = &history["items"][0];
    assert!(delivery.is_object(), "{history}");
    assert_eq!(delivery["status"], "succeeded");
    let codes: Vec<u64> = delivery["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 429, 200]);
    assert_eq!(delivery["attempt_log"][3]["response_excerpt"], "reply 200");
    let (_, stats) = app.api_json(Method::GET, &format!("/api/webhooks/{hook}/stats"), None).await;
    assert_eq!(stats["attempts_last_hour"], 4);
    assert_eq!(stats["succeeded_last_hour"], 1);
    assert_eq!(stats["success_rate"], 0.25);
    assert!(stats["p50_ms"].is_u64() && stats["p95_ms"].is_u64());
}

#[tokio::test]
async fn exhausted_deliveries_fail_and_can_be_retried_by_hand() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    let watcher = TestReceiver::start().await;
    receiver.script([Reply::status(503), Reply::status(503)]);
    let (hook, _) = app
        .outgoing(json!({
            "url": receiver.url("/x"),
            "events": ["agent.error"],
            "retry": {"strategy": "fixed", "max_attempts": 2, "initial_delay_ms": 100, "max_delay_ms": 100},
        }))
        .await;
    app.outgoing(json!({"url": watcher.url("/ops"), "events": ["delivery.exhausted"]})).await;
    let ids = app.emit("agent.error", None, json!({"error": "boom"})).await;
    let note = watcher.wait_for(1, WAIT).await.remove(0).json();
    assert_eq!(note["event"], "delivery.exhausted");
    assert_eq!(note["data"]["delivery_id"], ids[0].as_str());
    let (_, d) = app.api_json(Method::GET, &format!("/api/deliveries/{}", ids[0]), None).await;
    assert_eq!((d["status"].as_str(), d["attempts"].as_u64()), (Some("failed"), Some(2)));

    let (status, v) = app.api_json(Method::POST, &format!("/api/deliveries/{}/retry", ids[0]), None).await;
    assert_eq!(status, 202, "{v}");
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got[2].header("x-webhook-id"), Some(ids[0].as_str()), "a manual retry keeps the delivery id");
    app.wait_attempts(4).await;
    let (_, d) = app.api_json(Method::GET, &format!("/api/deliveries/{}", ids[0]), None).await;
    assert_eq!(d["status"], "succeeded");
    // Only failed deliveries can be retried.
    let (status, _) = app.api_json(Method::POST, &format!("/api/deliveries/{}/retry", ids[0]), None).await;
    assert_eq!(status, 409);
    let (status, v) = app
        .api_json(
            Method::POST,
            &format!("/api/webhooks/{hook}/recover"),
            Some(json!({"since": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!((status, v["recovered"].as_u64()), (200, Some(0)));
}

#[tokio::test]
async fn outgoing_webhook_respects_rate_limit() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    app.outgoing(
        json!({"url": receiver.url("/slow"), "events": ["task.executed"], "rate_limit_per_minute": 60}),
    )
    .await;
    for i in 0..4 {
        app.emit("task.executed", None, json!({"n": i})).await;
    }
    let got = receiver.wait_for(4, WAIT).await;
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(900), "sends {gap:?} apart under a 60/min limit");
    }
    // Held-back sends are not failed attempts.
    app.wait_attempts(4).await;
    let (_, all) = app.api_json(Method::GET, "/api/deliveries", None).await;
    assert!(all["items"].as_array().unwrap().iter().all(|d| d["attempts"] == 1), "{all}");
}

#[tokio::test]
async fn outgoing_webhook_configurable_events() {
    let app = TestApp::start().await;
    app.agent("builder", "1").await;
    let receiver = TestReceiver::start().await;
    app.outgoing(json!({"url": receiver.url("/agent-all"), "events": ["agent.*"]})).await;
    app.outgoing(json!({"url": receiver.url("/task-failed"), "events": ["task.failed"]})).await;
    app.outgoing(json!({"url": receiver.url("/builder-custom"), "events": ["custom.*"], "agent": "builder"}))
        .await;
    app.outgoing(json!({"url": receiver.url("/everything"), "events": ["*"]})).await;
    assert_eq!(app.emit("agent.commit", None, json!({})).await.len(), 2);
    assert_eq!(app.emit("task.failed", None, json!({})).await.len(), 2);
    assert_eq!(app.emit("custom.deploy", Some("builder"), json!({})).await.len(), 2);
    assert_eq!(
        app.emit("custom.deploy", None, json!({})).await.len(),
        1,
        "agent-scoped hooks need the agent"
    );
    assert_eq!(app.emit("workflow.started", None, json!({})).await.len(), 1);
    let got = receiver.wait_for(8, WAIT).await;
    let mut pairs: Vec<(String, String)> =
        got.iter().map(|r| (r.path.clone(), r.json()["event"].as_str().unwrap().to_owned())).collect();
    pairs.sort();
    let want = [
        ("/agent-all", "agent.commit"),
        ("/builder-custom", "custom.deploy"),
        ("/everything", "agent.commit"),
        ("/everything", "custom.deploy"),
        ("/everything", "custom.deploy"),
        ("/everything", "task.failed"),
        ("/everything", "workflow.started"),
        ("/task-failed", "task.failed"),
    ];
    assert_eq!(pairs, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
}

#[tokio::test]
async fn paused_subscriptions_accrue_and_send_after_resume() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    let (hook, _) = app
        .outgoing(json!({"url": receiver.url("/p"), "events": ["custom.tick"], "max_concurrency": 16}))
        .await;
    let (status, v) = app.api_json(Method::POST, &format!("/api/webhooks/{hook}/pause"), None).await;
    assert_eq!((status, v["paused"].as_bool()), (200, Some(true)));
    for i in 0..100 {
        assert_eq!(app.emit("custom.tick", None, json!({"i": i})).await.len(), 1);
    }
    let (_, figures) = app.api_json(Method::GET, &format!("/api/webhooks/{hook}/stats"), None).await;
    assert_eq!(figures["pending"], 100);
    assert_eq!(figures["attempts_last_hour"], 0, "a paused hook sends nothing");
    assert!(receiver.received().is_empty());
    app.api_json(Method::POST, &format!("/api/webhooks/{hook}/resume"), None).await;
    let got = receiver.wait_for(100, WAIT).await;
    let mut seen: Vec<u64> = got.iter().map(|r| r.json()["data"]["i"].as_u64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn gone_and_failing_destinations_are_disabled() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    let watcher = TestReceiver::start().await;
    app.outgoing(json!({"url": watcher.url("/ops"), "events": ["webhook.disabled"]})).await;
    receiver.set_default(Reply::status(410));
    let (gone, _) = app.outgoing(json!({"url": receiver.url("/gone"), "events": ["agent.started"]})).await;
    app.emit("agent.started", None, json!({})).await;
    let note = watcher.wait_for(1, WAIT).await.remove(0).json();
    assert_eq!(note["data"]["webhook_id"], gone.as_str());
    let (_, v) = app.api_json(Method::GET, &format!("/api/webhooks/{gone}"), None).await;
    assert_eq!(v["enabled"], false);
    assert!(v["disabled_reason"].as_str().unwrap().contains("410"));
    assert!(app.emit("agent.started", None, json!({})).await.is_empty(), "disabled hooks get nothing");

    // Circuit breaker: five failed attempts in a row (the test app's threshold).
    let failing = TestReceiver::start().await;
    failing.set_default(Reply::status(500));
    let (hook, _) = app
        .outgoing(json!({
            "url": failing.url("/down"),
            "events": ["agent.stopped"],
            "retry": {"strategy": "fixed", "max_attempts": 10, "initial_delay_ms": 100, "max_delay_ms": 100},
        }))
        .await;
    app.emit("agent.stopped", None, json!({})).await;
    let notes = watcher.wait_for(2, WAIT).await;
    assert_eq!(notes[1].json()["data"]["webhook_id"], hook.as_str());
    assert!(notes[1].json()["data"]["reason"].as_str().unwrap().contains("5 failed attempts"));
    assert_eq!(failing.received().len(), 5);
    // Re-enabling resumes the held delivery with a fresh failure count.
    failing.set_default(Reply::status(200));
    let (_, v) = app.api_json(Method::POST, &format!("/api/webhooks/{hook}/enable"), None).await;
    assert_eq!(v["consecutive_failures"], 0);
    failing.wait_for(6, WAIT).await;
}

#[tokio::test]
async fn test_send_uses_a_sample_event() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    let (hook, _) = app.outgoing(json!({"url": receiver.url("/t"), "events": ["agent.commit"]})).await;
    let (status, v) = app.api_json(Method::POST, &format!("/api/webhooks/{hook}/test"), None).await;
    assert_eq!(status, 202, "{v}");
    let got = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(got.json()["event"], "webhook.test");
    assert_eq!(got.header("x-webhook-id"), v["delivery_id"].as_str());
}

#[tokio::test]
async fn outgoing_bad_inputs_are_refused_and_store_nothing() {
    let app = TestApp::start().await;
    let ok_url = "http://127.0.0.1:9/hook";
    for (body, needle) in [
        (json!({"url": "not a url", "events": ["agent.commit"]}), "invalid URL"),
        (json!({"url": "ftp://127.0.0.1/x", "events": ["agent.commit"]}), "scheme"),
        (json!({"url": "http://10.0.0.7/x", "events": ["agent.commit"]}), "private"),
        (json!({"url": "http://169.254.169.254/latest/meta-data", "events": ["agent.commit"]}), "link-local"),
        (json!({"url": "http://[::1]:8080/x", "events": ["agent.commit"]}), "loopback"),
        (json!({"url": "http://100.64.1.1/x", "events": ["agent.commit"]}), "CGNAT"),
        (json!({"url": ok_url, "events": ["agent.unknown"]}), "unknown event"),
        (json!({"url": ok_url, "events": []}), "at least one event"),
        (json!({"url": ok_url, "events": ["agent.commit"], "auth": {"type": "digest"}}), "unknown variant"),
        (
            json!({"url": ok_url, "events": ["agent.commit"], "auth": {"type": "bearer", "token": ""}}),
            "auth.token",
        ),
        (
            json!({"url": ok_url, "events": ["agent.commit"], "retry": {"max_attempts": 0}}),
            "retry.max_attempts",
        ),
        (
            json!({"url": ok_url, "events": ["agent.commit"], "retry": {"max_attempts": 1000}}),
            "retry.max_attempts",
        ),
        (
            json!({"url": ok_url, "events": ["agent.commit"], "retry": {"strategy": "random"}}),
            "unknown variant",
        ),
        (json!({"url": ok_url, "events": ["agent.commit"], "timeout_ms": 5}), "timeout_ms"),
        (
            json!({"url": ok_url, "events": ["agent.commit"], "headers": {"X-Webhook-Id": "x"}}),
            "set by Chorus",
        ),
        (json!({"url": ok_url, "events": ["agent.commit"], "method": "GET"}), "unknown variant"),
        (json!({"url": ok_url, "events": ["agent.commit"], "agent": "ghost"}), "does not exist"),
        (
            json!({"url": ok_url, "events": ["agent.commit"], "signature": "standard", "secret": "not-a-whsec-secret!"}),
            "whsec_",
        ),
    ] {
        let mut body = body;
        body["type"] = json!("outgoing");
        let (status, v) = app.api_json(Method::POST, "/api/webhooks", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} -> {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body} -> {message}");
    }
    let (_, list) = app.api_json(Method::GET, "/api/webhooks?type=outgoing", None).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    // Emitting an unknown event is refused too.
    let (status, v) =
        app.api_json(Method::POST, "/api/events", Some(json!({"event": "agent.unknown"}))).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) =
        app.api_json(Method::POST, "/api/events", Some(json!({"event": "custom.x", "data": [1]}))).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn secrets_and_credentials_are_never_shown_again() {
    let app = TestApp::start().await;
    let (hook, secret) = app
        .outgoing(json!({
            "url": "http://127.0.0.1:9/x",
            "events": ["agent.commit"],
            "auth": {"type": "basic", "username": "ops", "password": "hunter2-password"},
        }))
        .await;
    let (_, one) = app.api_json(Method::GET, &format!("/api/webhooks/{hook}"), None).await;
    let (_, all) = app.api_json(Method::GET, "/api/webhooks", None).await;
    for v in [&one, &all] {
        let text = v.to_string();
        assert!(!text.contains(&secret) && !text.contains("hunter2-password"), "{text}");
    }
    let (status, v) = app
        .api_json(Method::PATCH, &format!("/api/webhooks/{hook}"), Some(json!({"timeout_ms": 5000})))
        .await;
    assert_eq!((status, v["timeout_ms"].as_u64()), (200, Some(5000)));
}

/// Run `script` with the interoperability Python, feeding it `input` as
/// JSON; its stdout as JSON.
fn python_json(python: &std::path::Path, script: &str, input: &serde_json::Value) -> serde_json::Value {
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Standard Webhooks `v1a` (Ed25519) both ways, against an independent
/// implementation (PyNaCl, libsodium): a `whsk_` subscription's deliveries
/// verify with the public key its creation showed, and a `whpk_` incoming
/// hook takes what PyNaCl signs and refuses what it did not.
#[tokio::test]
async fn standard_v1a_interoperates_with_pynacl() {
    let Some(python) = chorus_testkit::python() else { return };
    let app = TestApp::start().await;
    app.agent("builder", "91").await;
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200));
    let seed = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [11u8; 32]);
    let body = json!({"url": receiver.url("/v1a"), "events": ["custom.*"], "signature": "standard",
                      "secret": format!("whsk_{seed}"), "type": "outgoing"});
    let (status, created) = app.api_json(Method::POST, "/api/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let public = created["public_key"].as_str().unwrap().to_owned();
    app.emit("custom.v1a", None, json!({"n": 1})).await;
    let got = receiver.wait_for(1, WAIT).await;
    let header = |n: &str| got[0].header(n).unwrap().to_owned();
    assert!(header("webhook-signature").starts_with("v1a,"));
    let verify = r#"
import sys, json, base64
from nacl.signing import VerifyKey
r = json.load(sys.stdin)
key = VerifyKey(base64.b64decode(r["public"][len("whpk_"):]))
content = (r["id"] + "." + r["ts"] + ".").encode() + r["body"].encode()
for entry in r["sig"].split(" "):
    if entry.startswith("v1a,"):
        key.verify(content, base64.b64decode(entry[4:]))
        print(json.dumps({"verified": True}))
        break
"#;
    let checked = python_json(
        &python,
        verify,
        &json!({"public": public, "id": header("webhook-id"), "ts": header("webhook-timestamp"),
                "sig": header("webhook-signature"), "body": String::from_utf8(got[0].body.to_vec()).unwrap()}),
    );
    assert_eq!(checked["verified"], true);

    let sign = r#"
import sys, json, base64, time
from nacl.signing import SigningKey
r = json.load(sys.stdin)
key = SigningKey(bytes([5] * 32))
ts = str(int(time.time()))
sig = key.sign(("msg_nacl." + ts + ".").encode() + r["body"].encode()).signature
print(json.dumps({"public": "whpk_" + base64.b64encode(bytes(key.verify_key)).decode(), "ts": ts,
                  "sig": "v1a," + base64.b64encode(sig).decode()}))
"#;
    let payload = r#"{"type":"order.paid","id":7}"#;
    let signed = python_json(&python, sign, &json!({"body": payload}));
    let hook = app.hook(json!({"agent": "builder", "source": "standard", "secret": signed["public"]})).await;
    let headers = |sig: &str| {
        vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("webhook-id".to_owned(), "msg_nacl".to_owned()),
            ("webhook-timestamp".to_owned(), signed["ts"].as_str().unwrap().to_owned()),
            ("webhook-signature".to_owned(), sig.to_owned()),
        ]
    };
    let sig = signed["sig"].as_str().unwrap();
    assert_eq!(app.post(&hook.url, &headers(sig), payload).await.status(), 202);
    // One character of the signature changed.
    let first = if sig.as_bytes()[4] == b'A' { "B" } else { "A" };
    let forged = format!("v1a,{first}{}", &sig[5..]);
    assert_eq!(app.post(&hook.url, &headers(&forged), payload).await.status(), 403);
    assert_eq!(app.post(&hook.url, &headers(sig), r#"{"type":"order.paid","id":8}"#).await.status(), 403);
}

/// A Discord webhook URL that answers 404 (deleted) is tried once: the
/// agent is marked degraded, subscribers hear `system.health.degraded`,
/// and its messages wait; a new URL sends them and says `restored`.
#[tokio::test]
async fn a_deleted_discord_webhook_is_tried_once_and_its_messages_wait() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    app.outgoing(
        json!({"url": receiver.url("/ops"), "events": ["system.health.degraded", "system.health.restored"]}),
    )
    .await;
    let (status, _) = app
        .api_json(
            reqwest::Method::POST,
            "/api/agents",
            Some(json!({"name": "hooky", "discord_webhook_url": "https://discord.com/api/webhooks/77/old"})),
        )
        .await;
    assert_eq!(status, 201);
    let hook = app.hook(json!({"agent": "hooky", "source": "chorus"})).await;
    app.discord.script([chorus_testkit::Mode::Status(404)]);
    let secret = hook.secret.clone().unwrap();
    for n in 0..3 {
        let body = serde_json::to_vec(&json!({"title": format!("deploy {n}")})).unwrap();
        assert_eq!(
            app.post(&hook.url, &crate::support::chorus_headers(&secret, &body), body).await.status(),
            202
        );
    }
    let degraded = receiver.wait_for(1, WAIT).await;
    assert_eq!(degraded[0].json()["event"], "system.health.degraded");
    assert_eq!(degraded[0].json()["data"]["agent"], "hooky");
    let (_, agent) = app.api_json(reqwest::Method::GET, "/api/agents/hooky", None).await;
    assert!(agent["degraded"].as_str().unwrap().contains("404"), "{agent}");
    let (_, deliveries) =
        app.api_json(reqwest::Method::GET, &format!("/api/webhooks/{}/deliveries", hook.id), None).await;
    let items = deliveries["items"].as_array().unwrap();
    assert!(items.iter().all(|d| d["status"] == "pending"), "{deliveries}");

    // A new URL: the messages that waited go out, to it.
    let (status, agent) = app
        .api_json(
            reqwest::Method::PATCH,
            "/api/agents/hooky",
            Some(json!({"discord_webhook_url": "https://discord.com/api/webhooks/78/new"})),
        )
        .await;
    assert_eq!((status, &agent["degraded"]), (200, &serde_json::Value::Null), "{agent}");
    let shown = app.discord.wait_for_shown(3, WAIT).await;
    assert!(shown.iter().all(|s| s.channel == "webhook:78"), "{shown:?}");
    let old: Vec<_> =
        app.discord.requests().into_iter().filter(|r| r.path.contains("/webhooks/77/")).collect();
    assert_eq!(old.len(), 1, "the deleted webhook was tried once");
    let restored = receiver.wait_for(2, WAIT).await;
    assert_eq!(restored[1].json()["event"], "system.health.restored");
}

/// A bot token Discord refuses (401) is not tried again for every message:
/// channel messages are held, subscribers hear `system.health.degraded`
/// once, and after the hold one try finds the token working again, sends
/// everything that waited and says `restored`.
#[tokio::test]
async fn a_refused_bot_token_holds_channel_messages_instead_of_spending_401s() {
    let app = TestApp::start().await;
    let receiver = TestReceiver::start().await;
    app.outgoing(
        json!({"url": receiver.url("/ops"), "events": ["system.health.degraded", "system.health.restored"]}),
    )
    .await;
    app.agent("builder", "4242").await;
    let hook = app.hook(json!({"agent": "builder", "source": "chorus"})).await;
    app.discord.script([chorus_testkit::Mode::Status(401)]);
    let secret = hook.secret.clone().unwrap();
    let post = |n: u32| {
        let body = serde_json::to_vec(&json!({"title": format!("deploy {n}")})).unwrap();
        let headers = crate::support::chorus_headers(&secret, &body);
        let (app, url) = (&app, hook.url.clone());
        async move { app.post(&url, &headers, body).await.status() }
    };
    assert_eq!(post(0).await, 202);
    let degraded = receiver.wait_for(1, WAIT).await;
    assert_eq!(degraded[0].json()["event"], "system.health.degraded");
    assert_eq!(degraded[0].json()["data"]["component"], "discord_bot");
    // Arriving during the hold, these wait with the first.
    for n in 1..3 {
        assert_eq!(post(n).await, 202);
    }
    let shown = app.discord.wait_for_shown(3, WAIT).await;
    let titles: Vec<String> = shown.iter().map(|s| s.title.clone()).collect();
    assert!(
        titles.iter().any(|t| t.contains("deploy 0")) && titles.iter().any(|t| t.contains("deploy 2")),
        "{titles:?}"
    );
    let to_channel: Vec<_> =
        app.discord.requests().into_iter().filter(|r| r.path.contains("/channels/4242/")).collect();
    assert_eq!(to_channel[0].status, 401);
    // After the refused one, the next request came only once the hold was
    // over: no 401 was spent in between.
    assert!(
        to_channel[1].at.duration_since(to_channel[0].at) >= Duration::from_millis(500),
        "{to_channel:?}"
    );
    assert!(to_channel[1..].iter().all(|r| r.status < 300), "{to_channel:?}");
    let restored = receiver.wait_for(2, WAIT).await;
    assert_eq!(restored[1].json()["event"], "system.health.restored");
    assert_eq!(restored[1].json()["data"]["component"], "discord_bot");
}
