//! `deliver`: N events to K subscriptions on a local receiver that verifies
//! every signature, against the same number of plain POSTs from a bare client.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use chorus_core::{Clock, Secret, SystemClock};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{hookd, ingress::report, load};

#[derive(Default)]
struct Receiver {
    secrets: Mutex<HashMap<String, Secret>>,
    latencies_us: Mutex<Vec<u32>>,
    bad: AtomicU64,
}

fn now_us() -> i64 {
    SystemClock.now().as_microsecond()
}

async fn start_receiver(state: Arc<Receiver>, count: Arc<watch::Sender<u64>>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let (state, count) = (state.clone(), count.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (state, count) = (state.clone(), count.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        if let Ok(v) = serde_json::from_slice::<Value>(&body)
                            && let Some(hook) = v["webhook_id"].as_str()
                        {
                            let secret = state.secrets.lock().unwrap().get(hook).cloned();
                            let signed =
                                parts.headers.get("x-chorus-signature-256").and_then(|h| h.to_str().ok());
                            let valid = secret
                                .zip(signed)
                                .is_some_and(|(s, sig)| chorus_verify::sign_body_hex(&s, &body) == sig);
                            if valid {
                                let sent = v["data"]["sent_us"].as_i64().unwrap_or_default();
                                let latency = (now_us() - sent).clamp(0, i64::from(u32::MAX)) as u32;
                                state.latencies_us.lock().unwrap().push(latency);
                            } else {
                                state.bad.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        count.send_modify(|c| *c += 1);
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
                        *resp.status_mut() = StatusCode::OK;
                        Ok::<_, hyper::Error>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// Emit `events` through `connections` at once, as fast as they go or on
/// `rate`'s schedule.
async fn emit(
    http: &reqwest::Client,
    base: &str,
    events: usize,
    connections: usize,
    rate: Option<f64>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_us = now_us();
    let next = Arc::new(AtomicU64::new(0));
    let mut emitters = Vec::new();
    for _ in 0..connections {
        let (http, base, next) = (http.clone(), base.to_owned(), next.clone());
        emitters.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events as u64 {
                    return anyhow::Ok(());
                }
                // Open loop: event i is due at i / rate. Its latency counts
                // from then, so an emitter that falls behind does not hide
                // the wait (coordinated omission).
                let sent_us = match rate {
                    Some(r) => {
                        let due = Duration::from_secs_f64(i as f64 / r);
                        tokio::time::sleep_until((started + due).into()).await;
                        started_us + i64::try_from(due.as_micros()).unwrap_or(i64::MAX)
                    }
                    None => now_us(),
                };
                let body = json!({"event": "custom.bench", "data": {"i": i, "sent_us": sent_us}});
                hookd::api(&http, &base, "/api/events", body).await?;
            }
        }));
    }
    for e in emitters {
        e.await??;
    }
    Ok(())
}

pub(crate) async fn run(
    events: usize,
    subscriptions: usize,
    connections: usize,
    rate: Option<f64>,
    json_out: bool,
) -> anyhow::Result<()> {
    if let Some(r) = rate {
        anyhow::ensure!(r.is_finite() && r > 0.0, "--rate must be a positive number of events a second");
    }
    let state = Arc::new(Receiver::default());
    let count = Arc::new(watch::channel(0u64).0);
    let receiver = start_receiver(state.clone(), count.clone()).await?;
    let data = tempfile::tempdir()?;
    let server = hookd::start(
        data.path(),
        &[
            ("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".into()),
            ("CHORUS_DELIVERY_CONCURRENCY", "128".into()),
        ],
    )
    .await?;
    let http = reqwest::Client::new();
    for i in 0..subscriptions {
        let hook = hookd::api(
            &http,
            &server.base,
            "/api/webhooks",
            json!({"type": "outgoing", "url": format!("http://{receiver}/s{i}"), "events": ["custom.*"],
                   "max_concurrency": 64}),
        )
        .await?;
        state.secrets.lock().unwrap().insert(
            hook["id"].as_str().context("id")?.to_owned(),
            Secret::new(hook["secret"].as_str().context("secret")?),
        );
    }

    let total = (events * subscriptions) as u64;
    eprintln!("emitting {events} events to {subscriptions} subscriptions…");
    let started = Instant::now();
    emit(&http, &server.base, events, connections, rate).await?;
    let emitted_in = started.elapsed();
    eprintln!("emitted in {:.2} s; waiting for {total} deliveries…", emitted_in.as_secs_f64());
    let mut rx = count.subscribe();
    // The wait's read guard must go at once: the receiver writes the count.
    let arrived = tokio::time::timeout(Duration::from_secs(600), rx.wait_for(|c| *c >= total))
        .await
        .is_ok_and(|r| r.is_ok());
    if !arrived {
        bail!("only {} of {total} deliveries arrived; hookd said:\n{}", *count.borrow(), server.output());
    }
    let chorus_elapsed = started.elapsed();
    let chorus_rate = total as f64 / chorus_elapsed.as_secs_f64();
    let mut latencies = std::mem::take(&mut *state.latencies_us.lock().unwrap());
    latencies.sort_unstable();

    // Baseline: the same number of POSTs of the same size from a bare client,
    // signed, to the same receiver.
    let (hook, secret) =
        state.secrets.lock().unwrap().iter().next().map(|(h, s)| (h.clone(), s.clone())).context("a hook")?;
    let sample = serde_json::to_vec(
        &json!({"webhook_id": hook, "event": "custom.bench", "timestamp": "2026-01-01T00:00:00Z",
        "data": {"i": 0, "sent_us": 0}, "metadata": {}}),
    )?;
    let signature = chorus_verify::sign_body_hex(&secret, &sample);
    let body = Bytes::from(sample);
    let make: load::MakeRequest = Arc::new(move |_| {
        hyper::Request::post("/baseline")
            .header("host", receiver.to_string())
            .header("content-type", "application/json")
            .header("x-chorus-signature-256", signature.as_str())
            .body(Full::new(body.clone()))
            .expect("valid request")
    });
    let baseline =
        load::run(receiver, 128, Duration::from_secs(600), Some(total), make, Arc::new(AtomicU64::new(0)))
            .await?;
    let baseline_rate = baseline.rps();

    let figures = json!({
        "scenario": "deliver",
        "rate": rate,
        "events": events,
        "subscriptions": subscriptions,
        "deliveries": total,
        "deliveries_per_s": chorus_rate.round(),
        "emit_seconds": (emitted_in.as_secs_f64() * 100.0).round() / 100.0,
        "baseline_per_s": baseline_rate.round(),
        "ratio": ((chorus_rate / baseline_rate) * 1000.0).round() / 1000.0,
        "p50_ms": percentile_ms(&latencies, 0.50),
        "p99_ms": percentile_ms(&latencies, 0.99),
        "bad_signatures": state.bad.load(Ordering::Relaxed),
    });
    report(&figures, json_out);
    drop(server);
    Ok(())
}
