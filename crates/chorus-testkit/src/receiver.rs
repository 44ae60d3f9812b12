//! A local webhook receiver that records requests and answers from a script.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tokio::{net::TcpListener, sync::watch};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// Arrival.
    pub at: Instant,
    /// The status answered.
    pub status: u16,
}

impl Received {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Extra headers, e.g. `Retry-After`.
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// Answer `status`.
    pub fn status(status: u16) -> Self {
        Self { status, headers: vec![], delay: Duration::ZERO }
    }

    /// Add a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answer after `delay`.
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Requests a loopback fake has answered, in order, with a counter to wait on.
#[derive(Clone, Default)]
pub(crate) struct RequestLog {
    received: Arc<Mutex<Vec<Received>>>,
    count: Arc<watch::Sender<usize>>,
}

impl RequestLog {
    pub(crate) fn push(&self, r: Received) {
        let n = {
            let mut received = self.received.lock().unwrap();
            received.push(r);
            received.len()
        };
        self.count.send_replace(n);
    }

    pub(crate) fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Wait until `n` requests are in, or panic after `timeout`.
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration, what: &str) -> Vec<Received> {
        let mut rx = self.count.subscribe();
        let ok = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await.is_ok();
        let got = self.all();
        assert!(ok, "timed out waiting for {n} requests at {what}; have {}", got.len());
        got
    }
}

#[derive(Clone)]
struct Shared {
    log: RequestLog,
    script: Arc<Mutex<VecDeque<Reply>>>,
    default: Arc<Mutex<Reply>>,
    arrived: Arc<watch::Sender<usize>>,
}

/// A running receiver on loopback.
pub struct TestReceiver {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestReceiver {
    /// Start on `127.0.0.1:0`, answering 200 unless scripted.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            log: RequestLog::default(),
            script: Arc::default(),
            default: Arc::new(Mutex::new(Reply::status(200))),
            arrived: Arc::new(watch::channel(0).0),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver server");
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queue answers for the next requests.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// The answer once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        *self.shared.default.lock().unwrap() = reply;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.log.all()
    }

    /// Wait until `n` requests have arrived, answered or not (a scripted
    /// delay may still be holding them), or panic after `timeout`.
    pub async fn wait_for_arrivals(&self, n: usize, timeout: Duration) {
        let mut rx = self.shared.arrived.subscribe();
        let ok = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await.is_ok();
        assert!(ok, "timed out waiting for {n} requests to arrive");
    }

    /// Wait until `n` requests arrived, or panic after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.shared.log.wait_for(n, timeout, "the receiver").await
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let reply =
        shared.script.lock().unwrap().pop_front().unwrap_or_else(|| shared.default.lock().unwrap().clone());
    shared.arrived.send_modify(|n| *n += 1);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    shared.log.push(Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers,
        body,
        at,
        status: reply.status,
    });
    let mut response =
        (StatusCode::from_u16(reply.status).unwrap(), format!("reply {}", reply.status)).into_response();
    for (k, v) in &reply.headers {
        response
            .headers_mut()
            .insert(axum::http::HeaderName::try_from(k.as_str()).unwrap(), v.parse().unwrap());
    }
    response
}
