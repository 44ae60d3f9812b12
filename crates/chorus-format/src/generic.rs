//! The formatter of last resort: a readable summary of any JSON.

use std::fmt::Write as _;

use chorus_core::{Message, Source};
use serde_json::Value;

use crate::util::{source_label, truncate};

/// Values longer than this are cut: a summary, not a dump.
const VALUE_MAX: usize = 200;
/// Lines in the summary before "… and N more".
const LINES_MAX: usize = 30;
/// Depth to which nested values are flattened.
const DEPTH_MAX: usize = 4;

/// Fields that usually say what the payload is about, in order of preference.
const TITLE_KEYS: &[&str] = &["title", "summary", "message", "text", "name", "subject", "description"];

/// Top-level fields a person wants first, in this order; the rest follow
/// in the sender's order.
const LEADING_KEYS: &[&str] = &[
    "title", "summary", "message", "text", "name", "subject", "status", "state", "result", "level",
    "severity", "action", "event", "url", "html_url", "web_url",
];

/// Whether a field is bookkeeping a reader does not want: links to API
/// resources and pictures, and ids of nested objects.
fn is_noise(key: &str, depth: usize) -> bool {
    let k = key.to_ascii_lowercase();
    k == "self"
        || k == "node_id"
        || k == "gravatar_id"
        || k.contains("avatar")
        || k.contains("icon")
        || (depth > 0 && (k == "id" || k.ends_with("_id")))
        || (k.ends_with("_url") && !matches!(k.as_str(), "html_url" | "web_url"))
}

/// Summarise any payload: the fields that say what happened first (title,
/// status, link), then the other top-level values in the sender's order,
/// then nested values flattened to `a.b[0].c` paths; API links, avatars and
/// nested ids are left out; each value is cut to 200 characters and the
/// list to 30 lines.
pub fn format_generic(source: Source, event_type: &str, payload: &Value) -> Message {
    let mut lines: Vec<(String, String)> = Vec::new();
    match payload {
        Value::Object(map) => {
            let rank = |k: &str| LEADING_KEYS.iter().position(|l| *l == k).unwrap_or(LEADING_KEYS.len());
            let mut top: Vec<(&String, &Value)> =
                map.iter().filter(|(k, v)| !is_nested(v) && !is_noise(k, 0)).collect();
            // Stable: fields outside the leading list keep the sender's order.
            top.sort_by_key(|(k, _)| rank(k));
            for (k, v) in top {
                lines.push((k.clone(), scalar(v)));
            }
            for (k, v) in map.iter().filter(|(k, v)| is_nested(v) && !is_noise(k, 0)) {
                flatten(k, v, 1, &mut lines);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("[{i}]"), v, 1, &mut lines);
            }
        }
        other => lines.push(("value".into(), scalar(other))),
    }

    let headline = TITLE_KEYS
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .filter(|t| !t.trim().is_empty());
    let title = match headline {
        Some(h) => format!("{}: {}", event_type, truncate(h.lines().next().unwrap_or(h), 200)),
        None => format!("{} event: {event_type}", source_label(source)),
    };
    let mut message = Message::titled(title);
    let total = lines.len();
    let mut text = String::new();
    for (k, v) in lines.iter().take(LINES_MAX) {
        writeln!(text, "**{}**: {}", truncate(k, 100), v).expect("write to String");
    }
    if total > LINES_MAX {
        writeln!(text, "… and {} more", total - LINES_MAX).expect("write to String");
    }
    if total == 0 {
        text.push_str("(empty payload)");
    }
    text.trim_end().clone_into(&mut message.description);
    message.url = ["url", "html_url", "link", "permalink"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned);
    message.footer = Some(format!("{} · {event_type}", source_label(source)));
    message
}

fn is_nested(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn scalar(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.replace(['\n', '\r'], " "),
        Value::Null => "null".into(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    };
    truncate(&text, VALUE_MAX)
}

fn flatten(path: &str, v: &Value, depth: usize, out: &mut Vec<(String, String)>) {
    if out.len() > LINES_MAX * 4 {
        // Enough to fill the summary and count the rest roughly; deep giant
        // payloads must not cost unbounded work.
        return;
    }
    match v {
        Value::Object(map) if !map.is_empty() && depth < DEPTH_MAX => {
            for (k, child) in map.iter().filter(|(k, _)| !is_noise(k, depth)) {
                flatten(&format!("{path}.{k}"), child, depth + 1, out);
            }
        }
        Value::Array(items) if !items.is_empty() && depth < DEPTH_MAX => {
            if items.iter().all(|i| !is_nested(i)) {
                let joined: Vec<String> = items.iter().map(scalar).collect();
                out.push((path.to_owned(), truncate(&joined.join(", "), VALUE_MAX)));
            } else {
                for (i, child) in items.iter().enumerate() {
                    flatten(&format!("{path}[{i}]"), child, depth + 1, out);
                }
            }
        }
        Value::Object(_) | Value::Array(_) if is_nested(v) => {
            out.push((path.to_owned(), truncate(&v.to_string(), VALUE_MAX)));
        }
        other => out.push((path.to_owned(), scalar(other))),
    }
}
