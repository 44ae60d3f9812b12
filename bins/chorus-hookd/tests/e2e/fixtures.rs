use std::collections::HashMap;

use chorus_testkit::FakeDiscord;
use serde_json::{Value, json};

use crate::support::{WAIT, init, setup, start};

/// What the successful creates and edits at the fake Discord showed, in
/// order: an edited message's first content counts too.
fn shown_by_requests(discord: &FakeDiscord) -> Vec<chorus_testkit::Shown> {
    discord
        .requests()
        .iter()
        .filter(|r| r.status == 200 && (r.method == "POST" || r.method == "PATCH"))
        .filter_map(|r| r.path.strip_prefix("/api/v10/channels/").map(|rest| (rest, r)))
        .flat_map(|(rest, r)| chorus_testkit::shown_in(rest.split('/').next().unwrap(), &r.body))
        .collect()
}

/// Every GitHub fixture, signed and posted with its `X-GitHub-Event`, becomes
/// exactly one message in the agent's channel that names the repository and
/// links to it.
#[tokio::test]
async fn every_github_fixture_reaches_the_channel() {
    init();
    let files = chorus_testkit::fixture_files("github");
    if files.is_empty() {
        return;
    }
    let discord = FakeDiscord::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), Some(&discord)).await;
    let http = reqwest::Client::new();
    let (_, url, secret) = setup(&http, &server.base, json!({"agent": "builder", "source": "github"})).await;

    let mut accepted: HashMap<String, Value> = HashMap::new();
    for (i, path) in files.iter().enumerate() {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let event = name.split('.').next().unwrap().to_owned();
        let body = std::fs::read(path).unwrap();
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-github-event", &event)
            .header("x-github-delivery", format!("delivery-{i}"))
            .header("x-hub-signature-256", chorus_verify::sign_body_hex(&secret, &body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{name}");
        let id = resp.json::<Value>().await.unwrap()["event_id"].as_str().unwrap().to_owned();
        accepted.insert(id, serde_json::from_slice(&body).unwrap());
    }

    // A run's later events edit its message: each event is shown once, by
    // the request that created or edited a message.
    discord.wait_until("every event shown", WAIT, |d| shown_by_requests(d).len() >= accepted.len()).await;
    let shown = shown_by_requests(&discord);
    assert_eq!(shown.len(), accepted.len(), "one message or edit per accepted event");
    let mut seen = HashMap::new();
    for s in &shown {
        assert_eq!(s.channel, "4242");
        // A backlog within one rate-limit window's worth keeps every event's
        // own embed (packed up to ten to a Discord message).
        assert!(accepted.len() > chorus_discord::DIGEST_AFTER || s.embed.is_some(), "digested: {s:?}");
        let (Some(id), Some(embed)) = (&s.event_id, &s.embed) else { continue };
        *seen.entry(id.clone()).or_insert(0) += 1;
        let payload = accepted.get(id).unwrap_or_else(|| panic!("message for unknown event {id}: {embed}"));
        if let (Some(repo), Some(link)) = (
            payload.pointer("/repository/full_name").and_then(Value::as_str),
            payload.pointer("/repository/html_url").and_then(Value::as_str),
        ) {
            assert!(embed["title"].as_str().unwrap().contains(repo), "{embed}");
            let linked = embed["url"].as_str().is_some_and(|u| u.starts_with(link))
                || embed["fields"]
                    .as_array()
                    .is_some_and(|fs| fs.iter().any(|f| f["value"].as_str().unwrap().contains(link)));
            assert!(linked, "no link to {link}: {embed}");
        }
    }
    assert!(seen.values().all(|n| *n == 1), "an event was delivered twice");
}
