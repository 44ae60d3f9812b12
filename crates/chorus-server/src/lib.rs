#![doc = include_str!("../README.md")]

mod api;
mod config;
mod error;
mod ingress;
mod net;
mod ratelimit;
mod runtime;
mod state;

pub use config::{Config, ConfigError};
pub use error::{ApiError, ApiJson, ApiQuery};
pub use net::Cidr;
pub use ratelimit::RateLimiter;
pub use runtime::{Chorus, ChorusBuilder, StartError, StartupNotes, app};
pub use state::{AppState, Settings};

/// Re-exported for embedders that stop Chorus with their own token.
pub use tokio_util::sync::CancellationToken;
