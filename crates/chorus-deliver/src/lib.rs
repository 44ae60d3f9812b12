#![doc = include_str!("../README.md")]

mod engine;
mod retry;
mod router;

pub use engine::{Engine, EngineConfig};
pub use retry::next_delay;
pub use router::{Router, route_event};
