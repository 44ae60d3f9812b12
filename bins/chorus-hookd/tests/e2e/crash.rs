use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chorus_testkit::FakeDiscord;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use crate::support::{WAIT, init, setup, start};

const TOTAL: usize = 400;
const KILL_AFTER: usize = 120;

/// Many signed events posted concurrently, `kill -9` mid-stream, restart on
/// the same data directory: every event that got a 2xx reaches Discord
/// exactly once.
#[tokio::test]
async fn kill_9_mid_stream_loses_nothing_acknowledged() {
    init();
    let discord = FakeDiscord::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), Some(&discord)).await;
    let http = reqwest::Client::new();
    let (_, url, secret) = setup(
        &http,
        &server.base,
        json!({"agent": "builder", "source": "chorus", "rate_limit_per_minute": 100_000}),
    )
    .await;

    let acked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let killed = Arc::new(tokio::sync::Notify::new());
    let posting = {
        let (acked, killed, http) = (acked.clone(), killed.clone(), http.clone());
        tokio::spawn(async move {
            stream::iter(0..TOTAL)
                .for_each_concurrent(16, |i| {
                    let (acked, killed, http, url, secret) =
                        (acked.clone(), killed.clone(), http.clone(), url.clone(), secret.clone());
                    async move {
                        let body =
                            serde_json::to_vec(&json!({"title": format!("event {i}"), "n": i})).unwrap();
                        let sent = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-chorus-delivery", format!("crash-{i}"))
                            .header("x-chorus-signature-256", chorus_verify::sign_body_hex(&secret, &body))
                            .body(body)
                            .send()
                            .await;
                        if let Ok(resp) = sent
                            && resp.status().is_success()
                            && let Ok(v) = resp.json::<Value>().await
                        {
                            let mut ids = acked.lock().unwrap();
                            ids.insert(v["event_id"].as_str().unwrap().to_owned(), i);
                            if ids.len() == KILL_AFTER {
                                killed.notify_one();
                            }
                        }
                    }
                })
                .await;
        })
    };
    killed.notified().await;
    server.kill().await;
    posting.await.unwrap();
    let acked: HashMap<String, usize> = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= KILL_AFTER && acked.len() < TOTAL,
        "the kill landed mid-stream ({} acked)",
        acked.len()
    );

    let restarted = start(data.path(), Some(&discord)).await;
    // A backlog may go out as digests, whose lines carry titles, not ids;
    // titles are unique here, so they stand for the events.
    let title_of: HashMap<&String, String> = acked.iter().map(|(id, i)| (id, format!("event {i}"))).collect();
    let mut per_title: HashMap<String, usize> = HashMap::new();
    let mut want = acked.len();
    loop {
        let shown = discord.wait_for_shown(want, WAIT).await;
        per_title.clear();
        for s in &shown {
            // The formatter puts the hook's name before the payload's title.
            let title = s.title.rsplit(": ").next().unwrap().to_owned();
            if let Some(id) = &s.event_id
                && let Some(expected) = title_of.get(id)
            {
                assert_eq!(&title, expected, "event {id} shown under another title");
            }
            *per_title.entry(title).or_insert(0) += 1;
        }
        if title_of.values().all(|t| per_title.contains_key(t)) {
            break;
        }
        // Events committed but not acknowledged before the kill are delivered
        // too; wait for more until every acknowledged one is in.
        want = shown.len() + 1;
    }
    for (id, title) in &title_of {
        assert_eq!(per_title[title], 1, "event {id} ({title}) shown {} times", per_title[title]);
    }
    drop(restarted);
}
