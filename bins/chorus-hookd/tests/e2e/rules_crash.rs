use std::{collections::HashMap, time::Duration};

use chorus_testkit::{FakeDiscord, Process, Reply, TestReceiver};
use serde_json::json;

use crate::support::{WAIT, api, env_for, exe, init, post_signed, setup};

const EVENTS: usize = 20;

/// Rules act once across a crash: `kill -9` while a forward is in flight
/// and events are still being routed, then restart on the same data
/// directory. Every acknowledged event makes exactly one task, and the
/// receiver sees one idempotency key per event, however often it is sent.
#[tokio::test]
async fn kill_9_between_ingest_and_action_repeats_no_action() {
    init();
    let discord = FakeDiscord::start().await;
    let receiver = TestReceiver::start().await;
    // The first forward hangs: it is in flight when the process dies.
    receiver.script([Reply::status(200).after(Duration::from_secs(120))]);
    let data = tempfile::tempdir().unwrap();
    let mut env = env_for(Some(&discord));
    env.push(("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned()));
    let mut server = Process::start(exe(), data.path(), &env).await;
    let http = reqwest::Client::new();
    let (_, url, secret) = setup(
        &http,
        &server.base,
        json!({"agent": "builder", "source": "chorus", "rate_limit_per_minute": 100_000,
        "commands": [
            {"trigger": "*", "action": "create_task", "template": "Handle {{title}}"},
            {"trigger": "*", "action": "forward", "url": receiver.url("/sink")}
        ]}),
    )
    .await;

    let mut acked = Vec::new();
    for i in 0..EVENTS {
        acked.push(post_signed(&http, &url, &secret, &json!({"title": format!("event {i}")})).await);
    }
    receiver.wait_for_arrivals(1, WAIT).await;
    server.kill().await;

    let restarted = Process::start(exe(), data.path(), &env).await;
    // Every event forwarded, the one cut off included (sent again with its key).
    let deadline = tokio::time::Instant::now() + WAIT;
    let keys = loop {
        let mut keys: HashMap<String, Vec<String>> = HashMap::new();
        for r in receiver.received() {
            let event = r.header("x-chorus-event-id").unwrap().to_owned();
            keys.entry(event).or_default().push(r.header("idempotency-key").unwrap().to_owned());
        }
        if acked.iter().all(|e| keys.contains_key(e)) {
            break keys;
        }
        assert!(tokio::time::Instant::now() < deadline, "forwards missing after restart: {keys:?}");
        receiver.wait_for(receiver.received().len() + 1, WAIT).await;
    };
    for (event, sent) in &keys {
        assert!(sent.iter().all(|k| *k == sent[0]), "event {event} forwarded under several keys: {sent:?}");
    }
    assert_eq!(keys.len(), EVENTS, "no forward for an event that was never acknowledged");

    let tasks = api(&http, &restarted.base, reqwest::Method::GET, "/api/tasks?limit=250", None).await;
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for t in tasks["items"].as_array().unwrap() {
        *per_event.entry(t["event_id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    for e in &acked {
        assert_eq!(per_event.get(e), Some(&1), "event {e}: tasks {per_event:?}");
    }
    assert_eq!(per_event.len(), EVENTS);
    drop(restarted);
}
