//! Jira: `webhookEvent`, `X-Atlassian-Webhook-Identifier`.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, field, header, key};

pub(crate) struct Jira;

impl Provider for Jira {
    fn source(&self) -> Source {
        Source::Jira
    }

    fn event_type(&self, _headers: &HeaderMap, body: &Value) -> String {
        field(body, "webhookEvent").unwrap_or_else(|| "jira".into())
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["webhookEvent"])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "x-atlassian-webhook-identifier").map(str::to_owned))
    }

    fn event_families(&self) -> Option<&'static [&'static str]> {
        Some(FAMILIES)
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let body = json!({
            "timestamp": now.as_millisecond(),
            "webhookEvent": "jira:issue_updated",
            "user": {"name": "chorus", "displayName": "Chorus test"},
            "issue": {
                "id": "10000",
                "key": "TEST-1",
                "self": "https://jira.invalid/rest/api/2/issue/10000",
                "fields": {"summary": note, "status": {"name": "To Do"}, "labels": []},
            },
        });
        (body, vec![("x-atlassian-webhook-identifier".into(), delivery.into())])
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "Jira → Settings → System → WebHooks → Create a WebHook\n\
             URL: the URL above · Secret: the secret above · pick the issue and comment events",
        )
    }
}

/// Jira `webhookEvent` values.
const FAMILIES: &[&str] = &[
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "jira:worklog_updated",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issuelink_created",
    "issuelink_deleted",
    "worklog_created",
    "worklog_updated",
    "worklog_deleted",
    "project_created",
    "project_updated",
    "project_deleted",
    "sprint_created",
    "sprint_started",
    "sprint_closed",
    "sprint_updated",
    "sprint_deleted",
    "board_created",
    "board_updated",
    "board_deleted",
    "version_created",
    "version_released",
    "version_updated",
    "version_deleted",
    "user_created",
    "user_updated",
    "user_deleted",
    "attachment_created",
    "attachment_deleted",
];
