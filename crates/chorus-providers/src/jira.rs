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

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "x-atlassian-webhook-identifier").map(str::to_owned))
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
