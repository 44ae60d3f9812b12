//! Bitbucket Cloud and Server: `X-Event-Key`, `X-Request-UUID` (Cloud) or
//! `X-Request-Id` (Server).

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, header, key};

pub(crate) struct Bitbucket;

impl Provider for Bitbucket {
    fn source(&self) -> Source {
        Source::Bitbucket
    }

    fn event_type(&self, headers: &HeaderMap, _body: &Value) -> String {
        header(headers, "x-event-key").unwrap_or("bitbucket").to_owned()
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "x-request-uuid").or_else(|| header(headers, "x-request-id")).map(str::to_owned))
    }

    fn sample(&self, delivery: &str, _now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let hash = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
        let body = json!({
            "actor": {"display_name": "Chorus", "nickname": "chorus"},
            "repository": {"full_name": "chorus/hello", "name": "hello",
                           "links": {"html": {"href": "https://bitbucket.org/chorus/hello"}}},
            "push": {"changes": [{
                "new": {"type": "branch", "name": "main",
                        "links": {"html": {"href": "https://bitbucket.org/chorus/hello/branch/main"}}},
                "old": {"type": "branch", "name": "main"},
                "links": {"html": {"href": "https://bitbucket.org/chorus/hello/branches/compare/x..y"}},
                "commits": [{"hash": hash, "message": note,
                             "links": {"html": {"href": format!("https://bitbucket.org/chorus/hello/commits/{hash}")}}}],
            }]},
        });
        (body, vec![("x-event-key".into(), "repo:push".into()), ("x-request-uuid".into(), delivery.into())])
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "Bitbucket → Repository settings → Webhooks → Add webhook\n\
             URL: the URL above · Secret: the secret above · Triggers: Push, Pull request events",
        )
    }
}
