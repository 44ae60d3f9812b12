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
