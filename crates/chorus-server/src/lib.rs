#![doc = include_str!("../README.md")]

pub(crate) mod api;
mod config;
mod config_files;
mod dashboard;
mod discord;
mod docker;
mod error;
mod ingress;
mod metrics;
mod runtime;
mod samples;
mod serve;
mod service;
mod state;
mod workflow_files;
mod workflows;

/// A server on a fresh SQLite store in `dir` (master key `[1; 32]`), built
/// but not serving: for unit tests of what needs an `AppState`.
#[cfg(test)]
pub(crate) fn test_chorus(dir: &std::path::Path) -> Chorus {
    let store = std::sync::Arc::new(
        chorus_store::SqliteStore::open(
            dir.join("chorus.db"),
            chorus_store::MasterKey::from_bytes(&[1; 32]).unwrap(),
            std::sync::Arc::new(chorus_core::SystemClock),
        )
        .unwrap(),
    );
    Chorus::builder(store, chorus_core::Secret::new("admin-token-0123456789")).build()
}

pub use api::{IdempotencyKeys, openapi_document, paths as api_paths};
pub use chorus_deliver::{Cidr, RateLimiter};
pub use config::{Config, ConfigError};
pub use config_files::{ConfigFileError, ConfigStatus, fuzz_hook_file};
pub use discord::DiscordCommands;
pub use docker::{DockerHost, DockerStatus, DockerWatcher};
pub use error::{ApiError, ApiJson, ApiQuery, ErrorCode};
pub use metrics::Metrics;
pub use runtime::{Chorus, ChorusBuilder, StartError, StartupNotes, WorkflowOptions, app, cancel_on_signal};
pub use serve::ConnectionLimits;
pub use state::{AppState, Settings};
pub use workflows::WorkflowSystem;

/// Re-exported for embedders that stop Chorus with their own token.
pub use tokio_util::sync::CancellationToken;
