//! Router and engine over a real SQLite store, with a scripted sink.

use chorus_core::{IngressStore as _, ManagementStore as _};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chorus_core::{
    AgentName, ClaimedDelivery, Clock, DeliveryQuery, DeliveryStatus, EventId, EventQuery, EventStatus,
    HookId, IncomingHook, NewAgent, NewEvent, RetryPolicy, RetryStrategy, SendError, SendOutcome, Sink,
    Source, SystemClock, TargetKind,
};
use chorus_deliver::{Engine, EngineConfig, EventRouter};
use chorus_store::{MasterKey, SqliteStore};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct ScriptedSink {
    script: Mutex<VecDeque<Result<(), SendError>>>,
    sent: Mutex<Vec<ClaimedDelivery>>,
}

#[async_trait]
impl Sink for ScriptedSink {
    fn kinds(&self) -> Vec<TargetKind> {
        vec![TargetKind::DiscordChannel]
    }

    async fn send(&self, d: &ClaimedDelivery) -> Result<SendOutcome, SendError> {
        self.sent.lock().unwrap().push(d.clone());
        match self.script.lock().unwrap().pop_front() {
            Some(Err(e)) => Err(e),
            _ => Ok(SendOutcome {
                status: Some(200),
                response_excerpt: None,
                message_id: None,
                thread_id: None,
            }),
        }
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    sink: Arc<ScriptedSink>,
    events: Arc<Notify>,
    progress: tokio::sync::watch::Receiver<u64>,
    shutdown: CancellationToken,
    hook: IncomingHook,
}

async fn start_rig(
    script: Vec<Result<(), SendError>>,
    channel: Option<&str>,
    events_filter: Vec<String>,
) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(
        SqliteStore::open(dir.path().join("c.db"), MasterKey::from_bytes(&[3; 32]).unwrap(), clock.clone())
            .unwrap(),
    );
    let agent: AgentName = "builder".parse().unwrap();
    store
        .create_agent(NewAgent {
            name: agent.clone(),
            channel_id: channel.map(str::to_owned),
            discord_webhook_url: None,
            enabled: true,
        })
        .await
        .unwrap();
    let now = clock.now();
    let hook = IncomingHook {
        id: HookId::generate(),
        slug: None,
        agent,
        name: "h".into(),
        source: Source::Github,
        generic: None,
        enabled: true,
        rate_limit_per_minute: 60,
        ip_allowlist: vec![],
        template: None,
        events: events_filter,
        aggregate_secs: None,
        notify_changes: false,
        threads: false,
        created_at: now,
        created_by: "test".into(),
        updated_at: now,
    };
    store.create_hook(hook.clone(), None).await.unwrap();
    let sink = Arc::new(ScriptedSink { script: Mutex::new(script.into()), ..ScriptedSink::default() });
    let (events, deliveries) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let shutdown = CancellationToken::new();
    let policy = RetryPolicy {
        strategy: RetryStrategy::Fixed,
        max_attempts: Some(3),
        initial_delay_ms: 20,
        max_delay_ms: 20,
        jitter: false,
    };
    let engine = Engine::new(
        store.clone(),
        sink.clone(),
        clock.clone(),
        deliveries.clone(),
        EngineConfig { policy, ..EngineConfig::default() },
    );
    let progress = engine.progress();
    tokio::spawn(EventRouter::new(store.clone(), clock, events.clone(), deliveries).run(shutdown.clone()));
    tokio::spawn(engine.run(shutdown.clone()));
    Rig { _dir: dir, store, sink, events, progress, shutdown, hook }
}

impl Rig {
    async fn ingest(&self, event_type: &str, body: &str) -> EventId {
        let id = EventId::generate();
        self.store
            .ingest(NewEvent {
                id: id.clone(),
                hook_id: self.hook.id.clone(),
                agent: self.hook.agent.clone(),
                source: Source::Github,
                event_type: event_type.into(),
                delivery_key: None,
                headers: vec![],
                body: body.as_bytes().to_vec(),
                received_at: SystemClock.now(),
            })
            .await
            .unwrap();
        self.events.notify_one();
        id
    }

    async fn wait_attempts(&mut self, n: u64) {
        let waited = tokio::time::timeout(Duration::from_secs(10), self.progress.wait_for(|c| *c >= n)).await;
        assert!(waited.is_ok(), "timed out waiting for {n} attempts");
    }
}

const PUSH: &str = r#"{"ref":"refs/heads/main","commits":[],"repository":{"full_name":"o/r","html_url":"https://github.com/o/r"}}"#;

#[tokio::test]
async fn routes_formats_and_delivers() {
    let mut rig = start_rig(vec![], Some("55"), vec![]).await;
    let event = rig.ingest("push", PUSH).await;
    rig.wait_attempts(1).await;
    let sent = rig.sink.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let payload = &sent[0].delivery.payload;
    assert_eq!(payload["title"], "[o/r] 0 new commits to main");
    assert!(payload["footer"].as_str().unwrap().ends_with(event.as_str()), "footer names the event");
    let d = rig.store.deliveries(DeliveryQuery { limit: 10, ..DeliveryQuery::default() }).await.unwrap();
    assert_eq!(d.items[0].status, DeliveryStatus::Succeeded);
    assert_eq!(rig.store.event(&event).await.unwrap().unwrap().status, EventStatus::Routed);
    rig.shutdown.cancel();
}

#[tokio::test]
async fn retries_then_succeeds_with_every_attempt_recorded() {
    let retry =
        || Err(SendError::Retryable { status: Some(502), message: "bad gateway".into(), retry_after: None });
    let mut rig = start_rig(vec![retry(), retry()], Some("55"), vec![]).await;
    rig.ingest("push", PUSH).await;
    rig.wait_attempts(3).await;
    let d = rig
        .store
        .deliveries(DeliveryQuery { limit: 10, ..DeliveryQuery::default() })
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    let attempts = rig.store.attempts(&d.id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
        vec![Some(502), Some(502), Some(200)]
    );
    let gap = attempts[1].started_at.duration_since(attempts[0].started_at);
    assert!(gap.as_millis() >= 20, "retried after {gap}");
    // Same delivery id on every attempt.
    let sent = rig.sink.sent.lock().unwrap();
    assert!(sent.iter().all(|s| s.delivery.id == d.id));
    rig.shutdown.cancel();
}

#[tokio::test]
async fn permanent_errors_and_exhausted_retries_fail() {
    let perm = Err(SendError::Permanent { status: Some(400), message: "bad embed".into() });
    let mut rig = start_rig(vec![perm], Some("55"), vec![]).await;
    rig.ingest("push", PUSH).await;
    rig.wait_attempts(1).await;
    let d = rig
        .store
        .deliveries(DeliveryQuery { limit: 1, ..DeliveryQuery::default() })
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(d.status, DeliveryStatus::Failed);
    assert_eq!(d.last_error.as_deref(), Some("bad embed"));

    let retry = || Err(SendError::Retryable { status: None, message: "refused".into(), retry_after: None });
    let mut rig2 = start_rig(vec![retry(), retry(), retry(), retry()], Some("55"), vec![]).await;
    rig2.ingest("push", PUSH).await;
    rig2.wait_attempts(3).await;
    let d = rig2
        .store
        .deliveries(DeliveryQuery { limit: 1, ..DeliveryQuery::default() })
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 3));
    rig.shutdown.cancel();
    rig2.shutdown.cancel();
}

#[tokio::test]
async fn filtered_events_make_no_delivery() {
    let mut rig = start_rig(vec![], Some("55"), vec!["pull_request".into()]).await;
    let skipped = rig.ingest("push", PUSH).await;
    let kept = rig
        .ingest("pull_request.opened", r#"{"action":"opened","pull_request":{"number":1,"title":"t"}}"#)
        .await;
    rig.wait_attempts(1).await;
    assert_eq!(rig.store.event(&skipped).await.unwrap().unwrap().status, EventStatus::Filtered);
    assert_eq!(rig.store.event(&kept).await.unwrap().unwrap().status, EventStatus::Routed);
    assert_eq!(rig.sink.sent.lock().unwrap().len(), 1);
    let page = rig
        .store
        .events(EventQuery { status: Some(EventStatus::Filtered), limit: 5, ..EventQuery::default() })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    rig.shutdown.cancel();
}
