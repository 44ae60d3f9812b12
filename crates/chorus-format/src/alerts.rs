//! Prometheus Alertmanager and Grafana unified alerting, which share the
//! webhook format: one message per notification, firing or resolved, one
//! line per alert, grouped by the group's labels.

use std::fmt::Write as _;

use chorus_core::Message;
use serde_json::Value;

use crate::util::{color, s, truncate};

/// Alerts listed before "… and N more".
const ALERTS_MAX: usize = 15;

pub(crate) fn format(grafana: bool, event_type: &str, p: &Value) -> Option<Message> {
    let alerts = p.get("alerts")?.as_array()?;
    let status = s(p, "/status").unwrap_or("firing");
    let firing = alerts.iter().filter(|a| s(a, "/status").unwrap_or(status) == "firing").count();
    let resolved = alerts.len() - firing;
    let name = s(p, "/commonLabels/alertname")
        .or_else(|| s(p, "/groupLabels/alertname"))
        .or_else(|| alerts.first().and_then(|a| s(a, "/labels/alertname")))
        .unwrap_or("alert");
    let summary = s(p, "/commonAnnotations/summary").or_else(|| s(p, "/commonAnnotations/title"));
    let head = match (firing, resolved) {
        (0, _) => "✅ RESOLVED".to_owned(),
        (f, 0) => format!("🔥 FIRING:{f}"),
        (f, r) => format!("🔥 FIRING:{f}, RESOLVED:{r}"),
    };
    let title = match summary {
        Some(sm) => format!("{head} {name}: {}", truncate(sm, 180)),
        None => format!("{head} {name}"),
    };
    let mut m = Message::titled(title);
    m.color = Some(if firing == 0 {
        color::GREEN
    } else {
        match s(p, "/commonLabels/severity") {
            Some("warning") => color::YELLOW,
            Some("info") => color::BLUE,
            _ => color::RED,
        }
    });
    let mut text = String::new();
    for a in alerts.iter().take(ALERTS_MAX) {
        let state = s(a, "/status").unwrap_or(status);
        let mark = if state == "firing" { "🔥" } else { "✅" };
        let what = s(a, "/annotations/summary")
            .or_else(|| s(a, "/annotations/description"))
            .or_else(|| s(a, "/labels/alertname"))
            .unwrap_or(name);
        let instance = s(a, "/labels/instance").map(|i| format!(" on `{i}`")).unwrap_or_default();
        let source = s(a, "/generatorURL").filter(|u| u.starts_with("http"));
        let said = truncate(&format!("{what}{instance}"), 300);
        match source {
            Some(u) => {
                let _ = writeln!(text, "{mark} [{}]({u})", said.replace(['[', ']'], ""));
            }
            None => {
                let _ = writeln!(text, "{mark} {said}");
            }
        }
    }
    if alerts.len() > ALERTS_MAX {
        let _ = writeln!(text, "… and {} more", alerts.len() - ALERTS_MAX);
    }
    if let Some(d) = s(p, "/commonAnnotations/description").filter(|_| alerts.len() > 1) {
        let _ = write!(text, "\n{}", truncate(d, 400));
    }
    m.description = text.trim_end().to_owned();
    let group: Vec<String> = p
        .get("groupLabels")
        .and_then(Value::as_object)
        .map(|g| g.iter().filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?))).collect())
        .unwrap_or_default();
    if !group.is_empty() {
        m = m.field("Group", group.join(", "), true);
    }
    if let Some(sev) = s(p, "/commonLabels/severity") {
        m = m.field("Severity", sev, true);
    }
    if let Some(r) = s(p, "/commonAnnotations/runbook_url").or_else(|| s(p, "/commonAnnotations/runbook")) {
        m = m.field("Runbook", r, false);
    }
    m.url = alerts
        .iter()
        .find_map(|a| s(a, "/dashboardURL").or_else(|| s(a, "/panelURL")).or_else(|| s(a, "/generatorURL")))
        .or_else(|| s(p, "/externalURL"))
        .filter(|u| u.starts_with("http"))
        .map(str::to_owned);
    let who = if grafana { "Grafana" } else { "Alertmanager" };
    m.footer = Some(match s(p, "/receiver").filter(|r| !r.is_empty()) {
        Some(r) => format!("{who} · {r} · {event_type}"),
        None => format!("{who} · {event_type}"),
    });
    // An incident's thread: the alert group from firing to resolved.
    m.thread = s(p, "/groupKey").map(|key| format!("alerts:{key}"));
    Some(m)
}
