use std::time::Duration;

use chorus_testkit::{FakeDiscord, Process};
use serde_json::json;

use crate::support::{TOKEN, WAIT, api, exe, init, setup, start};

/// The README's first command: no Discord credentials, no API token. The
/// server generates a token, accepts webhooks, keeps messages until a bot
/// token is configured, and stops cleanly on SIGTERM.
#[tokio::test]
async fn starts_without_credentials_and_messages_wait_for_a_token() {
    init();
    let data = tempfile::tempdir().unwrap();
    let mut server = Process::start(exe(), data.path(), &[]).await;
    let token = std::fs::read_to_string(data.path().join("api-token")).unwrap();
    assert!(server.output().contains(token.trim()), "the generated token is printed once");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["api-token", "master.key"] {
            let mode = std::fs::metadata(data.path().join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    let http = reqwest::Client::new();
    let create = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", server.base)).bearer_auth(token.trim()).json(&body).send()
    };
    assert_eq!(
        create("/api/agents", json!({"name": "builder", "channel_id": "4242"})).await.unwrap().status(),
        201
    );
    let hook: serde_json::Value = create("/api/webhooks", json!({"agent": "builder", "source": "none"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = http.post(hook["url"].as_str().unwrap()).body(r#"{"title":"waiting"}"#).send().await.unwrap();
    assert_eq!(resp.status(), 202);

    let status = server.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(server.output().contains("chorus-hookd stopped"));

    // With a bot token configured, the waiting message goes out.
    let discord = FakeDiscord::start().await;
    let env = [("CHORUS_DISCORD_TOKEN", "bot".to_owned()), ("CHORUS_DISCORD_PROXY", discord.host_port())];
    let _server = Process::start(exe(), data.path(), &env).await;
    let messages = discord.wait_for_messages(1, WAIT).await;
    assert_eq!(messages[0].1["embeds"][0]["title"], "webhook: waiting");
}

/// No file in the data directory, and nothing the server logs, contains a
/// hook secret or a Discord webhook token in plain text.
#[tokio::test]
async fn no_plaintext_secret_at_rest_or_in_logs() {
    init();
    let discord = FakeDiscord::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), Some(&discord)).await;
    let http = reqwest::Client::new();
    let (_, url, secret) = setup(&http, &server.base, json!({"agent": "builder", "source": "github"})).await;
    let webhook_token = "dIsCoRdWeBhOoKtOkEnThAtMuStNotLeAk";
    api(
        &http,
        &server.base,
        reqwest::Method::POST,
        "/api/agents",
        Some(json!({"name": "viahook", "discord_webhook_url": format!("https://discord.com/api/webhooks/99/{webhook_token}")})),
    )
    .await;
    let body = br#"{"zen":"hello","repository":{"full_name":"o/r","html_url":"https://github.com/o/r"}}"#;
    for sig in [chorus_verify::sign_body_hex(&secret, body), "sha256=00".to_owned()] {
        http.post(&url)
            .header("x-github-event", "ping")
            .header("x-hub-signature-256", sig)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
    }
    discord.wait_for_messages(1, WAIT).await;

    let needles = [secret.expose(), webhook_token, TOKEN];
    let mut files = 0;
    for entry in std::fs::read_dir(data.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds a plaintext secret",
                path.display()
            );
        }
    }
    assert!(files >= 3, "expected the database, its WAL and the key file");
    let logs = server.output();
    for needle in needles {
        assert!(!logs.contains(needle), "the logs contain a secret");
    }
}
