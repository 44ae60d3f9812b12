use std::collections::HashMap;

use chorus_testkit::{FakeDiscord, Mode};
use serde_json::json;

use crate::support::{WAIT, init, post_signed, setup, start};

/// Discord answers 500s, then a 429 with `retry_after`, then recovers: every
/// message arrives, none twice, and the 429 wait is honoured.
#[tokio::test]
async fn discord_outage_and_rate_limit_delay_but_lose_nothing() {
    init();
    let discord = FakeDiscord::start().await;
    discord.script([Mode::Status(500), Mode::Status(502), Mode::Status(500), Mode::RateLimited(2.0)]);
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), Some(&discord)).await;
    let http = reqwest::Client::new();
    let (hook, url, secret) =
        setup(&http, &server.base, json!({"agent": "builder", "source": "chorus"})).await;

    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(post_signed(&http, &url, &secret, &json!({"title": format!("outage {i}")})).await);
    }
    let shown = discord.wait_for_shown(3, WAIT).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for s in &shown {
        *count.entry(s.event_id.clone().expect("three events keep their own embeds")).or_insert(0) += 1;
    }
    for id in &ids {
        assert_eq!(count.get(id), Some(&1), "{id}");
    }
    assert_eq!(shown.len(), 3);

    let requests = discord.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..4], &[500, 502, 500, 429], "{statuses:?}");
    let limited = requests.iter().position(|r| r.status == 429).unwrap();
    let next = &requests[limited + 1];
    let waited = next.at - requests[limited].at;
    assert!(waited.as_secs_f64() >= 1.95, "next request {waited:?} after a 429 asking for 2 s");

    // A graceful stop lets the last sends record their outcome; the history
    // read after a restart then holds every attempt.
    assert!(server.terminate(std::time::Duration::from_secs(30)).await.success());
    let server = start(data.path(), Some(&discord)).await;
    let deliveries = crate::support::api(
        &http,
        &server.base,
        reqwest::Method::GET,
        &format!("/api/webhooks/{hook}/deliveries"),
        None,
    )
    .await;
    let items = deliveries["items"].as_array().unwrap();
    assert!(items.iter().all(|d| d["status"] == "succeeded"), "{deliveries}");
    let attempts: usize = items.iter().map(|d| d["attempts"].as_u64().unwrap() as usize).sum();
    // Each 5xx answer is a failed attempt for every event packed into that
    // request; a 429 is a wait, not an attempt.
    let failed: usize = requests
        .iter()
        .filter(|r| r.status >= 500)
        .map(|r| r.body["embeds"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(failed >= 3, "{statuses:?}");
    assert_eq!(attempts, 3 + failed, "3 successes and {failed} failed attempts: {deliveries}");
    assert_eq!(discord.shown().len(), 3, "nothing sent again after the restart");
}
