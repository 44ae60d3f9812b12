//! Slack: the Events API (`event.type`, messages named by where they were
//! posted, as Slack names its subscriptions), `event_id`, the
//! `url_verification` handshake.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, field, key};

pub(crate) struct Slack;

impl Provider for Slack {
    fn source(&self) -> Source {
        Source::Slack
    }

    fn event_type(&self, _headers: &HeaderMap, body: &Value) -> String {
        let kind = body.pointer("/event/type").and_then(Value::as_str);
        let place = body.pointer("/event/channel_type").and_then(Value::as_str);
        match (kind, place) {
            (Some("message"), Some("channel")) => "message.channels".into(),
            (Some("message"), Some("group")) => "message.groups".into(),
            (Some("message"), Some(p @ ("im" | "mpim"))) => format!("message.{p}"),
            (Some(kind), _) => kind.to_owned(),
            (None, _) => {
                field(body, "type").or_else(|| field(body, "command")).unwrap_or_else(|| "slack".into())
            }
        }
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["event", "type", "command", "event_id", "challenge"])
    }

    fn delivery_key(&self, _headers: &HeaderMap, body: Option<&Value>) -> Option<String> {
        key(body.and_then(|b| field(b, "event_id")))
    }

    fn challenge(&self, body: &Value) -> Option<String> {
        (body["type"] == "url_verification").then(|| field(body, "challenge")).flatten()
    }

    fn event_families(&self) -> Option<&'static [&'static str]> {
        Some(FAMILIES)
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let body = json!({
            "type": "event_callback",
            "event_id": delivery,
            "event_time": now.as_second(),
            "event": {"type": "message", "channel": "C0000000000", "user": "U0000000000", "text": note},
        });
        (body, Vec::new())
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "api.slack.com/apps → your app → Event Subscriptions → Request URL: the URL above\n\
             Basic Information → Signing Secret: create the hook with it (`secret`), since Slack signs with its own",
        )
    }
}

/// Slack Events API types (messages carry their channel kind:
/// `message.channels`, `message.groups`, `message.im`, `message.mpim`),
/// plus slash commands (`/command`) and interactivity payloads.
const FAMILIES: &[&str] = &[
    "message",
    "app_mention",
    "reaction_added",
    "reaction_removed",
    "member_joined_channel",
    "member_left_channel",
    "channel_created",
    "channel_archive",
    "channel_rename",
    "team_join",
    "file_shared",
    "pin_added",
    "app_home_opened",
    "link_shared",
    "url_verification",
    "block_actions",
    "view_submission",
    "shortcut",
    "message_action",
    "slash_command",
];
