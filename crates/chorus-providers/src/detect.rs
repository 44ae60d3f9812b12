//! Recognising a sender from its headers and payload, for hooks that do
//! not say who sends (`generic`, `none`, `chorus`, `standard`) and for the
//! `ci` shortcut: a payload from a known service is formatted by that
//! service's formatter; anything else keeps the generic summary.

use chorus_core::Source;
use chorus_format::Service;
use http::HeaderMap;
use serde_json::Value;

use crate::{field, header, of};

/// A recognised sender and the event type it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// Who sent it.
    pub service: Service,
    /// The event, as that service's own descriptor names it.
    pub event_type: String,
}

fn found(service: Service, event_type: impl Into<String>) -> Detected {
    Detected { service, event_type: event_type.into() }
}

fn has(body: &Value, pointer: &str) -> bool {
    body.pointer(pointer).is_some_and(|v| !v.is_null())
}

/// Who sent this, judged by headers first (they are unambiguous), then by
/// the payload's shape. `None` for a payload no formatter knows.
pub fn detect(headers: &HeaderMap, body: &Value) -> Option<Detected> {
    // Gitea and Forgejo also send GitHub's header, for compatibility.
    if header(headers, "x-gitea-event").is_some() || header(headers, "x-forgejo-event").is_some() {
        return Some(found(Service::Gitea, of(Source::Gitea).event_type(headers, body)));
    }
    if header(headers, "x-event-key").is_some()
        && (body.get("repository").is_some() || body.get("actor").is_some())
    {
        return Some(found(Service::Bitbucket, of(Source::Bitbucket).event_type(headers, body)));
    }
    if header(headers, "x-github-event").is_some() {
        return Some(found(Service::Github, of(Source::Github).event_type(headers, body)));
    }
    if header(headers, "x-gitlab-event").is_some()
        || (has(body, "/object_kind") && has(body, "/project/web_url"))
    {
        return Some(found(Service::Gitlab, of(Source::Gitlab).event_type(headers, body)));
    }
    if let Some(resource) = header(headers, "sentry-hook-resource") {
        return Some(found(Service::Sentry, sentry_type(resource, body)));
    }
    if let Some(kind) = header(headers, "circleci-event-type") {
        return Some(found(Service::CircleCi, kind));
    }
    let object = body.as_object()?;
    if let Some(event) =
        field(body, "webhookEvent").filter(|_| object.contains_key("issue") || object.contains_key("comment"))
    {
        return Some(found(Service::Jira, event));
    }
    if has(body, "/installation/uuid")
        && (has(body, "/data/issue")
            || has(body, "/data/event")
            || has(body, "/data/error")
            || has(body, "/data/metric_alert"))
    {
        let resource = ["issue", "event", "error", "metric_alert"]
            .into_iter()
            .find(|r| has(body, &format!("/data/{r}")))
            .map_or("issue", |r| if r == "event" { "event_alert" } else { r });
        return Some(found(Service::Sentry, sentry_type(resource, body)));
    }
    if let Some(kind) = field(body, "type").filter(|t| t == "workflow-completed" || t == "job-completed")
        && has(body, "/pipeline")
    {
        return Some(found(Service::CircleCi, kind));
    }
    if let Some(phase) = body.pointer("/build/phase").and_then(Value::as_str)
        && has(body, "/name")
    {
        return Some(found(Service::Jenkins, format!("build.{}", phase.to_ascii_lowercase())));
    }
    if body.get("alerts").is_some_and(Value::is_array) && has(body, "/status") && has(body, "/groupKey") {
        let grafana = has(body, "/orgId")
            || has(body, "/state")
            || body.pointer("/alerts/0/silenceURL").is_some()
            || header(headers, "user-agent").is_some_and(|ua| ua.starts_with("Grafana"));
        let status = field(body, "status").unwrap_or_else(|| "firing".into());
        let service = if grafana { Service::Grafana } else { Service::Alertmanager };
        return Some(found(service, format!("alert.{status}")));
    }
    if has(body, "/push_data") && (has(body, "/repository/repo_name") || has(body, "/callback_url")) {
        return Some(found(Service::DockerHub, "push"));
    }
    if field(body, "object").as_deref() == Some("event") && has(body, "/type") && has(body, "/data/object") {
        return Some(found(Service::Stripe, of(Source::Stripe).event_type(headers, body)));
    }
    if field(body, "type").as_deref() == Some("event_callback") && has(body, "/event/type") {
        return Some(found(Service::Slack, of(Source::Slack).event_type(headers, body)));
    }
    None
}

/// Sentry names events by resource and action: `issue.created`,
/// `event_alert.triggered`, `metric_alert.critical`.
fn sentry_type(resource: &str, body: &Value) -> String {
    match field(body, "action") {
        Some(action) => format!("{resource}.{action}"),
        None => resource.to_owned(),
    }
}
