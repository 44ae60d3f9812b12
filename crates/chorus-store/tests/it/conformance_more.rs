//! More of the conformance suite: the parts of each trait the first tests
//! do not reach (windows, tasks and questions, subscriptions, tokens, the
//! event log's filters, workflows and their gates, held deliveries,
//! per-subject state and watchers' cursors).

use std::time::Duration;

use chorus_core::{
    AgentPatch, Approval, ApprovalId, ApprovalStatus, DeliveryId, DeliveryStatus, Effects, EventQuery,
    EventStatus, HookId, IngestOutcome, NewAgent, NewApiToken, NewDelivery, NewOutgoingEvent, NewRun,
    OutgoingPatch, Question, QuestionStatus, RoutedEvent, RunId, RunQuery, RunStatus, Secret, SecretChange,
    StepCommit, StoreError, StoredWorkflow, SubjectUpdate, Target, TargetKind, Task, TaskQuery, TaskStatus,
    WindowSlot,
};
use jiff::SignedDuration;

use crate::support::{Fixture, NowTs as _, event, hook, name};

async fn stored(f: &Fixture, h: &chorus_core::IncomingHook, key: &str) -> chorus_core::EventId {
    match f.store.ingest(event(h, Some(key), f.clock.now_ts())).await.unwrap() {
        IngestOutcome::Stored(id) => id,
        other @ IngestOutcome::Duplicate(_) => panic!("{other:?}"),
    }
}

fn delivery(
    h: &chorus_core::IncomingHook,
    event: &chorus_core::EventId,
    target: Target,
    at: jiff::Timestamp,
) -> NewDelivery {
    NewDelivery {
        id: DeliveryId::generate(),
        event_id: Some(event.clone()),
        hook_id: h.id.clone(),
        target,
        payload: serde_json::json!({"for": event.as_str()}),
        due_at: at,
    }
}

async fn setup(f: &Fixture) -> chorus_core::IncomingHook {
    f.agent("builder").await;
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    h
}

pub(crate) async fn windows_collect_their_events_and_close_once(f: Fixture) {
    let h = setup(&f).await;
    let now = f.clock.now_ts();
    let ends = now + SignedDuration::from_secs(60);
    assert_eq!(f.store.next_window().await.unwrap(), None);
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = stored(&f, &h, &format!("w{i}")).await;
        let slot =
            WindowSlot { hook: h.id.clone(), ends_at: ends, if_closed: ends + SignedDuration::from_secs(60) };
        f.store
            .route_events(vec![RoutedEvent {
                window: Some(slot),
                ..RoutedEvent::bare(id.clone(), EventStatus::Routed)
            }])
            .await
            .unwrap();
        ids.push(id);
    }
    assert_eq!(f.store.next_window().await.unwrap(), Some(ends));
    assert!(f.store.due_windows(now).await.unwrap().is_empty(), "not over yet");
    let due = f.store.due_windows(ends).await.unwrap();
    assert_eq!(due, vec![(h.id.clone(), ends)]);
    let collected: Vec<_> =
        f.store.window_events(&h.id, ends).await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(collected, ids, "in arrival order");
    let summary = delivery(&h, &ids[0], Target::DiscordChannel { channel_id: "1".into() }, ends);
    assert!(f.store.close_window(&h.id, ends, vec![summary.clone()]).await.unwrap());
    assert!(!f.store.close_window(&h.id, ends, vec![summary]).await.unwrap(), "closed once");
    assert!(f.store.due_windows(ends).await.unwrap().is_empty());
    // An event routed into a closed window goes to the next one.
    let late = stored(&f, &h, "late").await;
    let slot =
        WindowSlot { hook: h.id.clone(), ends_at: ends, if_closed: ends + SignedDuration::from_secs(60) };
    f.store
        .route_events(vec![RoutedEvent {
            window: Some(slot),
            ..RoutedEvent::bare(late.clone(), EventStatus::Routed)
        }])
        .await
        .unwrap();
    let next = ends + SignedDuration::from_secs(60);
    let moved: Vec<_> = f.store.window_events(&h.id, next).await.unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(moved, [late]);
    let made =
        f.store.deliveries(chorus_core::DeliveryQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(made.items.len(), 1, "one summary");
}

fn task(id: &str, h: &chorus_core::IncomingHook, event: &chorus_core::EventId, at: jiff::Timestamp) -> Task {
    Task {
        id: id.into(),
        agent: name("builder"),
        title: format!("title {id}"),
        body: "body".into(),
        url: None,
        hook_id: Some(h.id.clone()),
        event_id: Some(event.clone()),
        rule_id: Some("cmd_1".into()),
        status: TaskStatus::Open,
        result: None,
        reply: false,
        created_at: at,
        updated_at: at,
    }
}

pub(crate) async fn tasks_and_questions_follow_their_lives(f: Fixture) {
    let h = setup(&f).await;
    let now = f.clock.now_ts();
    let e = stored(&f, &h, "t").await;
    let q = Question {
        id: "q_1".into(),
        hook_id: h.id.clone(),
        event_id: e.clone(),
        agent: name("builder"),
        question: "why?".into(),
        status: QuestionStatus::Pending,
        answer: None,
        created_at: now,
        answered_at: None,
    };
    let routed = RoutedEvent {
        tasks: vec![task("task_a", &h, &e, now), task("task_b", &h, &e, now)],
        questions: vec![q.clone()],
        ..RoutedEvent::bare(e.clone(), EventStatus::Routed)
    };
    f.store.route_events(vec![routed]).await.unwrap();
    let page = f.store.tasks(TaskQuery { limit: 1, ..TaskQuery::default() }).await.unwrap();
    assert_eq!(page.items[0].id, "task_b", "newest first");
    let rest = f
        .store
        .tasks(TaskQuery { limit: 5, cursor: page.next_cursor, ..TaskQuery::default() })
        .await
        .unwrap();
    assert_eq!(rest.items.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["task_a"]);
    let edited = f.store.update_task("task_a", Some("new title".into()), None, now).await.unwrap();
    assert_eq!((edited.title.as_str(), edited.body.as_str()), ("new title", "body"));
    let done = f
        .store
        .finish_task("task_a", TaskStatus::Done, Some("ok".into()), now, vec![], vec![])
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    let again =
        f.store.finish_task("task_a", TaskStatus::Failed, None, now, vec![], vec![]).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");
    assert!(matches!(f.store.update_task("nope", None, None, now).await, Err(StoreError::NotFound { .. })));
    let open = f
        .store
        .tasks(TaskQuery { status: Some(TaskStatus::Open), limit: 5, ..TaskQuery::default() })
        .await
        .unwrap();
    assert_eq!(open.items.len(), 1);

    assert_eq!(f.store.questions(&e).await.unwrap(), vec![q.clone()]);
    let answer = delivery(&h, &e, Target::Reply { hook_id: h.id.clone() }, now);
    f.store.interact(vec![answer], None, Some(("q_1".into(), "because".into(), now))).await.unwrap();
    let answered = f.store.question("q_1").await.unwrap().unwrap();
    assert_eq!((answered.status, answered.answer.as_deref()), (QuestionStatus::Answered, Some("because")));
    let twice = f.store.interact(vec![], None, Some(("q_1".into(), "again".into(), now))).await.unwrap_err();
    assert!(matches!(twice, StoreError::Conflict(_)), "{twice}");
}

/// An outgoing subscription for `custom.*` events, enabled.
pub(crate) fn subscription(
    id: &HookId,
    agent: Option<&str>,
    at: jiff::Timestamp,
) -> chorus_core::OutgoingHook {
    chorus_core::OutgoingHook {
        id: id.clone(),
        agent: agent.map(name),
        name: "ops".into(),
        url: "https://receiver.example/hook".into(),
        events: vec!["custom.*".into()],
        method: chorus_core::HttpMethod::default(),
        headers: vec![("x-team".into(), "ops".into())],
        signature: chorus_core::SignatureScheme::default(),
        timeout_ms: chorus_core::OutgoingHook::DEFAULT_TIMEOUT_MS,
        retry: chorus_core::OutgoingHook::DEFAULT_RETRY,
        rate_limit_per_minute: Some(120),
        max_concurrency: chorus_core::OutgoingHook::DEFAULT_CONCURRENCY,
        enabled: true,
        paused: false,
        consecutive_failures: 0,
        breaker_until: None,
        disabled_reason: None,
        created_at: at,
        created_by: "test".into(),
        updated_at: at,
    }
}

fn outgoing_event(at: jiff::Timestamp) -> NewOutgoingEvent {
    NewOutgoingEvent {
        id: chorus_core::EventId::generate(),
        event: "custom.ping".into(),
        // The subscription is the agent's: it hears the agent's events.
        agent: Some(name("builder")),
        data: serde_json::json!({"n": 1}),
        metadata: serde_json::Value::Null,
        at,
    }
}

pub(crate) async fn subscriptions_hold_rotate_recover_and_go(f: Fixture) {
    f.agent("builder").await;
    let now = f.clock.now_ts();
    let id = HookId::generate();
    let secret = Secret::generate();
    f.store
        .create_outgoing(
            subscription(&id, Some("builder"), now),
            secret.clone(),
            chorus_core::OutgoingAuth::Bearer { token: "bearer-token-in-the-clear".into() },
        )
        .await
        .unwrap();
    assert_eq!(f.store.outgoing(&id).await.unwrap().unwrap(), subscription(&id, Some("builder"), now));
    let spec = f.store.outgoing_with_secrets(&id).await.unwrap().expect("the subscription");
    assert_eq!(
        (&spec.hook, &spec.secret, spec.previous_secret.as_ref()),
        (&subscription(&id, Some("builder"), now), &secret, None)
    );
    assert!(
        matches!(&spec.auth, chorus_core::OutgoingAuth::Bearer { token } if token == "bearer-token-in-the-clear")
    );
    f.assert_nowhere(b"bearer-token-in-the-clear").await;
    assert!(f.store.outgoing_with_secrets(&HookId::generate()).await.unwrap().is_none());
    assert_eq!(f.store.outgoing_hooks(Some(&name("builder"))).await.unwrap().len(), 1);
    assert!(f.store.outgoing_hooks(Some(&name("other"))).await.unwrap().is_empty());
    let kinds = [TargetKind::Http];
    let lease = Duration::from_secs(30);

    // Paused: its deliveries wait, unclaimed and not due.
    f.store.update_outgoing(&id, OutgoingPatch { paused: Some(true), ..Default::default() }).await.unwrap();
    let first = f.store.emit(outgoing_event(now)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(f.store.claim_deliveries(&kinds, &[], now, lease, 10).await.unwrap().is_empty());
    assert_eq!(f.store.next_due(&kinds).await.unwrap(), None);
    f.store.update_outgoing(&id, OutgoingPatch { paused: Some(false), ..Default::default() }).await.unwrap();

    // Rotated: the claim carries both secrets during the grace period.
    let rotated = Secret::generate();
    f.store.rotate_secret(&id, rotated.clone(), now + SignedDuration::from_hours(1)).await.unwrap();
    let jobs = f.store.claim_deliveries(&kinds, &[], now, lease, 10).await.unwrap();
    let spec = jobs[0].http.as_ref().expect("the subscription's request");
    assert_eq!((spec.secret.clone(), spec.previous_secret.clone()), (rotated, Some(secret)));
    f.assert_nowhere(spec.secret.expose().as_bytes()).await;

    // Failed, then recovered from a time, then retried by hand.
    let failed = chorus_core::NewAttempt {
        attempt: chorus_core::Attempt {
            delivery_id: first[0].clone(),
            number: 1,
            started_at: now,
            duration_ms: 5,
            status_code: Some(500),
            error: Some("boom".into()),
            response_excerpt: None,
        },
        status: DeliveryStatus::Failed,
        next_attempt_at: now,
        subject_messages: vec![],
        breaker: None,
    };
    f.store.record_attempt(failed.clone()).await.unwrap();
    let stats = f.store.hook_stats(&id, now).await.unwrap();
    assert_eq!(stats.hourly.len(), 24);
    let last = &stats.hourly[23];
    assert_eq!(
        (last.start, last.attempts, last.succeeded, last.p50_ms),
        (now - SignedDuration::from_hours(1), 1, 0, Some(5))
    );
    assert!(stats.hourly[..23].iter().all(|h| h.attempts == 0));
    assert_eq!((stats.attempts_last_day, stats.succeeded_last_day, stats.failed), (1, 0, 1));
    assert_eq!(
        f.store.recover(&id, now + SignedDuration::from_secs(1), now).await.unwrap(),
        0,
        "older than since"
    );
    assert_eq!(f.store.recover(&id, now, now).await.unwrap(), 1);
    let not_failed = f.store.retry_delivery(&first[0], now).await.unwrap_err();
    assert!(matches!(not_failed, StoreError::Conflict(_)), "{not_failed}");
    f.store
        .record_attempt(chorus_core::NewAttempt {
            attempt: chorus_core::Attempt { number: 2, ..failed.attempt.clone() },
            ..failed
        })
        .await
        .unwrap();
    let again = f.store.retry_delivery(&first[0], now).await.unwrap();
    assert_eq!((again.status, again.attempt_base), (DeliveryStatus::Pending, 2));
    assert!(matches!(
        f.store.retry_delivery(&DeliveryId::generate(), now).await,
        Err(StoreError::NotFound { .. })
    ));

    // Deleted: what waited is failed, never sent.
    f.store.delete_outgoing(&id).await.unwrap();
    let gone = f.store.delivery(&first[0]).await.unwrap().unwrap();
    assert_eq!(
        (gone.status, gone.last_error.as_deref()),
        (DeliveryStatus::Failed, Some("subscription deleted"))
    );
    assert!(matches!(f.store.delete_outgoing(&id).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(f.store.emit_to(outgoing_event(now), &id).await, Err(StoreError::NotFound { .. })));
}

pub(crate) async fn tokens_and_the_audit_log_page_and_revoke(f: Fixture) {
    let now = f.clock.now_ts();
    for (i, hash) in [[1u8; 32], [2u8; 32]].into_iter().enumerate() {
        let token = chorus_core::ApiToken {
            id: format!("tok_{i}"),
            name: format!("t{i}"),
            scope: chorus_core::TokenScope::Admin,
            created_at: now,
            revoked_at: None,
        };
        f.store.create_token(NewApiToken { token, hash }).await.unwrap();
    }
    assert_eq!(f.store.tokens().await.unwrap().len(), 2);
    assert_eq!(f.store.token_by_hash([1; 32]).await.unwrap().unwrap().id, "tok_0");
    let revoked = f.store.revoke_token("tok_0").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(f.store.token_by_hash([1; 32]).await.unwrap().is_none(), "a revoked token is refused");
    assert!(matches!(f.store.revoke_token("tok_9").await, Err(StoreError::NotFound { .. })));

    for i in 0..5 {
        let entry = chorus_core::AuditEntry {
            at: now,
            actor: "admin".into(),
            via: "api".into(),
            action: format!("agents.update.{i}"),
            target: None,
        };
        f.store.record_audit(entry).await.unwrap();
    }
    let first = f.store.audit(2, None).await.unwrap();
    assert_eq!(first.items[0].action, "agents.update.4", "newest first");
    let second = f.store.audit(10, first.next_cursor).await.unwrap();
    assert_eq!(second.items.len(), 3);
    assert!(second.next_cursor.is_none());
    assert!(matches!(f.store.audit(10, Some("not-a-cursor".into())).await, Err(StoreError::Invalid(_))));
}

pub(crate) async fn the_event_log_filters_by_status_type_and_time(f: Fixture) {
    let h = setup(&f).await;
    let start = f.clock.now_ts();
    for (i, kind) in ["issues.opened", "issues.closed", "issues_other", "push"].iter().enumerate() {
        let mut e = event(&h, Some(&format!("f{i}")), f.clock.now_ts());
        e.event_type = (*kind).into();
        f.store.ingest(e).await.unwrap();
        f.clock.advance(SignedDuration::from_secs(10));
    }
    let q = |event_type: Option<&str>| EventQuery {
        hook_id: Some(h.id.clone()),
        event_type: event_type.map(str::to_owned),
        limit: 10,
        ..EventQuery::default()
    };
    let types = |items: Vec<chorus_core::Event>| items.into_iter().map(|e| e.event_type).collect::<Vec<_>>();
    assert_eq!(
        types(f.store.events(q(Some("issues"))).await.unwrap().items),
        ["issues.closed", "issues.opened"]
    );
    assert_eq!(types(f.store.events(q(Some("push"))).await.unwrap().items), ["push"]);
    let window = EventQuery {
        since: Some(start + SignedDuration::from_secs(10)),
        until: Some(start + SignedDuration::from_secs(30)),
        ..q(None)
    };
    assert_eq!(types(f.store.events(window).await.unwrap().items), ["issues_other", "issues.closed"]);
    let received = EventQuery { status: Some(EventStatus::Received), ..q(None) };
    assert_eq!(f.store.events(received).await.unwrap().items.len(), 4);
    let routed = EventQuery { status: Some(EventStatus::Routed), ..q(None) };
    assert!(f.store.events(routed).await.unwrap().items.is_empty());
    let counts = f.store.counts().await.unwrap();
    assert_eq!(counts.events, vec![("received".to_owned(), 4)]);
    assert!(matches!(
        f.store.events(EventQuery { cursor: Some("x".into()), ..q(None) }).await,
        Err(StoreError::Invalid(_))
    ));
}

fn workflow(name: &str, at: jiff::Timestamp) -> StoredWorkflow {
    StoredWorkflow {
        id: HookId::generate(),
        name: name.into(),
        enabled: true,
        agent: None,
        origin: "api".into(),
        spec: serde_json::json!({"name": name, "steps": [{"name": "a", "tool": "emit_event"}, {"name": "b", "tool": "emit_event"}]}),
        has_secret: false,
        created_at: at,
        updated_at: at,
    }
}

/// A run moving to `status` at `now`, with nothing else.
fn commit(run_id: &RunId, status: RunStatus, now: jiff::Timestamp) -> StepCommit {
    StepCommit {
        run_id: run_id.clone(),
        step: None,
        status,
        wake_at: None,
        error: None,
        approval: None,
        expired: None,
        effects: Effects::default(),
        now,
        lease_until: None,
    }
}

pub(crate) async fn workflows_runs_and_gates_are_decided_once(f: Fixture) {
    let now = f.clock.now_ts();
    let secret = Secret::generate();
    let made =
        f.store.put_workflow(workflow("deploy", now), SecretChange::Set(secret.clone()), None).await.unwrap();
    assert!(made.has_secret);
    let later = now + SignedDuration::from_secs(5);
    let replaced = f
        .store
        .put_workflow(
            StoredWorkflow { updated_at: later, ..workflow("deploy", later) },
            SecretChange::Keep,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (replaced.id.clone(), replaced.created_at, replaced.has_secret),
        (made.id.clone(), now, true),
        "same workflow, secret kept"
    );
    let (_, opened) = f.store.workflow_secret("deploy").await.unwrap().unwrap();
    assert_eq!(opened, Some(secret.clone()));
    f.assert_nowhere(secret.expose().as_bytes()).await;
    assert_eq!(f.store.workflows().await.unwrap().len(), 1);

    let run_id = RunId::generate();
    let run = NewRun {
        id: run_id.clone(),
        workflow: replaced.clone(),
        payload: serde_json::json!({"ref": "main"}),
        headers: vec![],
        unsigned: false,
        test: false,
        created_at: now,
    };
    f.store.start_run(run, Effects::default()).await.unwrap();
    let lease = Duration::from_secs(60);
    let claimed = f.store.claim_runs(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(f.store.claim_runs(now, lease, 10).await.unwrap().is_empty(), "leased");
    let gate = Approval {
        id: ApprovalId::generate(),
        run_id: run_id.clone(),
        step: 1,
        step_name: "b".into(),
        status: ApprovalStatus::Pending,
        decided_by: None,
        decided_at: None,
        expires_at: now + SignedDuration::from_hours(1),
        created_at: now,
    };
    let step = chorus_core::StepRecord {
        index: 0,
        name: "a".into(),
        status: chorus_core::StepStatus::Succeeded,
        output: serde_json::json!({"ok": true}),
        error: None,
        started_at: now,
        duration_ms: 3,
    };
    let waits = StepCommit {
        step: Some(step),
        wake_at: Some(gate.expires_at),
        approval: Some(gate.clone()),
        ..commit(&run_id, RunStatus::Waiting, now)
    };
    f.store.commit_step(waits).await.unwrap();
    assert_eq!(f.store.next_wake().await.unwrap(), Some(gate.expires_at));
    let waiting = f.store.run(&run_id).await.unwrap().unwrap();
    assert_eq!((waiting.status, waiting.steps.len(), waiting.approvals.len()), (RunStatus::Waiting, 1, 1));
    let decided = f.store.decide(&gate.id, true, "jc", now, Effects::default(), None).await.unwrap();
    assert_eq!((decided.status, decided.decided_by.as_deref()), (ApprovalStatus::Approved, Some("jc")));
    let twice = f.store.decide(&gate.id, false, "mo", now, Effects::default(), None).await.unwrap_err();
    assert!(matches!(twice, StoreError::Conflict(_)), "{twice}");
    let runs = f
        .store
        .runs(RunQuery { workflow: Some("deploy".into()), limit: 10, ..RunQuery::default() })
        .await
        .unwrap();
    assert_eq!(runs.items[0].status, RunStatus::Running);
    let cancelled = f.store.cancel_run(&run_id, now, Effects::default(), None).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(matches!(
        f.store.cancel_run(&run_id, now, Effects::default(), None).await,
        Err(StoreError::Conflict(_))
    ));
    let over = commit(&run_id, RunStatus::Succeeded, now);
    assert!(
        matches!(f.store.commit_step(over).await, Err(StoreError::Conflict(_))),
        "a cancelled run takes no step"
    );
    f.store.delete_workflow("deploy", None).await.unwrap();
    assert!(matches!(f.store.delete_workflow("deploy", None).await, Err(StoreError::NotFound { .. })));
    assert!(f.store.run(&run_id).await.unwrap().is_some(), "runs stay for the record");
}

pub(crate) async fn a_degraded_agents_messages_wait_for_a_new_url(f: Fixture) {
    f.store
        .create_agent(NewAgent {
            name: name("builder"),
            channel_id: None,
            discord_webhook_url: Some(Secret::new("https://discord.com/api/webhooks/1/old")),
            enabled: true,
        })
        .await
        .unwrap();
    let h = hook("builder", f.clock.now_ts());
    f.store.create_hook(h.clone(), None).await.unwrap();
    let now = f.clock.now_ts();
    let e = stored(&f, &h, "d").await;
    let target = Target::DiscordWebhook { agent: name("builder") };
    f.store
        .route_events(vec![RoutedEvent {
            deliveries: vec![delivery(&h, &e, target.clone(), now)],
            ..RoutedEvent::bare(e, EventStatus::Routed)
        }])
        .await
        .unwrap();
    let kinds = [TargetKind::DiscordWebhook];
    assert!(f.store.degrade_agent(&name("builder"), "404 Unknown Webhook").await.unwrap());
    assert!(!f.store.degrade_agent(&name("builder"), "again").await.unwrap(), "once");
    assert_eq!(
        f.store.agent(&name("builder")).await.unwrap().unwrap().degraded.as_deref(),
        Some("404 Unknown Webhook")
    );
    assert!(
        f.store.claim_deliveries(&kinds, &[], now, Duration::from_secs(30), 10).await.unwrap().is_empty()
    );
    assert_eq!(f.store.next_due(&kinds).await.unwrap(), None);
    f.store
        .update_agent(
            &name("builder"),
            AgentPatch {
                discord_webhook_url: Some(Some(Secret::new("https://discord.com/api/webhooks/1/new"))),
                ..AgentPatch::default()
            },
        )
        .await
        .unwrap();
    let jobs = f.store.claim_deliveries(&kinds, &[], now, Duration::from_secs(30), 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].webhook_url.as_ref().unwrap().expose(), "https://discord.com/api/webhooks/1/new");
}

pub(crate) async fn subject_state_and_cursors_are_kept(f: Fixture) {
    let h = setup(&f).await;
    let e = stored(&f, &h, "s").await;
    assert_eq!(f.store.subject_state(&h.id, "pr:7").await.unwrap(), None);
    let update = SubjectUpdate {
        hook_id: h.id.clone(),
        subject: "pr:7".into(),
        state: serde_json::json!({"reviews": 2}),
    };
    f.store
        .route_events(vec![RoutedEvent {
            subjects: vec![update],
            ..RoutedEvent::bare(e, EventStatus::Routed)
        }])
        .await
        .unwrap();
    assert_eq!(f.store.subject_state(&h.id, "pr:7").await.unwrap(), Some(serde_json::json!({"reviews": 2})));
    assert_eq!(f.store.cursor("docker").await.unwrap(), None);
    f.store.set_cursor("docker", "1700000000").await.unwrap();
    f.store.set_cursor("docker", "1700000001").await.unwrap();
    assert_eq!(f.store.cursor("docker").await.unwrap().as_deref(), Some("1700000001"));
    // A hook's state goes with it.
    f.store.delete_hook(&h.id).await.unwrap();
    assert_eq!(f.store.subject_state(&h.id, "pr:7").await.unwrap(), None);
}
