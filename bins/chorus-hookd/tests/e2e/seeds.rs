//! Seed 001's three example configurations, posted as the seed writes them
//! (Jira's with the reply credentials its comment rule needs), against the
//! built binary, each action proven at a fake: the task in the API, the
//! comment at the fake Jira, the answer in Slack's response, the question
//! in the fake Discord.

use chorus_core::{Secret, Source};
use chorus_testkit::{FakeDiscord, FakeForge, Forge, Process};
use serde_json::{Value, json};

use crate::support::{WAIT, api, env_for, exe, init};

fn fixture(path: &str) -> Option<Value> {
    let dir = chorus_testkit::fixtures_dir()?;
    Some(serde_json::from_slice(&std::fs::read(dir.join(path)).unwrap()).unwrap())
}

/// Post `body` to `url` signed as `source` signs, with extra headers.
async fn post(
    http: &reqwest::Client,
    url: &str,
    source: Source,
    secret: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> reqwest::Response {
    let raw = serde_json::to_vec(body).unwrap();
    let now = chorus_core::Clock::now(&chorus_core::SystemClock);
    let mut req = http.post(url).header("content-type", "application/json").body(raw.clone());
    for (k, v) in chorus_verify::sign(source, None, &Secret::new(secret), &raw, now, "seed") {
        req = req.header(k, v);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// The hook's log entry for `event`, once routed.
async fn routed(http: &reqwest::Client, base: &str, hook: &str, event: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = api(http, base, reqwest::Method::GET, &format!("/api/webhooks/{hook}/events"), None).await;
        if let Some(e) =
            log["items"].as_array().unwrap().iter().find(|e| e["id"] == event && e["status"] != "received")
        {
            return e.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "event {event} not routed");
        // Paces polling of the API between the router's commits.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

struct Seeds<'a> {
    http: reqwest::Client,
    base: &'a str,
}

impl Seeds<'_> {
    async fn create(&self, hook: Value) -> Value {
        api(&self.http, self.base, reqwest::Method::POST, "/api/webhooks", Some(hook)).await
    }

    /// Post to the hook's seed path and return the task the event made.
    async fn task_of(&self, hook: &Value, response: reqwest::Response) -> Value {
        assert_eq!(response.status(), 202);
        let event: Value = response.json().await.unwrap();
        let e =
            routed(&self.http, self.base, hook["id"].as_str().unwrap(), event["event_id"].as_str().unwrap())
                .await;
        let path = format!("/api/tasks/{}", e["task_id"].as_str().expect("a task"));
        api(&self.http, self.base, reqwest::Method::GET, &path, None).await
    }
}

#[tokio::test]
async fn seed_001_configurations_act_on_real_payloads() {
    init();
    let discord = FakeDiscord::start().await;
    let jira = FakeForge::start(Forge::Jira, Some("bot@example.com"), "jira-token").await;
    let data = tempfile::tempdir().unwrap();
    let mut env = env_for(Some(&discord));
    env.push(("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned()));
    let server = Process::start(exe(), data.path(), &env).await;
    let seeds = Seeds { http: reqwest::Client::new(), base: &server.base };
    for (name, channel) in [("planning", "5151"), ("brain", "5252")] {
        let agent = json!({"name": name, "channel_id": channel});
        api(&seeds.http, seeds.base, reqwest::Method::POST, "/api/agents", Some(agent)).await;
    }
    github_issue_tracker(&seeds, &discord).await;
    jira_automation(&seeds, &jira, &discord).await;
    slack_alert_handler(&seeds).await;
}

/// Example 1, as written.
async fn github_issue_tracker(seeds: &Seeds<'_>, discord: &FakeDiscord) {
    let (Some(opened), Some(comment)) =
        (fixture("github/issues.opened.json"), fixture("github/issue_comment.created.json"))
    else {
        return;
    };
    let hook = seeds
        .create(json!({
            "webhook_id": "github-issues-001", "name": "GitHub Issue Tracker", "provider": "github",
            "endpoint": "/webhooks/github/github-issues-001", "secret": "your-webhook-secret", "enabled": true,
            "commands": [
                {"trigger": "issues.opened", "action": "create_task", "agent": "planning",
                 "template": "Analyze issue: {{issue.title}}\n\n{{issue.body}}",
                 "conditions": {"labels": ["bug", "enhancement"]}},
                {"trigger": "issue_comment.created", "action": "ask", "agent": "brain",
                 "template": "User asked: {{comment.body}}", "conditions": {"body_contains": "@agent"}}
            ]
        }))
        .await;
    let url = format!("{}/webhooks/github/github-issues-001", seeds.base);
    let headers = [("x-github-event", "issues"), ("x-github-delivery", "g-1")];
    let sent = post(&seeds.http, &url, Source::Github, "your-webhook-secret", &headers, &opened).await;
    let task = seeds.task_of(&hook, sent).await;
    assert_eq!(task["title"], format!("Analyze issue: {}", opened["issue"]["title"].as_str().unwrap()));
    assert_eq!(task["agent"], "planning");
    let mut asking = comment;
    asking["comment"]["body"] = json!("@agent is this a regression?");
    let headers = [("x-github-event", "issue_comment"), ("x-github-delivery", "g-2")];
    let sent = post(&seeds.http, &url, Source::Github, "your-webhook-secret", &headers, &asking).await;
    assert_eq!(sent.status(), 202);
    discord
        .wait_until("brain's question", WAIT, |d| {
            d.messages().iter().any(|(c, m)| {
                c == "5252" && m.to_string().contains("User asked: @agent is this a regression?")
            })
        })
        .await;
}

/// Example 2, with the credentials its comment rule needs.
async fn jira_automation(seeds: &Seeds<'_>, jira: &FakeForge, discord: &FakeDiscord) {
    let (Some(created), Some(updated)) =
        (fixture("other/jira.issue_created.json"), fixture("other/jira.issue_updated.status-changed.json"))
    else {
        return;
    };
    let hook = seeds
        .create(json!({
            "webhook_id": "jira-automation-001", "name": "Jira Sprint Automation", "provider": "jira",
            "endpoint": "/webhooks/jira/jira-automation-001", "enabled": true,
            "reply": {"email": "bot@example.com", "token": "jira-token", "api_url": jira.base()},
            "commands": [
                {"trigger": "jira:issue_created", "action": "create_task", "agent": "planning",
                 "template": "New Jira ticket: {{issue.key}} - {{issue.summary}}"},
                {"trigger": "jira:issue_updated", "action": "comment", "agent": "brain",
                 "template": "Acknowledged update to {{issue.key}}"}
            ]
        }))
        .await;
    let secret = hook["secret"].as_str().unwrap();
    let url = format!("{}/webhooks/jira/jira-automation-001", seeds.base);
    let task = seeds.task_of(&hook, post(&seeds.http, &url, Source::Jira, secret, &[], &created).await).await;
    let (key, summary) = (created["issue"]["key"].as_str().unwrap(), &created["issue"]["fields"]["summary"]);
    assert_eq!(task["title"], format!("New Jira ticket: {key} - {}", summary.as_str().unwrap()));
    assert_eq!(post(&seeds.http, &url, Source::Jira, secret, &[], &updated).await.status(), 202);
    let got = jira.wait_for(1, WAIT).await;
    let key = updated["issue"]["key"].as_str().unwrap();
    assert_eq!(
        (got[0].path.as_str(), got[0].status),
        (format!("/rest/api/2/issue/{key}/comment").as_str(), 201)
    );
    assert_eq!(got[0].json()["body"], format!("Acknowledged update to {key}"));
    // The rule names brain: brain's channel is told what was said for it.
    let said = format!("Acknowledged update to {key}");
    discord
        .wait_until("brain told of the comment", WAIT, |d| {
            d.messages().iter().any(|(c, m)| {
                c == "5252"
                    && m.to_string().contains("Commented on the source")
                    && m.to_string().contains(&said)
            })
        })
        .await;
}

/// Example 3. The Events API names channels by id, so the condition names
/// the fixture's channel by its id.
async fn slack_alert_handler(seeds: &Seeds<'_>) {
    let Some(message) = fixture("other/slack.event_callback.message.json") else { return };
    let hook = seeds
        .create(json!({
            "webhook_id": "slack-alerts-001", "name": "Slack Alert Handler", "provider": "slack",
            "endpoint": "/webhooks/slack/slack-alerts-001", "enabled": true,
            "commands": [{"trigger": "message.channels", "action": "respond", "agent": "brain",
                          "template": "Processing your request: {{text}}",
                          "conditions": {"channel": message["event"]["channel"]}}]
        }))
        .await;
    let url = format!("{}/webhooks/slack/slack-alerts-001", seeds.base);
    let sent = post(&seeds.http, &url, Source::Slack, hook["secret"].as_str().unwrap(), &[], &message).await;
    assert_eq!(sent.status(), 200);
    let said = sent.json::<Value>().await.unwrap()["text"].clone();
    assert_eq!(said, format!("Processing your request: {}", message["event"]["text"].as_str().unwrap()));
}
