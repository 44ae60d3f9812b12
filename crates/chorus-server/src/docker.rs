//! The Docker engine watcher: reads the engine's `GET /events` stream (over
//! its unix socket or TCP, `CHORUS_DOCKER_HOST`) and stores each event that
//! matters as an event of every enabled `docker` hook, where rules, filters,
//! aggregation and the Discord sink take over as for any sender.
//!
//! Nothing is missed across restarts: after each event is committed the
//! engine time it happened at is kept as the watcher's cursor, and a new
//! stream asks for everything `since` it. An event seen twice (the cursor's
//! own, or one whose commit raced a crash) carries the same delivery key
//! and is dropped as a duplicate.

use std::{
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use backon::BackoffBuilder;
use bytes::Bytes;
use chorus_core::Source;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{AppState, error::ErrorCode};

/// The store's name for the watcher's position.
const CURSOR: &str = "docker.events";

/// How often the watcher looks for a first `docker` hook while there is none.
const IDLE: Duration = Duration::from_secs(2);

/// Engine actions worth a message by default: a container's life and
/// health, an image built (tagged), pulled, pushed or removed. `stop` and
/// `kill` come with a `die` that carries the exit code; `exec_*`, `attach`
/// and the like are the engine's own chatter (health checks run as execs).
const WATCHED: &[(&str, &[&str])] = &[
    ("container", &["start", "restart", "die", "oom", "health_status", "pause", "unpause"]),
    ("image", &["tag", "pull", "push", "delete"]),
];

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// `unix:///var/run/docker.sock`.
    Unix(PathBuf),
    /// `tcp://host:2375` (plain HTTP, as the engine serves it without TLS).
    Tcp(String),
}

impl DockerHost {
    /// Docker's own default.
    pub fn default_socket() -> Self {
        DockerHost::Unix(PathBuf::from("/var/run/docker.sock"))
    }

    /// `unix:///path` or `tcp://host:port`, as `DOCKER_HOST` is written.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix://") {
            if path.starts_with('/') {
                return Ok(DockerHost::Unix(PathBuf::from(path)));
            }
        } else if let Some(addr) = text.strip_prefix("tcp://").or_else(|| text.strip_prefix("http://")) {
            let addr = addr.trim_end_matches('/');
            if addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) {
                return Ok(DockerHost::Tcp(addr.to_owned()));
            }
        }
        Err(format!("{text:?} is not unix:///path/to/docker.sock or tcp://host:port"))
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerHost::Unix(p) => write!(f, "unix://{}", p.display()),
            DockerHost::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// What the watcher is doing, for `/readyz`.
#[derive(Debug, Default)]
pub struct DockerStatus {
    inner: Mutex<Value>,
}

impl DockerStatus {
    fn set(&self, value: Value) {
        *self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }

    /// `{"host", "state": idle|connected|retrying, "error", "retry_in_ms"}`.
    pub fn view(&self) -> Value {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("cannot reach the Docker engine at {host}: {source}")]
    Connect { host: String, source: std::io::Error },
    #[error("the Docker engine at {host} failed: {message}")]
    Http { host: String, message: String },
    #[error("the Docker engine at {host} closed the event stream")]
    Closed { host: String },
    #[error("could not store a Docker event: {0}")]
    Store(String),
}

/// Reads one engine's events into its `docker` hooks.
pub struct DockerWatcher {
    state: AppState,
    host: DockerHost,
    status: Arc<DockerStatus>,
}

impl DockerWatcher {
    /// A watcher of `host` storing through `state`, reporting to `status`.
    pub fn new(state: AppState, host: DockerHost, status: Arc<DockerStatus>) -> Self {
        status.set(json!({"host": host.to_string(), "state": "idle"}));
        Self { state, host, status }
    }

    /// Watch until `shutdown`: connect while a `docker` hook exists, and
    /// reconnect with backoff when the engine goes away.
    pub async fn run(self, shutdown: CancellationToken) {
        let backoff = || {
            backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(250))
                .with_max_delay(Duration::from_secs(30))
                .with_jitter()
                .without_max_times()
                .build()
        };
        let mut delays = backoff();
        let mut connected = false;
        loop {
            let wait = match self.hooks().await {
                Ok(hooks) if hooks.is_empty() => {
                    self.status.set(json!({"host": self.host.to_string(), "state": "idle"}));
                    IDLE
                }
                Ok(_) => match self.stream(&shutdown, &mut connected).await {
                    Ok(()) => return,
                    Err(e) => {
                        // A stream that was up starts the backoff over.
                        if std::mem::take(&mut connected) {
                            delays = backoff();
                        }
                        let wait = delays.next().unwrap_or(Duration::from_secs(30));
                        tracing::warn!(error = %e, retry_in = ?wait, "Docker watcher: will reconnect");
                        self.status.set(json!({
                            "host": self.host.to_string(),
                            "state": "retrying",
                            "error": e.to_string(),
                            "retry_in_ms": wait.as_millis() as u64,
                        }));
                        wait
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "Docker watcher: could not list hooks");
                    IDLE
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn hooks(&self) -> Result<Vec<chorus_core::IncomingHook>, chorus_core::StoreError> {
        let hooks = self.state.store.hooks(None).await?;
        Ok(hooks.into_iter().filter(|h| h.source == Source::Docker).collect())
    }

    /// One stream from the cursor on; `Ok` only at shutdown.
    async fn stream(&self, shutdown: &CancellationToken, connected: &mut bool) -> Result<(), WatchError> {
        let since = match self.state.store.cursor(CURSOR).await {
            Ok(Some(c)) => c,
            // First start: from when the first docker hook was made, so the
            // moments before the first connection are not lost either.
            Ok(None) => {
                let hooks = self.hooks().await.map_err(|e| WatchError::Store(e.to_string()))?;
                let first =
                    hooks.iter().map(|h| h.created_at).min().unwrap_or_else(|| self.state.clock.now());
                since_of_nanos(first.as_nanosecond())
            }
            Err(e) => return Err(WatchError::Store(e.to_string())),
        };
        let response = self.get(&format!("/events?since={since}")).await?;
        *connected = true;
        self.status.set(json!({"host": self.host.to_string(), "state": "connected", "since": since}));
        tracing::info!(host = %self.host, since, "Docker watcher: reading the engine's events");
        let mut body = response.into_body();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let frame = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                f = body.frame() => f,
            };
            let data = match frame {
                None => return Err(WatchError::Closed { host: self.host.to_string() }),
                Some(Err(e)) => return Err(self.http_error(e)),
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
            };
            buf.extend_from_slice(&data);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                self.handle(&line).await?;
            }
        }
    }

    /// Store one event for every `docker` hook, then move the cursor.
    async fn handle(&self, line: &[u8]) -> Result<(), WatchError> {
        let mut event: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "Docker watcher: skipped a line that is not JSON");
                return Ok(());
            }
        };
        let Some(nanos) = event["timeNano"]
            .as_i64()
            .map(i128::from)
            .or_else(|| event["time"].as_i64().map(|s| i128::from(s) * 1_000_000_000))
        else {
            return Ok(());
        };
        if !watched(&event) {
            return Ok(());
        }
        if event["Type"] == "container" && event["Action"] == "die" {
            self.enrich(&mut event).await;
        }
        let body = serde_json::to_vec(&event).expect("serializable");
        for hook in self.hooks().await.map_err(|e| WatchError::Store(e.to_string()))? {
            let id = hook.id.clone();
            match crate::ingress::ingest_watched(&self.state, hook, &HeaderMap::new(), &body).await {
                Ok(_) => {}
                Err(e) if matches!(e.code, ErrorCode::HookDisabled | ErrorCode::AgentDisabled) => {}
                Err(e) => {
                    return Err(WatchError::Store(format!("hook {id}: {}", e.message)));
                }
            }
        }
        self.state
            .store
            .set_cursor(CURSOR, &since_of_nanos(nanos))
            .await
            .map_err(|e| WatchError::Store(e.to_string()))
    }

    /// Add what a reader of "container stopped" wants and the event lacks:
    /// the container's state (OOM, start and finish times) and its last
    /// lines of output. Best effort: a container already removed has none.
    async fn enrich(&self, event: &mut Value) {
        let Some(id) = event.pointer("/Actor/ID").and_then(Value::as_str).map(str::to_owned) else { return };
        if let Ok(response) = self.get(&format!("/containers/{id}/json")).await
            && let Ok(body) = response.into_body().collect().await
            && let Ok(inspect) = serde_json::from_slice::<Value>(&body.to_bytes())
        {
            event["Container"] = json!({"Name": inspect["Name"], "State": inspect["State"]});
        }
        if let Ok(response) = self.get(&format!("/containers/{id}/logs?stdout=1&stderr=1&tail=10")).await {
            let multiplexed = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/vnd.docker.multiplexed-stream"));
            if let Ok(body) = response.into_body().collect().await {
                let bytes = body.to_bytes();
                let text =
                    if multiplexed { demux(&bytes) } else { String::from_utf8_lossy(&bytes).into_owned() };
                if !text.trim().is_empty() {
                    event["Logs"] = Value::String(text);
                }
            }
        }
    }

    /// A GET on a fresh connection (the event stream holds its own).
    async fn get(&self, path: &str) -> Result<http::Response<hyper::body::Incoming>, WatchError> {
        let host = self.host.to_string();
        let connect = |source| WatchError::Connect { host: host.clone(), source };
        let request = Request::get(path)
            .header(http::header::HOST, "docker")
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.http_error(e))?;
        let response = match &self.host {
            DockerHost::Unix(p) => {
                let io = TokioIo::new(tokio::net::UnixStream::connect(p).await.map_err(connect)?);
                send(io, request).await
            }
            DockerHost::Tcp(a) => {
                let io = TokioIo::new(tokio::net::TcpStream::connect(a).await.map_err(connect)?);
                send(io, request).await
            }
        }
        .map_err(|e| self.http_error(e))?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            return Err(WatchError::Http {
                host: self.host.to_string(),
                message: format!(
                    "{status} on {path}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            });
        }
        Ok(response)
    }

    fn http_error(&self, e: impl fmt::Display) -> WatchError {
        WatchError::Http { host: self.host.to_string(), message: e.to_string() }
    }
}

/// One request on a new HTTP/1 connection over `io`.
async fn send<T>(
    io: T,
    request: Request<Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "Docker connection ended");
        }
    });
    sender.send_request(request).await
}

/// Whether the event is one of [`WATCHED`].
fn watched(event: &Value) -> bool {
    let kind = event["Type"].as_str().unwrap_or_default();
    let action = event["Action"].as_str().unwrap_or_default();
    let action = action.split(':').next().unwrap_or_default().trim();
    WATCHED.iter().any(|(k, actions)| *k == kind && actions.contains(&action))
}

/// Docker's `since`: seconds and nanoseconds.
fn since_of_nanos(nanos: i128) -> String {
    format!("{}.{:09}", nanos.div_euclid(1_000_000_000), nanos.rem_euclid(1_000_000_000))
}

/// The text of a multiplexed log stream: frames of `[stream, 0, 0, 0, len
/// (u32 big-endian)]` and their bytes.
fn demux(mut bytes: &[u8]) -> String {
    let mut out = Vec::new();
    while bytes.len() >= 8 {
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let end = (8 + len).min(bytes.len());
        out.extend_from_slice(&bytes[8..end]);
        bytes = &bytes[end..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_docker_writes_them() {
        assert_eq!(DockerHost::parse("unix:///var/run/docker.sock"), Ok(DockerHost::default_socket()));
        assert_eq!(DockerHost::parse("tcp://10.0.0.5:2375"), Ok(DockerHost::Tcp("10.0.0.5:2375".into())));
        for bad in ["", "docker.sock", "unix://relative", "tcp://host", "tcp://:2375", "ssh://host"] {
            assert!(DockerHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_and_demux() {
        assert_eq!(since_of_nanos(1_700_000_000_000_000_123), "1700000000.000000123");
        let mut frames = vec![1, 0, 0, 0, 0, 0, 0, 3];
        frames.extend_from_slice(b"ab\n");
        frames.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 2]);
        frames.extend_from_slice(b"c\n");
        assert_eq!(demux(&frames), "ab\nc\n");
        assert!(watched(&json!({"Type": "container", "Action": "health_status: unhealthy"})));
        assert!(!watched(&json!({"Type": "container", "Action": "exec_start: sh -c true"})));
    }
}
