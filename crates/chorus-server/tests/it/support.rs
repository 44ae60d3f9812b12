use std::{sync::Arc, time::Duration};

use chorus_core::{Clock, Secret, Store, SystemClock};
use chorus_deliver::EngineConfig;
use chorus_discord::DiscordSinkConfig;
use chorus_server::{CancellationToken, Chorus};
use chorus_store::{MasterKey, SqliteStore};
use chorus_testkit::FakeDiscord;
use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "test-admin-token-0123456789";

pub(crate) struct TestApp {
    /// Facts the `memory_store` test tool was given, in order.
    pub(crate) memory: Arc<std::sync::Mutex<Vec<Value>>>,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) discord: FakeDiscord,
    _store: Arc<SqliteStore>,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
    progress: tokio::sync::watch::Receiver<u64>,
    config_scans: tokio::sync::watch::Receiver<u64>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How a [`TestApp`] is put together.
struct Options {
    clock: Arc<dyn Clock>,
    max_body: usize,
    discord: FakeDiscord,
    trusted_proxies: Vec<chorus_deliver::Cidr>,
    interactions: Option<chorus_verify::DiscordKey>,
    /// Where Discord is reached, when not at the fake itself.
    discord_via: Option<String>,
    engine: EngineConfig,
    discord_timeout: Duration,
}

impl Options {
    fn new(clock: Arc<dyn Clock>, max_body: usize, discord: FakeDiscord) -> Self {
        Self {
            clock,
            max_body,
            discord,
            trusted_proxies: Vec::new(),
            interactions: None,
            discord_via: None,
            engine: EngineConfig {
                policy: chorus_core::RetryPolicy {
                    initial_delay_ms: 50,
                    max_delay_ms: 200,
                    ..chorus_core::RetryPolicy::CHAT
                },
                breaker_threshold: 5,
                // At the threshold: disabled at once.
                breaker_disable_after: Duration::ZERO,
                // Long enough to see that nothing is tried meanwhile.
                bot_token_hold: Duration::from_millis(500),
                ..EngineConfig::default()
            },
            discord_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) struct Hook {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) secret: Option<String>,
}

impl TestApp {
    pub(crate) async fn start() -> Self {
        Self::start_with(Arc::new(SystemClock), 64 * 1024).await
    }

    pub(crate) async fn start_with(clock: Arc<dyn Clock>, max_body: usize) -> Self {
        Self::start_full(Options::new(clock, max_body, FakeDiscord::start().await)).await
    }

    /// Answering Discord's HTTP interactions signed by `signer`.
    /// Development mode too: workflows without a secret take unsigned requests.
    pub(crate) async fn start_interactive(signer: &chorus_testkit::interactions::InteractionSigner) -> Self {
        let key = chorus_verify::DiscordKey::from_hex(&signer.public_hex()).unwrap();
        Self::start_full(Options {
            interactions: Some(key),
            ..Options::new(Arc::new(SystemClock), 64 * 1024, FakeDiscord::start().await)
        })
        .await
    }

    /// Believing `X-Forwarded-For` from these proxies.
    pub(crate) async fn start_trusting(proxies: &str) -> Self {
        let nets = proxies.split(',').map(|n| chorus_deliver::Cidr::parse(n).unwrap()).collect();
        Self::start_full(Options {
            trusted_proxies: nets,
            ..Options::new(Arc::new(SystemClock), 64 * 1024, FakeDiscord::start().await)
        })
        .await
    }

    /// Against a fake Discord that enforces Discord's rate limits.
    pub(crate) async fn start_limited() -> Self {
        let discord = FakeDiscord::start_limited(chorus_testkit::Limits::DISCORD).await;
        Self::start_full(Options::new(Arc::new(SystemClock), 64 * 1024, discord)).await
    }

    /// Reaching Discord through `via` (a fault proxy in front of `discord`),
    /// with the retry schedule Chorus runs in production, so a test drives
    /// time with `clock`; the engine looks for due work every 20 ms, and a
    /// request to Discord times out after a second.
    pub(crate) async fn start_via(clock: Arc<dyn Clock>, discord: FakeDiscord, via: String) -> Self {
        Self::start_full(Options {
            discord_via: Some(via),
            engine: EngineConfig {
                idle: Duration::from_millis(20),
                breaker_threshold: 10,
                ..EngineConfig::default()
            },
            discord_timeout: Duration::from_secs(1),
            ..Options::new(clock, 64 * 1024, discord)
        })
        .await
    }

    async fn start_full(options: Options) -> Self {
        let Options {
            clock,
            max_body,
            discord,
            trusted_proxies,
            interactions,
            discord_via,
            engine,
            discord_timeout,
        } = options;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(
                dir.path().join("chorus.db"),
                MasterKey::from_bytes(&[9; 32]).unwrap(),
                clock.clone(),
            )
            .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let memory = Arc::new(std::sync::Mutex::new(Vec::new()));
        let chorus = Chorus::builder(store.clone() as Arc<dyn Store>, Secret::new(TOKEN))
            .clock(clock)
            .public_base(base.clone())
            .max_body_bytes(max_body)
            .discord(DiscordSinkConfig {
                token: Some("bot-token".into()),
                proxy: Some(discord_via.unwrap_or_else(|| discord.host_port())),
                timeout: Some(discord_timeout),
            })
            .engine(engine)
            .ssrf_guard(chorus_deliver::SsrfGuard::from_list("127.0.0.0/8").unwrap())
            .trusted_proxies(trusted_proxies)
            .config_dir(dir.path().join("config").join("webhooks"))
            .config_poll(Duration::from_millis(20))
            .discord_interactions(interactions.clone(), None)
            .sealing_key(MasterKey::from_bytes(&[9; 32]).unwrap())
            .workflows(
                store.clone() as Arc<dyn chorus_core::WorkflowStore>,
                chorus_server::WorkflowOptions {
                    dir: Some(dir.path().join("workflows")),
                    shell_allow: vec!["echo".into(), "false".into()],
                    allow_unsigned: interactions.is_some(),
                    sync_wait: Duration::from_secs(5),
                    ..chorus_server::WorkflowOptions::default()
                },
            )
            .tool("memory_store", MemoryStore(memory.clone()))
            .tool("read_file", ReadFile)
            .build();
        let shutdown = CancellationToken::new();
        let progress = chorus.delivery_progress();
        let config_scans = chorus.state().config.scans();
        tokio::spawn(chorus.serve(listener, shutdown.clone()));
        Self {
            memory,
            base,
            http: reqwest::Client::new(),
            discord,
            _store: store,
            dir,
            shutdown,
            progress,
            config_scans,
        }
    }

    /// Write (or with `None`, remove) a file in the config directory and
    /// wait for a scan that started after the change to finish.
    pub(crate) async fn config_file(&mut self, name: &str, text: Option<&str>) {
        let dir = self.dir.path().join("config").join("webhooks");
        std::fs::create_dir_all(&dir).unwrap();
        match text {
            Some(t) => std::fs::write(dir.join(name), t).unwrap(),
            None => std::fs::remove_file(dir.join(name)).unwrap(),
        }
        // The scan running now may have read the directory before the write;
        // the one after it has not.
        for _ in 0..2 {
            self.config_scans.borrow_and_update();
            tokio::time::timeout(Duration::from_secs(10), self.config_scans.changed())
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// The data directory.
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Whether any file in the data directory holds `needle`'s bytes.
    pub(crate) fn data_files_contain(&self, needle: &str) -> bool {
        std::fs::read_dir(self.dir.path()).unwrap().flatten().any(|entry| {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
    }

    pub(crate) fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }

    pub(crate) async fn api_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.api(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn agent(&self, name: &str, channel: &str) {
        let (status, body) = self
            .api_json(
                reqwest::Method::POST,
                "/api/agents",
                Some(json!({"name": name, "channel_id": channel})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub(crate) async fn hook(&self, body: Value) -> Hook {
        let (status, v) = self.api_json(reqwest::Method::POST, "/api/webhooks", Some(body)).await;
        assert_eq!(status, 201, "{v}");
        Hook {
            id: v["id"].as_str().unwrap().to_owned(),
            url: v["url"].as_str().unwrap().to_owned(),
            secret: v["secret"].as_str().map(str::to_owned),
        }
    }

    pub(crate) async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.http.post(url).body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req.send().await.unwrap()
    }

    /// Create an outgoing subscription; returns (id, secret).
    pub(crate) async fn outgoing(&self, body: Value) -> (String, String) {
        let mut body = body;
        body["type"] = json!("outgoing");
        let (status, v) = self.api_json(reqwest::Method::POST, "/api/webhooks", Some(body)).await;
        assert_eq!(status, 201, "{v}");
        (v["id"].as_str().unwrap().to_owned(), v["secret"].as_str().unwrap().to_owned())
    }

    /// Emit an event through the API; returns the delivery ids.
    pub(crate) async fn emit(&self, event: &str, agent: Option<&str>, data: Value) -> Vec<String> {
        let (status, v) = self
            .api_json(
                reqwest::Method::POST,
                "/api/events",
                Some(json!({"event": event, "agent": agent, "data": data})),
            )
            .await;
        assert_eq!(status, 202, "{v}");
        v["deliveries"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect()
    }

    /// The count of recorded delivery attempts, to wait on.
    pub(crate) fn progress(&self) -> tokio::sync::watch::Receiver<u64> {
        self.progress.clone()
    }

    /// Delivery attempts recorded so far.
    pub(crate) fn attempts_recorded(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Wait until `n` delivery attempts have been recorded.
    pub(crate) async fn wait_attempts(&self, n: u64) {
        let mut rx = self.progress.clone();
        let waited = tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n)).await;
        assert!(waited.is_ok(), "timed out waiting for {n} recorded attempts");
    }

    /// Events stored for a hook, through the API.
    pub(crate) async fn event_count(&self, hook: &str) -> usize {
        let (status, v) = self
            .api_json(reqwest::Method::GET, &format!("/api/webhooks/{hook}/events?limit=250"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v["items"].as_array().unwrap().len()
    }
}

/// Seed 003's `memory_store`: remembers the facts it is given.
struct MemoryStore(Arc<std::sync::Mutex<Vec<Value>>>);

#[async_trait::async_trait]
impl chorus_workflow::Tool for MemoryStore {
    async fn call(
        &self,
        call: chorus_workflow::ToolCall,
    ) -> Result<chorus_workflow::Output, chorus_workflow::ToolError> {
        let entry = Value::Object(call.args.clone());
        self.0.lock().unwrap().push(entry.clone());
        Ok(chorus_workflow::Output::value(json!({"stored": entry["fact"], "section": entry["section"]})))
    }
}

/// Seed 003's `read_file`: the text of `path`.
struct ReadFile;

#[async_trait::async_trait]
impl chorus_workflow::Tool for ReadFile {
    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(
        &self,
        call: chorus_workflow::ToolCall,
    ) -> Result<chorus_workflow::Output, chorus_workflow::ToolError> {
        let path = call.args.get("path").and_then(Value::as_str).unwrap_or_default();
        std::fs::read_to_string(path)
            .map(|text| chorus_workflow::Output::value(json!({"path": path, "text": text})))
            .map_err(|e| chorus_workflow::ToolError::new(format!("{path}: {e}")))
    }
}

/// GitHub-style signature headers for `body`.
pub(crate) fn github_headers(
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    vec![
        ("x-github-event".into(), event.into()),
        ("x-github-delivery".into(), delivery.into()),
        ("content-type".into(), "application/json".into()),
        ("x-hub-signature-256".into(), chorus_verify::sign_body_hex(&Secret::new(secret), body)),
    ]
}

pub(crate) fn chorus_headers(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-chorus-signature-256".into(), chorus_verify::sign_body_hex(&Secret::new(secret), body)),
    ]
}

/// A push payload: the shared fixture when present, else a small one of the same shape.
pub(crate) fn push_payload() -> Vec<u8> {
    if let Some(dir) = chorus_testkit::fixtures_dir() {
        return std::fs::read(dir.join("github/push.commits.json")).unwrap();
    }
    serde_json::to_vec(&json!({
        "ref": "refs/heads/master", "before": "a", "after": "b", "created": false, "deleted": false, "forced": false,
        "compare": "https://github.com/Codertocat/Hello-World/compare/a...b",
        "commits": [{"id": "199eddf46df50de8d02e99bf1c5fdb4101338224", "message": "Update README",
                     "url": "https://github.com/Codertocat/Hello-World/commit/199eddf", "author": {"name": "Codertocat"}}],
        "repository": {"full_name": "Codertocat/Hello-World", "html_url": "https://github.com/Codertocat/Hello-World"},
        "pusher": {"name": "Codertocat"}, "sender": {"login": "Codertocat", "html_url": "https://github.com/Codertocat"}
    }))
    .unwrap()
}

pub(crate) const WAIT: Duration = Duration::from_secs(15);
