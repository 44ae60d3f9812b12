//! Rules act: real GitHub payloads through a hook's rules, each action
//! proven by its effect (the message in the fake Discord, the task in the
//! API, the forward at a receiver), never by a 2xx alone.

use std::time::Duration;

use chorus_core::Secret;
use chorus_testkit::TestReceiver;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, WAIT, github_headers};

/// A fixture of `../shared/fixtures/github`, or `None` (with the testkit's
/// notice) where the fixtures are absent.
fn fixture(name: &str) -> Option<Value> {
    let dir = chorus_testkit::fixtures_dir()?;
    Some(serde_json::from_slice(&std::fs::read(dir.join("github").join(name)).unwrap()).unwrap())
}

async fn send(
    app: &TestApp,
    hook: &crate::support::Hook,
    event: &str,
    delivery: &str,
    body: &Value,
) -> Value {
    let body = serde_json::to_vec(body).unwrap();
    let headers = github_headers(hook.secret.as_deref().unwrap(), event, delivery, &body);
    let resp = app.post(&hook.url, &headers, body).await;
    assert_eq!(resp.status(), 202);
    resp.json().await.unwrap()
}

/// The event as the log shows it, once routed.
pub(crate) async fn routed(app: &TestApp, hook: &str, event_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, v) = app.api_json(Method::GET, &format!("/api/webhooks/{hook}/events?limit=250"), None).await;
        if let Some(e) = v["items"].as_array().unwrap().iter().find(|e| e["id"] == event_id)
            && e["status"] != "received"
        {
            return e.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "event {event_id} was not routed");
        // The router is woken by ingress; this only paces the polling of
        // the API between its commits.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn labelled_issues_become_tasks_and_unmatched_events_say_so() {
    let Some(labeled) = fixture("issues.labeled.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    app.agent("planning", "5151").await;
    // The seed's "Brain creates webhook" rule, with a template.
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "github", "name": "GitHub Urgent Issues",
            "commands": [{
                "trigger": "issues.labeled", "action": "create_task", "agent": "planning",
                "template": "Analyze issue: {{issue.title}} (by {{author}} in {{repo}})\n\n{{issue.body}}",
                "conditions": {"label": "urgent"}
            }]
        }))
        .await;

    // As the fixture is, the label is `bug`: the rule does not fire.
    let first = send(&app, &hook, "issues", "d-1", &labeled).await;
    let e = routed(&app, &hook.id, first["event_id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "unmatched", "{e}");
    assert_eq!(e["rules"][0]["result"], "skipped");
    assert!(e["matched_command"].is_null());

    // Labelled urgent: a task for planning, with the rendered title, posted
    // to planning's channel with its id.
    let mut urgent = labeled.clone();
    urgent["label"]["name"] = json!("urgent");
    let second = send(&app, &hook, "issues", "d-2", &urgent).await;
    let e = routed(&app, &hook.id, second["event_id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "routed", "{e}");
    let task_id = e["task_id"].as_str().expect("a task id in the log").to_owned();
    assert!(e["matched_command"].as_str().unwrap().starts_with("cmd_"));

    let (status, task) = app.api_json(Method::GET, &format!("/api/tasks/{task_id}"), None).await;
    assert_eq!(status, 200, "{task}");
    let title = format!(
        "Analyze issue: {} (by {} in {})",
        labeled["issue"]["title"].as_str().unwrap(),
        labeled["sender"]["login"].as_str().unwrap(),
        labeled["repository"]["full_name"].as_str().unwrap()
    );
    assert_eq!(task["title"], title);
    assert_eq!(task["agent"], "planning");
    assert_eq!(task["status"], "open");
    assert_eq!(task["url"], labeled["issue"]["html_url"]);
    assert_eq!(task["event_id"], second["event_id"]);

    let messages = app.discord.wait_for_messages(1, WAIT).await;
    assert_eq!(messages.len(), 1, "only the task was posted: {messages:?}");
    let (channel, message) = &messages[0];
    assert_eq!(channel, "5151");
    let text = message.to_string();
    assert!(text.contains(&task_id) && text.contains("Analyze issue"), "{text}");

    let (_, open) = app.api_json(Method::GET, "/api/tasks?agent=planning&status=open", None).await;
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn finishing_a_task_emits_its_events_once() {
    let Some(opened) = fixture("issues.opened.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let receiver = TestReceiver::start().await;
    app.outgoing(json!({"url": receiver.url("/tasks"), "events": ["task.*", "agent.task_complete"]})).await;
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "github",
            "commands": [{"trigger": "issues.opened", "action": "create_task", "conditions": {"labels": ["bug", "enhancement"]}}]
        }))
        .await;
    let sent = send(&app, &hook, "issues", "d-1", &opened).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    let task_id = e["task_id"].as_str().unwrap().to_owned();
    // Without a template the task carries the formatter's title.
    let (_, task) = app.api_json(Method::GET, &format!("/api/tasks/{task_id}"), None).await;
    assert!(task["title"].as_str().unwrap().contains(opened["issue"]["title"].as_str().unwrap()), "{task}");

    let path = format!("/api/tasks/{task_id}/complete");
    let (status, done) = app.api_json(Method::POST, &path, Some(json!({"result": "Fixed in #2"}))).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!((done["status"].as_str(), done["result"].as_str()), (Some("done"), Some("Fixed in #2")));
    let got = receiver.wait_for(2, WAIT).await;
    let mut names: Vec<String> = got.iter().map(|r| r.json()["event"].as_str().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(names, ["agent.task_complete", "task.executed"]);
    assert_eq!(got[0].json()["data"]["task_id"], task_id);

    // Finished is final: a second completion or a failure is refused and
    // changes nothing.
    let (status, err) = app.api_json(Method::POST, &path, None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("conflict")));
    let (status, _) = app.api_json(Method::POST, &format!("/api/tasks/{task_id}/fail"), None).await;
    assert_eq!(status, 409);
    let (_, still) = app.api_json(Method::GET, &format!("/api/tasks/{task_id}"), None).await;
    assert_eq!(still["result"], "Fixed in #2");
    // Bad inputs.
    for (method, path, body, code) in [
        (Method::GET, "/api/tasks/task_nope".to_owned(), None, 404),
        (Method::GET, "/api/tasks?status=sleeping".to_owned(), None, 400),
        (Method::GET, "/api/tasks?agent=Not%20A%20Name".to_owned(), None, 400),
        (Method::POST, "/api/tasks/task_nope/complete".to_owned(), None, 404),
        (Method::PATCH, format!("/api/tasks/{task_id}"), Some(json!({"title": " "})), 400),
        (Method::PATCH, format!("/api/tasks/{task_id}"), Some(json!({"colour": "red"})), 400),
    ] {
        let (status, v) = app.api_json(method.clone(), &path, body).await;
        assert_eq!(status, code, "{method} {path}: {v}");
    }
    // One task.executed and one agent.task_complete: nothing more arrived.
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn forwards_carry_the_original_body_signed_and_stop_ends_evaluation() {
    let Some(push) = fixture("push.commits.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let receiver = TestReceiver::start().await;
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "github",
            "commands": [
                {"trigger": "push", "action": "forward", "url": receiver.url("/ci"), "priority": 10,
                 "conditions": {"ignore_bots": true}},
                {"trigger": "push", "action": "notify", "priority": 5, "stop": true,
                 "template": "{{author}} pushed to {{branch}} ({{commit_count}} commits): {{latest_commit_message}}"},
                {"trigger": "*", "action": "notify", "template": "never reached for a push"}
            ]
        }))
        .await;
    let sent = send(&app, &hook, "push", "d-1", &push).await;
    let got = receiver.wait_for(1, WAIT).await;
    let raw = serde_json::to_vec(&push).unwrap();
    assert_eq!(got[0].body.as_ref(), raw.as_slice(), "the original body, byte for byte");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(got[0].header("x-webhook-event"), Some("push"));
    assert_eq!(got[0].header("x-chorus-event-id"), sent["event_id"].as_str());
    let secret = Secret::new(hook.secret.clone().unwrap());
    assert_eq!(
        got[0].header("x-chorus-signature-256"),
        Some(chorus_verify::sign_body_hex(&secret, &raw).as_str()),
        "signed with the hook's secret"
    );
    assert!(got[0].header("idempotency-key").is_some_and(|k| k.starts_with("dlv_") || !k.is_empty()));

    let messages = app.discord.wait_for_messages(1, WAIT).await;
    let text = messages[0].1.to_string();
    let branch = push["ref"].as_str().unwrap().trim_start_matches("refs/heads/");
    let expected = format!(
        "{} pushed to {branch} ({} commits): {}",
        push["sender"]["login"].as_str().unwrap(),
        push["commits"].as_array().unwrap().len(),
        push["head_commit"]["message"].as_str().unwrap().lines().next().unwrap()
    );
    assert!(text.contains(&expected), "{expected:?} not in {text}");
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    let rules = e["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "evaluation stopped at the rule with stop: {e}");
    assert!(rules.iter().all(|r| r["result"] == "fired"));

    // A bot's push is not forwarded (ignore_bots), but still notified.
    let mut bot = push.clone();
    bot["sender"]["login"] = json!("dependabot[bot]");
    bot["sender"]["type"] = json!("Bot");
    let sent = send(&app, &hook, "push", "d-2", &bot).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    assert_eq!(e["rules"][0]["result"], "skipped", "{e}");
    assert_eq!(e["rules"][1]["result"], "fired");
    app.discord.wait_for_messages(2, WAIT).await;
    assert_eq!(receiver.received().len(), 1, "nothing forwarded for the bot");
}

#[tokio::test]
async fn alert_if_fires_on_the_second_approval_only() {
    let Some(review) = fixture("pull_request_review.submitted-approved.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "github",
            "commands": [{
                "trigger": "pull_request_review", "action": "notify",
                "template": "PR #{{number}} has {{pr.reviews}} approvals",
                "conditions": {"if": "pr.status == 'approved' and pr.reviews >= 2"}
            }]
        }))
        .await;
    let first = send(&app, &hook, "pull_request_review", "r-1", &review).await;
    let e = routed(&app, &hook.id, first["event_id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "unmatched", "one approval is not enough: {e}");

    let mut second = review.clone();
    second["review"]["user"]["login"] = json!("second-reviewer");
    second["review"]["id"] = json!(2);
    let sent = send(&app, &hook, "pull_request_review", "r-2", &second).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "routed", "{e}");
    let messages = app.discord.wait_for_messages(1, WAIT).await;
    let n = review["pull_request"]["number"].as_u64().unwrap();
    assert!(messages[0].1.to_string().contains(&format!("PR #{n} has 2 approvals")), "{messages:?}");

    // The same reviewer approving again does not count twice.
    let sent = send(&app, &hook, "pull_request_review", "r-3", &second).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    assert_eq!(e["status"], "routed");
    let messages = app.discord.wait_for_messages(2, WAIT).await;
    assert!(messages[1].1.to_string().contains("has 2 approvals"));
}

#[tokio::test]
async fn bad_rules_are_refused_with_their_field_and_change_nothing() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let path = format!("/api/webhooks/{}/commands", hook.id);
    for (rule, field) in [
        (json!({"trigger": "push", "agent": "ghost"}), "agent"),
        (json!({"trigger": "push", "template": "{{ unclosed"}), "template"),
        (json!({"trigger": "push", "conditions": {"if": "pr.reviews >="}}), "conditions.if"),
        (json!({"trigger": "push", "action": "forward", "url": "http://10.0.0.1/x"}), "url"),
        (json!({"trigger": "jira:issue_created"}), "trigger"),
        (json!({"trigger": "push", "action": "comment"}), "action"),
        (json!({"trigger": "push", "conditions": {"not": "main"}}), "conditions.not"),
        (json!({"trigger": "push", "conditions": {"labels": []}}), "conditions.labels"),
    ] {
        let (status, v) = app.api_json(Method::POST, &path, Some(rule.clone())).await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some(field)), "{rule}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request");
    }
    let (_, v) = app
        .api_json(Method::POST, &path, Some(json!({"trigger": "push", "template": "a\n{{ x ++ }}"})))
        .await;
    assert!(v["error"]["message"].as_str().unwrap().contains("line 2"), "the position is named: {v}");
    let (_, list) = app.api_json(Method::GET, &path, None).await;
    assert_eq!(list["items"], json!([]), "nothing was stored");
}

fn other_fixture(path: &str) -> Option<Value> {
    let dir = chorus_testkit::fixtures_dir()?;
    Some(serde_json::from_slice(&std::fs::read(dir.join(path)).unwrap()).unwrap())
}

/// Post `body` signed as `source` would sign it, with the hook's secret.
async fn send_as(
    app: &TestApp,
    hook: &crate::support::Hook,
    source: chorus_core::Source,
    headers: &[(&str, &str)],
    body: &Value,
) -> Value {
    let raw = serde_json::to_vec(body).unwrap();
    let secret = Secret::new(hook.secret.clone().unwrap());
    let mut all: Vec<(String, String)> = chorus_verify::sign(
        source,
        None,
        &secret,
        &raw,
        chorus_core::Clock::now(&chorus_core::SystemClock),
        "delivery-id",
    );
    all.push(("content-type".into(), "application/json".into()));
    all.extend(headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let resp = app.post(&hook.url, &all, raw).await;
    assert_eq!(resp.status(), 202);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn jira_comments_use_sealed_credentials_and_derived_fields() {
    use chorus_testkit::{FakeForge, Forge};
    let Some(updated) = other_fixture("other/jira.issue_updated.status-changed.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let jira = FakeForge::start(Forge::Jira, Some("bot@example.com"), "jira-api-token").await;
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "jira",
            "reply": {"email": "bot@example.com", "token": "jira-api-token", "api_url": jira.base()},
            "commands": [{"trigger": "jira:issue_*", "action": "comment", "template": "Seen {{number}} ({{status}})"}]
        }))
        .await;
    let (_, shown) = app.api_json(Method::GET, &format!("/api/webhooks/{}", hook.id), None).await;
    assert_eq!(shown["reply"]["token"], "********", "{shown}");
    assert!(!shown.to_string().contains("jira-api-token"));
    assert!(!app.data_files_contain("jira-api-token"), "the token is sealed at rest");

    send_as(&app, &hook, chorus_core::Source::Jira, &[("x-atlassian-webhook-identifier", "j-2")], &updated)
        .await;
    let got = jira.wait_for(1, WAIT).await;
    let key = updated["issue"]["key"].as_str().unwrap();
    let status = updated["issue"]["fields"]["status"]["name"].as_str().unwrap();
    assert_eq!(got[0].path, format!("/rest/api/2/issue/{key}/comment"));
    assert_eq!(got[0].status, 201, "Basic email:token accepted");
    assert_eq!(got[0].json(), json!({"body": format!("Seen {key} ({status})")}));
    assert!(got[0].header("idempotency-key").is_some());
}

#[tokio::test]
async fn comments_go_back_to_github_and_gitlab_threads() {
    use chorus_testkit::{FakeForge, Forge};
    let (Some(comment), Some(note)) =
        (fixture("issue_comment.created.json"), other_fixture("gitlab/note.issue.json"))
    else {
        return;
    };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let github = FakeForge::start(Forge::Github, None, "ghp_test_token").await;
    let gitlab = FakeForge::start(Forge::Gitlab, None, "glpat-test-token").await;
    let gh = app
        .hook(json!({
            "agent": "builder", "source": "github",
            "reply": {"token": "ghp_test_token", "api_url": github.base()},
            "commands": [{"trigger": "issue_comment.created", "action": "comment",
                          "template": "Thanks {{author}}, on it."}]
        }))
        .await;
    send(&app, &gh, "issue_comment", "c-1", &comment).await;
    let got = github.wait_for(1, WAIT).await;
    let repo = comment["repository"]["full_name"].as_str().unwrap();
    let n = comment["issue"]["number"].as_u64().unwrap();
    assert_eq!(
        (got[0].path.as_str(), got[0].status),
        (format!("/repos/{repo}/issues/{n}/comments").as_str(), 201)
    );
    let login = comment["sender"]["login"].as_str().unwrap();
    assert_eq!(got[0].json()["body"], format!("Thanks {login}, on it."));
    assert_eq!(got[0].header("x-github-api-version"), Some("2022-11-28"));

    let gl = app
        .hook(json!({
            "agent": "builder", "source": "gitlab",
            "reply": {"token": "glpat-test-token", "api_url": gitlab.base()},
            "commands": [{"trigger": "note", "action": "comment", "template": "Noted: {{title}}"}]
        }))
        .await;
    let raw = serde_json::to_vec(&note).unwrap();
    let headers = vec![
        ("x-gitlab-token".to_owned(), gl.secret.clone().unwrap()),
        ("x-gitlab-event".to_owned(), "Note Hook".to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    assert_eq!(app.post(&gl.url, &headers, raw).await.status(), 202);
    let got = gitlab.wait_for(1, WAIT).await;
    let project = note["project"]["id"].as_u64().unwrap();
    let iid = note["issue"]["iid"].as_u64().unwrap();
    assert_eq!(got[0].path, format!("/api/v4/projects/{project}/issues/{iid}/notes"));
    assert_eq!(got[0].status, 201, "PRIVATE-TOKEN accepted");
    assert_eq!(got[0].json()["body"], format!("Noted: {}", note["issue"]["title"].as_str().unwrap()));

    // A wrong token is refused by the API: the delivery fails for good (no
    // retry storm) and shows why; fixing the token and retrying sends it.
    let (status, _) = app
        .api_json(
            Method::PATCH,
            &format!("/api/webhooks/{}", gh.id),
            Some(json!({"reply": {"token": "wrong", "api_url": github.base()}})),
        )
        .await;
    assert_eq!(status, 200);
    let mut second = comment.clone();
    second["comment"]["id"] = json!(2);
    send(&app, &gh, "issue_comment", "c-2", &second).await;
    let got = github.wait_for(2, WAIT).await;
    assert_eq!(got[1].status, 401);
    assert_eq!(github.comments().len(), 1);
}

#[tokio::test]
async fn comment_rules_need_a_source_that_takes_comments_and_credentials() {
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let bare = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let path = format!("/api/webhooks/{}/commands", bare.id);
    let (status, v) =
        app.api_json(Method::POST, &path, Some(json!({"trigger": "issues", "action": "comment"}))).await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("action")), "{v}");
    for (body, field) in [
        (json!({"agent": "builder", "source": "slack", "reply": {"token": "x"}}), "reply"),
        (json!({"agent": "builder", "source": "jira", "reply": {"token": "x"}}), "reply.api_url"),
        (json!({"agent": "builder", "source": "github", "reply": {"token": ""}}), "reply.token"),
        (
            json!({"agent": "builder", "source": "github", "reply": {"token": "t", "api_url": "http://10.1.2.3"}}),
            "reply.api_url",
        ),
        (
            json!({"agent": "builder", "source": "jira", "reply": {"token": "t", "email": "nope", "api_url": "https://x.atlassian.net"}}),
            "reply.email",
        ),
        (
            json!({"agent": "builder", "source": "stripe", "commands": [{"trigger": "*", "action": "comment"}]}),
            "commands[0].action",
        ),
    ] {
        let (status, v) = app.api_json(Method::POST, "/api/webhooks", Some(body.clone())).await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some(field)), "{body}: {v}");
    }
    let (_, list) = app.api_json(Method::GET, "/api/webhooks?type=incoming", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "nothing was created");
}

#[tokio::test]
async fn respond_answers_the_sender_in_the_ingress_response() {
    let Some(message) = other_fixture("other/slack.event_callback.message.json") else { return };
    let app = TestApp::start().await;
    app.agent("brain", "5252").await;
    let channel = message["event"]["channel"].as_str().unwrap();
    // A channel written with its `#`, a family trigger.
    let slack = app
        .hook(json!({
            "agent": "brain", "source": "slack",
            "commands": [{"trigger": "message", "action": "respond",
                          "template": "On it, {{author}}: {{text}}",
                          "conditions": {"channel": format!("#{channel}")}}]
        }))
        .await;
    let raw = serde_json::to_vec(&message).unwrap();
    let secret = Secret::new(slack.secret.clone().unwrap());
    let mut headers = chorus_verify::sign(
        chorus_core::Source::Slack,
        None,
        &secret,
        &raw,
        chorus_core::Clock::now(&chorus_core::SystemClock),
        "x",
    );
    headers.push(("content-type".into(), "application/json".into()));
    let resp = app.post(&slack.url, &headers, raw).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    let text = message["event"]["text"].as_str().unwrap();
    let user = message["event"]["user"].as_str().unwrap();
    assert_eq!(answer, json!({"text": format!("On it, {user}: {text}")}));
    // The log says an answer went out (the event id comes from the log: the
    // Slack answer carries only the text).
    let deadline = tokio::time::Instant::now() + WAIT;
    let e = loop {
        let (_, v) = app.api_json(Method::GET, &format!("/api/webhooks/{}/events", slack.id), None).await;
        if let Some(e) = v["items"].as_array().unwrap().first().filter(|e| e["status"] != "received") {
            break e.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "not routed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(e["response_sent"], true, "{e}");

    // Other sources get the answer beside the event id; a message elsewhere
    // gets no answer.
    let generic = app
        .hook(json!({"agent": "brain", "source": "chorus",
                     "commands": [{"trigger": "*", "action": "respond", "template": "ack {{message}}",
                                   "conditions": {"severity": "high"}}]}))
        .await;
    let body =
        serde_json::to_vec(&json!({"type": "alert", "message": "disk full", "severity": "high"})).unwrap();
    let resp = app
        .post(&generic.url, &crate::support::chorus_headers(generic.secret.as_deref().unwrap(), &body), body)
        .await;
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["response"], "ack disk full");
    assert!(v["event_id"].as_str().is_some());
    let body = serde_json::to_vec(&json!({"type": "alert", "message": "meh", "severity": "low"})).unwrap();
    let resp = app
        .post(&generic.url, &crate::support::chorus_headers(generic.secret.as_deref().unwrap(), &body), body)
        .await;
    let v: Value = resp.json().await.unwrap();
    assert!(v.get("response").is_none(), "{v}");

    // A respond rule needs its answer.
    let (status, v) = app
        .api_json(
            Method::POST,
            &format!("/api/webhooks/{}/commands", generic.id),
            Some(json!({"trigger": "*", "action": "respond"})),
        )
        .await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("template")), "{v}");
    // A rule added later answers the next request (ingress's cached rules
    // are dropped when rules change).
    let low = json!({"trigger": "*", "action": "respond", "template": "low: {{message}}", "conditions": {"severity": "low"}});
    let (status, _) =
        app.api_json(Method::POST, &format!("/api/webhooks/{}/commands", generic.id), Some(low)).await;
    assert_eq!(status, 201);
    let body = serde_json::to_vec(&json!({"type": "alert", "message": "meh", "severity": "low"})).unwrap();
    let resp = app
        .post(&generic.url, &crate::support::chorus_headers(generic.secret.as_deref().unwrap(), &body), body)
        .await;
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["response"], "low: meh");
}

#[tokio::test]
async fn the_seed_issue_tracker_asks_brain_and_the_answer_becomes_a_comment() {
    use chorus_testkit::{FakeForge, Forge};
    let (Some(opened), Some(comment)) =
        (fixture("issues.opened.json"), fixture("issue_comment.created.json"))
    else {
        return;
    };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    app.agent("planning", "5151").await;
    app.agent("brain", "5252").await;
    let github = FakeForge::start(Forge::Github, None, "ghp_seed").await;
    // Seed 001's example 1, its rules as written.
    let hook = app
        .hook(json!({
            "agent": "builder", "name": "GitHub Issue Tracker", "source": "github", "enabled": true,
            "reply": {"token": "ghp_seed", "api_url": github.base()},
            "commands": [
                {"trigger": "issues.opened", "action": "create_task", "agent": "planning",
                 "template": "Analyze issue: {{issue.title}}\n\n{{issue.body}}",
                 "conditions": {"labels": ["bug", "enhancement"]}},
                {"trigger": "issue_comment.created", "action": "ask", "agent": "brain",
                 "template": "User asked: {{comment.body}}",
                 "conditions": {"body_contains": "@agent"}}
            ]
        }))
        .await;
    let sent = send(&app, &hook, "issues", "s-1", &opened).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    let (_, task) =
        app.api_json(Method::GET, &format!("/api/tasks/{}", e["task_id"].as_str().unwrap()), None).await;
    assert_eq!(task["title"], format!("Analyze issue: {}", opened["issue"]["title"].as_str().unwrap()));

    // A comment without @agent asks nothing; one with it asks brain.
    let quiet = send(&app, &hook, "issue_comment", "s-2", &comment).await;
    assert_eq!(routed(&app, &hook.id, quiet["event_id"].as_str().unwrap()).await["status"], "unmatched");
    let mut asking = comment.clone();
    asking["comment"]["body"] = json!("@agent can you reproduce this?");
    let sent = send(&app, &hook, "issue_comment", "s-3", &asking).await;
    let event_id = sent["event_id"].as_str().unwrap().to_owned();
    let e = routed(&app, &hook.id, &event_id).await;
    let question = e["rules"][0]["question_id"].as_str().expect("a question").to_owned();
    app.discord
        .wait_until("the question in brain's channel", WAIT, |d| {
            d.messages().iter().any(|(c, m)| {
                c == "5252" && m.to_string().contains("User asked: @agent can you reproduce this?")
            })
        })
        .await;

    // The answer goes back to the issue as a comment, and brain's channel
    // shows the question answered.
    let (status, v) = app
        .api_json(
            Method::POST,
            &format!("/api/webhooks/{}/respond", hook.id),
            Some(json!({"event_id": event_id, "response": "Yes: reproduced on main."})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["question_id"], question);
    let got = github.wait_for(1, WAIT).await;
    let n = comment["issue"]["number"].as_u64().unwrap();
    let repo = comment["repository"]["full_name"].as_str().unwrap();
    assert_eq!(
        (got[0].path.as_str(), got[0].status),
        (format!("/repos/{repo}/issues/{n}/comments").as_str(), 201)
    );
    assert_eq!(got[0].json()["body"], "Yes: reproduced on main.");
    app.discord
        .wait_until("the answer in brain's channel", WAIT, |d| {
            d.messages()
                .iter()
                .any(|(c, m)| c == "5252" && m.to_string().contains(&format!("Answered {question}")))
        })
        .await;

    // Seed 001's interactive endpoints on the same event.
    let path = |verb: &str| format!("/api/webhooks/{}/{verb}", hook.id);
    let (status, v) = app
        .api_json(
            Method::POST,
            &path("comment"),
            Some(json!({"event_id": event_id, "message": "I've created task-456"})),
        )
        .await;
    assert_eq!(status, 202, "{v}");
    let (status, q) = app
        .api_json(
            Method::POST,
            &path("ask"),
            Some(json!({"event_id": event_id, "question": "Which version?"})),
        )
        .await;
    assert_eq!((status, q["status"].as_str()), (201, Some("pending")), "{q}");
    let got = github.wait_for(3, WAIT).await;
    let bodies: Vec<String> = got.iter().map(|r| r.json()["body"].as_str().unwrap().to_owned()).collect();
    assert!(
        bodies.contains(&"I've created task-456".to_owned())
            && bodies.contains(&"❓ Which version?".to_owned()),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn interactive_endpoints_refuse_bad_input_and_sources_without_a_way_back() {
    use chorus_testkit::{FakeForge, Forge};
    let Some(comment) = fixture("issue_comment.created.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let github = FakeForge::start(Forge::Github, None, "ghp_seed").await;
    let hook = app
        .hook(json!({"agent": "builder", "source": "github", "reply": {"token": "ghp_seed", "api_url": github.base()}}))
        .await;
    let sent = send(&app, &hook, "issue_comment", "s-1", &comment).await;
    let event_id = sent["event_id"].as_str().unwrap().to_owned();
    let path = |verb: &str| format!("/api/webhooks/{}/{verb}", hook.id);
    // Bad inputs: each refused, nothing sent.
    let other = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let stripe = app.hook(json!({"agent": "builder", "source": "stripe"})).await;
    for (p, body, code) in [
        (path("comment"), json!({"event_id": "evt_nope", "message": "x"}), 404),
        (path("comment"), json!({"event_id": event_id, "message": "  "}), 400),
        (path("comment"), json!({"event_id": event_id}), 400),
        (path("respond"), json!({"event_id": event_id, "response": "x", "extra": 1}), 400),
        (format!("/api/webhooks/{}/comment", other.id), json!({"event_id": event_id, "message": "x"}), 404),
        ("/api/webhooks/hk_nope/ask".to_owned(), json!({"event_id": event_id, "question": "x"}), 404),
    ] {
        let (status, v) = app.api_json(Method::POST, &p, Some(body.clone())).await;
        assert_eq!(status, code, "{p} {body}: {v}");
    }
    // A hook without credentials, and a source with no way back: 409.
    let raw = serde_json::to_vec(&comment).unwrap();
    let resp = app
        .post(
            &other.url,
            &github_headers(other.secret.as_deref().unwrap(), "issue_comment", "o-1", &raw),
            raw,
        )
        .await;
    let other_event: Value = resp.json().await.unwrap();
    let (status, v) = app
        .api_json(
            Method::POST,
            &format!("/api/webhooks/{}/comment", other.id),
            Some(json!({"event_id": other_event["event_id"], "message": "x"})),
        )
        .await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("no_reply_channel")), "{v}");
    let body = serde_json::to_vec(&json!({"id": "evt_1", "type": "charge.succeeded"})).unwrap();
    let secret = Secret::new(stripe.secret.clone().unwrap());
    let mut headers = chorus_verify::sign(
        chorus_core::Source::Stripe,
        None,
        &secret,
        &body,
        chorus_core::Clock::now(&chorus_core::SystemClock),
        "x",
    );
    headers.push(("content-type".into(), "application/json".into()));
    let stripe_event: Value = app.post(&stripe.url, &headers, body).await.json().await.unwrap();
    let (status, _) = app
        .api_json(
            Method::POST,
            &format!("/api/webhooks/{}/respond", stripe.id),
            Some(json!({"event_id": stripe_event["event_id"], "response": "x"})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(github.requests().is_empty(), "no refused request reached the source");
}

/// Seed 001's example 1, exactly as the seed writes it.
const SEED_GITHUB_ISSUE_TRACKER: &str = r#"{
  "webhook_id": "github-issues-001",
  "name": "GitHub Issue Tracker",
  "provider": "github",
  "endpoint": "/webhooks/github/github-issues-001",
  "secret": "your-webhook-secret",
  "enabled": true,
  "commands": [
    {
      "trigger": "issues.opened",
      "action": "create_task",
      "agent": "planning",
      "template": "Analyze issue: {{issue.title}}\n\n{{issue.body}}",
      "conditions": {
        "labels": ["bug", "enhancement"]
      }
    },
    {
      "trigger": "issue_comment.created",
      "action": "ask",
      "agent": "brain",
      "template": "User asked: {{comment.body}}",
      "conditions": {
        "body_contains": "@agent"
      }
    }
  ]
}"#;

#[tokio::test]
async fn the_seed_json_is_accepted_as_written_with_its_receiver_path() {
    let Some(opened) = fixture("issues.opened.json") else { return };
    let app = TestApp::start().await;
    app.agent("planning", "5151").await;
    app.agent("brain", "5252").await;
    let seed: Value = serde_json::from_str(SEED_GITHUB_ISSUE_TRACKER).unwrap();
    let (status, hook) = app.api_json(Method::POST, "/api/webhooks", Some(seed.clone())).await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(
        (
            hook["agent"].as_str(),
            hook["webhook_id"].as_str(),
            hook["endpoint"].as_str(),
            hook["source"].as_str()
        ),
        (
            Some("planning"),
            Some("github-issues-001"),
            Some("/webhooks/github/github-issues-001"),
            Some("github")
        ),
        "the agent is the first command's, as in files"
    );
    let (status, shown) = app.api_json(Method::GET, "/api/webhooks/github-issues-001", None).await;
    assert_eq!((status, shown["id"].clone()), (200, hook["id"].clone()));

    // The seed's receiver path, signed with the seed's secret.
    let raw = serde_json::to_vec(&opened).unwrap();
    let headers = github_headers("your-webhook-secret", "issues", "seed-1", &raw);
    let url = format!("{}/webhooks/github/github-issues-001", app.base);
    let resp = app.post(&url, &headers, raw.clone()).await;
    assert_eq!(resp.status(), 202);
    let sent: Value = resp.json().await.unwrap();
    let e = routed(&app, hook["id"].as_str().unwrap(), sent["event_id"].as_str().unwrap()).await;
    assert!(e["task_id"].as_str().is_some(), "{e}");
    // Under another provider's name, or an unknown id: 404.
    for path in ["/webhooks/gitlab/github-issues-001", "/webhooks/github/github-issues-002"] {
        let resp = app.post(&format!("{}{path}", app.base), &headers, raw.clone()).await;
        assert_eq!(resp.status(), 404, "{path}");
    }

    // PUT replaces the settings and rules; the same JSON again changes nothing.
    let mut fewer = seed.clone();
    fewer["commands"].as_array_mut().unwrap().pop();
    fewer["name"] = json!("Issue Tracker");
    let (status, put) = app.api_json(Method::PUT, "/api/webhooks/github-issues-001", Some(fewer)).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!((put["name"].as_str(), put["commands"].as_array().unwrap().len()), (Some("Issue Tracker"), 1));
    for (change, field) in [
        (json!({"provider": "gitlab"}), "source"),
        (json!({"secret": "a-different-secret-123"}), "secret"),
        (json!({"webhook_id": "another-id"}), "webhook_id"),
        (json!({"commands": [{"trigger": "push", "agent": "brain"}]}), "agent"),
    ] {
        let mut body = seed.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = app.api_json(Method::PUT, "/api/webhooks/github-issues-001", Some(body)).await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some(field)), "{v}");
    }
    let (_, after) = app.api_json(Method::GET, "/api/webhooks/github-issues-001", None).await;
    assert_eq!(after["commands"].as_array().unwrap().len(), 1, "refused PUTs changed nothing");

    // A webhook_id is unique and well-formed.
    let (status, v) = app.api_json(Method::POST, "/api/webhooks", Some(seed.clone())).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("conflict")), "{v}");
    for bad in ["x", "Has Caps", "hk_lookalike", "../up"] {
        let mut body = seed.clone();
        body["webhook_id"] = json!(bad);
        let (status, v) = app.api_json(Method::POST, "/api/webhooks", Some(body)).await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some("webhook_id")), "{bad}: {v}");
    }
    let mut no_agent = seed;
    no_agent.as_object_mut().unwrap().remove("webhook_id");
    for c in no_agent["commands"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("agent");
    }
    let (status, v) = app.api_json(Method::POST, "/api/webhooks", Some(no_agent)).await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("agent")), "{v}");
}

#[tokio::test]
async fn a_finished_task_is_commented_back_when_its_rule_says_reply() {
    use chorus_testkit::{FakeForge, Forge};
    let Some(opened) = fixture("issues.opened.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let github = FakeForge::start(Forge::Github, None, "ghp_reply").await;
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "github",
            "reply": {"token": "ghp_reply", "api_url": github.base()},
            "commands": [{"trigger": "issues.opened", "action": "create_task", "reply": true,
                          "template": "Triage {{title}}"}]
        }))
        .await;
    let sent = send(&app, &hook, "issues", "t-1", &opened).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    let task = e["task_id"].as_str().unwrap();
    let (status, done) = app
        .api_json(
            Method::POST,
            &format!("/api/tasks/{task}/complete"),
            Some(json!({"result": "Labelled p2."})),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let got = github.wait_for(1, WAIT).await;
    let title = opened["issue"]["title"].as_str().unwrap();
    assert_eq!(got[0].json()["body"], format!("✅ Done: Triage {title}\n\nLabelled p2."));
    assert_eq!(got[0].status, 201);
    // reply needs create_task, and credentials.
    let path = format!("/api/webhooks/{}/commands", hook.id);
    let (status, v) =
        app.api_json(Method::POST, &path, Some(json!({"trigger": "push", "reply": true}))).await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("reply")), "{v}");
    let bare = app.hook(json!({"agent": "builder", "source": "github"})).await;
    let (status, v) = app
        .api_json(
            Method::POST,
            &format!("/api/webhooks/{}/commands", bare.id),
            Some(json!({"trigger": "issues", "action": "create_task", "reply": true})),
        )
        .await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("reply")), "{v}");
}

#[tokio::test]
async fn run_time_failures_fall_back_or_do_not_fire_and_say_why() {
    let Some(push) = fixture("push.commits.json") else { return };
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "github",
            "commands": [
                // Compiles, but runs out of range at render time.
                {"trigger": "push", "action": "notify", "template": "{% for i in range(1000000) %}x{% endfor %}"},
                {"trigger": "push", "action": "create_task", "conditions": {"if": "range(1000000) | length > 0"}}
            ]
        }))
        .await;
    let sent = send(&app, &hook, "push", "f-1", &push).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    let rules = e["rules"].as_array().unwrap();
    assert_eq!(rules[0]["result"], "fired", "{e}");
    assert!(rules[0]["note"].as_str().unwrap().starts_with("template failed, formatter used instead"), "{e}");
    assert_eq!(rules[1]["result"], "failed", "{e}");
    assert!(rules[1]["note"].as_str().unwrap().starts_with("if:"), "{e}");
    assert!(e["task_id"].is_null(), "a failing expression does not fire");
    // The formatter's message went out instead of the broken template.
    let messages = app.discord.wait_for_messages(1, WAIT).await;
    let repo = push["repository"]["full_name"].as_str().unwrap();
    assert!(messages[0].1.to_string().contains(repo), "{messages:?}");
}

#[tokio::test]
async fn the_brain_example_as_a_config_file_makes_tasks() {
    let Some(labeled) = fixture("issues.labeled.json") else { return };
    let mut app = TestApp::start().await;
    app.agent("planning", "5151").await;
    app.config_file("github.secret", Some("brain-file-secret-0123456789\n")).await;
    app.config_file("github-urgent-issues.json", Some(crate::config_files::SEED_FILE)).await;
    let (_, list) = app.api_json(Method::GET, "/api/webhooks?type=incoming", None).await;
    let item = &list["items"][0];
    let hook = crate::support::Hook {
        id: item["id"].as_str().unwrap().to_owned(),
        url: item["url"].as_str().unwrap().to_owned(),
        secret: Some("brain-file-secret-0123456789".to_owned()),
    };
    let mut urgent = labeled;
    urgent["label"]["name"] = json!("urgent");
    let sent = send(&app, &hook, "issues", "b-1", &urgent).await;
    let e = routed(&app, &hook.id, sent["event_id"].as_str().unwrap()).await;
    let (_, task) =
        app.api_json(Method::GET, &format!("/api/tasks/{}", e["task_id"].as_str().unwrap()), None).await;
    assert_eq!(task["agent"], "planning");
    assert!(task["title"].as_str().unwrap().contains(urgent["issue"]["title"].as_str().unwrap()), "{task}");
}

#[tokio::test]
async fn forwards_can_be_signed_the_standard_webhooks_way() {
    use base64::Engine as _;
    let app = TestApp::start().await;
    app.agent("builder", "4242").await;
    let receiver = TestReceiver::start().await;
    let hook = app
        .hook(json!({
            "agent": "builder", "source": "chorus",
            "commands": [{"trigger": "*", "action": "forward", "url": receiver.url("/std"), "signature": "standard"}]
        }))
        .await;
    let body = serde_json::to_vec(&json!({"type": "deploy", "message": "v2 is out"})).unwrap();
    let resp = app
        .post(
            &hook.url,
            &crate::support::chorus_headers(hook.secret.as_deref().unwrap(), &body),
            body.clone(),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let got = receiver.wait_for(1, WAIT).await;
    // The receiver's key is `whsec_` + base64 of the hook's secret.
    let key = Secret::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(hook.secret.as_deref().unwrap())
    ));
    let verified = chorus_verify::verify(
        chorus_core::Source::Standard,
        None,
        std::slice::from_ref(&key),
        &got[0].headers,
        &got[0].body,
        chorus_core::Clock::now(&chorus_core::SystemClock),
    );
    assert!(verified.is_ok(), "{verified:?}");
    let headers: Vec<(&str, &str)> = ["webhook-id", "webhook-timestamp", "webhook-signature"]
        .into_iter()
        .map(|h| (h, got[0].header(h).unwrap()))
        .collect();
    // And by the official Standard Webhooks library, where it is installed.
    crate::outgoing::python_verifies("standard", key.expose(), &headers, &got[0].body);
    assert_eq!(got[0].body.as_ref(), body.as_slice());
    assert_eq!(got[0].header("webhook-id"), got[0].header("idempotency-key"));
    // Only forwards are signed, only as chorus or standard, only with a secret.
    let path = format!("/api/webhooks/{}/commands", hook.id);
    for rule in [
        json!({"trigger": "*", "signature": "standard"}),
        json!({"trigger": "*", "action": "forward", "url": receiver.url("/x"), "signature": "rsa"}),
    ] {
        let (status, v) = app.api_json(Method::POST, &path, Some(rule)).await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some("signature")), "{v}");
    }
    let open = app.hook(json!({"agent": "builder", "source": "none"})).await;
    let rule = json!({"trigger": "*", "action": "forward", "url": receiver.url("/x"), "signature": "chorus"});
    let (status, v) =
        app.api_json(Method::POST, &format!("/api/webhooks/{}/commands", open.id), Some(rule)).await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("signature")), "{v}");
}

#[tokio::test]
async fn config_files_carry_reply_credentials_as_references() {
    use chorus_testkit::{FakeForge, Forge};
    let Some(updated) = other_fixture("other/jira.issue_updated.status-changed.json") else { return };
    let mut app = TestApp::start().await;
    app.agent("brain", "5252").await;
    let jira = FakeForge::start(Forge::Jira, Some("bot@example.com"), "jira-file-token").await;
    app.config_file("jira.secret", Some("jira-hook-secret-0123456789\n")).await;
    app.config_file("jira.token", Some("jira-file-token\n")).await;
    let file = json!({
        "name": "Jira Sprint Automation", "provider": "jira", "secret": "file:jira.secret",
        "reply": {"token": "file:jira.token", "email": "bot@example.com", "api_url": jira.base()},
        "commands": [{"trigger": "jira:issue_updated", "action": "comment", "agent": "brain",
                      "template": "Acknowledged update to {{issue.key}}"}]
    });
    app.config_file("jira-automation.json", Some(&file.to_string())).await;
    let (_, errors) = app.api_json(Method::GET, "/api/config/errors", None).await;
    assert_eq!(errors["items"], json!([]), "{errors}");
    let (_, list) = app.api_json(Method::GET, "/api/webhooks?type=incoming", None).await;
    let item = &list["items"][0];
    let hook = crate::support::Hook {
        id: item["id"].as_str().unwrap().to_owned(),
        url: item["url"].as_str().unwrap().to_owned(),
        secret: Some("jira-hook-secret-0123456789".to_owned()),
    };
    send_as(&app, &hook, chorus_core::Source::Jira, &[], &updated).await;
    let got = jira.wait_for(1, WAIT).await;
    assert_eq!(got[0].status, 201, "the token from the file was used");
    let key = updated["issue"]["key"].as_str().unwrap();
    assert_eq!(got[0].json()["body"], format!("Acknowledged update to {key}"));

    // A literal token is refused with its field, and changes nothing.
    let mut literal = file.clone();
    literal["reply"]["token"] = json!("jira-file-token");
    app.config_file("jira-automation.json", Some(&literal.to_string())).await;
    let (_, errors) = app.api_json(Method::GET, "/api/config/errors", None).await;
    assert_eq!(errors["items"][0]["field"], "reply.token", "{errors}");
    assert!(!errors.to_string().contains("jira-file-token"), "the token is not echoed");
}

/// Slack's way back is the `response_url` of a slash command or an
/// interaction, and only Slack's own host; an Events API message has none.
#[tokio::test]
async fn slack_answers_go_to_the_response_url_only() {
    let app = TestApp::start().await;
    app.agent("brain", "5252").await;
    let hook = app.hook(json!({"agent": "brain", "source": "slack"})).await;
    let secret = Secret::new(hook.secret.clone().unwrap());
    let signed = |body: &[u8], content_type: &str| {
        let mut headers = chorus_verify::sign(
            chorus_core::Source::Slack,
            None,
            &secret,
            body,
            chorus_core::Clock::now(&chorus_core::SystemClock),
            "x",
        );
        headers.push(("content-type".into(), content_type.to_owned()));
        headers
    };
    let form = "application/x-www-form-urlencoded";
    // A slash command, form-encoded as Slack sends it.
    let command = "command=%2Fdeploy&text=prod&channel_name=engineering&user_name=ana\
                   &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT0%2F1%2Fabc";
    let resp = app.post(&hook.url, &signed(command.as_bytes(), form), command).await;
    assert_eq!(resp.status(), 202);
    let slash: Value = resp.json().await.unwrap();
    let path = format!("/api/webhooks/{}/respond", hook.id);
    let (status, v) = app
        .api_json(Method::POST, &path, Some(json!({"event_id": slash["event_id"], "response": "Deploying."})))
        .await;
    assert_eq!(status, 202, "{v}");
    let (_, deliveries) =
        app.api_json(Method::GET, &format!("/api/webhooks/{}/deliveries", hook.id), None).await;
    let d = deliveries["items"].as_array().unwrap().iter().find(|d| d["id"] == v["delivery_id"]).cloned();
    assert_eq!(d.expect("the answer is a delivery")["target"]["kind"], "forward");

    // An Events API message carries no response_url; a look-alike host is refused.
    let event = serde_json::to_vec(&json!({"type": "event_callback", "event_id": "Ev1",
        "event": {"type": "message", "text": "hi", "channel": "C1"}}))
    .unwrap();
    let message: Value =
        app.post(&hook.url, &signed(&event, "application/json"), event.clone()).await.json().await.unwrap();
    let spoofed = "command=%2Fx&response_url=https%3A%2F%2Fhooks.slack.com.evil.example%2Fx";
    let spoof: Value =
        app.post(&hook.url, &signed(spoofed.as_bytes(), form), spoofed).await.json().await.unwrap();
    for event_id in [&message["event_id"], &spoof["event_id"]] {
        let (status, v) =
            app.api_json(Method::POST, &path, Some(json!({"event_id": event_id, "response": "x"}))).await;
        assert_eq!((status, v["error"]["code"].as_str()), (409, Some("no_reply_channel")), "{v}");
    }
}
