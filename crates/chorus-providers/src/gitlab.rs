//! GitLab: `object_kind`, `X-Gitlab-Event-UUID`.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, field, header, key};

pub(crate) struct Gitlab;

impl Provider for Gitlab {
    fn source(&self) -> Source {
        Source::Gitlab
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        field(body, "object_kind")
            .or_else(|| field(body, "event_name"))
            .or_else(|| {
                header(headers, "x-gitlab-event")
                    .map(|h| h.trim_end_matches(" Hook").to_lowercase().replace(' ', "_"))
            })
            .unwrap_or_else(|| "unknown".into())
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["object_kind", "event_name"])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "x-gitlab-event-uuid")
            .or_else(|| header(headers, "idempotency-key"))
            .map(str::to_owned))
    }

    fn event_families(&self) -> Option<&'static [&'static str]> {
        Some(FAMILIES)
    }

    fn sample(&self, delivery: &str, _now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let sha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
        let body = json!({
            "object_kind": "push",
            "event_name": "push",
            "ref": "refs/heads/main",
            "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "after": sha,
            "user_name": "Chorus",
            "user_username": "chorus",
            "project": {"name": "hello-world", "path_with_namespace": "chorus/hello-world", "web_url": "https://gitlab.com/chorus/hello-world"},
            "commits": [{
                "id": sha,
                "message": note,
                "url": format!("https://gitlab.com/chorus/hello-world/-/commit/{sha}"),
                "author": {"name": "Chorus"},
            }],
            "total_commits_count": 1,
        });
        (
            body,
            vec![
                ("x-gitlab-event".into(), "Push Hook".into()),
                ("x-gitlab-event-uuid".into(), delivery.into()),
            ],
        )
    }
}

/// GitLab `object_kind` values.
const FAMILIES: &[&str] = &[
    "push",
    "tag_push",
    "issue",
    "work_item",
    "note",
    "merge_request",
    "wiki_page",
    "pipeline",
    "build",
    "deployment",
    "feature_flag",
    "release",
    "emoji",
    "access_token",
    "member",
    "project",
    "subgroup",
    "vulnerability",
];
