//! CircleCI webhooks: `circleci-event-type` (or the body's `type`), the
//! body's `id`.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, field, header, key};

pub(crate) struct Circleci;

impl Provider for Circleci {
    fn source(&self) -> Source {
        Source::Circleci
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        header(headers, "circleci-event-type")
            .map(str::to_owned)
            .or_else(|| field(body, "type"))
            .unwrap_or_else(|| "circleci".into())
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["type", "id"])
    }

    fn delivery_key(&self, _headers: &HeaderMap, body: Option<&Value>) -> Option<String> {
        key(body.and_then(|b| field(b, "id")))
    }

    fn event_families(&self) -> Option<&'static [&'static str]> {
        Some(&["workflow-completed", "job-completed", "ping"])
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let body = json!({
            "type": "workflow-completed",
            "id": delivery,
            "happened_at": now.to_string(),
            "workflow": {"id": "1", "name": "build", "status": "success", "created_at": now.to_string(),
                         "stopped_at": now.to_string(), "url": "https://app.circleci.com/pipelines/gh/chorus/hello/1"},
            "pipeline": {"id": "1", "number": 1, "vcs": {"branch": "main",
                         "revision": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "commit": {"subject": note}}},
            "project": {"id": "1", "name": "hello", "slug": "gh/chorus/hello"},
            "organization": {"id": "1", "name": "chorus"},
        });
        (body, vec![("circleci-event-type".into(), "workflow-completed".into())])
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "CircleCI → Project Settings → Webhooks → Add Webhook\n\
             Receiver URL: the URL above · Secret token: the secret above · \
             Events: Workflow Completed, Job Completed",
        )
    }
}
