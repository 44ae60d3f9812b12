#![doc = include_str!("../README.md")]

mod emitter;
mod engine;
mod http;
mod net;
mod ratelimit;
pub mod reply;
mod retry;
mod router;
mod ssrf;
mod window;

pub use emitter::{EmitError, Emitted, Emitter};
pub use engine::{Engine, EngineConfig};
pub use http::{HttpSink, MultiSink, USER_AGENT, basic_credentials, guarded_client};
pub use net::Cidr;
pub use ratelimit::RateLimiter;
pub use retry::next_delay;
pub use router::{
    EventRouter, RouterCounts, RouterStats, delivery, forward, reply_delivery, route_event, stamp, target_for,
};
pub use ssrf::{DestinationError, SsrfGuard, non_public_kind};
