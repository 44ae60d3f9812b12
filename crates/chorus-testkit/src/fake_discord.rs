//! A stand-in for Discord's REST API, reached through twilight's proxy
//! setting (`CHORUS_DISCORD_PROXY`). It records every request, creates
//! messages the way Discord does (including `enforce_nonce` deduplication),
//! and can be scripted to fail or rate-limit.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Parsed JSON body (`Null` when not JSON).
    pub body: Value,
    /// When it arrived.
    pub at: Instant,
    /// The status the fake answered.
    pub status: u16,
}

/// A scripted answer, used before normal service resumes.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Answer with this status and a Discord-shaped error body.
    Status(u16),
    /// Answer 429 with `retry_after` (seconds) and Discord's rate-limit headers.
    RateLimited(f64),
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    /// Created messages, with the channel (or `webhook:<id>`) they went to.
    messages: Vec<(String, Value)>,
    script: VecDeque<Mode>,
    nonces: HashMap<String, u64>,
    next_id: u64,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    count: Arc<watch::Sender<usize>>,
}

/// A running fake Discord REST server on loopback.
pub struct FakeDiscord {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FakeDiscord {
    /// Start on `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// Start on the given address (tests that restart a server on the same port).
    pub async fn start_on(addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind fake Discord");
        let addr = listener.local_addr().unwrap();
        let shared = Shared { inner: Arc::default(), count: Arc::new(watch::channel(0).0) };
        let app = Router::new()
            .route("/api/v10/channels/{channel}/messages", post(create_message))
            .route("/api/v10/webhooks/{id}/{token}", post(execute_webhook))
            .fallback(fallback)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake Discord server");
        });
        Self { addr, shared, task }
    }

    /// `host:port`, the value for `CHORUS_DISCORD_PROXY` / twilight's proxy.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Queue scripted answers; once they are used up the fake serves normally.
    pub fn script(&self, modes: impl IntoIterator<Item = Mode>) {
        self.shared.inner.lock().unwrap().script.extend(modes);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    /// Messages created so far, with their channel id (or `webhook:<id>`).
    pub fn messages(&self) -> Vec<(String, Value)> {
        self.shared.inner.lock().unwrap().messages.clone()
    }

    /// Wait until at least `n` messages exist, or panic after `timeout`.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<(String, Value)> {
        let mut rx = self.shared.count.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
        let messages = self.messages();
        assert!(waited.is_ok(), "timed out waiting for {n} messages; have {}", messages.len());
        messages
    }

    /// Stop serving (connections are refused afterwards).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn record(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes, status: u16) {
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    shared.inner.lock().unwrap().requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers.clone(),
        body,
        at: Instant::now(),
        status,
    });
}

fn scripted(shared: &Shared, bucket: &str) -> Option<Response> {
    let mode = shared.inner.lock().unwrap().script.pop_front()?;
    Some(match mode {
        Mode::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap();
            (status, axum::Json(json!({"message": "scripted failure", "code": 0}))).into_response()
        }
        Mode::RateLimited(secs) => {
            let mut h = HeaderMap::new();
            h.insert("x-ratelimit-scope", "user".parse().unwrap());
            h.insert("x-ratelimit-bucket", bucket.parse().unwrap());
            h.insert("x-ratelimit-limit", "5".parse().unwrap());
            h.insert("x-ratelimit-remaining", "0".parse().unwrap());
            h.insert("x-ratelimit-reset-after", format!("{secs:.3}").parse().unwrap());
            h.insert("retry-after", format!("{}", secs.ceil() as u64).parse().unwrap());
            let body =
                json!({"message": "You are being rate limited.", "retry_after": secs, "global": false});
            (StatusCode::TOO_MANY_REQUESTS, h, axum::Json(body)).into_response()
        }
    })
}

fn create(shared: &Shared, destination: String, body: &Bytes) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "400: Bad Request", "code": 50109})))
            .into_response();
    };
    let mut inner = shared.inner.lock().unwrap();
    // Discord: "If true and nonce is present, it will be checked for
    // uniqueness in the past few minutes. If another message was created by
    // the same author with the same nonce, that message will be returned and
    // no new message will be created."
    let nonce = payload.get("nonce").map(|n| n.to_string());
    if payload.get("enforce_nonce") == Some(&Value::Bool(true))
        && let Some(id) = nonce.as_ref().and_then(|n| inner.nonces.get(n))
    {
        let id = *id;
        return axum::Json(json!({"id": id.to_string(), "channel_id": destination, "deduplicated": true}))
            .into_response();
    }
    inner.next_id += 1;
    let id = 1_000_000 + inner.next_id;
    if let Some(n) = nonce {
        inner.nonces.insert(n, id);
    }
    let mut message = payload;
    message["id"] = json!(id.to_string());
    inner.messages.push((destination.clone(), message.clone()));
    let count = inner.messages.len();
    drop(inner);
    shared.count.send_replace(count);
    let mut response = axum::Json(message).into_response();
    let h = response.headers_mut();
    h.insert("x-ratelimit-bucket", "fake-bucket".parse().unwrap());
    h.insert("x-ratelimit-limit", "5".parse().unwrap());
    h.insert("x-ratelimit-remaining", "4".parse().unwrap());
    h.insert("x-ratelimit-reset-after", "5.000".parse().unwrap());
    response
}

async fn create_message(
    State(shared): State<Shared>,
    Path(channel): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = if let Some(r) = scripted(&shared, &format!("channel-{channel}")) {
        r
    } else if headers.get("authorization").is_none() {
        (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "401: Unauthorized", "code": 0})))
            .into_response()
    } else {
        create(&shared, channel, &body)
    };
    record(&shared, &method, &uri, &headers, &body, response.status().as_u16());
    response
}

async fn execute_webhook(
    State(shared): State<Shared>,
    Path((id, _token)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = scripted(&shared, &format!("webhook-{id}"))
        .unwrap_or_else(|| create(&shared, format!("webhook:{id}"), &body));
    record(&shared, &method, &uri, &headers, &body, response.status().as_u16());
    response
}

async fn fallback(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&shared, &method, &uri, &headers, &body, 404);
    (StatusCode::NOT_FOUND, axum::Json(json!({"message": "404: Not Found", "code": 0}))).into_response()
}
