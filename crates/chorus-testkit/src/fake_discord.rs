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

/// Discord's documented rate limits, enforced when set: a fixed window of
/// `per_target` messages per `window` for each channel (or webhook), and
/// `global_per_second` requests in any one second.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Messages per window for one channel or webhook (Discord: 5).
    pub per_target: u32,
    /// The window (Discord: 5 s).
    pub window: Duration,
    /// Requests per second across all routes (Discord: 50).
    pub global_per_second: u32,
}

impl Limits {
    /// The limits Discord documents for sending messages.
    pub const DISCORD: Limits =
        Limits { per_target: 5, window: Duration::from_secs(5), global_per_second: 50 };
}

#[derive(Default)]
struct Window {
    start: Option<Instant>,
    used: u32,
}

impl Window {
    /// Count a request in a fixed window of `len`; `Err(wait)` when full.
    fn take(&mut self, now: Instant, len: Duration, limit: u32) -> Result<(u32, Duration), Duration> {
        let start = match self.start {
            Some(s) if now.duration_since(s) < len => s,
            _ => {
                self.used = 0;
                *self.start.insert(now)
            }
        };
        let left = len.saturating_sub(now.duration_since(start));
        if self.used >= limit {
            return Err(left);
        }
        self.used += 1;
        Ok((limit - self.used, left))
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    /// Created messages, with the channel (or `webhook:<id>`) they went to;
    /// an edit changes the message here.
    messages: Vec<(String, Value)>,
    /// Edits in order: the channel (or `webhook:<id>`), the message id and
    /// the body sent.
    edits: Vec<(String, String, Value)>,
    /// Threads started: parent channel, message, name, and the thread's id.
    threads: Vec<(String, String, String, String)>,
    /// Channels (threads) deleted: posting there answers 404.
    deleted: Vec<String>,
    script: VecDeque<Mode>,
    nonces: HashMap<String, u64>,
    next_id: u64,
    limits: Option<Limits>,
    windows: HashMap<String, Window>,
    global: Window,
    /// Interaction callbacks: the interaction id and the response body.
    callbacks: Vec<(String, Value)>,
    /// Command registrations: `global` or `guild:<id>`, and the commands.
    registrations: Vec<(String, Value)>,
    /// Direct-message channels opened, by recipient.
    dm_channels: HashMap<String, String>,
    /// Roles of each guild: id and permission bits.
    roles: HashMap<String, Vec<(String, u64)>>,
    /// The owner of each guild.
    owners: HashMap<String, String>,
    /// Permission overwrites of each channel (Discord's JSON objects).
    overwrites: HashMap<String, Vec<Value>>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    count: Arc<watch::Sender<usize>>,
    /// Bumped on every request, for [`FakeDiscord::wait_until`].
    requests: Arc<watch::Sender<usize>>,
    shown: Arc<watch::Sender<usize>>,
}

/// Footer Chorus puts on a digest embed (one line per event).
const DIGEST_FOOTER: &str = "Sent as one digest";

/// One event as a reader sees it in a channel: its own embed, or a line of
/// a digest embed that lists a backlog.
#[derive(Debug, Clone)]
pub struct Shown {
    /// Channel id, or `webhook:<id>`.
    pub channel: String,
    /// The event's title (unescaped for a digest line).
    pub title: String,
    /// Its link, if it has one.
    pub url: Option<String>,
    /// The event id from the embed's footer; `None` for a digest line.
    pub event_id: Option<String>,
    /// The whole embed when the event has its own; `None` for a digest line.
    pub embed: Option<Value>,
}

/// The events in one created message, in order.
pub fn shown_in(channel: &str, message: &Value) -> Vec<Shown> {
    let mut out = Vec::new();
    for embed in message["embeds"].as_array().into_iter().flatten() {
        let footer = embed["footer"]["text"].as_str().unwrap_or_default();
        if footer.starts_with(DIGEST_FOOTER) {
            for line in embed["description"].as_str().unwrap_or_default().lines() {
                let line = line.strip_prefix("- ").unwrap_or(line);
                let (title, url) = match line.strip_prefix('[').and_then(|l| l.rsplit_once("](")) {
                    Some((t, u)) => (t, u.strip_suffix(')').map(str::to_owned)),
                    None => (line, None),
                };
                out.push(Shown {
                    channel: channel.to_owned(),
                    title: title.replace("\\[", "[").replace("\\]", "]"),
                    url,
                    event_id: None,
                    embed: None,
                });
            }
        } else {
            out.push(Shown {
                channel: channel.to_owned(),
                title: embed["title"].as_str().unwrap_or_default().to_owned(),
                url: embed["url"].as_str().map(str::to_owned),
                event_id: footer.rsplit(" · ").next().filter(|id| id.starts_with("evt_")).map(str::to_owned),
                embed: Some(embed.clone()),
            });
        }
    }
    out
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

    /// Start on `127.0.0.1:0`, enforcing `limits` with 429s the way Discord does.
    pub async fn start_limited(limits: Limits) -> Self {
        let fake = Self::start().await;
        fake.shared.inner.lock().unwrap().limits = Some(limits);
        fake
    }

    /// Start on the given address (tests that restart a server on the same port).
    pub async fn start_on(addr: &str) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind fake Discord");
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            inner: Arc::default(),
            count: Arc::new(watch::channel(0).0),
            requests: Arc::new(watch::channel(0).0),
            shown: Arc::new(watch::channel(0).0),
        };
        let app = Router::new()
            .route("/api/v10/channels/{channel}/messages", post(create_message))
            .route("/api/v10/webhooks/{id}/{token}", post(execute_webhook))
            .route("/api/v10/channels/{channel}/messages/{message}", axum::routing::patch(edit_message))
            .route("/api/v10/channels/{channel}/messages/{message}/threads", post(start_thread))
            .route(
                "/api/v10/webhooks/{id}/{token}/messages/{message}",
                axum::routing::patch(edit_webhook_message),
            )
            .route("/api/v10/interactions/{id}/{token}/callback", post(interaction_callback))
            .route("/api/v10/applications/{app}/commands", axum::routing::put(register_commands))
            .route(
                "/api/v10/applications/{app}/guilds/{guild}/commands",
                axum::routing::put(register_commands),
            )
            .route("/api/v10/users/@me/channels", post(open_dm))
            .route("/api/v10/guilds/{guild}/roles", axum::routing::get(guild_roles))
            .route("/api/v10/guilds/{guild}", axum::routing::get(get_guild))
            .route("/api/v10/channels/{channel}", axum::routing::get(get_channel))
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

    /// Edits so far: channel (or `webhook:<id>`), message id and body.
    pub fn edits(&self) -> Vec<(String, String, Value)> {
        self.shared.inner.lock().unwrap().edits.clone()
    }

    /// Threads started from messages: parent channel, message id, name and
    /// the thread's channel id.
    pub fn threads(&self) -> Vec<(String, String, String, String)> {
        self.shared.inner.lock().unwrap().threads.clone()
    }

    /// Delete a channel (a thread): messages to it get Discord's 404
    /// Unknown Channel.
    pub fn delete_channel(&self, id: &str) {
        self.shared.inner.lock().unwrap().deleted.push(id.to_owned());
    }

    /// Delete a message, as a person in the channel would; edits of it get
    /// Discord's 404 Unknown Message.
    pub fn delete_message(&self, id: &str) {
        self.shared.inner.lock().unwrap().messages.retain(|(_, m)| m["id"] != id);
    }

    /// Wait until at least `n` messages exist, or panic after `timeout`.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<(String, Value)> {
        let waited = reached(&self.shared.count, n, timeout).await;
        let messages = self.messages();
        assert!(waited, "timed out waiting for {n} messages; have {}", messages.len());
        messages
    }

    /// Every event shown so far, across messages, embeds and digest lines.
    pub fn shown(&self) -> Vec<Shown> {
        self.messages().iter().flat_map(|(channel, m)| shown_in(channel, m)).collect()
    }

    /// Wait until at least `n` events are shown, or panic after `timeout`.
    pub async fn wait_for_shown(&self, n: usize, timeout: Duration) -> Vec<Shown> {
        let waited = reached(&self.shared.shown, n, timeout).await;
        let shown = self.shown();
        assert!(waited, "timed out waiting for {n} events shown; have {}", shown.len());
        shown
    }

    /// Wait until `done` holds (checked after every request), or panic
    /// after `timeout` naming `what`.
    pub async fn wait_until(&self, what: &str, timeout: Duration, done: impl Fn(&Self) -> bool) {
        let mut rx = self.shared.requests.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                if done(self) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(waited.is_ok() && done(self), "timed out waiting for {what}");
    }

    /// Interaction callbacks so far: interaction id and response body.
    pub fn callbacks(&self) -> Vec<(String, Value)> {
        self.shared.inner.lock().unwrap().callbacks.clone()
    }

    /// Wait until at least `n` interaction callbacks arrived, or panic after `timeout`.
    pub async fn wait_for_callbacks(&self, n: usize, timeout: Duration) -> Vec<(String, Value)> {
        self.wait_until(&format!("{n} interaction callbacks"), timeout, |d| d.callbacks().len() >= n).await;
        self.callbacks()
    }

    /// Command registrations so far: `global` or `guild:<id>`, and the
    /// commands sent.
    pub fn registrations(&self) -> Vec<(String, Value)> {
        self.shared.inner.lock().unwrap().registrations.clone()
    }

    /// The direct-message channel opened with `user`, if any.
    pub fn dm_channel(&self, user: &str) -> Option<String> {
        self.shared.inner.lock().unwrap().dm_channels.get(user).cloned()
    }

    /// Give `guild` these roles (`id`, permission bits); `@everyone` has the
    /// guild's own id.
    pub fn set_roles(&self, guild: &str, roles: &[(&str, u64)]) {
        let roles = roles.iter().map(|(id, p)| ((*id).to_owned(), *p)).collect();
        self.shared.inner.lock().unwrap().roles.insert(guild.to_owned(), roles);
    }

    /// Make `user` the owner of `guild`.
    pub fn set_owner(&self, guild: &str, user: &str) {
        self.shared.inner.lock().unwrap().owners.insert(guild.to_owned(), user.to_owned());
    }

    /// Give `channel` these permission overwrites, as Discord writes them:
    /// `{"id", "type": 0 (role) | 1 (member), "allow", "deny"}`.
    pub fn set_overwrites(&self, channel: &str, overwrites: Vec<Value>) {
        self.shared.inner.lock().unwrap().overwrites.insert(channel.to_owned(), overwrites);
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
    shared.requests.send_modify(|n| *n += 1);
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

fn too_many(bucket: &str, wait: Duration, global: bool) -> Response {
    let secs = wait.as_secs_f64().max(0.001);
    let mut h = HeaderMap::new();
    h.insert("retry-after", format!("{}", secs.ceil() as u64).parse().unwrap());
    if global {
        h.insert("x-ratelimit-global", "true".parse().unwrap());
        h.insert("x-ratelimit-scope", "global".parse().unwrap());
    } else {
        h.insert("x-ratelimit-scope", "user".parse().unwrap());
        h.insert("x-ratelimit-bucket", bucket.parse().unwrap());
        h.insert("x-ratelimit-limit", "5".parse().unwrap());
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset-after", format!("{secs:.3}").parse().unwrap());
    }
    let body = json!({"message": "You are being rate limited.", "retry_after": secs, "global": global});
    (StatusCode::TOO_MANY_REQUESTS, h, axum::Json(body)).into_response()
}

/// Apply the configured limits to a request for `bucket`: `Err` is the 429,
/// `Ok` the headers a success carries.
fn limit(shared: &Shared, bucket: &str) -> Result<Option<(u32, u32, Duration)>, Box<Response>> {
    let mut inner = shared.inner.lock().unwrap();
    let Some(limits) = inner.limits else { return Ok(None) };
    let now = Instant::now();
    if let Err(wait) = inner.global.take(now, Duration::from_secs(1), limits.global_per_second) {
        return Err(Box::new(too_many(bucket, wait, true)));
    }
    let window = inner.windows.entry(bucket.to_owned()).or_default();
    match window.take(now, limits.window, limits.per_target) {
        Ok((remaining, reset_after)) => Ok(Some((limits.per_target, remaining, reset_after))),
        Err(wait) => Err(Box::new(too_many(bucket, wait, false))),
    }
}

fn create(shared: &Shared, destination: String, body: &Bytes) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "400: Bad Request", "code": 50109})))
            .into_response();
    };
    let limited = match limit(shared, &format!("bucket-{destination}")) {
        Ok(l) => l,
        Err(response) => return *response,
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
    let events = shown_in(&destination, &message).len();
    inner.messages.push((destination.clone(), message.clone()));
    let count = inner.messages.len();
    drop(inner);
    shared.count.send_replace(count);
    shared.shown.send_modify(|n| *n += events);
    let mut response = axum::Json(message).into_response();
    let (limit, remaining, reset_after) = limited.unwrap_or((5, 4, Duration::from_secs(5)));
    let h = response.headers_mut();
    h.insert("x-ratelimit-bucket", format!("bucket-{destination}").parse().unwrap());
    h.insert("x-ratelimit-limit", limit.to_string().parse().unwrap());
    h.insert("x-ratelimit-remaining", remaining.to_string().parse().unwrap());
    h.insert("x-ratelimit-reset-after", format!("{:.3}", reset_after.as_secs_f64()).parse().unwrap());
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
    let response =
        refused(&shared, &channel, &headers).unwrap_or_else(|| create(&shared, channel.clone(), &body));
    record(&shared, &method, &uri, &headers, &body, response.status().as_u16());
    response
}

/// What a bot's request to `channel` gets instead of service: a scripted
/// answer, 401 without a token, 404 for a deleted channel.
fn refused(shared: &Shared, channel: &str, headers: &HeaderMap) -> Option<Response> {
    if let Some(r) = scripted(shared, &format!("channel-{channel}")) {
        return Some(r);
    }
    if headers.get("authorization").is_none() {
        return Some(
            (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "401: Unauthorized", "code": 0})))
                .into_response(),
        );
    }
    shared.inner.lock().unwrap().deleted.iter().any(|d| d == channel).then(|| {
        (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Unknown Channel", "code": 10003})))
            .into_response()
    })
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

/// Discord's PATCH of a message: the fields sent replace the message's.
fn edit(shared: &Shared, destination: String, message: &str, body: &Bytes) -> Response {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "400: Bad Request", "code": 50109})))
            .into_response();
    };
    if let Err(response) = limit(shared, &format!("edit-{destination}")) {
        return *response;
    }
    let mut inner = shared.inner.lock().unwrap();
    let Some((_, stored)) = inner.messages.iter_mut().find(|(d, m)| *d == destination && m["id"] == message)
    else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Unknown Message", "code": 10008})))
            .into_response();
    };
    for (k, v) in &fields {
        stored[k] = v.clone();
    }
    let edited = stored.clone();
    inner.edits.push((destination, message.to_owned(), Value::Object(fields)));
    drop(inner);
    axum::Json(edited).into_response()
}

/// Discord's "Start Thread from Message": the thread is a channel of its own.
async fn start_thread(
    State(shared): State<Shared>,
    Path((channel, message)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name =
        serde_json::from_slice::<Value>(&body).ok().and_then(|b| b["name"].as_str().map(str::to_owned));
    let response = match name.filter(|n| (1..=100).contains(&n.chars().count())) {
        None => (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "Invalid Form Body", "code": 50035})))
            .into_response(),
        Some(name) => {
            let mut inner = shared.inner.lock().unwrap();
            let known = inner.messages.iter().any(|(d, m)| *d == channel && m["id"] == message.as_str());
            if known {
                inner.next_id += 1;
                let id = (3_000_000 + inner.next_id).to_string();
                inner.threads.push((channel.clone(), message.clone(), name.clone(), id.clone()));
                axum::Json(json!({"id": id, "type": 11, "parent_id": channel, "name": name})).into_response()
            } else {
                (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Unknown Message", "code": 10008})))
                    .into_response()
            }
        }
    };
    // Recorded last, so `wait_until` sees the thread.
    record(&shared, &method, &uri, &headers, &body, response.status().as_u16());
    response
}

async fn edit_message(
    State(shared): State<Shared>,
    Path((channel, message)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = refused(&shared, &channel, &headers)
        .unwrap_or_else(|| edit(&shared, channel.clone(), &message, &body));
    record(&shared, &method, &uri, &headers, &body, response.status().as_u16());
    response
}

async fn edit_webhook_message(
    State(shared): State<Shared>,
    Path((id, _token, message)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = scripted(&shared, &format!("webhook-{id}"))
        .unwrap_or_else(|| edit(&shared, format!("webhook:{id}"), &message, &body));
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

async fn interaction_callback(
    State(shared): State<Shared>,
    Path((id, _token)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.inner.lock().unwrap().callbacks.push((id, response));
    // Recorded last: `wait_until` wakes on the request count and must then
    // see the callback.
    record(&shared, &method, &uri, &headers, &body, 204);
    StatusCode::NO_CONTENT.into_response()
}

async fn register_commands(
    State(shared): State<Shared>,
    Path(params): Path<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = params.get("guild").map_or_else(|| "global".to_owned(), |g| format!("guild:{g}"));
    let app = params.get("app").cloned().unwrap_or_default();
    let mut commands: Value = serde_json::from_slice(&body).unwrap_or(json!([]));
    let mut inner = shared.inner.lock().unwrap();
    if let Some(list) = commands.as_array_mut() {
        for c in list {
            inner.next_id += 1;
            c["id"] = json!((2_000_000 + inner.next_id).to_string());
            c["application_id"] = json!(app);
            c["version"] = json!("1");
        }
    }
    inner.registrations.push((scope, commands.clone()));
    drop(inner);
    // Recorded after the registration is kept, so `wait_until` sees it.
    record(&shared, &method, &uri, &headers, &body, 200);
    axum::Json(commands).into_response()
}

async fn open_dm(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recipient = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["recipient_id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut inner = shared.inner.lock().unwrap();
    inner.next_id += 1;
    let fresh = (3_000_000 + inner.next_id).to_string();
    let id = inner.dm_channels.entry(recipient.clone()).or_insert(fresh).clone();
    drop(inner);
    record(&shared, &method, &uri, &headers, &body, 200);
    axum::Json(json!({
        "id": id,
        "type": 1,
        "last_message_id": null,
        "recipients": [{"id": recipient, "username": "user", "discriminator": "0", "avatar": null}],
    }))
    .into_response()
}

async fn guild_roles(
    State(shared): State<Shared>,
    Path(guild): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&shared, &method, &uri, &headers, &Bytes::new(), 200);
    let roles = shared.inner.lock().unwrap().roles.get(&guild).cloned().unwrap_or_default();
    let body: Vec<Value> = roles
        .iter()
        .enumerate()
        .map(|(i, (id, permissions))| {
            json!({
                "id": id, "name": if *id == guild { "@everyone".to_owned() } else { format!("role {i}") },
                "color": 0, "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null}, "hoist": false, "managed": false, "mentionable": false,
                "permissions": permissions.to_string(), "position": i, "flags": 0,
            })
        })
        .collect();
    axum::Json(body).into_response()
}

async fn get_guild(
    State(shared): State<Shared>,
    Path(guild): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&shared, &method, &uri, &headers, &Bytes::new(), 200);
    let owner = shared.inner.lock().unwrap().owners.get(&guild).cloned().unwrap_or_else(|| "1".into());
    axum::Json(json!({
        "id": guild, "name": "Fake guild", "owner_id": owner, "icon": null, "splash": null,
        "discovery_splash": null, "afk_channel_id": null, "afk_timeout": 300, "verification_level": 0,
        "default_message_notifications": 0, "explicit_content_filter": 0, "roles": [], "emojis": [],
        "features": [], "mfa_level": 0, "application_id": null, "system_channel_id": null,
        "system_channel_flags": 0, "rules_channel_id": null, "vanity_url_code": null, "description": null,
        "banner": null, "premium_tier": 0, "preferred_locale": "en-US", "public_updates_channel_id": null,
        "nsfw_level": 0, "premium_progress_bar_enabled": false, "stickers": [], "safety_alerts_channel_id": null,
    }))
    .into_response()
}

async fn get_channel(
    State(shared): State<Shared>,
    Path(channel): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    record(&shared, &method, &uri, &headers, &Bytes::new(), 200);
    let overwrites = shared.inner.lock().unwrap().overwrites.get(&channel).cloned().unwrap_or_default();
    axum::Json(json!({"id": channel, "type": 0, "name": "general", "permission_overwrites": overwrites}))
        .into_response()
}

/// Whether `counter` reaches `n` within `timeout`.
async fn reached(counter: &watch::Sender<usize>, n: usize, timeout: Duration) -> bool {
    let mut rx = counter.subscribe();
    tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await.is_ok()
}
