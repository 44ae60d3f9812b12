//! Messages that follow their subject: a GitHub workflow run's events become
//! one Discord message, edited in place as the run moves on, across a
//! `kill -9` of the binary between them.

use chorus_core::Secret;
use chorus_testkit::FakeDiscord;
use serde_json::Value;

use crate::support::{WAIT, init, setup, start};

async fn post_github(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret,
    event: &str,
    body: &Value,
    n: usize,
) {
    let body = serde_json::to_vec(body).unwrap();
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", format!("follow-{n}"))
        .header("x-hub-signature-256", chorus_verify::sign_body_hex(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn a_workflow_run_is_one_message_edited_twice_across_a_kill_9() {
    init();
    let Some(dir) = chorus_testkit::fixtures_dir() else {
        eprintln!("skipped: ../shared/fixtures is not present");
        return;
    };
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("github").join(name)).unwrap()).unwrap()
    };
    // Two real deliveries of one run (same repository and run id); the
    // in-progress step between them is the requested one moved on, as
    // GitHub sends it.
    let requested = read("workflow_run.requested.json");
    let completed = read("workflow_run.completed-success.json");
    assert_eq!(requested["workflow_run"]["id"], completed["workflow_run"]["id"], "fixtures of one run");
    let mut in_progress = requested.clone();
    in_progress["action"] = "in_progress".into();
    in_progress["workflow_run"]["status"] = "in_progress".into();

    let discord = FakeDiscord::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), Some(&discord)).await;
    let http = reqwest::Client::new();
    let (_, url, secret) =
        setup(&http, &server.base, serde_json::json!({"agent": "builder", "source": "github"})).await;

    post_github(&http, &url, &secret, "workflow_run", &requested, 1).await;
    let first = discord.wait_for_messages(1, WAIT).await;
    let id = first[0].1["id"].as_str().unwrap().to_owned();
    assert!(first[0].1["embeds"][0]["title"].as_str().unwrap().contains("queued"), "{}", first[0].1);

    // The message id is in the store, not only in the process that sent it.
    server.kill().await;
    let server = start(data.path(), Some(&discord)).await;
    let url = format!("{}{}", server.base, &url[url.find("/webhook/").unwrap()..]);

    post_github(&http, &url, &secret, "workflow_run", &in_progress, 2).await;
    discord.wait_until("the first edit", WAIT, |d| !d.edits().is_empty()).await;
    post_github(&http, &url, &secret, "workflow_run", &completed, 3).await;
    discord.wait_until("the second edit", WAIT, |d| d.edits().len() >= 2).await;

    let messages = discord.messages();
    assert_eq!(messages.len(), 1, "one message for the run: {messages:?}");
    let edits = discord.edits();
    assert_eq!(edits.len(), 2, "{edits:?}");
    assert!(edits.iter().all(|(channel, message, _)| channel == "4242" && *message == id), "{edits:?}");
    let titles: Vec<&str> = edits.iter().map(|(_, _, b)| b["embeds"][0]["title"].as_str().unwrap()).collect();
    assert!(titles[0].contains("in progress"), "{titles:?}");
    assert!(titles[1].contains("success"), "{titles:?}");
    assert_eq!(messages[0].1["embeds"][0]["title"].as_str().unwrap(), titles[1]);
}
