//! Docker engine events as the engine's `GET /events` stream reports them
//! (`Type`, `Action`, `Actor.ID`, `Actor.Attributes`, `time`, `timeNano`),
//! with what Chorus's watcher adds for a container that ended: `Container`,
//! the `State` of `GET /containers/{id}/json`, and `Logs`, its last lines.
//! Seed 002's shape: "Container Stopped: name · Exit code: 137 (OOM) ·
//! Uptime · Last logs".

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, duration_between, human_secs, s, truncate};

/// The action's name without its detail (`health_status: unhealthy` →
/// `health_status`) and the detail.
fn action(p: &Value) -> (&str, Option<&str>) {
    let raw = s(p, "/Action").or_else(|| s(p, "/status")).unwrap_or("");
    match raw.split_once(':') {
        Some((name, detail)) => (name.trim(), Some(detail.trim())),
        None => (raw, None),
    }
}

/// The event type a watcher stores: `container.die`, `image.tag`, …
pub fn event_type(p: &Value) -> String {
    let kind = s(p, "/Type").unwrap_or("container");
    let (name, _) = action(p);
    if name.is_empty() { kind.to_owned() } else { format!("{kind}.{name}") }
}

pub(crate) fn format(_event_type: &str, p: &Value) -> Option<Message> {
    let kind = s(p, "/Type")?;
    let (name, detail) = action(p);
    let attrs = &p["Actor"]["Attributes"];
    let id = s(p, "/Actor/ID").or_else(|| s(p, "/id")).unwrap_or("");
    let short_id = id.get(..12).unwrap_or(id);
    let m = match kind {
        "container" => container(p, name, detail, attrs, short_id),
        "image" => {
            let image = s(attrs, "/name").unwrap_or(short_id);
            let (head, colour) = match name {
                "tag" => ("🔨 Image Built", color::GREEN),
                "pull" => ("⬇️ Image Pulled", color::BLUE),
                "push" => ("⬆️ Image Pushed", color::GREEN),
                "delete" | "untag" => ("🗑️ Image Removed", color::GREY),
                other => return Some(generic(kind, other, image)),
            };
            let mut m = Message::titled(format!("{head}: {image}"));
            m.color = Some(colour);
            m
        }
        other => {
            let thing = s(attrs, "/name").unwrap_or(short_id);
            generic(other, name, thing)
        }
    };
    Some(finish(m, p, kind, name))
}

fn generic(kind: &str, action: &str, thing: &str) -> Message {
    let mut m = Message::titled(format!("Docker {kind} {}: {thing}", action.replace('_', " ")));
    m.color = Some(color::GREY);
    m
}

fn container(p: &Value, name: &str, detail: Option<&str>, attrs: &Value, short_id: &str) -> Message {
    let container = s(attrs, "/name").unwrap_or(short_id);
    let state = &p["Container"]["State"];
    let exit =
        s(attrs, "/exitCode").and_then(|c| c.parse::<i64>().ok()).or_else(|| state["ExitCode"].as_i64());
    let oom = state["OOMKilled"].as_bool() == Some(true);
    let (head, colour) = match (name, detail) {
        ("start", _) => ("▶️ Container Started", color::GREEN),
        ("restart", _) => ("🔁 Container Restarted", color::YELLOW),
        ("die", _) if exit == Some(0) => ("⏹️ Container Exited", color::GREY),
        ("die", _) => ("🚨 Container Stopped", color::RED),
        ("stop", _) => ("⏹️ Container Stopped", color::GREY),
        ("kill", _) => ("⏹️ Container Killed", color::GREY),
        ("oom", _) => ("🚨 Out of Memory", color::RED),
        ("health_status", Some("healthy")) => ("💚 Container Healthy", color::GREEN),
        ("health_status", _) => ("🩺 Container Unhealthy", color::RED),
        ("pause", _) => ("⏸️ Container Paused", color::GREY),
        ("unpause", _) => ("▶️ Container Resumed", color::GREEN),
        ("create", _) => ("Container Created", color::GREY),
        ("destroy", _) => ("Container Removed", color::GREY),
        _ => return generic("container", name, container),
    };
    let mut m = Message::titled(format!("{head}: {container}"));
    m.color = Some(colour);
    let mut lines = Vec::new();
    if let Some(image) = s(attrs, "/image") {
        lines.push(format!("Image: `{image}`"));
    }
    if name == "die"
        && let Some(code) = exit
    {
        let why = match code {
            _ if oom => " (OOM)",
            137 => " (killed)",
            143 => " (terminated)",
            _ => "",
        };
        lines.push(format!("Exit code: **{code}**{why}"));
    }
    if let Some(signal) = s(attrs, "/signal").filter(|_| name == "kill") {
        lines.push(format!("Signal: {signal}"));
    }
    if matches!(name, "die" | "stop" | "kill") {
        let started = s(state, "/StartedAt").filter(|t| !t.starts_with("0001"));
        let ended = s(state, "/FinishedAt").filter(|t| !t.starts_with("0001"));
        let uptime = match (started, ended) {
            (Some(a), Some(b)) => duration_between(a, b),
            (Some(a), None) => event_time(p).and_then(|t| {
                let start = a.parse::<jiff::Timestamp>().ok()?;
                let secs = t.as_second() - start.as_second();
                (secs >= 0).then(|| human_secs(secs))
            }),
            _ => None,
        };
        if let Some(u) = uptime {
            lines.push(format!("Uptime: {u}"));
        }
    }
    if let Some(output) =
        state["Health"]["Log"].as_array().and_then(|l| l.last()).and_then(|l| s(l, "/Output"))
        && name == "health_status"
    {
        lines.push(format!("Check: {}", truncate(output.trim(), 200)));
    }
    if let Some(logs) = s(p, "/Logs").map(str::trim).filter(|l| !l.is_empty()) {
        lines.push(format!("Last logs:\n```\n{}\n```", truncate(logs, 800)));
    }
    m.description = lines.join("\n");
    m
}

fn event_time(p: &Value) -> Option<jiff::Timestamp> {
    if let Some(nanos) = p["timeNano"].as_i64() {
        return jiff::Timestamp::from_nanosecond(i128::from(nanos)).ok();
    }
    jiff::Timestamp::from_second(p["time"].as_i64()?).ok()
}

fn finish(mut m: Message, p: &Value, kind: &str, action: &str) -> Message {
    m.timestamp = event_time(p).map(|t| t.to_string());
    let host = s(p, "/Actor/Attributes/com.docker.compose.project")
        .map(|project| format!(" · compose {project}"))
        .unwrap_or_default();
    m.footer = Some(format!("Docker · {kind}.{action}{host}"));
    m
}
