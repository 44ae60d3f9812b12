use std::{collections::HashMap, time::Duration};

use chorus_testkit::{Process, Reply, TestReceiver};
use serde_json::json;

use crate::support::{TOKEN, WAIT, api, exe, init};

fn env() -> Vec<(&'static str, String)> {
    vec![("CHORUS_API_TOKEN", TOKEN.to_owned()), ("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned())]
}

/// `kill -9` while outgoing deliveries are in flight, then restart: every
/// emitted event is delivered, and a repeat carries the same delivery id.
#[tokio::test]
async fn kill_9_with_outgoing_deliveries_in_flight_loses_nothing() {
    init();
    let receiver = TestReceiver::start().await;
    // Slow answers keep sends in flight when the process dies.
    receiver.set_default(Reply::status(200).after(Duration::from_millis(150)));
    let data = tempfile::tempdir().unwrap();
    let mut server = Process::start(exe(), data.path(), &env()).await;
    let http = reqwest::Client::new();
    let hook = api(
        &http,
        &server.base,
        reqwest::Method::POST,
        "/api/webhooks",
        Some(json!({"type": "outgoing", "url": receiver.url("/in"), "events": ["custom.*"], "max_concurrency": 4})),
    )
    .await;
    assert_eq!(hook["type"], "outgoing");

    let mut emitted: HashMap<String, u64> = HashMap::new();
    for i in 0..40u64 {
        let v = api(
            &http,
            &server.base,
            reqwest::Method::POST,
            "/api/events",
            Some(json!({"event": "custom.n", "data": {"i": i}})),
        )
        .await;
        emitted.insert(v["deliveries"][0].as_str().unwrap().to_owned(), i);
    }
    receiver.wait_for(6, WAIT).await;
    server.kill().await;
    let before = receiver.received().len();
    assert!(before < 40, "the kill landed mid-stream");

    let _restarted = Process::start(exe(), data.path(), &env()).await;
    receiver.set_default(Reply::status(200));
    let mut delivered: HashMap<String, u64> = HashMap::new();
    let mut want = 40;
    loop {
        let got = receiver.wait_for(want, WAIT).await;
        delivered.clear();
        for r in &got {
            let id = r.header("x-webhook-id").unwrap().to_owned();
            let i = r.json()["data"]["i"].as_u64().unwrap();
            let expected = emitted.get(&id).unwrap_or_else(|| panic!("unknown delivery id {id}"));
            assert_eq!(*expected, i, "delivery {id} carried another event");
            delivered.insert(id, i);
        }
        if delivered.len() == emitted.len() {
            break;
        }
        want = got.len() + 1;
    }
}
