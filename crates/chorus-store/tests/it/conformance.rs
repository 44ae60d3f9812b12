//! The storage conformance suite: each test takes a fresh [`Fixture`] and
//! holds for every backend (main.rs runs each against SQLite and
//! PostgreSQL).

use std::time::Duration;

use chorus_core::{
    Action, AgentPatch, Attempt, DeliveryId, DeliveryQuery, DeliveryStatus, EventId, EventQuery, EventStatus,
    HookId, HookPatch, IdempotentResponse, IncomingHook, IngestOutcome, NewAgent, NewAttempt, NewDelivery,
    RoutedEvent, Rule, Secret, StoreError, SubjectMessage, Target, TargetKind,
};
use chorus_store::MasterKey;
use jiff::{SignedDuration, Timestamp};

use crate::support::{Fixture, NowTs as _, TestStore, event, hook, key, name};

pub(crate) use crate::conformance_more::*;

pub(crate) async fn agents_crud(f: Fixture) {
    f.agent("builder").await;
    let err = f
        .store
        .create_agent(NewAgent {
            name: name("builder"),
            channel_id: None,
            discord_webhook_url: None,
            enabled: true,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let updated = f
        .store
        .update_agent(&name("builder"), AgentPatch { enabled: Some(false), ..AgentPatch::default() })
        .await
        .unwrap();
    assert!(!updated.enabled);
    assert_eq!(updated.channel_id.as_deref(), Some("123"));
    assert_eq!(f.store.agents().await.unwrap().len(), 1);
    f.store.delete_agent(&name("builder")).await.unwrap();
    assert!(f.store.agent(&name("builder")).await.unwrap().is_none());
    assert!(matches!(f.store.delete_agent(&name("builder")).await, Err(StoreError::NotFound { .. })));
}

pub(crate) async fn hooks_need_an_agent_and_cascade(f: Fixture) {
    let h = hook("ghost", f.clock.now_ts());
    assert!(matches!(f.store.create_hook(h, None).await, Err(StoreError::NotFound { .. })));
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), Some(Secret::new("s"))).await.unwrap();
    let patched = f
        .store
        .update_hook(
            &h.id,
            HookPatch { enabled: Some(false), events: Some(vec!["push".into()]), ..HookPatch::default() },
        )
        .await
        .unwrap();
    assert!(!patched.enabled);
    assert_eq!(patched.events, vec!["push".to_owned()]);
    f.store.delete_agent(&name("builder")).await.unwrap();
    assert!(f.store.hook(&h.id).await.unwrap().is_none());
}

pub(crate) async fn ingress_lookups_see_every_change(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), Some(Secret::new("s"))).await.unwrap();
    // Looked up twice so that the second answer comes from the cache.
    for _ in 0..2 {
        let (found, secrets) = f.store.hook_with_secrets(&h.id).await.unwrap().unwrap();
        assert!(found.enabled);
        assert_eq!(secrets.len(), 1);
        assert!(f.store.agent(&name("builder")).await.unwrap().unwrap().enabled);
    }
    f.store.update_hook(&h.id, HookPatch { enabled: Some(false), ..HookPatch::default() }).await.unwrap();
    assert!(!f.store.hook_with_secrets(&h.id).await.unwrap().unwrap().0.enabled);
    f.store
        .update_agent(&name("builder"), AgentPatch { enabled: Some(false), ..AgentPatch::default() })
        .await
        .unwrap();
    assert!(!f.store.agent(&name("builder")).await.unwrap().unwrap().enabled);
    f.store.delete_agent(&name("builder")).await.unwrap();
    assert!(f.store.hook_with_secrets(&h.id).await.unwrap().is_none());
    assert!(f.store.agent(&name("builder")).await.unwrap().is_none());
}

pub(crate) async fn secrets_are_sealed_on_disk(f: Fixture) {
    let webhook_url = "https://discord.com/api/webhooks/1/tok-PLAINTEXT-URL-TOKEN";
    f.store
        .create_agent(NewAgent {
            name: name("builder"),
            channel_id: None,
            discord_webhook_url: Some(Secret::new(webhook_url)),
            enabled: true,
        })
        .await
        .unwrap();
    let secret = Secret::generate();
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), Some(secret.clone())).await.unwrap();
    let (_, secrets) = f.store.hook_with_secrets(&h.id).await.unwrap().unwrap();
    assert_eq!(secrets, vec![secret.clone()]);
    assert_eq!(
        f.store.agent(&name("builder")).await.unwrap().unwrap().discord_webhook_url.unwrap().expose(),
        webhook_url
    );
    for needle in [secret.expose().as_bytes(), b"PLAINTEXT-URL-TOKEN".as_slice()] {
        f.assert_nowhere(needle).await;
    }
    // A different master key cannot open them.
    let f = f.reopen(MasterKey::from_bytes(&[1u8; 32]).unwrap()).await;
    assert!(matches!(f.store.hook_with_secrets(&h.id).await, Err(StoreError::Unseal)));
}

pub(crate) async fn ingest_dedupes_on_delivery_key(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    let first = event(&h, Some("d-1"), f.clock.now_ts());
    let IngestOutcome::Stored(id) = f.store.ingest(first).await.unwrap() else { panic!("not stored") };
    let again = f.store.ingest(event(&h, Some("d-1"), f.clock.now_ts())).await.unwrap();
    assert_eq!(again, IngestOutcome::Duplicate(id.clone()));
    // No key: never a duplicate.
    assert!(matches!(
        f.store.ingest(event(&h, None, f.clock.now_ts())).await.unwrap(),
        IngestOutcome::Stored(_)
    ));
    assert!(matches!(
        f.store.ingest(event(&h, None, f.clock.now_ts())).await.unwrap(),
        IngestOutcome::Stored(_)
    ));
    let page = f.store.events(EventQuery { limit: 10, ..EventQuery::default() }).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.items.last().unwrap().id, id, "newest first");
}

pub(crate) async fn concurrent_ingests_all_commit_and_a_failing_op_fails_alone(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..400 {
        let store = f.store.clone();
        let e = event(&h, Some(&format!("k{i}")), f.clock.now_ts());
        tasks.push(tokio::spawn(async move { store.ingest(e).await }));
        if i % 50 == 0 {
            // Interleave operations that fail inside the same batches.
            let store = f.store.clone();
            let bad = hook("ghost", f.clock.now_ts());
            tasks.push(tokio::spawn(async move {
                assert!(store.create_hook(bad, None).await.is_err());
                Ok(IngestOutcome::Stored(EventId::generate()))
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut seen = 0;
    let mut cursor = None;
    loop {
        let page = f.store.events(EventQuery { limit: 100, cursor, ..EventQuery::default() }).await.unwrap();
        seen += page.items.len();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, 400);
    // The 400 ingests were counted in the store's group commits, each
    // timed.
    let commits = f.store.counts().await.unwrap().commits;
    assert!(commits.size_sum >= 400, "{commits:?}");
    assert!((1..=commits.size_sum).contains(&commits.count), "{commits:?}");
    assert!(commits.latency_buckets[9] <= commits.count, "{commits:?}");
}

/// What a claim hands the router is the event as stored: a large body
/// (kept compressed), several headers, the time to the millisecond; the
/// same on every claim.
pub(crate) async fn a_claimed_event_is_what_was_stored(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    let mut sent = event(&h, Some("big"), f.clock.now_ts() + SignedDuration::from_nanos(1_234_567));
    sent.body = serde_json::to_vec(&serde_json::json!({
        "commits": (0..200).map(|i| serde_json::json!({"id": i, "message": "fix the build"})).collect::<Vec<_>>()
    }))
    .unwrap();
    sent.headers.push(("x-github-delivery".into(), "big".into()));
    let lease = Duration::from_secs(30);
    f.store.ingest(sent.clone()).await.unwrap();

    let claimed = f.store.claim_events(f.clock.now_ts(), lease, 10).await.unwrap();
    let stored = f.store.event(&sent.id).await.unwrap().unwrap();
    assert_eq!(claimed, std::slice::from_ref(&stored));
    assert_eq!((&stored.body, &stored.headers), (&sent.body, &sent.headers));
    assert_eq!(stored.received_at.as_millisecond(), sent.received_at.as_millisecond());
    // Claimed again after the lease ran out: read back, the same.
    f.clock.advance(SignedDuration::from_secs(31));
    assert_eq!(f.store.claim_events(f.clock.now_ts(), lease, 10).await.unwrap(), [stored]);
}

pub(crate) async fn routing_and_delivery_lifecycle_with_leases(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    f.store.ingest(event(&h, Some("a"), f.clock.now_ts())).await.unwrap();
    let lease = Duration::from_secs(30);

    let claimed = f.store.claim_events(f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(f.store.claim_events(f.clock.now_ts(), lease, 10).await.unwrap().is_empty(), "leased");
    // A router that died: the lease runs out and the event is claimed again.
    f.clock.advance(SignedDuration::from_secs(31));
    let again = f.store.claim_events(f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(again[0].id, claimed[0].id);

    let delivery_id = DeliveryId::generate();
    let delivery = NewDelivery {
        id: delivery_id.clone(),
        event_id: Some(again[0].id.clone()),
        hook_id: h.id.clone(),
        target: Target::DiscordChannel { channel_id: "123".into() },
        payload: serde_json::json!({"title": "hi"}),
        due_at: f.clock.now_ts(),
    };
    let routed = RoutedEvent {
        event_id: again[0].id.clone(),
        status: EventStatus::Routed,
        deliveries: vec![delivery],
        outcomes: vec![],
        tasks: vec![],
        questions: vec![],
        subjects: vec![],
        window: None,
    };
    f.store.route_events(vec![routed.clone()]).await.unwrap();
    f.store.route_events(vec![routed]).await.unwrap(); // idempotent
    assert!(
        f.store
            .claim_events(f.clock.now_ts() + SignedDuration::from_hours(1), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let kinds = [TargetKind::DiscordChannel];
    assert!(
        f.store
            .claim_deliveries(&[TargetKind::DiscordWebhook], &[], f.clock.now_ts(), lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let jobs = f.store.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(f.store.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap().is_empty());

    let retry_at = f.clock.now_ts() + SignedDuration::from_secs(5);
    let attempt = |n, status_code, error: Option<&str>, status, next_attempt_at| NewAttempt {
        attempt: Attempt {
            delivery_id: delivery_id.clone(),
            number: n,
            started_at: f.clock.now_ts(),
            duration_ms: 3,
            status_code,
            error: error.map(str::to_owned),
            response_excerpt: None,
        },
        status,
        next_attempt_at,
        subject_messages: Vec::new(),
        breaker: None,
    };
    f.store
        .record_attempt(attempt(1, Some(500), Some("boom"), DeliveryStatus::Pending, retry_at))
        .await
        .unwrap();
    assert!(
        f.store.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap().is_empty(),
        "not due"
    );
    assert_eq!(f.store.next_due(&kinds).await.unwrap(), Some(retry_at));
    f.clock.advance(SignedDuration::from_secs(5));
    let jobs = f.store.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(jobs[0].delivery.attempts, 1);
    let shown = SubjectMessage { subject: "ci:run:7".into(), message_id: "1001".into() };
    let done = attempt(2, Some(200), None, DeliveryStatus::Succeeded, f.clock.now_ts());
    f.store.record_attempt(NewAttempt { subject_messages: vec![shown], ..done }).await.unwrap();
    subject_message_is_kept_for_its_target(&*f.store, &jobs[0].delivery.target).await;
    let d = f.store.delivery(&delivery_id).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(f.store.attempts(&delivery_id).await.unwrap().len(), 2);
    let counts = f.store.delivery_counts().await.unwrap();
    assert_eq!((counts.pending, counts.succeeded), (0, 1));
    let page = f
        .store
        .deliveries(DeliveryQuery { hook_id: Some(h.id), limit: 5, ..DeliveryQuery::default() })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

/// A channel's newer messages wait behind its oldest while that one waits
/// for a retry, so the channel shows them in order; another channel does
/// not wait, and the next due time is the oldest's.
pub(crate) async fn a_channel_sends_in_order_behind_a_retry(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    let (one, two) = (
        Target::DiscordChannel { channel_id: "1".into() },
        Target::DiscordChannel { channel_id: "2".into() },
    );
    route_one_each(&f, &h, &[one.clone(), one.clone(), one.clone(), two.clone()]).await;
    let lease = Duration::from_secs(30);
    let kinds = [TargetKind::DiscordChannel];
    let first = f.store.claim_target(&one, f.clock.now_ts(), lease, 1).await.unwrap().remove(0);
    // Sooner than a lease runs: a claim that compared with its lease's end
    // instead of its own time would let the followers pass.
    let retry_at = f.clock.now_ts() + SignedDuration::from_secs(10);
    f.store.defer_delivery(&first.delivery.id, retry_at).await.unwrap();

    let now = f.clock.now_ts();
    assert!(f.store.claim_target(&one, now, lease, 10).await.unwrap().is_empty(), "behind the retry");
    let claimed = f.store.claim_deliveries(&kinds, &[], now, lease, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.delivery.target.clone()).collect::<Vec<_>>(), [two]);
    let later = retry_at + SignedDuration::from_hours(1);
    f.store.defer_delivery(&claimed[0].delivery.id, later).await.unwrap();
    assert_eq!(
        f.store.next_due(&kinds).await.unwrap(),
        Some(retry_at),
        "the oldest's time, not its followers'"
    );

    f.clock.advance(SignedDuration::from_secs(10));
    let all = f.store.claim_target(&one, f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].delivery.id, first.delivery.id, "the oldest goes first");
    assert!(all.windows(2).all(|w| w[0].delivery.created_at <= w[1].delivery.created_at));
}

/// A pack cut off mid-send (the process dies before recording) comes back
/// whole after a restart, tagged, at one time; failing it, or putting it
/// back unsent, keeps the tag.
pub(crate) async fn a_pack_cut_off_by_a_crash_comes_back_whole(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    let target = Target::DiscordChannel { channel_id: "1".into() };
    route_one_each(&f, &h, &vec![target.clone(); 4]).await;
    let lease = Duration::from_secs(30);
    // Claimed in two goes, so the leases differ by ten seconds.
    let mut jobs = f.store.claim_target(&target, f.clock.now_ts(), lease, 2).await.unwrap();
    f.clock.advance(SignedDuration::from_secs(10));
    jobs.extend(f.store.claim_target(&target, f.clock.now_ts(), lease, 2).await.unwrap());
    assert_eq!(jobs.len(), 4);
    assert!(jobs.iter().all(|j| j.pack.is_none()));
    let ids: Vec<DeliveryId> = jobs.iter().map(|j| j.delivery.id.clone()).collect();
    f.store.mark_packed(&ids, "pack-1").await.unwrap();
    // The first lease has run out, but the pack holds the longest one.
    f.clock.advance(SignedDuration::from_secs(21));
    assert!(f.store.claim_target(&target, f.clock.now_ts(), lease, 10).await.unwrap().is_empty());

    // The process dies: SQLite releases its leases when it opens again;
    // on PostgreSQL another replica finds them expired.
    let f = f.reopen(key()).await;
    f.clock.advance(SignedDuration::from_secs(30));
    let store = &f.store;
    let again = store.claim_target(&target, f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(again.iter().map(|j| j.delivery.id.clone()).collect::<Vec<_>>(), ids);
    assert!(again.iter().all(|j| j.pack.as_deref() == Some("pack-1")));

    // Two recorded as failed in one go and two put back: the pack holds, so
    // its next send is the same pack, which Discord's nonce recognises if an
    // earlier one arrived.
    let records = ids[..2]
        .iter()
        .map(|id| NewAttempt {
            attempt: Attempt {
                delivery_id: id.clone(),
                number: 1,
                started_at: f.clock.now_ts(),
                duration_ms: 3,
                status_code: Some(500),
                error: Some("boom".into()),
                response_excerpt: None,
            },
            status: DeliveryStatus::Pending,
            next_attempt_at: f.clock.now_ts(),
            subject_messages: Vec::new(),
            breaker: None,
        })
        .collect();
    store.record_attempts(records).await.unwrap();
    for id in &ids[2..] {
        store.defer_delivery(id, f.clock.now_ts()).await.unwrap();
    }
    let last = store.claim_target(&target, f.clock.now_ts(), lease, 10).await.unwrap();
    assert_eq!(last.len(), 4);
    assert!(last.iter().all(|j| j.pack.as_deref() == Some("pack-1")), "{last:?}");
    assert_eq!(last.iter().filter(|j| j.delivery.attempts == 1).count(), 2);
}

pub(crate) async fn claims_skip_busy_targets_and_one_target_is_claimed_alone(f: Fixture) {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    let lease = Duration::from_secs(30);
    let channel = |id: &str| Target::DiscordChannel { channel_id: id.into() };
    // Four for the busy channel, two for another.
    let targets: Vec<Target> = (0..6).map(|i| channel(if i < 4 { "1" } else { "2" })).collect();
    route_one_each(&f, &h, &targets).await;
    let kinds = [TargetKind::DiscordChannel];
    let now = f.clock.now_ts();

    // A general claim takes only the oldest of each ordered target: its
    // worker claims the rest itself, in order.
    let others = f.store.claim_deliveries(&kinds, &[channel("1")], now, lease, 10).await.unwrap();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].delivery.target, channel("2"));
    assert_eq!(others[0].delivery.payload["title"], "event 4");
    assert_eq!(f.store.claim_target(&channel("2"), now, lease, 10).await.unwrap().len(), 1);

    let first = f.store.claim_target(&channel("1"), now, lease, 3).await.unwrap();
    let titles: Vec<_> = first.iter().map(|j| j.delivery.payload["title"].clone()).collect();
    assert_eq!(titles, ["event 0", "event 1", "event 2"], "oldest first, up to the limit");
    let rest = f.store.claim_target(&channel("1"), now, lease, 3).await.unwrap();
    assert_eq!(rest.len(), 1, "leased ones are not claimed twice");
    assert!(f.store.claim_target(&channel("1"), now, lease, 3).await.unwrap().is_empty());
    assert!(f.store.claim_deliveries(&kinds, &[], now, lease, 10).await.unwrap().is_empty());
}

/// A hook and its rules are written together or not at all; rules come
/// back by priority, are replaced whole, and go with their hook.
pub(crate) async fn routing_rules_live_and_die_with_their_hook(f: Fixture) {
    f.agent("builder").await;
    let now = f.clock.now_ts();
    let h = hook("builder", now);
    let rules = vec![rule(&h.id, "cmd_low", 0, now), rule(&h.id, "cmd_high", 5, now)];
    // A rule whose id is taken by another hook's rule fails the whole create.
    let other = hook("builder", now);
    f.store
        .create_hook_with_rules(other.clone(), None, vec![rule(&other.id, "cmd_low", 0, now)])
        .await
        .unwrap();
    assert!(f.store.create_hook_with_rules(h.clone(), None, rules.clone()).await.is_err());
    assert!(f.store.hook(&h.id).await.unwrap().is_none(), "a hook was left without its rules");
    let rules = vec![rule(&h.id, "cmd_a", 0, now), rule(&h.id, "cmd_b", 5, now)];
    f.store.create_hook_with_rules(h.clone(), None, rules).await.unwrap();
    let ids: Vec<String> = f.store.rules(&h.id).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["cmd_b", "cmd_a"]);
    let stored = f.store.rules(&h.id).await.unwrap();
    assert_eq!(stored[1], rule(&h.id, "cmd_a", 0, now), "a rule comes back as written");
    f.store.replace_rules(&h.id, vec![rule(&h.id, "cmd_c", 1, now)]).await.unwrap();
    assert_eq!(f.store.rules(&h.id).await.unwrap().len(), 1);
    assert!(matches!(f.store.delete_rule(&h.id, "cmd_a").await, Err(StoreError::NotFound { .. })));
    assert!(matches!(f.store.delete_rule(&other.id, "cmd_c").await, Err(StoreError::NotFound { .. })));
    f.store.delete_hook(&h.id).await.unwrap();
    assert!(f.store.rules(&h.id).await.unwrap().is_empty());
    assert!(matches!(f.store.put_rule(rule(&h.id, "cmd_d", 0, now)).await, Err(StoreError::NotFound { .. })));
}

/// Answers kept for an Idempotency-Key are sealed, and the first one stays
/// for the window.
pub(crate) async fn idempotent_answers_are_sealed_and_first_wins(f: Fixture) {
    let now = f.clock.now_ts();
    let answer = |body: &str, at: Timestamp| IdempotentResponse {
        request_hash: [1; 32],
        status: 201,
        body: body.as_bytes().to_vec(),
        created_at: at,
    };
    f.store.save_idempotent("key-1", answer(r#"{"secret":"shown-once-0123456789"}"#, now)).await.unwrap();
    f.store.save_idempotent("key-1", answer(r#"{"secret":"second"}"#, now)).await.unwrap();
    let kept = f.store.idempotent("key-1").await.unwrap().unwrap();
    assert_eq!(kept.body, br#"{"secret":"shown-once-0123456789"}"#);
    let later = now + SignedDuration::from_hours(25);
    f.store.save_idempotent("key-1", answer(r#"{"secret":"after"}"#, later)).await.unwrap();
    assert_eq!(f.store.idempotent("key-1").await.unwrap().unwrap().body, br#"{"secret":"after"}"#);
    assert!(f.store.idempotent("key-2").await.unwrap().is_none());
    f.assert_nowhere(b"shown-once").await;
}

/// A change made through an audited handle and its audit entry commit
/// together; a failing change records nothing; a create names its target.
pub(crate) async fn audited_changes_record_in_their_own_transaction(f: Fixture) {
    f.agent("builder").await;
    let entry = |action: &str, target: Option<&str>| chorus_core::AuditEntry {
        at: f.clock.now_ts(),
        actor: "discord user jc (1)".into(),
        via: "discord".into(),
        action: action.into(),
        target: target.map(str::to_owned),
    };
    let h = hook("builder", f.clock.now_ts());
    let audited = f.store.audited(entry("webhooks.create", None));
    audited.create_hook(h.clone(), Some(Secret::new("s3cret-s3cret-s3cret"))).await.unwrap();
    // Later changes through the same handle are not recorded again.
    audited
        .update_hook(&h.id, HookPatch { name: Some("renamed".into()), ..HookPatch::default() })
        .await
        .unwrap();
    let log = f.store.audit(50, None).await.unwrap().items;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].action.as_str(), log[0].target.as_deref()), ("webhooks.create", Some(h.id.as_str())));

    // A failing change records nothing.
    let missing = HookId::generate();
    let failed = f
        .store
        .audited(entry("webhooks.delete", Some(missing.as_str())))
        .update_hook(&missing, HookPatch { enabled: Some(false), ..HookPatch::default() })
        .await;
    assert!(failed.is_err());
    let duplicate = f.store.audited(entry("webhooks.create", None)).create_hook(h.clone(), None).await;
    assert!(duplicate.is_err(), "the same id twice");
    assert_eq!(f.store.audit(50, None).await.unwrap().items.len(), 1, "refused changes are not on record");
}

/// The circuit breaker moves in the attempt's own transaction: an attempt
/// that cannot be recorded moves it not at all. A run of `threshold`
/// failures opens it: the subscription's deliveries wait out a cooldown that
/// doubles with each failure after, and a success closes it. A run that has
/// lasted `disable_after` disables the subscription and says so once.
pub(crate) async fn breaker_steps_commit_with_their_attempts(f: Fixture) {
    let now = f.clock.now_ts();
    let hook = crate::conformance_more::subscription(&HookId::generate(), None, now);
    f.store
        .create_outgoing(hook.clone(), Secret::generate(), chorus_core::OutgoingAuth::default())
        .await
        .unwrap();
    let step = chorus_core::BreakerStep {
        hook: hook.id.clone(),
        succeeded: false,
        threshold: 2,
        cooldown: std::time::Duration::from_secs(30),
        disable_after: std::time::Duration::from_secs(3600),
        gone: None,
    };
    let failed = |delivery_id: DeliveryId, n: u32| NewAttempt {
        attempt: Attempt {
            delivery_id,
            number: n,
            started_at: now,
            duration_ms: 1,
            status_code: Some(500),
            error: Some("boom".into()),
            response_excerpt: None,
        },
        status: DeliveryStatus::Pending,
        next_attempt_at: now,
        subject_messages: Vec::new(),
        breaker: Some(step.clone()),
    };

    // An attempt of a delivery that does not exist fails whole.
    let err = f.store.record_attempt(failed(DeliveryId::generate(), 1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert_eq!(f.store.outgoing(&hook.id).await.unwrap().unwrap().consecutive_failures, 0);

    let event = chorus_core::NewOutgoingEvent {
        id: EventId::generate(),
        event: "custom.ping".into(),
        agent: None,
        data: serde_json::json!({}),
        metadata: serde_json::Value::Null,
        at: now,
    };
    let delivery = f.store.emit(event).await.unwrap().remove(0);
    let kinds = [TargetKind::Http];
    let lease = std::time::Duration::from_secs(60);
    let claim =
        || async { f.store.claim_deliveries(&kinds, &[], f.clock.now_ts(), lease, 10).await.unwrap() };
    assert!(f.store.record_attempt(failed(delivery.clone(), 1)).await.unwrap().is_empty());
    assert_eq!(f.store.outgoing(&hook.id).await.unwrap().unwrap().consecutive_failures, 1);

    // The second failure in a row opens the breaker for the cooldown.
    assert!(f.store.record_attempt(failed(delivery.clone(), 2)).await.unwrap().is_empty());
    let open = f.store.outgoing(&hook.id).await.unwrap().unwrap();
    assert!(open.enabled, "an open breaker does not disable");
    let until = now + jiff::SignedDuration::from_secs(30);
    assert_eq!(open.breaker_until, Some(until));
    assert!(claim().await.is_empty(), "held while the breaker is open");
    assert_eq!(f.store.next_due(&kinds).await.unwrap(), Some(until));
    f.clock.advance(jiff::SignedDuration::from_secs(30));
    assert_eq!(claim().await.len(), 1, "free once it closes");
    f.store.defer_delivery(&delivery, f.clock.now_ts()).await.unwrap();
    // Another failure: open again, twice as long.
    assert!(f.store.record_attempt(failed(delivery.clone(), 3)).await.unwrap().is_empty());
    let again = f.store.outgoing(&hook.id).await.unwrap().unwrap();
    assert_eq!(again.breaker_until, Some(f.clock.now_ts() + jiff::SignedDuration::from_secs(60)));
    // Once the cooldown has run out, one sender takes the half-open probe;
    // the subscription's deliveries wait for its outcome.
    let probe =
        |at: jiff::Timestamp| f.store.begin_probe(&hook.id, 2, at, at + jiff::SignedDuration::from_secs(45));
    assert!(!probe(f.clock.now_ts()).await.unwrap(), "still open");
    f.clock.advance(jiff::SignedDuration::from_secs(60));
    assert!(probe(f.clock.now_ts()).await.unwrap(), "the cooldown is over: the probe is taken");
    assert!(!probe(f.clock.now_ts()).await.unwrap(), "one probe at a time");
    assert!(claim().await.is_empty(), "the rest waits for the probe");
    // A success closes it and ends the run.
    let mut ok = failed(delivery.clone(), 4);
    ok.attempt.status_code = Some(200);
    ok.attempt.error = None;
    ok.breaker = Some(chorus_core::BreakerStep { succeeded: true, ..step.clone() });
    assert!(f.store.record_attempt(ok).await.unwrap().is_empty());
    let closed = f.store.outgoing(&hook.id).await.unwrap().unwrap();
    assert_eq!((closed.consecutive_failures, closed.breaker_until), (0, None));

    // A run of failures that lasts past `disable_after` disables it.
    assert!(f.store.record_attempt(failed(delivery.clone(), 5)).await.unwrap().is_empty());
    f.clock.advance(jiff::SignedDuration::from_mins(61));
    let trips = f.store.record_attempt(failed(delivery.clone(), 6)).await.unwrap();
    assert_eq!(trips.len(), 1);
    assert!(trips[0].reason.starts_with("2 failed attempts in a row since "), "{}", trips[0].reason);
    let disabled = f.store.outgoing(&hook.id).await.unwrap().unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some(trips[0].reason.as_str()));
    assert_eq!(disabled.breaker_until, None);
    // Already disabled: a later failure trips nothing again.
    assert!(f.store.record_attempt(failed(delivery, 7)).await.unwrap().is_empty());
}

/// The message showing a subject is kept for the delivery's target, and
/// only there.
async fn subject_message_is_kept_for_its_target(store: &dyn TestStore, target: &Target) {
    assert_eq!(store.subject_message(target, "ci:run:7").await.unwrap().as_deref(), Some("1001"));
    assert_eq!(store.subject_message(target, "ci:run:8").await.unwrap(), None);
    let elsewhere = Target::DiscordChannel { channel_id: "elsewhere".into() };
    assert_eq!(store.subject_message(&elsewhere, "ci:run:7").await.unwrap(), None);
}

/// One stored and routed event per target, titled `event <i>`, each with
/// one delivery to its target; the hook `h` must exist.
async fn route_one_each(f: &Fixture, h: &IncomingHook, targets: &[Target]) {
    let mut routed = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let stored = f.store.ingest(event(h, Some(&format!("route-{i}")), f.clock.now_ts())).await.unwrap();
        let IngestOutcome::Stored(event_id) = stored else { panic!("stored: {stored:?}") };
        routed.push(RoutedEvent {
            event_id: event_id.clone(),
            status: EventStatus::Routed,
            deliveries: vec![NewDelivery {
                id: DeliveryId::generate(),
                event_id: Some(event_id),
                hook_id: h.id.clone(),
                target: target.clone(),
                payload: serde_json::json!({"title": format!("event {i}")}),
                due_at: f.clock.now_ts(),
            }],
            outcomes: vec![],
            tasks: vec![],
            questions: vec![],
            subjects: vec![],
            window: None,
        });
    }
    f.store.route_events(routed).await.unwrap();
}

fn rule(hook: &HookId, id: &str, priority: i32, now: Timestamp) -> Rule {
    Rule {
        id: id.into(),
        hook_id: hook.clone(),
        trigger: "issues.opened".into(),
        action: Action::CreateTask,
        agent: Some(name("builder")),
        template: Some("{{ issue.title }}".into()),
        conditions: serde_json::json!({"labels": ["bug"]}).as_object().unwrap().clone(),
        url: None,
        priority,
        stop: false,
        reply: false,
        signature: chorus_core::SignatureScheme::Chorus,
        created_at: now,
    }
}
