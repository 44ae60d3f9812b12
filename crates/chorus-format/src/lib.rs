#![doc = include_str!("../README.md")]

mod generic;
mod github;
mod gitlab;
mod template;
mod util;

use chorus_core::{Message, Source};
use serde_json::Value;

pub use generic::format_generic;
pub use template::{TEMPLATE_MAX, TemplateError, render_context, render_template, validate_template};

/// Format a parsed payload of `source` and `event_type` as a message.
pub fn format(source: Source, event_type: &str, payload: &Value) -> Message {
    let specific = match source {
        Source::Github => github::format(event_type, payload),
        Source::Gitlab => gitlab::format(event_type, payload),
        _ => None,
    };
    specific.unwrap_or_else(|| format_generic(source, event_type, payload))
}

/// Format a body that is not JSON (e.g. Slack's form-encoded slash commands).
pub fn format_text(source: Source, event_type: &str, body: &[u8]) -> Message {
    let text = String::from_utf8_lossy(body);
    let mut message = Message::titled(format!("{} {event_type}", util::source_label(source)));
    message.description = util::truncate(&text, 1800);
    message
}
