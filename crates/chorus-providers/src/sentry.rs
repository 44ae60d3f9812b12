//! Sentry integrations: `Sentry-Hook-Resource` + `action`, `Request-ID`.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, field, header, key};

pub(crate) struct Sentry;

impl Provider for Sentry {
    fn source(&self) -> Source {
        Source::Sentry
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        let resource = header(headers, "sentry-hook-resource").unwrap_or("sentry");
        match field(body, "action") {
            Some(action) => format!("{resource}.{action}"),
            None => resource.to_owned(),
        }
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["action"])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "request-id").map(str::to_owned))
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let body = json!({
            "action": "created",
            "installation": {"uuid": "00000000-0000-0000-0000-000000000000"},
            "data": {"issue": {
                "id": "1", "shortId": "CHORUS-1", "title": note, "culprit": "chorus.test in sample",
                "level": "error", "status": "unresolved", "count": "1",
                "permalink": "https://sentry.io/organizations/chorus/issues/1/",
                "firstSeen": now.to_string(), "project": {"name": "Chorus", "slug": "chorus"},
            }},
            "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
        });
        let headers = vec![
            ("sentry-hook-resource".into(), "issue".into()),
            ("sentry-hook-timestamp".into(), now.as_second().to_string()),
            ("request-id".into(), delivery.into()),
        ];
        (body, headers)
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "Sentry → Settings → Developer Settings → Custom Integration\n\
             Webhook URL: the URL above · Client Secret: use it as this hook's secret (rotate-secret \
             with the value) · Alert Rule Action on · Webhooks: Issue, Error",
        )
    }
}
