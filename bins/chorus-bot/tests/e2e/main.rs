//! End to end against the built `chorus-bot`: a real twilight shard
//! connected to the testkit's fake gateway, a real twilight REST client
//! talking to the fake Discord, real HTTP and SQLite underneath.

use std::{path::Path, time::Duration};

use chorus_core::Secret;
use chorus_testkit::{
    APPLICATION_ID, FakeDiscord, FakeGateway, Process, TestReceiver,
    interactions::{MANAGE_WEBHOOKS, SEND_MESSAGES, slash_command},
};
use serde_json::{Value, json};

const TOKEN: &str = "bot-e2e-admin-token-0123456789";
const WAIT: Duration = Duration::from_secs(30);
const CHANNEL: &str = "4242";
const GUILD: &str = "900000000000000001";
const ADMIN_ROLE: &str = "700000000000000001";

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_chorus-bot"))
}

struct Harness {
    discord: FakeDiscord,
    gateway: FakeGateway,
    http: reqwest::Client,
    interactions: usize,
    /// The bot's HTTP side.
    base: String,
}

impl Harness {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CHORUS_API_TOKEN", TOKEN.to_owned()),
            ("CHORUS_DISCORD_TOKEN", "e2e-bot-token".to_owned()),
            ("CHORUS_DISCORD_PROXY", format!("http://{}", self.discord.host_port())),
            ("CHORUS_DISCORD_GATEWAY", self.gateway.url()),
            ("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned()),
        ]
    }

    /// Dispatch a slash command and return the callback's data.
    async fn command(
        &mut self,
        permissions: &str,
        path: &[&str],
        options: &[(&str, &str)],
    ) -> (String, bool) {
        let mut interaction = slash_command(CHANNEL, permissions, path, options);
        self.interactions += 1;
        let id = format!("11000000000000{:05}", self.interactions);
        interaction["id"] = json!(id);
        self.gateway.dispatch("INTERACTION_CREATE", interaction);
        let n = self.interactions;
        let callbacks = self.discord.wait_for_callbacks(n, WAIT).await;
        let (got, response) =
            callbacks.iter().find(|(i, _)| *i == id).cloned().expect("the callback of this interaction");
        assert_eq!(got, id);
        assert_eq!(response["type"], 4, "{response}");
        let ephemeral = response["data"]["flags"].as_u64().is_some_and(|f| f & 64 != 0);
        (response["data"]["content"].as_str().unwrap().to_owned(), ephemeral)
    }

    /// Post `!hook …` as a member with `roles`; waits for the channel reply.
    async fn text(&self, content: &str, roles: &[&str]) -> String {
        self.text_as("800000000000000002", content, roles).await
    }

    /// A `!hook` message from `user`; the bot's reply in the channel.
    async fn text_as(&self, user: &str, content: &str, roles: &[&str]) -> String {
        let before = self.channel_texts().len();
        self.gateway.dispatch(
            "MESSAGE_CREATE",
            json!({
                "id": "1300000000000000001", "channel_id": CHANNEL, "guild_id": GUILD, "content": content,
                "author": {"id": user, "username": "jc", "bot": false},
                "member": {"roles": roles}, "type": 0,
            }),
        );
        self.discord.wait_until("a reply in the channel", WAIT, |d| channel_texts(d).len() > before).await;
        self.channel_texts().pop().unwrap()
    }

    /// A management API read on the bot's HTTP side.
    async fn api_get(&self, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.base)).bearer_auth(TOKEN).send().await.unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    fn channel_texts(&self) -> Vec<String> {
        channel_texts(&self.discord)
    }
}

fn channel_texts(d: &FakeDiscord) -> Vec<String> {
    d.messages()
        .into_iter()
        .filter(|(c, _)| c == CHANNEL)
        .filter_map(|(_, m)| m["content"].as_str().map(str::to_owned))
        .collect()
}

fn field(text: &str, label: &str) -> String {
    let line =
        text.lines().find_map(|l| l.strip_prefix(label)).unwrap_or_else(|| panic!("no {label} in {text}"));
    line.trim().trim_matches('`').to_owned()
}

async fn github_push(http: &reqwest::Client, url: &str, secret: &Secret, delivery: &str) -> u16 {
    let body = br#"{"ref":"refs/heads/main","commits":[],"repository":{"full_name":"chorus/bot","html_url":"https://github.com/chorus/bot"},"sender":{"login":"ana"}}"#;
    http.post(url)
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", chorus_verify::sign_body_hex(secret, body))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_bot_over_a_gateway() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut h = Harness {
        discord: FakeDiscord::start().await,
        gateway: FakeGateway::start().await,
        http: reqwest::Client::new(),
        interactions: 0,
        base: String::new(),
    };
    h.discord.set_roles(GUILD, &[(GUILD, 0), (ADMIN_ROLE, 1 << 29)]);
    let receiver = TestReceiver::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut bot = Process::start(exe(), data.path(), &h.env()).await;
    h.base = bot.base.clone();
    h.gateway.wait_ready(1, WAIT).await;
    // Heartbeats flow and are acknowledged, so the session stays up.
    h.gateway.wait_heartbeats(2, WAIT).await;
    let identify = &h.gateway.identifies()[0];
    assert_eq!(identify["token"], "Bot e2e-bot-token");
    assert_ne!(identify["intents"].as_u64().unwrap() & (1 << 15), 0, "MESSAGE_CONTENT for !hook");
    h.discord
        .wait_until("command registration", WAIT, |d| {
            d.registrations().iter().any(|(s, c)| s == "global" && c[0]["name"] == "agent")
        })
        .await;
    assert!(
        h.discord
            .requests()
            .iter()
            .any(|r| r.path == format!("/api/v10/applications/{APPLICATION_ID}/commands"))
    );

    slash_commands(&mut h).await;
    text_commands(&h).await;
    answers_by_reply(&h).await;
    text_command_permissions(&h).await;
    approval_by_click(&mut h).await;
    ci_on(&h).await;

    // agent.started and agent.stopped reach a subscriber across a restart.
    let resp = h
        .http
        .post(format!("{}/api/webhooks", bot.base))
        .bearer_auth(TOKEN)
        .json(&json!({"type": "outgoing", "url": receiver.url("/agents"), "events": ["agent.*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert!(bot.terminate(WAIT).await.success(), "{}", bot.output());
    // Restarted with a guild: the same commands, registered there.
    let mut env = h.env();
    env.push(("CHORUS_DISCORD_GUILD_ID", GUILD.to_owned()));
    let bot = Process::start(exe(), data.path(), &env).await;
    let got = receiver.wait_for(2, WAIT).await;
    h.discord.wait_until("a second registration", WAIT, |d| d.registrations().len() >= 2).await;
    let registered = h.discord.registrations();
    assert_eq!(
        (registered[0].0.as_str(), registered[1].0.as_str()),
        ("global", format!("guild:{GUILD}").as_str())
    );
    let options = |n: usize| registered[n].1[0]["options"].clone();
    assert_eq!(options(0), options(1), "each start registers the same commands");
    let events: Vec<Value> = got.iter().map(|r| r.json()["event"].clone()).collect();
    assert!(
        events.contains(&json!("agent.stopped")) && events.contains(&json!("agent.started")),
        "{events:?}"
    );
    drop(bot);
}

/// A workflow's approval gate decided by a button click that arrives
/// through the gateway: answered by an UPDATE_MESSAGE callback, after
/// which the run goes on.
async fn approval_by_click(h: &mut Harness) {
    let definition = json!({
        "name": "gated", "agent": "builder",
        "steps": [{"name": "ship", "tool": "emit_event", "requires_approval": true,
                   "args": {"event": "custom.shipped"}}],
    });
    let resp = h
        .http
        .post(format!("{}/api/workflows", h.base))
        .bearer_auth(TOKEN)
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = h
        .http
        .post(format!("{}/api/workflows/gated/test", h.base))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["status"], 202, "{answer}");
    let run = answer["body"]["run_id"].as_str().unwrap().to_owned();
    h.discord
        .wait_until("the approval message", WAIT, |d| {
            d.messages().iter().any(|(c, m)| c == CHANNEL && m.get("components").is_some())
        })
        .await;
    let (_, message) = h
        .discord
        .messages()
        .into_iter()
        .find(|(c, m)| c == CHANNEL && m.get("components").is_some())
        .unwrap();
    let approve = message["components"][0]["components"][0]["custom_id"].as_str().unwrap().to_owned();
    let mut click = chorus_testkit::interactions::button_click(
        CHANNEL,
        "800000000000000009",
        chorus_testkit::interactions::MANAGE_GUILD,
        &[],
        &approve,
        &message,
    );
    h.interactions += 1;
    let id = format!("11000000000000{:05}", h.interactions);
    click["id"] = json!(id);
    h.gateway.dispatch("INTERACTION_CREATE", click);
    let callbacks = h.discord.wait_for_callbacks(h.interactions, WAIT).await;
    let (_, response) = callbacks.iter().find(|(i, _)| *i == id).cloned().expect("the click's callback");
    assert_eq!(response["type"], 7, "{response}");
    assert_eq!(response["data"]["components"], json!([]));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let run = h.api_get(&format!("/api/runs/{run}")).await;
        if run["status"] == "succeeded" {
            assert_eq!(
                run["approvals"][0]["decided_by"],
                "discord:800000000000000009 (user800000000000000009)"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the run did not go on: {run}");
        // Polling the API for a state, not sleeping in place of one.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/agent …` through INTERACTION_CREATE, answered by interaction callbacks.
async fn slash_commands(h: &mut Harness) {
    // Slash commands through the gateway.
    let (text, _) = h.command(MANAGE_WEBHOOKS, &["create"], &[("name", "builder")]).await;
    assert!(text.contains("builder"), "{text}");
    let (text, ephemeral) = h
        .command(
            MANAGE_WEBHOOKS,
            &["webhook", "add"],
            &[("name", "builder"), ("type", "incoming"), ("source", "github")],
        )
        .await;
    assert!(ephemeral, "{text}");
    let (url, secret, id) =
        (field(&text, "Webhook URL:"), Secret::new(field(&text, "Secret:")), field(&text, "Hook id:"));
    assert_eq!(github_push(&h.http, &url, &secret, "b-1").await, 202);
    h.discord
        .wait_until("the push in builder's channel", WAIT, |d| {
            d.messages().iter().any(|(c, m)| c == CHANNEL && m.to_string().contains("chorus/bot"))
        })
        .await;
    let (text, _) = h.command(SEND_MESSAGES, &["webhook", "list"], &[("name", "builder")]).await;
    assert!(text.contains(&id), "{text}");
    hook_settings(h, &id, &url, &secret).await;

    // A dropped connection is resumed at READY's resume_gateway_url, and
    // commands keep working.
    h.gateway.disconnect(4000);
    h.gateway.wait_ready(2, WAIT).await;
    assert_eq!(h.gateway.resumes().len(), 1, "resumed, not identified again");
    assert_eq!(h.gateway.resumes()[0]["session_id"], "fake-session-1");
    let (text, _) = h.command(SEND_MESSAGES, &["webhook", "list"], &[("name", "builder")]).await;
    assert!(text.contains(&id), "{text}");
    for (perms, path, options, needle) in [
        (MANAGE_WEBHOOKS, &["webhook", "explode"][..], &[("name", "builder")][..], "unknown subcommand"),
        (MANAGE_WEBHOOKS, &["webhook", "add"], &[("name", "builder")], "missing option `type`"),
        (
            MANAGE_WEBHOOKS,
            &["webhook", "add"],
            &[("name", "builder"), ("type", "outgoing"), ("url", "ftp://x")],
            "url",
        ),
        (MANAGE_WEBHOOKS, &["webhook", "list"], &[("name", "ghost")], "ghost"),
        (SEND_MESSAGES, &["webhook", "add"], &[("name", "builder"), ("type", "incoming")], "Manage Webhooks"),
    ] {
        let (text, ephemeral) = h.command(perms, path, options).await;
        assert!(ephemeral && text.starts_with('❌') && text.contains(needle), "{path:?}: {text}");
    }
    let (text, _) =
        h.command(MANAGE_WEBHOOKS, &["webhook", "remove"], &[("name", "builder"), ("hook_id", &id)]).await;
    assert!(text.contains("deleted"), "{text}");
    assert_eq!(github_push(&h.http, &url, &secret, "b-2").await, 404);
}

/// `!hook ci on`: one URL that takes Jenkins, CircleCI, GitLab pipeline and
/// GitHub workflow-run payloads (the shared fixtures), each recognised and
/// formatted as its own system's.
async fn ci_on(h: &Harness) {
    let Some(dir) = chorus_testkit::fixtures_dir() else { return };
    let said = h.text("!hook ci on", &[ADMIN_ROLE]).await;
    assert!(said.contains("direct message"), "{said}");
    let dm = h.discord.dm_channel("800000000000000002").unwrap();
    h.discord
        .wait_until("the CI setup message", WAIT, |d| {
            d.messages()
                .iter()
                .any(|(c, m)| *c == dm && m["content"].as_str().is_some_and(|t| t.contains("CI/CD")))
        })
        .await;
    let private = h
        .discord
        .messages()
        .into_iter()
        .find(|(c, m)| *c == dm && m["content"].as_str().is_some_and(|t| t.contains("CI/CD")))
        .unwrap()
        .1["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = field(&private, "Webhook URL:");
    let cases = [
        ("other/jenkins.notification.finished-success.json", None, "Pipeline Passed: support #148"),
        ("other/circleci.workflow-completed.json", None, "Pipeline Passed: workflow sample"),
        ("gitlab/pipeline.success.json", Some(("x-gitlab-event", "Pipeline Hook")), "Pipeline #"),
        ("github/workflow_run.completed-success.json", Some(("x-github-event", "workflow_run")), "Workflow "),
    ];
    for (file, header, _) in cases {
        let mut req = h
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(std::fs::read(dir.join(file)).unwrap());
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        assert_eq!(req.send().await.unwrap().status(), 202, "{file}");
    }
    let titles = |d: &FakeDiscord| -> Vec<String> {
        d.messages()
            .iter()
            .filter(|(c, _)| c == CHANNEL)
            .flat_map(|(_, m)| m["embeds"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["title"].as_str().map(str::to_owned))
            .collect()
    };
    h.discord
        .wait_until("the four CI messages", WAIT, |d| {
            cases.iter().all(|(_, _, want)| titles(d).iter().any(|t| t.contains(want)))
        })
        .await;
}

/// `!hook …` through MESSAGE_CREATE, answered in the channel and by DM.
async fn text_commands(h: &Harness) {
    // The same through !hook text commands: the secret only by direct message.
    let said = h.text("!hook github on", &[ADMIN_ROLE]).await;
    assert!(said.contains("direct message") && !said.contains("Secret"), "{said}");
    h.discord
        .wait_until("the direct message", WAIT, |d| {
            d.dm_channel("800000000000000002").is_some_and(|dm| d.messages().iter().any(|(c, _)| *c == dm))
        })
        .await;
    let dm = h.discord.dm_channel("800000000000000002").unwrap();
    let private = h.discord.messages().into_iter().find(|(c, _)| *c == dm).unwrap().1["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(private.contains("Settings → Webhooks") && private.contains("Pull requests"), "{private}");
    let (url, secret, id) = (
        field(&private, "Webhook URL:"),
        Secret::new(field(&private, "Secret:")),
        field(&private, "Hook id:"),
    );
    assert!(!said.contains(secret.expose()));
    assert_eq!(github_push(&h.http, &url, &secret, "b-3").await, 202);
    let listed = h.text("!hook list", &[]).await;
    assert!(listed.contains(&id), "{listed}");
    let refused = h.text(&format!("!hook delete {id}"), &[]).await;
    assert!(refused.starts_with('❌') && refused.contains("Manage Webhooks"), "{refused}");
    let deleted = h.text(&format!("!hook delete {id}"), &[ADMIN_ROLE]).await;
    assert!(deleted.contains("deleted"), "{deleted}");
    assert_eq!(github_push(&h.http, &url, &secret, "b-4").await, 404);

    // `!hook custom <url>`: an outgoing subscription for this agent.
    let said = h.text("!hook custom http://127.0.0.1:9/agent-events", &[ADMIN_ROLE]).await;
    assert!(said.contains("outgoing webhook") && said.contains("direct message"), "{said}");
    let hooks = h.api_get("/api/webhooks?type=outgoing&agent=builder").await;
    assert_eq!(hooks["items"][0]["url"], "http://127.0.0.1:9/agent-events", "{hooks}");
    let refused = h.text("!hook custom http://10.0.0.1/x", &[ADMIN_ROLE]).await;
    assert!(refused.starts_with('❌'), "a private address is refused: {refused}");
}

/// `!hook` permissions as Discord computes them: the guild owner may manage
/// without any role; a channel overwrite can take Manage Webhooks away.
async fn text_command_permissions(h: &Harness) {
    let owner = "800000000000000077";
    let refused = h.text_as(owner, "!hook delete hk_absent", &[]).await;
    assert!(refused.contains("Manage Webhooks"), "not the owner yet: {refused}");
    h.discord.set_owner(GUILD, owner);
    let allowed = h.text_as(owner, "!hook delete hk_absent", &[]).await;
    assert!(allowed.starts_with('❌') && allowed.contains("not found"), "the owner may manage: {allowed}");
    let manage_webhooks = 1u64 << 29;
    h.discord.set_overwrites(
        CHANNEL,
        vec![json!({"id": ADMIN_ROLE, "type": 0, "allow": "0", "deny": manage_webhooks.to_string()})],
    );
    let denied = h.text("!hook delete hk_absent", &[ADMIN_ROLE]).await;
    assert!(denied.contains("Manage Webhooks"), "the channel overwrite denies it: {denied}");
    h.discord.set_overwrites(CHANNEL, Vec::new());
    let allowed = h.text("!hook delete hk_absent", &[ADMIN_ROLE]).await;
    assert!(allowed.contains("not found"), "{allowed}");
}

/// A reply in Discord to a question an `ask` rule posted goes back to the
/// source as a comment.
async fn answers_by_reply(h: &Harness) {
    let github = chorus_testkit::FakeForge::start(chorus_testkit::Forge::Github, None, "ghp_bot").await;
    let resp = h
        .http
        .post(format!("{}/api/webhooks", h.base))
        .bearer_auth(TOKEN)
        .json(&json!({
            "agent": "builder", "source": "github",
            "reply": {"token": "ghp_bot", "api_url": github.base()},
            "commands": [{"trigger": "issue_comment", "action": "ask", "template": "Asked: {{comment.body}}"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let hook: Value = resp.json().await.unwrap();
    let secret = Secret::new(hook["secret"].as_str().unwrap());
    let body = serde_json::to_vec(&json!({
        "action": "created", "issue": {"number": 7, "title": "Crash on start"},
        "comment": {"body": "which config?"}, "repository": {"full_name": "chorus/app"}, "sender": {"login": "ana"}
    }))
    .unwrap();
    let resp = h
        .http
        .post(hook["url"].as_str().unwrap())
        .header("x-github-event", "issue_comment")
        .header("x-github-delivery", "ask-1")
        .header("x-hub-signature-256", chorus_verify::sign_body_hex(&secret, &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let asked = |d: &FakeDiscord| {
        d.messages().into_iter().find(|(c, m)| c == CHANNEL && m.to_string().contains("Asked: which config?"))
    };
    h.discord.wait_until("the question", WAIT, |d| asked(d).is_some()).await;
    let mut question = asked(&h.discord).unwrap().1;
    question["author"] = json!({"id": chorus_testkit::BOT_USER_ID, "bot": true});
    let before = h.channel_texts().len();
    h.gateway.dispatch(
        "MESSAGE_CREATE",
        json!({
            "id": "1300000000000000009", "channel_id": CHANNEL, "guild_id": GUILD,
            "content": "The default one, in ./data.",
            "author": {"id": "800000000000000002", "username": "jc", "bot": false},
            "member": {"roles": []}, "type": 19, "referenced_message": question,
        }),
    );
    h.discord.wait_until("the bot's acknowledgement", WAIT, |d| channel_texts(d).len() > before).await;
    let said = h.channel_texts().pop().unwrap();
    assert!(said.starts_with("✅ Answer to `q_"), "{said}");
    let got = github.wait_for(1, WAIT).await;
    assert_eq!((got[0].path.as_str(), got[0].status), ("/repos/chorus/app/issues/7/comments", 201));
    assert_eq!(got[0].json()["body"], "The default one, in ./data.");
}

/// `test`, `filter`, `format`, `disable` and `enable` on a hook, each seen
/// in what the hook then does.
async fn hook_settings(h: &mut Harness, id: &str, url: &str, secret: &Secret) {
    let target = [("name", "builder"), ("hook_id", id)];
    let before = h.discord.messages().len();
    let (text, _) = h.command(MANAGE_WEBHOOKS, &["webhook", "test"], &target).await;
    assert!(text.contains("Test sent"), "{text}");
    h.discord.wait_until("the test message", WAIT, |d| d.messages().len() > before).await;
    let mut options = target.to_vec();
    options.push(("events", "pull_request"));
    let (text, _) = h.command(MANAGE_WEBHOOKS, &["webhook", "filter"], &options).await;
    assert!(text.contains("pull_request"), "{text}");
    let mut options = target.to_vec();
    options.push(("template", "{{ unclosed"));
    let (text, _) = h.command(MANAGE_WEBHOOKS, &["webhook", "format"], &options).await;
    assert!(text.starts_with('❌') && text.contains("template"), "a bad template is refused: {text}");
    let (text, _) = h.command(MANAGE_WEBHOOKS, &["webhook", "disable"], &target).await;
    assert!(text.contains("disabled"), "{text}");
    assert_eq!(github_push(&h.http, url, secret, "b-disabled").await, 409);
    let (text, _) = h.command(MANAGE_WEBHOOKS, &["webhook", "enable"], &target).await;
    assert!(text.contains("enabled"), "{text}");
    let hook = h.api_get(&format!("/api/webhooks/{id}")).await;
    assert_eq!(
        (hook["events"].clone(), hook["enabled"].clone(), hook["template"].clone()),
        (json!(["pull_request"]), json!(true), Value::Null)
    );
}

/// Without a token the bot refuses to start; with a token Discord refuses,
/// it stops with an error naming the token instead of running half-blind.
#[tokio::test]
async fn bad_tokens_stop_the_bot_with_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(exe())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("CHORUS_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHORUS_DISCORD_TOKEN"), "{out:?}");

    let h = Harness {
        discord: FakeDiscord::start().await,
        gateway: FakeGateway::start().await,
        http: reqwest::Client::new(),
        interactions: 0,
        base: String::new(),
    };
    h.gateway.reject_identify(4004);
    let mut bot = Process::start(exe(), data.path(), &h.env()).await;
    let status = bot.wait(WAIT).await;
    assert_eq!(status.code(), Some(1), "{}", bot.output());
    assert!(bot.output().contains("check CHORUS_DISCORD_TOKEN"), "{}", bot.output());
}
