//! Test sends of incoming hooks: a realistic payload for the hook's source,
//! with the headers its sender would attach, signed with the hook's secret.

use chorus_core::{IncomingHook, Secret, Source};
use jiff::Timestamp;
use serde_json::{Value, json};

/// The body and headers a sender of `hook`'s source would post.
pub(crate) fn signed(
    hook: &IncomingHook,
    secret: Option<&Secret>,
    now: Timestamp,
) -> (Vec<u8>, Vec<(String, String)>) {
    let delivery = chorus_core::random_token("chorus-test-", 12);
    let (body, mut headers) = sample(hook, &delivery, now);
    let body = serde_json::to_vec(&body).expect("a JSON value serializes");
    headers.push(("content-type".into(), "application/json".into()));
    headers.push(("user-agent".into(), concat!("Chorus-Test/", env!("CARGO_PKG_VERSION")).into()));
    if let Some(secret) = secret {
        headers.extend(chorus_verify::sign(
            hook.source,
            hook.generic.as_ref(),
            secret,
            &body,
            now,
            &delivery,
        ));
    }
    (body, headers)
}

fn sample(hook: &IncomingHook, delivery: &str, now: Timestamp) -> (Value, Vec<(String, String)>) {
    let note =
        format!("Test event from Chorus for hook \"{}\": if you read this, the hook works.", hook.name);
    let repo = json!({
        "id": 1_296_269,
        "name": "hello-world",
        "full_name": "chorus/hello-world",
        "html_url": "https://github.com/chorus/hello-world",
        "default_branch": "main",
    });
    let header = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    match hook.source {
        Source::Github => (
            json!({
                "ref": "refs/heads/main",
                "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                "created": false,
                "deleted": false,
                "forced": false,
                "compare": "https://github.com/chorus/hello-world/compare/6113728f27ae...0d1a26e67d8f",
                "commits": [{
                    "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                    "message": note,
                    "timestamp": now.to_string(),
                    "url": "https://github.com/chorus/hello-world/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                    "author": {"name": "Chorus", "username": "chorus"},
                }],
                "head_commit": {"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "message": note},
                "repository": repo,
                "pusher": {"name": "chorus"},
                "sender": {"login": "chorus", "html_url": "https://github.com/chorus"},
            }),
            vec![
                header("x-github-event", "push"),
                header("x-github-delivery", delivery),
                header("x-github-hook-id", "0"),
            ],
        ),
        Source::Gitlab => (
            json!({
                "object_kind": "push",
                "event_name": "push",
                "ref": "refs/heads/main",
                "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                "user_name": "Chorus",
                "user_username": "chorus",
                "project": {"name": "hello-world", "path_with_namespace": "chorus/hello-world", "web_url": "https://gitlab.com/chorus/hello-world"},
                "commits": [{
                    "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                    "message": note,
                    "url": "https://gitlab.com/chorus/hello-world/-/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                    "author": {"name": "Chorus"},
                }],
                "total_commits_count": 1,
            }),
            vec![header("x-gitlab-event", "Push Hook"), header("x-gitlab-event-uuid", delivery)],
        ),
        Source::Slack => (
            json!({
                "type": "event_callback",
                "event_id": delivery,
                "event_time": now.as_second(),
                "event": {"type": "message", "channel": "C0000000000", "user": "U0000000000", "text": note},
            }),
            Vec::new(),
        ),
        Source::Stripe => (
            json!({
                "id": delivery,
                "object": "event",
                "type": "chorus.test",
                "created": now.as_second(),
                "livemode": false,
                "data": {"object": {"description": note}},
            }),
            Vec::new(),
        ),
        Source::Jira => (
            json!({
                "timestamp": now.as_millisecond(),
                "webhookEvent": "jira:issue_updated",
                "user": {"name": "chorus", "displayName": "Chorus test"},
                "issue": {
                    "id": "10000",
                    "key": "TEST-1",
                    "self": "https://jira.invalid/rest/api/2/issue/10000",
                    "fields": {"summary": note, "status": {"name": "To Do"}, "labels": []},
                },
            }),
            vec![header("x-atlassian-webhook-identifier", delivery)],
        ),
        Source::Chorus | Source::Standard | Source::Generic | Source::None => (
            json!({"type": "chorus.test", "message": note, "timestamp": now.to_string()}),
            vec![header("x-chorus-delivery", delivery)],
        ),
    }
}
