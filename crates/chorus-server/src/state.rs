use std::sync::Arc;

use chorus_core::{Clock, RateDecision, Secret, Store};
use tokio::sync::Notify;

use chorus_deliver::{Emitter, RateLimiter, SsrfGuard};

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Notified after each ingest so the router wakes at once.
    pub events: Arc<Notify>,
    /// Per-hook rate limits.
    pub limiter: Arc<RateLimiter>,
    /// Emits outgoing events.
    pub emitter: Emitter,
    /// Which destinations outgoing webhooks may reach.
    pub guard: Arc<SsrfGuard>,
    /// Settings the handlers need.
    pub settings: Arc<Settings>,
    /// The config directory loader's report.
    pub config: Arc<crate::ConfigStatus>,
    /// `Idempotency-Key`s whose first request is running.
    pub in_flight: Arc<crate::IdempotencyKeys>,
    /// Workflows, when this instance runs them.
    pub workflows: Option<Arc<crate::WorkflowSystem>>,
    /// Who a change through this state is put on record as (set for the
    /// API's and Discord's changes); its action and target are filled in
    /// per change.
    pub actor: Option<chorus_core::AuditEntry>,
    /// The Docker watcher's state, when this instance watches an engine.
    pub docker: Option<Arc<crate::DockerStatus>>,
    /// Counters `/metrics` reports.
    pub metrics: Arc<crate::Metrics>,
}

/// The handler-facing part of the configuration.
#[derive(Debug)]
pub struct Settings {
    /// Base of hook URLs (`https://hooks.example.com`).
    pub public_base: String,
    /// Ingress body limit.
    pub max_body_bytes: usize,
    /// The admin bearer token.
    pub api_token: Secret,
    /// Whether a bot token is configured (channel deliveries go out).
    pub discord_bot: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<chorus_deliver::Cidr>,
    /// The key `POST /interactions` verifies with; without it the endpoint is off.
    pub discord_public_key: Option<chorus_verify::DiscordKey>,
    /// A role whose members may manage hooks from Discord.
    pub discord_manager_role: Option<String>,
    /// Seals and opens the `sealed:` secret references of backups and
    /// config files; without it they are refused.
    pub sealing_key: Option<chorus_store::MasterKey>,
}

impl AppState {
    /// Take one request from `key`'s budget of `per_minute`: counted by the
    /// store when several processes share it, else in memory here.
    /// Over budget: 429 `rate_limited` with `Retry-After`.
    pub(crate) async fn take_rate(
        &self,
        key: &chorus_core::HookId,
        per_minute: u32,
        now: jiff::Timestamp,
    ) -> Result<(), crate::error::ApiError> {
        let wait = match self.store.take_rate(key, per_minute, now).await? {
            RateDecision::Allowed => return Ok(()),
            RateDecision::Wait(wait) => wait,
            RateDecision::Local => match self.limiter.check(key, per_minute, now) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            },
        };
        Err(crate::error::ApiError::new(
            crate::error::ErrorCode::RateLimited,
            format!("more than {per_minute} requests a minute"),
        )
        .retry_after(wait))
    }

    /// The URL a sender posts to.
    pub fn hook_url(&self, agent: &str, id: &str) -> String {
        format!("{}/webhook/{agent}/{id}", self.settings.public_base)
    }
}
