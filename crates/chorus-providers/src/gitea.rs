//! Gitea and Forgejo: `X-Gitea-Event` + `.action`, `X-Gitea-Delivery`.
//! Their payloads follow GitHub's, and so does their formatting.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, header, key};

pub(crate) struct Gitea;

impl Provider for Gitea {
    fn source(&self) -> Source {
        Source::Gitea
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        let event = header(headers, "x-gitea-event")
            .or_else(|| header(headers, "x-forgejo-event"))
            .unwrap_or("gitea");
        match body.get("action").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            Some(action) => format!("{event}.{action}"),
            None => event.to_owned(),
        }
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["action"])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "x-gitea-delivery")
            .or_else(|| header(headers, "x-forgejo-delivery"))
            .map(str::to_owned))
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let sha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
        let body = json!({
            "ref": "refs/heads/main",
            "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "after": sha,
            "compare_url": "https://gitea.example.com/chorus/hello/compare/6113728f27ae...0d1a26e67d8f",
            "commits": [{"id": sha, "message": note, "timestamp": now.to_string(),
                         "url": format!("https://gitea.example.com/chorus/hello/commit/{sha}"),
                         "author": {"name": "Chorus", "username": "chorus"}}],
            "repository": {"full_name": "chorus/hello", "name": "hello", "html_url": "https://gitea.example.com/chorus/hello"},
            "pusher": {"login": "chorus"},
            "sender": {"login": "chorus", "html_url": "https://gitea.example.com/chorus"},
        });
        (body, vec![("x-gitea-event".into(), "push".into()), ("x-gitea-delivery".into(), delivery.into())])
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "Gitea or Forgejo → Repository → Settings → Webhooks → Add Webhook → Gitea\n\
             Target URL: the URL above · HTTP method POST · Content type application/json · \
             Secret: the secret above",
        )
    }
}
