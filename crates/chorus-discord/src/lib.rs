#![doc = include_str!("../README.md")]

mod embed;
mod sink;

pub use embed::{message_payload, to_embed};
pub use sink::{DiscordSink, DiscordSinkConfig, parse_webhook_url};
