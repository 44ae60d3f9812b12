//! GitHub: `X-GitHub-Event` plus the payload's `action`, `X-GitHub-Delivery`.

use chorus_core::Source;
use http::HeaderMap;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::{Provider, header, key};

pub(crate) struct Github;

impl Provider for Github {
    fn source(&self) -> Source {
        Source::Github
    }

    fn event_type(&self, headers: &HeaderMap, body: &Value) -> String {
        let event = header(headers, "x-github-event").unwrap_or("unknown");
        match body.get("action").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            Some(action) => format!("{event}.{action}"),
            None => event.to_owned(),
        }
    }

    fn ingress_fields(&self) -> Option<&'static [&'static str]> {
        Some(&["action"])
    }

    fn delivery_key(&self, headers: &HeaderMap, _body: Option<&Value>) -> Option<String> {
        key(header(headers, "x-github-delivery").map(str::to_owned))
    }

    fn event_families(&self) -> Option<&'static [&'static str]> {
        Some(FAMILIES)
    }

    fn sample(&self, delivery: &str, now: Timestamp, note: &str) -> (Value, Vec<(String, String)>) {
        let sha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
        let body = json!({
            "ref": "refs/heads/main",
            "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
            "after": sha,
            "created": false,
            "deleted": false,
            "forced": false,
            "compare": "https://github.com/chorus/hello-world/compare/6113728f27ae...0d1a26e67d8f",
            "commits": [{
                "id": sha,
                "message": note,
                "timestamp": now.to_string(),
                "url": format!("https://github.com/chorus/hello-world/commit/{sha}"),
                "author": {"name": "Chorus", "username": "chorus"},
            }],
            "head_commit": {"id": sha, "message": note},
            "repository": {
                "id": 1_296_269,
                "name": "hello-world",
                "full_name": "chorus/hello-world",
                "html_url": "https://github.com/chorus/hello-world",
                "default_branch": "main",
            },
            "pusher": {"name": "chorus"},
            "sender": {"login": "chorus", "html_url": "https://github.com/chorus"},
        });
        let headers = vec![
            ("x-github-event".into(), "push".into()),
            ("x-github-delivery".into(), delivery.into()),
            ("x-github-hook-id".into(), "0".into()),
        ];
        (body, headers)
    }

    fn setup(&self) -> Option<&'static str> {
        Some(
            "Add this to your repo settings:\nSettings → Webhooks → Add webhook\n\
             Payload URL: the URL above · Content type: `application/json` · Secret: the secret above\n\n\
             Events to subscribe:\n✓ Push events\n✓ Pull requests\n✓ Issues\n✓ Releases\n✓ Workflow runs",
        )
    }
}

/// `X-GitHub-Event` values; Chorus appends `.<action>` where the payload has one.
const FAMILIES: &[&str] = &[
    "branch_protection_rule",
    "check_run",
    "check_suite",
    "code_scanning_alert",
    "commit_comment",
    "create",
    "delete",
    "dependabot_alert",
    "deploy_key",
    "deployment",
    "deployment_protection_rule",
    "deployment_review",
    "deployment_status",
    "discussion",
    "discussion_comment",
    "fork",
    "gollum",
    "installation",
    "installation_repositories",
    "issue_comment",
    "issues",
    "label",
    "member",
    "membership",
    "merge_group",
    "meta",
    "milestone",
    "organization",
    "package",
    "page_build",
    "ping",
    "project",
    "project_card",
    "project_column",
    "projects_v2",
    "projects_v2_item",
    "public",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "push",
    "registry_package",
    "release",
    "repository",
    "repository_dispatch",
    "repository_vulnerability_alert",
    "secret_scanning_alert",
    "security_advisory",
    "sponsorship",
    "star",
    "status",
    "team",
    "team_add",
    "watch",
    "workflow_dispatch",
    "workflow_job",
    "workflow_run",
];
