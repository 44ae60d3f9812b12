//! A fake Docker engine on a unix socket: `GET /events` as the real API
//! serves it (one JSON object per line of a chunked response, the past from
//! `since` first, then live events), `GET /containers/{id}/json` and
//! `GET /containers/{id}/logs` (the multiplexed stream format). It can be
//! stopped and started again on the same socket, keeping what happened while
//! it was away.

use std::{
    collections::HashMap,
    convert::Infallible,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

#[derive(Default)]
struct Engine {
    /// Every event, oldest first.
    history: Vec<Value>,
    /// The `since` of each `GET /events`, as sent.
    sinces: Vec<Option<String>>,
    /// Inspect documents and log text by container id.
    containers: HashMap<String, (Value, String)>,
}

#[derive(Clone)]
struct Shared {
    engine: Arc<Mutex<Engine>>,
    live: broadcast::Sender<Value>,
    /// Bumped when a client opens the event stream.
    streams: Arc<watch::Sender<usize>>,
}

/// A running fake engine.
pub struct FakeDocker {
    path: PathBuf,
    shared: Shared,
    server: Option<(tokio::task::JoinHandle<()>, tokio_util::sync::CancellationToken)>,
}

impl FakeDocker {
    /// Serve on a unix socket at `path`.
    pub async fn start(path: &Path) -> Self {
        let shared = Shared {
            engine: Arc::default(),
            live: broadcast::channel(1024).0,
            streams: Arc::new(watch::channel(0).0),
        };
        let mut fake = Self { path: path.to_owned(), shared, server: None };
        fake.serve();
        fake
    }

    fn serve(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = tokio::net::UnixListener::bind(&self.path).expect("bind the fake Docker socket");
        let stop = tokio_util::sync::CancellationToken::new();
        let app = Router::new()
            .route("/_ping", get(|| async { "OK" }))
            .route("/events", get(events))
            .route("/{version}/events", get(events_versioned))
            .route("/containers/{id}/json", get(inspect))
            .route("/containers/{id}/logs", get(logs))
            .with_state((self.shared.clone(), stop.clone()));
        let until = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await
                .expect("fake Docker server");
        });
        self.server = Some((task, stop));
    }

    /// The engine's API goes away (as in a daemon restart): open event
    /// streams end and new connections are refused.
    pub async fn stop(&mut self) {
        if let Some((task, stop)) = self.server.take() {
            stop.cancel();
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Serve again on the same socket, with the same history.
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "stop the fake Docker engine first");
        self.serve();
    }

    /// Something happens at the engine: it joins the history and goes to
    /// every open stream.
    pub fn emit(&self, event: Value) {
        let mut engine = self.shared.engine.lock().unwrap();
        engine.history.push(event.clone());
        // Sent under the lock, so a stream that snapshots the history under
        // it sees each event once, either there or live.
        let _ = self.shared.live.send(event);
    }

    /// What `GET /containers/{id}/json` and `/logs` answer for `id`.
    pub fn set_container(&self, id: &str, inspect: Value, logs: &str) {
        self.shared.engine.lock().unwrap().containers.insert(id.to_owned(), (inspect, logs.to_owned()));
    }

    /// The `since` of every event stream opened so far.
    pub fn sinces(&self) -> Vec<Option<String>> {
        self.shared.engine.lock().unwrap().sinces.clone()
    }

    /// Wait until at least `n` event streams have been opened.
    pub async fn wait_for_streams(&self, n: usize, timeout: std::time::Duration) {
        let mut rx = self.shared.streams.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await.is_ok();
        assert!(reached, "timed out waiting for {n} event streams; have {}", self.sinces().len());
    }

    /// An event in the engine's format: `kind` (`container`, `image`, …),
    /// `action`, the object's id, its attributes, and the time in
    /// nanoseconds since the epoch.
    pub fn event(kind: &str, action: &str, id: &str, attributes: Value, time_nano: i64) -> Value {
        json!({
            "status": action,
            "id": id,
            "from": attributes.get("image").cloned().unwrap_or(Value::Null),
            "Type": kind,
            "Action": action,
            "Actor": {"ID": id, "Attributes": attributes},
            "scope": "local",
            "time": time_nano / 1_000_000_000,
            "timeNano": time_nano,
        })
    }
}

impl Drop for FakeDocker {
    fn drop(&mut self) {
        if let Some((task, stop)) = self.server.take() {
            stop.cancel();
            task.abort();
        }
    }
}

/// Docker's `since`: seconds, optionally with a fraction down to nanoseconds.
fn since_nanos(since: &str) -> Option<i128> {
    let (secs, frac) = since.split_once('.').unwrap_or((since, ""));
    let secs: i128 = secs.parse().ok()?;
    let frac = format!("{frac:0<9}");
    Some(secs * 1_000_000_000 + frac.get(..9)?.parse::<i128>().ok()?)
}

fn nanos_of(event: &Value) -> i128 {
    event["timeNano"].as_i64().map_or(0, i128::from)
}

async fn events_versioned(
    state: State<(Shared, tokio_util::sync::CancellationToken)>,
    query: Query<HashMap<String, String>>,
) -> Response {
    events(state, query).await
}

async fn events(
    State((shared, stop)): State<(Shared, tokio_util::sync::CancellationToken)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let since = query.get("since").cloned();
    let floor = since.as_deref().and_then(since_nanos);
    let (past, live) = {
        let mut engine = shared.engine.lock().unwrap();
        engine.sinces.push(since);
        let past: Vec<Value> =
            engine.history.iter().filter(|e| floor.is_some_and(|f| nanos_of(e) >= f)).cloned().collect();
        (past, shared.live.subscribe())
    };
    shared.streams.send_modify(|n| *n += 1);
    let line = |e: &Value| Ok::<_, Infallible>(Bytes::from(format!("{e}\n")));
    let past = futures_util::stream::iter(past.iter().map(line).collect::<Vec<_>>());
    // Live events until the engine stops, which ends the response.
    let live = futures_util::stream::unfold(live, move |mut rx| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop.cancelled() => None,
                e = rx.recv() => e.ok().map(|e| (Ok(Bytes::from(format!("{e}\n"))), rx)),
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::StreamExt::chain(past, live)))
        .expect("response")
}

async fn inspect(
    State((shared, _)): State<(Shared, tokio_util::sync::CancellationToken)>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    match shared.engine.lock().unwrap().containers.get(&id) {
        Some((inspect, _)) => axum::Json(inspect.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({"message": format!("No such container: {id}")})))
            .into_response(),
    }
}

/// Logs in the multiplexed format of a container without a TTY: each
/// frame is `[stream, 0, 0, 0, len (u32 big-endian)]` and its bytes.
async fn logs(
    State((shared, _)): State<(Shared, tokio_util::sync::CancellationToken)>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let Some((_, text)) = shared.engine.lock().unwrap().containers.get(&id).cloned() else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"message": format!("No such container: {id}")})))
            .into_response();
    };
    let mut body = Vec::new();
    for line in text.lines() {
        let frame = format!("{line}\n");
        body.extend_from_slice(&[2, 0, 0, 0]);
        body.extend_from_slice(&(frame.len() as u32).to_be_bytes());
        body.extend_from_slice(frame.as_bytes());
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "application/vnd.docker.multiplexed-stream")
        .body(Body::from(body))
        .expect("response")
}
