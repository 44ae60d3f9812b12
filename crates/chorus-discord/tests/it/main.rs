//! The Discord sink through a real twilight-http client against a local fake
//! Discord over loopback.

use std::time::{Duration, Instant};

use chorus_core::{
    AgentName, ClaimedDelivery, Delivery, DeliveryId, DeliveryStatus, HookId, Message, Secret, SendError,
    Sink, Target, TargetKind,
};
use chorus_discord::{DiscordSink, DiscordSinkConfig};
use chorus_testkit::{FakeDiscord, Mode};

mod fuzz_fixtures;

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn delivery(target: Target) -> Delivery {
    let now = jiff::Timestamp::UNIX_EPOCH;
    Delivery {
        id: DeliveryId::generate(),
        event_id: None,
        hook_id: HookId::generate(),
        target,
        payload: serde_json::to_value(Message::titled("[octo/app] 1 new commit to main")).unwrap(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        attempt_base: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        updated_at: now,
    }
}

fn sink(fake: &FakeDiscord, token: Option<&str>) -> DiscordSink {
    DiscordSink::new(&DiscordSinkConfig {
        token: token.map(str::to_owned),
        proxy: Some(fake.host_port()),
        timeout: Some(Duration::from_secs(5)),
    })
}

fn channel(id: &str) -> ClaimedDelivery {
    ClaimedDelivery {
        delivery: delivery(Target::DiscordChannel { channel_id: id.into() }),
        webhook_url: None,
        http: None,
        signing_secret: None,
        reply: None,
        pack: None,
    }
}

#[tokio::test]
async fn channel_message_arrives_with_bot_token_and_nonce() {
    init();
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake, Some("secret-token"));
    assert!(sink.kinds().contains(&TargetKind::DiscordChannel));
    let job = channel("42");
    sink.send(&job).await.unwrap();
    // A retry of the same delivery (a crash between send and record) is
    // deduplicated by Discord's nonce.
    sink.send(&job).await.unwrap();
    let messages = fake.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0, "42");
    assert_eq!(messages[0].1["embeds"][0]["title"], "[octo/app] 1 new commit to main");
    let req = &fake.requests()[0];
    assert_eq!(req.path, "/api/v10/channels/42/messages");
    assert_eq!(req.headers["authorization"], "Bot secret-token");
}

#[tokio::test]
async fn without_token_channels_are_not_served() {
    init();
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake, None);
    assert_eq!(sink.kinds(), vec![TargetKind::DiscordWebhook]);
    assert!(matches!(sink.send(&channel("42")).await, Err(SendError::Retryable { .. })));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn discord_webhook_url_target() {
    init();
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake, None);
    let job = ClaimedDelivery {
        delivery: delivery(Target::DiscordWebhook { agent: "builder".parse::<AgentName>().unwrap() }),
        webhook_url: Some(Secret::new("https://discord.com/api/webhooks/77/tok")),
        http: None,
        signing_secret: None,
        reply: None,
        pack: None,
    };
    sink.send(&job).await.unwrap();
    assert_eq!(fake.messages()[0].0, "webhook:77");
    assert_eq!(fake.requests()[0].path, "/api/v10/webhooks/77/tok");
}

#[tokio::test]
async fn errors_are_classified() {
    init();
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake, Some("t"));
    fake.script([Mode::Status(500), Mode::Status(400), Mode::Status(403)]);
    assert!(matches!(sink.send(&channel("1")).await, Err(SendError::Retryable { status: Some(500), .. })));
    assert!(matches!(sink.send(&channel("1")).await, Err(SendError::Permanent { status: Some(400), .. })));
    assert!(matches!(sink.send(&channel("1")).await, Err(SendError::Retryable { status: Some(403), .. })));
    assert!(matches!(sink.send(&channel("not-a-snowflake")).await, Err(SendError::Permanent { .. })));
    fake.stop();
    let err = sink.send(&channel("1")).await.unwrap_err();
    assert!(matches!(err, SendError::Retryable { status: None, .. }), "{err:?}");
}

#[tokio::test]
async fn rate_limit_wait_is_honoured() {
    init();
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake, Some("t"));
    fake.script([Mode::RateLimited(1.0)]);
    let started = Instant::now();
    sink.send(&channel("9")).await.unwrap();
    let reqs = fake.requests();
    assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 200]);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}, before retry_after");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fake.messages().len(), 1);
}
