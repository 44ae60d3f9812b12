//! Faults on the network between Chorus and Discord or a subscriber,
//! injected by the test kit's proxy: resets before and after the far side
//! acted, stalls past the timeout, answers cut short, and a five-minute
//! outage in the injected clock's time, under Chorus's own retry schedules.
//! Whatever happens, nothing acknowledged is lost, a channel sees its events
//! in order, and no delivery is marked succeeded that the far side did not
//! get.

use std::{collections::HashMap, sync::Arc};

use chorus_core::{Clock, ManualClock};
use chorus_testkit::{FakeDiscord, Fault, FaultProxy, Reply, TestReceiver};
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, chorus_headers};

const OUTAGE: SignedDuration = SignedDuration::from_mins(5);

/// Every fault the proxy knows, one request each.
const FAULTS: [Fault; 5] =
    [Fault::Reset, Fault::ResetAfterForward, Fault::Truncate(20), Fault::StallAfterForward, Fault::Stall];

async fn deliveries(app: &TestApp, status: &str) -> Vec<Value> {
    let (code, v) =
        app.api_json(Method::GET, &format!("/api/deliveries?status={status}&limit=200"), None).await;
    assert_eq!(code, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

/// Nothing is left to send.
async fn settled(app: &TestApp) -> bool {
    deliveries(app, "pending").await.is_empty()
}

/// Step through the retry schedule until `done`. The count of attempts is
/// read before `done` is asked, so an attempt that lands in between is not
/// waited for a second time.
async fn drive(
    app: &TestApp,
    clock: &ManualClock,
    subscription: Option<&str>,
    mut done: impl AsyncFnMut() -> bool,
) {
    loop {
        let seen = app.attempts_recorded();
        if done().await {
            return;
        }
        step(app, clock, subscription, seen).await;
    }
}

/// One step of the retry schedule in clock time: move the clock to the
/// latest time a pending delivery waits for (a channel's newer messages wait
/// behind its oldest, whose retry is the latest), then wait for the next
/// attempt to be recorded.
async fn step(app: &TestApp, clock: &ManualClock, subscription: Option<&str>, seen: u64) {
    let mut due = deliveries(app, "pending")
        .await
        .iter()
        .map(|d| d["next_attempt_at"].as_str().unwrap().parse::<Timestamp>().unwrap())
        .max();
    // An open circuit breaker holds the subscription's deliveries longer.
    if let Some(id) = subscription {
        let (_, v) = app.api_json(Method::GET, &format!("/api/webhooks/{id}"), None).await;
        if let Some(until) = v["breaker_open_until"].as_str() {
            due = due.max(Some(until.parse().unwrap()));
        }
    }
    if let Some(due) = due
        && due > clock.now()
    {
        clock.advance(due.duration_since(clock.now()));
    }
    let mut progress = app.progress();
    let waited = tokio::time::timeout(WAIT, progress.wait_for(|n| *n > seen)).await;
    if waited.is_err() {
        let view = match subscription {
            Some(id) => app.api_json(Method::GET, &format!("/api/webhooks/{id}"), None).await.1,
            None => Value::Null,
        };
        let pending = deliveries(app, "pending").await;
        let failed = deliveries(app, "failed").await;
        let succeeded: Vec<Value> =
            deliveries(app, "succeeded").await.iter().map(|d| d["id"].clone()).collect();
        panic!(
            "no attempt after {seen} at {} (moved to {due:?}): {view}\npending: {pending:#?}\nfailed: {failed:#?}\nsucceeded: {succeeded:?}",
            clock.now()
        );
    }
}

async fn post(app: &TestApp, url: &str, secret: &str, title: &str) -> String {
    let body = serde_json::to_vec(&json!({"title": title})).unwrap();
    let resp = app.post(url, &chorus_headers(secret, &body), body).await;
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["event_id"].as_str().unwrap().to_owned()
}

fn dump(proxy: &FaultProxy, discord: &FakeDiscord, acked: &[String]) {
    for h in proxy.handled() {
        eprintln!(
            "proxy: {:?} outage={} fwd={} {:?} {}",
            h.fault, h.outage, h.forwarded, h.upstream_status, h.request_line
        );
    }
    for r in discord.requests() {
        let titles: Vec<_> =
            r.body["embeds"].as_array().into_iter().flatten().map(|e| e["title"].clone()).collect();
        eprintln!("discord: {} {} {} nonce={} {:?}", r.status, r.method, r.path, r.body["nonce"], titles);
    }
    eprintln!("acked {acked:?}");
    eprintln!("shown {:?}", shown_ids(discord));
}

/// Chorus on a clock the test drives, with the production retry schedule
/// and a Discord reached directly: for tests whose faults are elsewhere.
async fn on_clock() -> (Arc<ManualClock>, TestApp) {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let discord = FakeDiscord::start().await;
    let via = discord.host_port();
    (clock.clone(), TestApp::start_via(clock, discord, via).await)
}

/// Event ids as the channel shows them, in order.
fn shown_ids(discord: &FakeDiscord) -> Vec<String> {
    discord.shown().into_iter().map(|s| s.event_id.expect("each event has its own embed")).collect()
}

#[tokio::test]
async fn discord_behind_a_faulty_network_shows_every_event_once_in_order() {
    let clock = Arc::new(ManualClock::at_unix(1_800_000_000));
    let discord = FakeDiscord::start().await;
    let proxy = FaultProxy::start(&discord.host_port()).await;
    let app = TestApp::start_via(clock.clone(), discord, proxy.host_port()).await;
    app.agent("builder", "4242").await;
    let hook = app.hook(json!({"agent": "builder", "source": "chorus"})).await;
    let secret = hook.secret.unwrap();

    proxy.script(FAULTS);
    let mut acked = Vec::new();
    for i in 0..6 {
        acked.push(post(&app, &hook.url, &secret, &format!("fault {i}")).await);
    }
    let all_shown = async |acked: &[String]| {
        acked.iter().all(|e| shown_ids(&app.discord).contains(e)) && settled(&app).await
    };
    drive(&app, &clock, None, async || all_shown(&acked).await).await;
    assert_eq!(proxy.script_left(), 0, "every fault was met");

    // Five minutes in which Discord cannot be reached; events keep coming.
    proxy.begin_outage();
    let began = clock.now();
    for i in 0..4 {
        acked.push(post(&app, &hook.url, &secret, &format!("outage {i}")).await);
    }
    drive(&app, &clock, None, async || clock.now().duration_since(began) >= OUTAGE).await;
    let refused = proxy.handled().iter().filter(|h| h.outage).count();
    assert!(refused >= 5, "the engine kept trying through the outage: {refused} attempts refused");
    assert_eq!(shown_ids(&app.discord).len(), 6, "nothing got through the outage");
    proxy.end_outage();
    drive(&app, &clock, None, async || all_shown(&acked).await).await;

    // Every acknowledged event is shown exactly once, in the order taken,
    // though the first messages reached Discord before their answers were
    // lost: the retries carried the same nonce.
    dump(&proxy, &app.discord, &acked);
    assert_eq!(shown_ids(&app.discord), acked);
    let forwarded_twice = proxy.handled().iter().filter(|h| h.forwarded && h.fault.is_some()).count();
    assert!(forwarded_twice >= 3, "faults after forwarding happened");
    // No false success: every delivery marked succeeded is on the channel,
    // and none is left pending or failed.
    let succeeded = deliveries(&app, "succeeded").await;
    let shown = shown_ids(&app.discord);
    for d in &succeeded {
        let event = d["event_id"].as_str().unwrap();
        assert!(shown.iter().any(|s| s == event), "{event} marked succeeded but not shown");
    }
    assert_eq!(succeeded.len(), acked.len());
    assert!(deliveries(&app, "pending").await.is_empty());
    assert!(deliveries(&app, "failed").await.is_empty());
}

#[tokio::test]
async fn a_subscriber_behind_a_faulty_network_gets_everything_and_nothing_falsely_succeeds() {
    let receiver = TestReceiver::start().await;
    let upstream = receiver.url("").trim_start_matches("http://").to_owned();
    let proxy = FaultProxy::start(&upstream).await;
    let (clock, app) = on_clock().await;
    let (hook, _) = app
        .outgoing(json!({
            "url": proxy.url("/hook"),
            "events": ["custom.*"],
            "timeout_ms": 1000,
            "retry": {"max_attempts": 25, "initial_delay_ms": 1000, "max_delay_ms": 60000},
        }))
        .await;

    proxy.script(FAULTS);
    let mut emitted = Vec::new();
    for i in 0..5 {
        emitted.extend(app.emit("custom.fault", None, json!({"n": i})).await);
    }
    let got_all = |emitted: &[String]| {
        let ids: Vec<String> =
            receiver.received().iter().filter_map(|r| r.header("x-webhook-id").map(str::to_owned)).collect();
        emitted.iter().all(|e| ids.contains(e))
    };
    // Everything sent, and nothing left: a delivery settled as succeeded that
    // the receiver never got would leave this false for ever, and time out.
    let all_received = async |emitted: &[String]| got_all(emitted) && settled(&app).await;
    drive(&app, &clock, Some(&hook), async || all_received(&emitted).await).await;
    assert_eq!(proxy.script_left(), 0, "every fault was met");

    // A five-minute outage with events still being emitted through it.
    proxy.begin_outage();
    let began = clock.now();
    emitted.extend(app.emit("custom.outage", None, json!({"at": "start"})).await);
    drive(&app, &clock, Some(&hook), async || {
        if emitted.len() < 8 {
            emitted.extend(app.emit("custom.outage", None, json!({"at": "during"})).await);
        }
        clock.now().duration_since(began) >= OUTAGE
    })
    .await;
    // The breaker opened: the deliveries wait, and the subscription stays on
    // and still takes new events.
    let (_, v) = app.api_json(Method::GET, &format!("/api/webhooks/{hook}"), None).await;
    assert!(v["consecutive_failures"].as_u64().unwrap() >= 10, "{v}");
    assert!(v["breaker_open_until"].is_string(), "{v}");
    assert_eq!(v["enabled"], true, "{v}");
    proxy.end_outage();
    drive(&app, &clock, Some(&hook), async || all_received(&emitted).await).await;

    // Nothing lost, and the subscription is still on.
    let (_, v) = app.api_json(Method::GET, &format!("/api/webhooks/{hook}"), None).await;
    assert_eq!(v["enabled"], true, "an outage does not switch a subscription off: {v}");
    assert_eq!(emitted.len(), 8);
    // No false success: each delivery marked succeeded reached the receiver,
    // which answered 2xx; each that reached it more than once was one whose
    // answer the network lost (at least once, same id to deduplicate on).
    let mut arrivals: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        assert_eq!(r.status, 200);
        *arrivals.entry(r.header("x-webhook-id").unwrap().to_owned()).or_default() += 1;
    }
    let succeeded = deliveries(&app, "succeeded").await;
    assert_eq!(succeeded.len(), emitted.len());
    for d in &succeeded {
        let id = d["id"].as_str().unwrap();
        assert!(arrivals.contains_key(id), "{id} marked succeeded but never received");
    }
    let twice = arrivals.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 3, "the three faults after forwarding make the only repeats: {arrivals:?}");
    assert!(deliveries(&app, "pending").await.is_empty());
    assert!(deliveries(&app, "failed").await.is_empty());
}

/// Once its cooldown has run out, an open breaker lets one delivery probe
/// the receiver while the others wait, unattempted: a receiver still down
/// costs one attempt per cooldown, and one that is back gets the rest.
#[tokio::test]
async fn an_open_breaker_probes_with_one_delivery_at_a_time() {
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(500));
    let (clock, app) = on_clock().await;
    let (hook, _) = app
        .outgoing(json!({
            "url": receiver.url("/down"),
            "events": ["custom.*"],
            "retry": {"strategy": "fixed", "max_attempts": 25, "initial_delay_ms": 100, "max_delay_ms": 100},
        }))
        .await;
    for i in 0..3 {
        app.emit("custom.down", None, json!({"n": i})).await;
    }
    let view = async || app.api_json(Method::GET, &format!("/api/webhooks/{hook}"), None).await.1;
    drive(&app, &clock, Some(&hook), async || view().await["breaker_open_until"].is_string()).await;
    let opened = view().await;
    assert!(opened["consecutive_failures"].as_u64().unwrap() >= 10, "{opened}");

    // The cooldown runs out: one request, and the breaker opens again for
    // twice as long.
    let tried = receiver.received().len();
    step(&app, &clock, Some(&hook), app.attempts_recorded()).await;
    assert_eq!(receiver.received().len(), tried + 1, "one probe, not one per waiting delivery");
    let reopened = view().await;
    let (first, again) = (
        opened["breaker_open_until"].as_str().unwrap().parse::<Timestamp>().unwrap(),
        reopened["breaker_open_until"].as_str().unwrap().parse::<Timestamp>().unwrap(),
    );
    assert!(
        again.duration_since(clock.now()) > first.duration_since(clock.now()),
        "{opened} then {reopened}"
    );
    // The dashboard says so.
    let http = crate::dashboard::browser();
    let cookie = crate::dashboard::sign_in(&app, &http, crate::support::TOKEN).await;
    let (_, html) = crate::dashboard::page(&app, &http, &cookie, "/dashboard/subscriptions").await;
    let failures = reopened["consecutive_failures"].as_u64().unwrap();
    assert!(html.contains(&format!("held: {failures} failed attempts in a row")), "{html}");

    // The receiver is back: the probe succeeds and the rest follow.
    receiver.set_default(Reply::status(200));
    let delivered =
        async || receiver.received().iter().filter(|r| r.status == 200).count() == 3 && settled(&app).await;
    drive(&app, &clock, Some(&hook), delivered).await;
    let closed = view().await;
    assert_eq!(closed["consecutive_failures"], 0, "{closed}");
    assert!(closed["breaker_open_until"].is_null(), "{closed}");
}
