//! What several processes on one PostgreSQL database share: no job is
//! taken twice, one replica at a time sends to a Discord channel, a hook's
//! rate limit is one budget, and each replica hears of the others' work.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chorus_core::{
    Change, DeliveryId, EventStatus, HookId, IngestOutcome, NewDelivery, RateDecision, RoutedEvent, Target,
    TargetKind,
};
use jiff::SignedDuration;

use crate::support::{Fixture, NowTs as _, event, hook};

/// Route one event to each target (the agent `builder` and hook `h` exist).
async fn route(f: &Fixture, h: &chorus_core::IncomingHook, targets: &[Target]) {
    let mut routed = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let key = format!("r-{i}-{}", chorus_core::random_token("", 6));
        let stored = f.store.ingest(event(h, Some(&key), f.clock.now_ts())).await.unwrap();
        let IngestOutcome::Stored(event_id) = stored else { panic!("{stored:?}") };
        routed.push(RoutedEvent {
            deliveries: vec![NewDelivery {
                id: DeliveryId::generate(),
                event_id: Some(event_id.clone()),
                hook_id: h.id.clone(),
                target: target.clone(),
                payload: serde_json::json!({"n": i}),
                due_at: f.clock.now_ts(),
            }],
            ..RoutedEvent::bare(event_id, EventStatus::Routed)
        });
    }
    f.store.route_events(routed).await.unwrap();
}

async fn setup(f: &Fixture) -> chorus_core::IncomingHook {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    h
}

pub(crate) async fn one_replica_at_a_time_sends_to_a_channel(f: Fixture) {
    let h = setup(&f).await;
    let b = f.replica().await;
    let channel = |id: &str| Target::DiscordChannel { channel_id: id.into() };
    route(&f, &h, &[channel("1"), channel("1"), channel("2")]).await;
    let (lease, now, kinds) = (Duration::from_secs(30), f.clock.now_ts(), [TargetKind::DiscordChannel]);

    let a_jobs = f.store.claim_target(&channel("1"), now, lease, 1).await.unwrap();
    assert_eq!(a_jobs.len(), 1, "A takes the channel with its oldest delivery");
    // B finds the other channel's delivery, but not the second of channel 1:
    // A holds that channel.
    let b_jobs = b.claim_deliveries(&kinds, &[], now, lease, 10).await.unwrap();
    assert_eq!(b_jobs.iter().map(|j| j.delivery.target.clone()).collect::<Vec<_>>(), [channel("2")]);
    assert!(b.claim_target(&channel("1"), now, lease, 10).await.unwrap().is_empty());
    // A's own claims go on.
    assert_eq!(f.store.claim_target(&channel("1"), now, lease, 10).await.unwrap().len(), 1);

    // Released: B may take channel 1's next delivery at once.
    route(&f, &h, &[channel("1")]).await;
    assert!(b.claim_target(&channel("1"), now, lease, 10).await.unwrap().is_empty());
    f.store.release_target(&channel("1")).await.unwrap();
    assert_eq!(b.claim_target(&channel("1"), now, lease, 10).await.unwrap().len(), 1);

    // A replica that dies holding a channel holds it until its claim runs out.
    route(&f, &h, &[channel("1")]).await;
    assert!(f.store.claim_target(&channel("1"), now, lease, 10).await.unwrap().is_empty(), "B holds it");
    f.clock.advance(SignedDuration::from_secs(31));
    // Then every unrecorded delivery of the channel comes back, oldest first.
    let back = f.store.claim_target(&channel("1"), f.clock.now_ts(), lease, 10).await.unwrap();
    let order: Vec<i64> = back.iter().map(|j| j.delivery.payload["n"].as_i64().unwrap()).collect();
    assert_eq!(order, [0, 1, 0, 0]);
}

pub(crate) async fn replicas_claiming_at_once_never_share_a_job(f: Fixture) {
    let h = setup(&f).await;
    let b = f.replica().await;
    // Unordered targets (subscriptions), so both replicas may send at once.
    let targets: Vec<Target> = (0..120).map(|_| Target::Forward { hook_id: h.id.clone() }).collect();
    route(&f, &h, &targets).await;
    let (lease, now) = (Duration::from_secs(30), f.clock.now_ts());
    let kinds = [TargetKind::Http];
    let mut claims = Vec::new();
    for store in [f.store.clone(), b.clone(), f.store.clone(), b.clone()] {
        claims.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let jobs = store.claim_deliveries(&kinds, &[], now, lease, 7).await.unwrap();
                if jobs.is_empty() {
                    return got;
                }
                got.extend(jobs.into_iter().map(|j| j.delivery.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for claim in claims {
        for id in claim.await.unwrap() {
            assert!(seen.insert(id), "a delivery was claimed twice");
        }
    }
    assert_eq!(seen.len(), 120);
}

pub(crate) async fn a_hooks_rate_limit_is_one_budget_across_replicas(f: Fixture) {
    let b = f.replica().await;
    let hook = HookId::generate();
    let now = f.clock.now_ts();
    let mut allowed = 0;
    for i in 0..90 {
        let store = if i % 2 == 0 { &f.store } else { &b };
        match store.take_rate(&hook, 60, now).await.unwrap() {
            RateDecision::Allowed => allowed += 1,
            RateDecision::Wait(secs) => assert_eq!(secs, 1, "one token comes back each second"),
            RateDecision::Local => panic!("PostgreSQL counts in the database"),
        }
    }
    assert_eq!(allowed, 60, "60 a minute in total, not per replica");
    f.clock.advance(SignedDuration::from_secs(2));
    let later = f.clock.now_ts();
    assert_eq!(b.take_rate(&hook, 60, later).await.unwrap(), RateDecision::Allowed);
    assert_eq!(f.store.take_rate(&hook, 60, later).await.unwrap(), RateDecision::Allowed);
    assert!(matches!(b.take_rate(&hook, 60, later).await.unwrap(), RateDecision::Wait(_)));
    // Another hook has a budget of its own.
    assert_eq!(b.take_rate(&HookId::generate(), 60, later).await.unwrap(), RateDecision::Allowed);
}

pub(crate) async fn replicas_hear_of_each_others_work(f: Fixture) {
    let h = setup(&f).await;
    let b = f.replica().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _guard = b.watch(Arc::new(move |c| {
        let _ = tx.send(c);
    }));
    // Each (re)connection reports both kinds first, so work committed while
    // the listener was down is looked for.
    let mut first = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    first.sort_by_key(|c| *c == Change::Deliveries);
    assert_eq!(first, [Change::Events, Change::Deliveries]);
    let mut next =
        async || tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("no notification");
    f.store.ingest(event(&h, Some("x"), f.clock.now_ts())).await.unwrap();
    assert_eq!(next().await, Some(Change::Events));
    route(&f, &h, &[Target::DiscordChannel { channel_id: "1".into() }]).await;
    // The route stores an event (Events), then its delivery (Deliveries).
    let mut kinds = vec![next().await.unwrap(), next().await.unwrap()];
    kinds.sort_by_key(|c| *c == Change::Deliveries);
    assert_eq!(kinds, [Change::Events, Change::Deliveries]);
}

pub(crate) async fn one_replica_routes_at_a_time_and_a_takeover_keeps_the_order(f: Fixture) {
    let h = setup(&f).await;
    let b = f.replica().await;
    for i in 0..3 {
        f.store.ingest(event(&h, Some(&format!("lead-{i}")), f.clock.now_ts())).await.unwrap();
    }
    let lease = Duration::from_secs(60);
    let first = f.store.claim_events(f.clock.now_ts(), lease, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(b.claim_events(f.clock.now_ts(), lease, 10).await.unwrap().is_empty(), "A routes");
    assert_eq!(f.store.claim_events(f.clock.now_ts(), lease, 10).await.unwrap().len(), 2);

    // A stops claiming (it died): B takes over after the lead runs out, and
    // A's claims with it, oldest first, without waiting for them to expire.
    f.clock.advance(SignedDuration::from_secs(21));
    let taken = b.claim_events(f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(taken.len(), 3);
    assert_eq!(taken[0].id, first[0].id, "oldest first");
    assert!(f.store.claim_events(f.clock.now_ts(), lease, 10).await.unwrap().is_empty(), "B routes now");

    // A was only slow: its decision lands after B's. What B decided stands
    // and A's makes nothing twice.
    let decide = |store: Arc<dyn crate::support::TestStore>, channel: &'static str| {
        let id = first[0].id.clone();
        let hook_id = h.id.clone();
        let now = f.clock.now_ts();
        async move {
            store
                .route_events(vec![RoutedEvent {
                    deliveries: vec![NewDelivery {
                        id: DeliveryId::generate(),
                        event_id: Some(id.clone()),
                        hook_id,
                        target: Target::DiscordChannel { channel_id: channel.into() },
                        payload: serde_json::json!({}),
                        due_at: now,
                    }],
                    ..RoutedEvent::bare(id, EventStatus::Routed)
                }])
                .await
                .unwrap();
        }
    };
    decide(b.clone(), "by-b").await;
    decide(f.store.clone(), "by-a").await;
    let made = f
        .store
        .deliveries(chorus_core::DeliveryQuery {
            event_id: Some(first[0].id.clone()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(made.items.len(), 1);
    assert_eq!(made.items[0].target, Target::DiscordChannel { channel_id: "by-b".into() });
}

pub(crate) async fn a_silent_replicas_claims_are_free_before_they_run_out(f: Fixture) {
    let h = setup(&f).await;
    let b = f.replica().await;
    let channel = Target::DiscordChannel { channel_id: "1".into() };
    route(&f, &h, &[Target::Forward { hook_id: h.id.clone() }, channel.clone()]).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let alive = f.store.watch(Arc::new(move |c| {
        let _ = tx.send(c);
    }));
    rx.recv().await.unwrap();
    let (lease, kinds) = (Duration::from_secs(300), [TargetKind::Http, TargetKind::DiscordChannel]);
    assert_eq!(f.store.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap().len(), 2);
    assert!(b.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap().is_empty());
    // A dies: it stops saying it is alive. Its five-minute claims (and its
    // hold on the channel) are free well before they run out.
    drop(alive);
    f.clock.advance(SignedDuration::from_secs(16));
    assert_eq!(b.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap().len(), 2);
}

pub(crate) async fn a_change_on_one_replica_reaches_the_others_cache(f: Fixture) {
    let h = setup(&f).await;
    let b = f.replica().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _listening = b.watch(Arc::new(move |c| {
        let _ = tx.send(c);
    }));
    rx.recv().await.unwrap();
    rx.recv().await.unwrap();
    // B looks the hook and agent up: now cached.
    assert!(b.hook_with_secrets(&h.id).await.unwrap().unwrap().0.enabled);
    assert!(b.agent(&crate::support::name("builder")).await.unwrap().unwrap().enabled);
    // A turns the hook off; B drops its copy when it hears.
    f.store
        .update_hook(&h.id, chorus_core::HookPatch { enabled: Some(false), ..Default::default() })
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while rx.recv().await != Some(Change::Settings) {}
    });
    heard.await.expect("B heard of the change");
    assert!(!b.hook_with_secrets(&h.id).await.unwrap().unwrap().0.enabled);
    f.store
        .update_agent(
            &crate::support::name("builder"),
            chorus_core::AgentPatch { enabled: Some(false), ..Default::default() },
        )
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while rx.recv().await != Some(Change::Settings) {}
    });
    heard.await.expect("B heard of the change");
    assert!(!b.agent(&crate::support::name("builder")).await.unwrap().unwrap().enabled);
}
