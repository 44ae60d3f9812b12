#![doc = include_str!("../README.md")]

pub mod commands;
mod embed;
mod sink;

pub use embed::{DIGEST_AFTER, components, message_payload, pack_count, packed_payload, to_embed};
pub use sink::{DiscordSink, DiscordSinkConfig, DiscordStats, parse_webhook_url, rest_client};
