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
        edit: None,
        thread: None,
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
        edit: None,
        thread: None,
    };
    sink.send(&job).await.unwrap();
    assert_eq!(fake.messages()[0].0, "webhook:77");
    assert_eq!(fake.requests()[0].path, "/api/v10/webhooks/77/tok");
}

/// A delivery of a message about `subject` whose title is `title`.
fn about(mut job: ClaimedDelivery, subject: &str, title: &str) -> ClaimedDelivery {
    let mut message = Message::titled(title);
    message.subject = Some(subject.into());
    job.delivery.id = DeliveryId::generate();
    job.delivery.payload = serde_json::to_value(message).unwrap();
    job
}

#[tokio::test]
async fn a_subject_keeps_one_message_edited_in_place() {
    init();
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake, Some("t"));
    let webhook = ClaimedDelivery {
        webhook_url: Some(Secret::new("https://discord.com/api/webhooks/77/tok")),
        ..channel("0")
    };
    let webhook = ClaimedDelivery {
        delivery: Delivery {
            target: Target::DiscordWebhook { agent: "builder".parse::<AgentName>().unwrap() },
            ..webhook.delivery
        },
        ..webhook
    };
    for (target, created_path, edit_path) in [
        (channel("42"), "/api/v10/channels/42/messages", "/api/v10/channels/42/messages"),
        (webhook, "/api/v10/webhooks/77/tok", "/api/v10/webhooks/77/tok/messages"),
    ] {
        let before = fake.messages().len();
        let queued = about(target.clone(), "ci:run:1", "Workflow CI queued");
        let sent = sink.send(&queued).await.unwrap();
        let id = sent.message_id.clone().expect("a message about a subject reports its id");
        let created = fake.requests().last().unwrap().clone();
        assert_eq!(created.path, created_path);

        let mut done = about(target.clone(), "ci:run:1", "Workflow CI success");
        done.edit = Some(id.clone());
        let edited = sink.send(&done).await.unwrap();
        assert_eq!(edited.message_id.as_deref(), Some(id.as_str()));
        let messages = fake.messages();
        assert_eq!(messages.len(), before + 1, "edited, not posted again");
        assert_eq!(messages.last().unwrap().1["embeds"][0]["title"], "Workflow CI success");
        assert_eq!(messages.last().unwrap().1["id"], id.as_str());
        let patch = fake.requests().last().unwrap().clone();
        assert_eq!(patch.method, "PATCH");
        assert_eq!(patch.path, format!("{edit_path}/{id}"));
        assert!(patch.body.get("nonce").is_none(), "an edit carries no nonce: {}", patch.body);

        // Someone deleted it: the edit's 404 gives way to a new message.
        fake.delete_message(&id);
        let mut again = about(target, "ci:run:1", "Workflow CI failure");
        again.edit = Some(id.clone());
        let reposted = sink.send(&again).await.unwrap();
        let new_id = reposted.message_id.expect("the new message's id");
        assert_ne!(new_id, id);
        assert_eq!(fake.messages().last().unwrap().1["embeds"][0]["title"], "Workflow CI failure");
    }
    // Without a subject nothing is read back: a plain webhook execution
    // does not wait for its message.
    let plain = sink.send(&channel("42")).await.unwrap();
    assert_eq!(plain.message_id, None);
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
