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

/// The event type of a request, from its headers (looked up by lowercase
/// name) and parsed body.
///
/// GitHub: `X-GitHub-Event`, plus `.action` when the payload has one
/// (`pull_request.opened`). GitLab: `object_kind` (`merge_request`,
/// `pipeline`, …). Jira: `webhookEvent` (`jira:issue_created`). Slack:
/// the Events API type, messages by place (`message.channels`). Others: a `type` or `event` field of the body, or the
/// `X-Chorus-Event` header, else `webhook`.
pub fn event_type<'h>(source: Source, header: impl Fn(&str) -> Option<&'h str>, body: &Value) -> String {
    let action = body.get("action").and_then(Value::as_str).filter(|a| !a.is_empty());
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    match source {
        Source::Github => {
            let event = header("x-github-event").unwrap_or("unknown");
            match action {
                Some(a) => format!("{event}.{a}"),
                None => event.to_owned(),
            }
        }
        Source::Gitlab => field("object_kind")
            .or_else(|| field("event_name"))
            .or_else(|| {
                header("x-gitlab-event").map(|h| h.trim_end_matches(" Hook").to_lowercase().replace(' ', "_"))
            })
            .unwrap_or_else(|| "unknown".into()),
        Source::Slack => body
            .pointer("/event/type")
            .and_then(Value::as_str)
            .map(|t| slack_event_type(t, body))
            .or_else(|| field("type"))
            .or_else(|| field("command"))
            .unwrap_or_else(|| "slack".into()),
        Source::Jira => field("webhookEvent").unwrap_or_else(|| "jira".into()),
        Source::Stripe | Source::Standard | Source::Chorus | Source::Generic | Source::None => {
            header("x-chorus-event")
                .map(str::to_owned)
                .or_else(|| field("type"))
                .or_else(|| field("event"))
                .or_else(|| field("event_type"))
                .or_else(|| field("webhookEvent"))
                .unwrap_or_else(|| "webhook".into())
        }
    }
}

/// Slack names message subscriptions by where the message was posted
/// (`message.channels`, `message.groups`, `message.im`, `message.mpim`);
/// Chorus gives message events those names so triggers read like Slack's.
fn slack_event_type(kind: &str, body: &Value) -> String {
    let place = body.pointer("/event/channel_type").and_then(Value::as_str);
    match (kind, place) {
        ("message", Some("channel")) => "message.channels".into(),
        ("message", Some("group")) => "message.groups".into(),
        ("message", Some(p @ ("im" | "mpim"))) => format!("message.{p}"),
        _ => kind.to_owned(),
    }
}

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
