//! Sentry integration webhooks (`Sentry-Hook-Resource`: `issue`,
//! `event_alert`, `metric_alert`, `error`): the error's title first,
//! its level as the colour, linked to the issue in Sentry.

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, n, s, truncate};

pub(crate) fn format(event_type: &str, p: &Value) -> Option<Message> {
    let data = p.get("data")?;
    let action = s(p, "/action").unwrap_or("");
    // An incident's thread: the issue, its alerts and its events.
    let thread = |id: Option<String>| id.map(|id| format!("sentry:issue:{id}"));
    if let Some(issue) = data.get("issue").filter(|i| i.is_object()) {
        let mut m = issue_message(issue, action, event_type);
        m.thread = thread(s(issue, "/id").map(str::to_owned).or_else(|| n(issue, "/id")));
        return Some(m);
    }
    if let Some(event) = data.get("event").or_else(|| data.get("error")).filter(|e| e.is_object()) {
        let mut m = event_message(event, data, action, event_type);
        m.thread = thread(s(event, "/issue_id").map(str::to_owned).or_else(|| n(event, "/issue_id")));
        return Some(m);
    }
    if let Some(alert) = data.get("metric_alert").filter(|a| a.is_object()) {
        return Some(metric_message(alert, data, action, event_type));
    }
    None
}

fn level_color(level: &str) -> u32 {
    match level {
        "fatal" | "error" | "critical" => color::RED,
        "warning" => color::YELLOW,
        "info" | "debug" => color::BLUE,
        _ => color::ORANGE,
    }
}

fn issue_message(issue: &Value, action: &str, event_type: &str) -> Message {
    let title = s(issue, "/title").or_else(|| s(issue, "/metadata/title")).unwrap_or("Sentry issue");
    let short = s(issue, "/shortId");
    let level = s(issue, "/level").unwrap_or("error");
    let verb = match action {
        "created" => "New issue",
        "resolved" => "Resolved",
        "ignored" | "archived" => "Ignored",
        "assigned" => "Assigned",
        "unresolved" => "Regressed",
        other if !other.is_empty() => other,
        _ => "Issue",
    };
    let mut m = Message::titled(match short {
        Some(id) => format!("{verb}: {} ({id})", truncate(title, 200)),
        None => format!("{verb}: {}", truncate(title, 200)),
    });
    m.url = s(issue, "/permalink").or_else(|| s(issue, "/web_url")).map(str::to_owned);
    m.color = Some(if action == "resolved" { color::GREEN } else { level_color(level) });
    if let Some(c) = s(issue, "/culprit") {
        m.description = format!("`{}`", truncate(c, 300));
    }
    let project = s(issue, "/project/name").or_else(|| s(issue, "/project/slug"));
    if let Some(pr) = project {
        m = m.field("Project", pr, true);
    }
    m = m.field("Level", level, true);
    if let Some(count) = issue
        .get("count")
        .and_then(|c| c.as_str().map(str::to_owned).or_else(|| c.as_u64().map(|n| n.to_string())))
    {
        m = m.field("Events", count, true);
    }
    if let Some(who) = s(issue, "/assignedTo/name").or_else(|| s(issue, "/assignedTo/email")) {
        m = m.field("Assigned to", who, true);
    }
    m.footer = Some(format!("Sentry · {event_type}"));
    m
}

fn event_message(event: &Value, data: &Value, action: &str, event_type: &str) -> Message {
    let title = s(event, "/title")
        .or_else(|| s(event, "/message"))
        .or_else(|| s(event, "/logentry/formatted"))
        .or_else(|| s(event, "/metadata/title"))
        .unwrap_or("Sentry event");
    let level = s(event, "/level").unwrap_or("error");
    let rule = s(data, "/triggered_rule").filter(|r| !r.is_empty());
    let head = if action == "triggered" { "Alert" } else { "Error" };
    let mut m = Message::titled(format!("{head}: {}", truncate(title, 200)));
    m.url = s(event, "/web_url").or_else(|| s(event, "/url")).map(str::to_owned);
    m.color = Some(level_color(level));
    if let Some(c) = s(event, "/culprit") {
        m.description = format!("`{}`", truncate(c, 300));
    }
    if let Some(r) = rule {
        m = m.field("Rule", r, true);
    }
    m = m.field("Level", level, true);
    for (name, pointer) in
        [("Environment", "/environment"), ("Release", "/release"), ("Platform", "/platform")]
    {
        if let Some(v) = s(event, pointer) {
            m = m.field(name, v, true);
        }
    }
    if let Some(user) = s(event, "/user/email").or_else(|| s(event, "/user/username")) {
        m = m.field("User", user, true);
    }
    m.footer = Some(format!("Sentry · {event_type}"));
    m
}

fn metric_message(alert: &Value, data: &Value, action: &str, event_type: &str) -> Message {
    let title = s(data, "/description_title").or_else(|| s(alert, "/title")).unwrap_or("Metric alert");
    let colour = match action {
        "critical" => color::RED,
        "warning" => color::YELLOW,
        "resolved" => color::GREEN,
        _ => color::ORANGE,
    };
    let mut m = Message::titled(format!("Metric alert {action}: {}", truncate(title, 200)));
    m.url = s(data, "/web_url").map(str::to_owned);
    m.color = Some(colour);
    if let Some(text) = s(data, "/description_text") {
        m.description = truncate(text, 600);
    }
    m.footer = Some(format!("Sentry · {event_type}"));
    m
}
