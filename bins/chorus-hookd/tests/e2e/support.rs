use std::{path::Path, time::Duration};

use chorus_core::Secret;
use chorus_testkit::{FakeDiscord, Process};
use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "e2e-admin-token-0123456789abcdef";
pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_chorus-hookd"))
}

pub(crate) fn env_for(discord: Option<&FakeDiscord>) -> Vec<(&'static str, String)> {
    let mut env = vec![("CHORUS_API_TOKEN", TOKEN.to_owned())];
    if let Some(d) = discord {
        env.push(("CHORUS_DISCORD_TOKEN", "e2e-bot-token".to_owned()));
        env.push(("CHORUS_DISCORD_PROXY", format!("http://{}", d.host_port())));
    }
    env
}

pub(crate) async fn start(data: &Path, discord: Option<&FakeDiscord>) -> Process {
    Process::start(exe(), data, &env_for(discord)).await
}

pub(crate) async fn api(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http.request(method, format!("{base}{path}")).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

/// Create agent `builder` on channel 4242 and a hook; returns (id, url, secret).
pub(crate) async fn setup(http: &reqwest::Client, base: &str, hook: Value) -> (String, String, Secret) {
    api(
        http,
        base,
        reqwest::Method::POST,
        "/api/agents",
        Some(json!({"name": "builder", "channel_id": "4242"})),
    )
    .await;
    let h = api(http, base, reqwest::Method::POST, "/api/webhooks", Some(hook)).await;
    (
        h["id"].as_str().unwrap().to_owned(),
        h["url"].as_str().unwrap().to_owned(),
        Secret::new(h["secret"].as_str().unwrap()),
    )
}

/// Post `body` to a `chorus`-source hook, signed with `secret`; the event id
/// of the 202 it must answer.
pub(crate) async fn post_signed(http: &reqwest::Client, url: &str, secret: &Secret, body: &Value) -> String {
    let body = serde_json::to_vec(body).unwrap();
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-chorus-signature-256", chorus_verify::sign_body_hex(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["event_id"].as_str().unwrap().to_owned()
}
