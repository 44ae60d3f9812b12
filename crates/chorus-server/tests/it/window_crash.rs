//! An aggregation window across `kill -9`, on a clock the test drives: the
//! embedding example `examples/driven_clock.rs` serves like `chorus-hookd
//! serve` with its time read from a file. Events in an open window survive
//! the crash, the summary goes out once when the window ends, and a crash
//! after it sends nothing twice.

use chorus_testkit::{FakeDiscord, Process};
use serde_json::{Value, json};

use crate::{
    example::example_binary,
    support::{TOKEN, WAIT, github_headers, push_payload},
};

/// 1_800_000_000 is a multiple of 300: a 5-minute window starts there.
const T0: i64 = 1_800_000_000;

struct Driven {
    exe: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    clock: std::path::PathBuf,
    data: tempfile::TempDir,
}

impl Driven {
    fn set_time(&self, secs: i64) {
        // Written whole and renamed, so a reader never sees half a number.
        let tmp = self.clock.with_extension("tmp");
        std::fs::write(&tmp, secs.to_string()).unwrap();
        std::fs::rename(&tmp, &self.clock).unwrap();
    }

    async fn start(&self) -> Process {
        Process::start(&self.exe, self.data.path(), &self.env).await
    }
}

async fn post_push(http: &reqwest::Client, base: &str, url: &str, secret: &str, n: usize) {
    let url = format!("{base}{}", &url[url.find("/webhook/").unwrap()..]);
    let body = push_payload();
    let mut req = http.post(url).body(body.clone());
    for (k, v) in github_headers(secret, "push", &format!("window-{n}"), &body) {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 202);
}

#[tokio::test]
async fn a_window_keeps_its_events_across_kill_9_and_posts_its_summary_once() {
    let Some(exe) = example_binary("driven_clock") else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let discord = FakeDiscord::start().await;
    let data = tempfile::tempdir().unwrap();
    let clock = data.path().join("now");
    let env = vec![
        ("CHORUS_API_TOKEN", TOKEN.to_owned()),
        ("CHORUS_DISCORD_TOKEN", "window-bot-token".to_owned()),
        ("CHORUS_DISCORD_PROXY", format!("http://{}", discord.host_port())),
        ("CHORUS_CLOCK_FILE", clock.display().to_string()),
    ];
    let driven = Driven { exe, env, clock, data };
    driven.set_time(T0 + 10);
    let mut server = driven.start().await;
    let http = reqwest::Client::new();
    let api = |base: &str, path: &str, body: Value| {
        http.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send()
    };
    let made =
        api(&server.base, "/api/agents", json!({"name": "builder", "channel_id": "4242"})).await.unwrap();
    assert!(made.status().is_success());
    let hook: Value = api(
        &server.base,
        "/api/webhooks",
        json!({"agent": "builder", "source": "github", "name": "octo", "aggregate": "5m"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let (url, secret) = (hook["url"].as_str().unwrap(), hook["secret"].as_str().unwrap());

    for n in 0..3 {
        post_push(&http, &server.base, url, secret, n).await;
    }
    server.kill().await;
    let mut server = driven.start().await;
    for n in 3..5 {
        post_push(&http, &server.base, url, secret, n).await;
    }
    // The window ends: one summary of all five, though three came before
    // the crash.
    driven.set_time(T0 + 301);
    let messages = discord.wait_for_messages(1, WAIT).await;
    let summary = messages[0].1["embeds"][0].clone();
    assert!(summary["title"].as_str().unwrap().starts_with("octo: 5 events in 5m"), "{summary}");

    // A crash after the summary: the next window holds only what came
    // after, and the first summary is not sent again.
    server.kill().await;
    let server = driven.start().await;
    post_push(&http, &server.base, url, secret, 5).await;
    driven.set_time(T0 + 601);
    let messages = discord.wait_for_messages(2, WAIT).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    let second = &messages[1].1["embeds"][0];
    assert!(second["title"].as_str().unwrap().starts_with("octo: 1 event"), "{second}");
}
