//! Wiring: store, sink, router, engine and the HTTP app, started together
//! and stopped together.

use std::{io, net::SocketAddr, path::Path, sync::Arc};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use chorus_core::{Clock, Secret, Sink, Store, SystemClock, WorkflowStore};
use chorus_deliver::RateLimiter;
use chorus_deliver::{Emitter, Engine, EngineConfig, HttpSink, MultiSink, SsrfGuard};
use chorus_discord::{DiscordSink, DiscordSinkConfig};
use chorus_store::{MasterKey, SqliteStore};
use serde_json::json;
use tokio::{net::TcpListener, sync::Notify};
use tokio_util::sync::CancellationToken;

use crate::{
    api,
    config::Config,
    ingress,
    state::{AppState, Settings},
};

/// Chorus could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory or a file in it.
    #[error("data directory {path}")]
    DataDir {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The master key.
    #[error("master key")]
    MasterKey(#[from] chorus_store::KeyError),
    /// The store.
    #[error("opening the store")]
    Store(#[from] chorus_core::StoreError),
    /// The listen address.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The PostgreSQL database.
    #[error("opening the PostgreSQL database")]
    Postgres(#[from] chorus_store::PostgresOpenError),
    /// A database URL this build cannot use.
    #[error("unsupported database URL {0:?}: use postgres://user@host/db, sqlite://path or a file path")]
    UnsupportedDatabase(String),
}

/// The store a configuration names: SQLite in the data directory unless
/// `database_url` says otherwise. Answers it as both traits, and how to
/// name it in the log (never with a password).
async fn open_store(
    config: &Config,
    key: MasterKey,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<dyn Store>, Arc<dyn WorkflowStore>, String), StartError> {
    let url = config.database_url.as_deref();
    if let Some(url) = url.filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://")) {
        let store = chorus_store::PostgresStore::open(url, key, clock).await?;
        let shown = url.rsplit('@').next().unwrap_or(url).split('?').next().unwrap_or_default();
        return Ok((Arc::new(store.clone()), Arc::new(store), format!("postgres://{shown}")));
    }
    let path: std::path::PathBuf = match url {
        None => config.data_dir.join("chorus.db"),
        Some(u) if u.starts_with("sqlite://") => u.trim_start_matches("sqlite://").into(),
        Some(u) if u.contains("://") => return Err(StartError::UnsupportedDatabase(u.to_owned())),
        Some(u) => u.into(),
    };
    let store = SqliteStore::open(&path, key, clock)?;
    Ok((Arc::new(store.clone()), Arc::new(store), path.display().to_string()))
}

/// What [`Chorus::open`] found or created in the data directory.
#[derive(Debug, Clone, Default)]
pub struct StartupNotes {
    /// The admin token, when it was generated on this start (print it once).
    pub generated_api_token: Option<String>,
    /// The database path.
    pub database: String,
}

impl StartupNotes {
    /// The one-time notice of a generated admin token, for the operator's
    /// terminal (the token is also in the data directory, 0600).
    pub fn token_notice(&self, data_dir: &Path) -> Option<String> {
        self.generated_api_token.as_ref().map(|token| {
            format!(
                "Generated an admin API token (saved to {}):\n\n    {token}\n\nUse it as: Authorization: Bearer <token>\n",
                data_dir.join("api-token").display()
            )
        })
    }
}

/// A configured Chorus instance: HTTP app plus delivery workers.
pub struct Chorus {
    state: AppState,
    engine: Engine,
    router: chorus_deliver::EventRouter,
    retention: std::time::Duration,
    config_dir: Option<std::path::PathBuf>,
    config_poll: std::time::Duration,
    runner: Option<chorus_workflow::Runner>,
    docker: Option<crate::DockerHost>,
    limits: crate::ConnectionLimits,
}

/// How workflows run: see [`ChorusBuilder::workflows`].
#[derive(Debug, Clone)]
pub struct WorkflowOptions {
    /// Workflow files, watched for changes.
    pub dir: Option<std::path::PathBuf>,
    /// Development mode: workflows without a secret take unsigned requests.
    pub allow_unsigned: bool,
    /// Programs `shell_exec` may run; empty turns it off.
    pub shell_allow: Vec<String>,
    /// How long `POST /webhooks/{name}` waits for a run before answering 202.
    pub sync_wait: std::time::Duration,
    /// Step runner tuning.
    pub runner: chorus_workflow::RunnerConfig,
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        Self {
            dir: None,
            allow_unsigned: false,
            shell_allow: Vec::new(),
            sync_wait: std::time::Duration::from_secs(5),
            runner: chorus_workflow::RunnerConfig::default(),
        }
    }
}

/// Builds a [`Chorus`] from parts; for embedding in other services and for
/// tests. [`Chorus::open`] builds one from a [`Config`].
pub struct ChorusBuilder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sink: Option<Arc<dyn Sink>>,
    discord: DiscordSinkConfig,
    public_base: String,
    max_body_bytes: usize,
    api_token: Secret,
    engine: EngineConfig,
    guard: SsrfGuard,
    retention: std::time::Duration,
    trusted_proxies: Vec<chorus_deliver::Cidr>,
    config_dir: Option<std::path::PathBuf>,
    config_poll: std::time::Duration,
    discord_public_key: Option<chorus_verify::DiscordKey>,
    discord_manager_role: Option<String>,
    sealing_key: Option<MasterKey>,
    workflow_store: Option<Arc<dyn WorkflowStore>>,
    workflow_options: WorkflowOptions,
    tools: Vec<(String, Arc<dyn chorus_workflow::Tool>)>,
    docker: Option<crate::DockerHost>,
    limits: crate::ConnectionLimits,
}

impl ChorusBuilder {
    /// Limits on client connections (header and body timeouts, how many at
    /// once); see [`crate::ConnectionLimits`].
    #[must_use]
    pub fn connection_limits(mut self, limits: crate::ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Watch the Docker engine at `host` for `docker` hooks (it is only
    /// connected to while such a hook exists).
    #[must_use]
    pub fn docker(mut self, host: crate::DockerHost) -> Self {
        self.docker = Some(host);
        self
    }

    /// Run workflows (`POST /webhooks/{name}`, `/api/workflows`, `/api/runs`)
    /// on `store`; without this the endpoint answers 503.
    #[must_use]
    pub fn workflows(mut self, store: Arc<dyn WorkflowStore>, options: WorkflowOptions) -> Self {
        self.workflow_store = Some(store);
        self.workflow_options = options;
        self
    }

    /// Register a tool workflow steps can call by `name` (replacing a
    /// built-in of that name).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use chorus_workflow::{Output, Tool, ToolCall, ToolError};
    /// struct MemoryStore;
    ///
    /// #[async_trait::async_trait]
    /// impl Tool for MemoryStore {
    ///     async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
    ///         let fact = call.args.get("fact").and_then(|f| f.as_str()).unwrap_or_default();
    ///         // … remember `fact` …
    ///         Ok(Output::value(serde_json::json!({"stored": fact})))
    ///     }
    /// }
    ///
    /// # fn demo(builder: chorus_server::ChorusBuilder) -> chorus_server::ChorusBuilder {
    /// builder.tool("memory_store", MemoryStore)
    /// # }
    /// ```
    #[must_use]
    pub fn tool(mut self, name: impl Into<String>, tool: impl chorus_workflow::Tool) -> Self {
        self.tools.push((name.into(), Arc::new(tool)));
        self
    }

    /// Answer Discord's HTTP interactions at `POST /interactions`, verified
    /// with the application's public key; `manager_role` may manage hooks
    /// without the Manage Webhooks permission.
    #[must_use]
    pub fn discord_interactions(
        mut self,
        public_key: Option<chorus_verify::DiscordKey>,
        manager_role: Option<String>,
    ) -> Self {
        self.discord_public_key = public_key;
        self.discord_manager_role = manager_role;
        self
    }

    /// Load declarative hooks from `dir` (`*.json`, `*.yaml`) at start and
    /// whenever a file changes.
    #[must_use]
    pub fn config_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config_dir = Some(dir.into());
        self
    }

    /// The key that seals and opens `sealed:` secret references: those
    /// `GET /api/export?secrets=true` writes, and those imports and config
    /// files may hold. [`Chorus::open`] uses the master key.
    #[must_use]
    pub fn sealing_key(mut self, key: MasterKey) -> Self {
        self.sealing_key = Some(key);
        self
    }

    /// How often the config directory is checked for changes (default 2 s).
    #[must_use]
    pub fn config_poll(mut self, every: std::time::Duration) -> Self {
        self.config_poll = every;
        self
    }

    /// Use this clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Deliver through this sink instead of Discord.
    #[must_use]
    pub fn sink(mut self, sink: Arc<dyn Sink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// How to reach Discord (token, proxy).
    #[must_use]
    pub fn discord(mut self, config: DiscordSinkConfig) -> Self {
        self.discord = config;
        self
    }

    /// Base of the hook URLs shown to users.
    #[must_use]
    pub fn public_base(mut self, base: impl Into<String>) -> Self {
        self.public_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Ingress body limit.
    #[must_use]
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Delivery engine tuning.
    #[must_use]
    pub fn engine(mut self, config: EngineConfig) -> Self {
        self.engine = config;
        self
    }

    /// Networks outgoing webhooks may reach beside public addresses.
    #[must_use]
    pub fn ssrf_guard(mut self, guard: SsrfGuard) -> Self {
        self.guard = guard;
        self
    }

    /// Reverse proxies whose `X-Forwarded-For` names the sender (for hook
    /// IP allow-lists); from anyone else the header is ignored.
    #[must_use]
    pub fn trusted_proxies(mut self, nets: Vec<chorus_deliver::Cidr>) -> Self {
        self.trusted_proxies = nets;
        self
    }

    /// How long finished deliveries, attempts and events are kept.
    #[must_use]
    pub fn retention(mut self, keep: std::time::Duration) -> Self {
        self.retention = keep;
        self
    }

    /// Finish. Must run inside a tokio runtime (the Discord client needs one).
    pub fn build(self) -> Chorus {
        let discord_bot = self.discord.token.as_ref().is_some_and(|t| !t.trim().is_empty());
        let guard = Arc::new(self.guard);
        let (chat, discord_stats) = match self.sink {
            Some(sink) => (sink, None),
            None => {
                let sink = DiscordSink::new(&self.discord);
                let stats = sink.stats();
                (Arc::new(sink) as Arc<dyn Sink>, Some(stats))
            }
        };
        let router_stats = Arc::new(chorus_deliver::RouterStats::default());
        let http: Arc<dyn Sink> = Arc::new(HttpSink::new(guard.clone(), self.clock.clone()));
        let sink: Arc<dyn Sink> = Arc::new(MultiSink::new(vec![chat, http]));
        let deliveries = Arc::new(Notify::new());
        let emitter = Emitter::new(self.store.clone(), self.clock.clone(), deliveries.clone());
        let state = AppState {
            store: self.store,
            clock: self.clock,
            events: Arc::new(Notify::new()),
            limiter: Arc::new(RateLimiter::default()),
            emitter: emitter.clone(),
            guard,
            settings: Arc::new(Settings {
                public_base: self.public_base,
                max_body_bytes: self.max_body_bytes,
                api_token: self.api_token,
                discord_bot,
                trusted_proxies: self.trusted_proxies,
                discord_public_key: self.discord_public_key,
                discord_manager_role: self.discord_manager_role,
                sealing_key: self.sealing_key,
            }),
            config: Arc::new(crate::ConfigStatus::new(self.config_dir.clone())),
            in_flight: Arc::default(),
            workflows: None,
            actor: None,
            docker: self.docker.as_ref().map(|_| Arc::new(crate::DockerStatus::default())),
            metrics: Arc::new(crate::Metrics::new(router_stats.clone(), discord_stats)),
        };
        let (runner, mut state) = (None::<chorus_workflow::Runner>, state);
        let runner = match self.workflow_store {
            Some(wstore) => {
                let mut tools = chorus_workflow::Tools::new();
                chorus_workflow::register_builtins(
                    &mut tools,
                    &chorus_workflow::BuiltinEnv {
                        store: state.store.clone(),
                        clock: state.clock.clone(),
                        guard: state.guard.clone(),
                        shell_allow: self.workflow_options.shell_allow.clone(),
                    },
                );
                for (name, tool) in self.tools {
                    tools.register_arc(name, tool);
                }
                let runner = chorus_workflow::Runner::new(
                    wstore.clone(),
                    state.store.clone(),
                    tools,
                    state.clock.clone(),
                    deliveries.clone(),
                    self.workflow_options.runner.clone(),
                );
                state.workflows = Some(Arc::new(crate::WorkflowSystem {
                    store: wstore,
                    runner: runner.clone(),
                    allow_unsigned: self.workflow_options.allow_unsigned,
                    sync_wait: self.workflow_options.sync_wait,
                    files: crate::ConfigStatus::new(self.workflow_options.dir.clone()),
                    applied: tokio::sync::Mutex::default(),
                }));
                Some(runner)
            }
            None => runner,
        };
        let engine =
            Engine::new(state.store.clone(), sink, state.clock.clone(), deliveries.clone(), self.engine)
                .with_emitter(emitter);
        let router = chorus_deliver::EventRouter::new(
            state.store.clone(),
            state.clock.clone(),
            state.events.clone(),
            deliveries,
        )
        .with_stats(router_stats);
        Chorus {
            state,
            engine,
            router,
            retention: self.retention,
            config_dir: self.config_dir,
            config_poll: self.config_poll,
            runner,
            docker: self.docker,
            limits: self.limits,
        }
    }
}

fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

impl Chorus {
    /// Start building around a store, with the admin token for `/api`.
    pub fn builder(store: Arc<dyn Store>, api_token: Secret) -> ChorusBuilder {
        ChorusBuilder {
            store,
            clock: Arc::new(SystemClock),
            sink: None,
            discord: DiscordSinkConfig::default(),
            public_base: "http://127.0.0.1:8080".into(),
            max_body_bytes: 5 * 1024 * 1024,
            api_token,
            engine: EngineConfig::default(),
            guard: SsrfGuard::default(),
            retention: std::time::Duration::from_secs(30 * 86_400),
            trusted_proxies: Vec::new(),
            config_dir: None,
            config_poll: std::time::Duration::from_secs(2),
            discord_public_key: None,
            discord_manager_role: None,
            sealing_key: None,
            workflow_store: None,
            workflow_options: WorkflowOptions::default(),
            tools: Vec::new(),
            docker: None,
            limits: crate::ConnectionLimits::default(),
        }
    }

    /// Open everything a [`Config`] describes: data directory, master key,
    /// SQLite store, API token (generated into the data directory on first
    /// start), Discord sink.
    pub async fn open(config: &Config) -> Result<(Chorus, StartupNotes), StartError> {
        Self::open_with(config, |b| b).await
    }

    /// [`Chorus::open`], letting `customize` change the builder before it
    /// is built: register tools, swap the sink.
    pub async fn open_with(
        config: &Config,
        customize: impl FnOnce(ChorusBuilder) -> ChorusBuilder,
    ) -> Result<(Chorus, StartupNotes), StartError> {
        let dir = &config.data_dir;
        let dir_err = |source| StartError::DataDir { path: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        let key = match &config.master_key {
            Some(b64) => MasterKey::from_base64(b64)?,
            None => MasterKey::load_or_create(dir.join("master.key"))?,
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (store, workflow_store, database) = open_store(config, key.clone(), clock.clone()).await?;
        if config.workflows_allow_unsigned {
            tracing::warn!(
                "CHORUS_WORKFLOWS_ALLOW_UNSIGNED is on: workflows without a secret run for anyone who can reach them"
            );
        }
        let workflows = WorkflowOptions {
            dir: Some(dir.join("workflows")),
            allow_unsigned: config.workflows_allow_unsigned,
            shell_allow: config.shell_allow(),
            sync_wait: std::time::Duration::from_millis(config.workflows_sync_wait_ms),
            runner: chorus_workflow::RunnerConfig::default(),
        };
        let mut notes = StartupNotes { database, ..StartupNotes::default() };
        let token = match &config.api_token {
            Some(t) => Secret::new(t.clone()),
            None => {
                let path = dir.join("api-token");
                match std::fs::read_to_string(&path) {
                    Ok(t) => Secret::new(t.trim().to_owned()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        let t = chorus_core::random_token("chr_", 32);
                        write_private(&path, &t).map_err(dir_err)?;
                        notes.generated_api_token = Some(t.clone());
                        Secret::new(t)
                    }
                    Err(e) => return Err(dir_err(e)),
                }
            }
        };
        let builder = Chorus::builder(store, token)
            .sealing_key(key)
            .workflows(workflow_store, workflows)
            .clock(clock)
            .public_base(config.public_base())
            .max_body_bytes(config.max_body_bytes)
            .discord(DiscordSinkConfig {
                token: config.discord_token.clone(),
                proxy: config.discord_proxy.clone(),
                timeout: None,
            })
            .engine(EngineConfig {
                concurrency: config.delivery_concurrency,
                breaker_threshold: config.outgoing_breaker_threshold,
                breaker_disable_after: std::time::Duration::from_secs(
                    u64::from(config.outgoing_disable_after_hours) * 3600,
                ),
                ..EngineConfig::default()
            })
            .ssrf_guard(config.ssrf_guard())
            .trusted_proxies(config.trusted_proxies())
            .retention(std::time::Duration::from_secs(u64::from(config.retention_days) * 86_400))
            .config_dir(dir.join("config").join("webhooks"))
            .docker(config.docker())
            .connection_limits(crate::ConnectionLimits {
                header_timeout: std::time::Duration::from_millis(config.header_timeout_ms),
                body_timeout: std::time::Duration::from_millis(config.body_timeout_ms),
                max_connections: config.max_connections,
            })
            .discord_interactions(config.discord_key(), config.discord_manager_role.clone());
        Ok((customize(builder).build(), notes))
    }

    /// Bind `config.listen`, then [`Chorus::open`] with `config.listen` set
    /// to the address actually bound (port 0 picks one), so hook URLs name it.
    pub async fn bind(config: &mut Config) -> Result<(Chorus, StartupNotes, TcpListener), StartError> {
        Self::bind_with(config, |b| b).await
    }

    /// [`Chorus::bind`] with [`Chorus::open_with`]'s `customize`.
    pub async fn bind_with(
        config: &mut Config,
        customize: impl FnOnce(ChorusBuilder) -> ChorusBuilder,
    ) -> Result<(Chorus, StartupNotes, TcpListener), StartError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        config.listen =
            listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let (chorus, notes) = Chorus::open_with(config, customize).await?;
        Ok((chorus, notes, listener))
    }

    /// The HTTP app (ingress, API, health), for serving or for
    /// `tower::ServiceExt::oneshot` in tests.
    pub fn app(&self) -> Router {
        app(self.state.clone())
    }

    /// The Discord commands' view of this instance (for a gateway bot).
    pub fn discord_commands(&self) -> crate::DiscordCommands {
        crate::DiscordCommands::new(self.state.clone())
    }

    /// The state handlers share (store, clock, settings).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that emits outgoing events (`agent.commit`, `custom.*`, …)
    /// to every subscription that wants them.
    ///
    /// ```no_run
    /// # async fn demo(chorus: &chorus_server::Chorus) -> Result<(), Box<dyn std::error::Error>> {
    /// let emitter = chorus.emitter();
    /// let agent = Some("builder".parse()?);
    /// let data = serde_json::json!({"sha": "abc123", "message": "Fix the build"});
    /// let emitted = emitter.emit("agent.commit", agent, data, serde_json::Value::Null).await?;
    /// println!("{} deliveries queued", emitted.deliveries.len());
    /// # Ok(()) }
    /// ```
    pub fn emitter(&self) -> Emitter {
        self.state.emitter.clone()
    }

    /// How many delivery attempts have been recorded; changes after each.
    pub fn delivery_progress(&self) -> tokio::sync::watch::Receiver<u64> {
        self.engine.progress()
    }

    /// Serve on `listener` and run the delivery workers until `shutdown` is
    /// cancelled; then stop accepting, finish requests and sends in flight,
    /// and return.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> io::Result<()> {
        let workers = CancellationToken::new();
        // Other processes sharing the store (PostgreSQL replicas) commit
        // work too: their notifications wake this one's router and engine.
        let _watching = {
            let (events, emitter) = (self.state.events.clone(), self.state.emitter.clone());
            self.state.store.watch(Arc::new(move |change| match change {
                chorus_core::Change::Events => events.notify_one(),
                chorus_core::Change::Deliveries => emitter.wake(),
                // The store has dropped its cached lookups; nothing to wake.
                chorus_core::Change::Settings => {}
            }))
        };
        let routing = tokio::spawn(self.router.run(workers.clone()));
        let delivering = tokio::spawn(self.engine.run(workers.clone()));
        let purging = tokio::spawn(purge_periodically(self.state.clone(), self.retention, workers.clone()));
        let loading = match self.config_dir {
            Some(dir) => {
                // Hooks declared in files exist before the first request.
                let mut loader = crate::config_files::Loader::new(self.state.clone(), dir);
                loader.scan().await;
                Some(tokio::spawn(loader.run(self.config_poll, workers.clone())))
            }
            None => None,
        };
        let running = self.runner.map(|runner| {
            // Workflow files are loaded before the first request.
            let state = self.state.clone();
            let (poll, stop) = (self.config_poll, workers.clone());
            tokio::spawn(async move {
                crate::workflow_files::scan(&state).await;
                let watching = tokio::spawn(crate::workflow_files::watch(state, poll, stop.clone()));
                runner.run(stop).await;
                let _ = watching.await;
            })
        });
        let watching = match (self.docker, &self.state.docker) {
            (Some(host), Some(status)) => {
                let watcher = crate::DockerWatcher::new(self.state.clone(), host, status.clone());
                Some(tokio::spawn(watcher.run(workers.clone())))
            }
            _ => None,
        };
        let served = crate::serve::serve(listener, app(self.state), self.limits, shutdown.clone()).await;
        // Ingress has stopped: nothing new arrives. Let the workers finish
        // what is in flight; anything left is in the store for next time.
        workers.cancel();
        let _ = routing.await;
        let _ = delivering.await;
        let _ = purging.await;
        if let Some(loading) = loading {
            let _ = loading.await;
        }
        if let Some(running) = running {
            let _ = running.await;
        }
        if let Some(watching) = watching {
            let _ = watching.await;
        }
        served
    }
}

/// Retention: finished deliveries, their attempts and routed events older
/// than `keep` are deleted hourly (and once at start).
async fn purge_periodically(state: AppState, keep: std::time::Duration, stop: CancellationToken) {
    let keep = jiff::SignedDuration::try_from(keep).unwrap_or(jiff::SignedDuration::from_hours(24 * 30));
    loop {
        match state.store.purge(state.clock.now() - keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "retention: old deliveries and events removed"),
            Err(e) => tracing::warn!(error = %e, "retention cleanup failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
    }
}

/// The full router over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/webhook/{agent}/{hook_id}", post(ingress::receive))
        .route("/webhooks/{provider}/{webhook_id}", post(ingress::receive_by_provider))
        .route("/webhooks/{name}", post(crate::workflows::receive))
        .route("/interactions", post(crate::discord::interactions))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(api::router(&state))
        .merge(crate::dashboard::router(&state))
        .fallback(not_found)
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (status, mut body) = match state.store.ready().await {
        Ok(()) => (StatusCode::OK, json!({"status": "ready"})),
        Err(e) => {
            (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "unavailable", "reason": e.to_string()}))
        }
    };
    // A Docker engine out of reach delays `docker` hooks' events, nothing
    // else: it is reported here without making the instance unready.
    if let Some(docker) = &state.docker {
        body["docker"] = docker.view();
    }
    (status, Json(body))
}

async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::not_found("no such route")
}

/// Cancel `shutdown` on SIGTERM or Ctrl-C: binaries stop this way, finishing
/// requests and deliveries in flight.
pub fn cancel_on_signal(shutdown: CancellationToken) -> impl std::future::Future<Output = ()> + Send {
    // Installed now, not when the future is first polled: a SIGTERM that
    // arrives the moment the server is up still stops it cleanly.
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).expect("install SIGTERM handler"),
            signal(SignalKind::interrupt()).expect("install SIGINT handler"),
        )
    };
    async move {
        #[cfg(unix)]
        tokio::select! {
            _ = signals.0.recv() => {}
            _ = signals.1.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests and deliveries in flight");
        shutdown.cancel();
    }
}
