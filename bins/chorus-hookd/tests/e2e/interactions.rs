//! Slash commands through Discord's HTTP interactions endpoint on the built
//! `chorus-hookd`: signed with an application key, answered in the callback
//! body, acting through the same service layer as the API.

use chorus_core::Secret;
use chorus_testkit::{
    FakeDiscord, Process,
    interactions::{InteractionSigner, MANAGE_WEBHOOKS, SEND_MESSAGES, slash_command},
};
use serde_json::Value;

use crate::support::{WAIT, api, env_for, exe, init};

const CHANNEL: &str = "4242";

struct Discord<'a> {
    http: reqwest::Client,
    base: &'a str,
    signer: InteractionSigner,
}

impl Discord<'_> {
    async fn post(&self, body: &Value, signer: &InteractionSigner) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut req = self.http.post(format!("{}/interactions", self.base)).body(bytes.clone());
        for (k, v) in signer.headers(&bytes, chorus_core::Clock::now(&chorus_core::SystemClock).as_second()) {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    /// A slash command from a member with `permissions`; the reply's text.
    async fn command(&self, permissions: &str, path: &[&str], options: &[(&str, &str)]) -> (String, bool) {
        let (status, reply) =
            self.post(&slash_command(CHANNEL, permissions, path, options), &self.signer).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["type"], 4, "{reply}");
        let ephemeral = reply["data"]["flags"].as_u64().is_some_and(|f| f & 64 != 0);
        (reply["data"]["content"].as_str().unwrap().to_owned(), ephemeral)
    }

    async fn admin(&self, path: &[&str], options: &[(&str, &str)]) -> (String, bool) {
        self.command(MANAGE_WEBHOOKS, path, options).await
    }
}

/// The value after `label` on its line, without backticks.
fn field(text: &str, label: &str) -> String {
    let line =
        text.lines().find_map(|l| l.strip_prefix(label)).unwrap_or_else(|| panic!("no {label} in {text}"));
    line.trim().trim_matches('`').to_owned()
}

#[tokio::test]
async fn slash_commands_over_http_interactions() {
    init();
    let fake = FakeDiscord::start().await;
    let data = tempfile::tempdir().unwrap();
    let signer = InteractionSigner::from_seed(3);
    let mut env = env_for(Some(&fake));
    env.push(("CHORUS_DISCORD_PUBLIC_KEY", signer.public_hex()));
    let server = Process::start(exe(), data.path(), &env).await;
    let d = Discord { http: reqwest::Client::new(), base: &server.base, signer };

    // Discord checks the endpoint with a PING, and with a bad signature.
    let (status, pong) = d.post(&serde_json::json!({"type": 1}), &d.signer).await;
    assert_eq!((status, pong), (200, serde_json::json!({"type": 1})));
    let (status, _) = d.post(&serde_json::json!({"type": 1}), &InteractionSigner::from_seed(4)).await;
    assert_eq!(status, 401);
    let unsigned =
        d.http.post(format!("{}/interactions", d.base)).body(r#"{"type":1}"#).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let (status, _) = d.post(&serde_json::json!({"type": 4}), &d.signer).await;
    assert_eq!(status, 400, "only PING, application commands and buttons");
    // A click on a button that is not Chorus's is refused to the clicker alone.
    let (status, refused) =
        d.post(&serde_json::json!({"type": 3, "data": {"custom_id": "x"}}), &d.signer).await;
    assert_eq!(
        (status, refused["type"].as_u64(), refused["data"]["flags"].as_u64()),
        (200, Some(4), Some(64))
    );
    let (status, _) = d.post(&Value::String("not an interaction".into()), &d.signer).await;
    assert_eq!(status, 400);

    let (text, _) = d.admin(&["create"], &[("name", "builder")]).await;
    assert!(text.contains("builder") && text.contains(CHANNEL), "{text}");
    let (text, ephemeral) = d
        .admin(&["webhook", "add"], &[("name", "builder"), ("type", "incoming"), ("source", "github")])
        .await;
    assert!(ephemeral, "a reply with a secret is ephemeral: {text}");
    let url = field(&text, "Webhook URL:");
    let secret = Secret::new(field(&text, "Secret:"));
    let id = field(&text, "Hook id:");
    assert!(url.ends_with(&format!("/webhook/builder/{id}")), "{url}");

    // A signed GitHub push reaches builder's channel.
    let body = br#"{"ref":"refs/heads/main","commits":[],"repository":{"full_name":"chorus/app","html_url":"https://github.com/chorus/app"},"sender":{"login":"ana"}}"#;
    let resp = d
        .http
        .post(&url)
        .header("x-github-event", "push")
        .header("x-github-delivery", "i-1")
        .header("x-hub-signature-256", chorus_verify::sign_body_hex(&secret, body))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let messages = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(messages[0].0, CHANNEL);
    assert!(messages[0].1.to_string().contains("chorus/app"), "{:?}", messages[0]);

    let (text, _) = d.command(SEND_MESSAGES, &["webhook", "list"], &[("name", "builder")]).await;
    assert!(text.contains(&id) && !text.contains(secret.expose()), "{text}");

    // A rule from Discord: from now on only pushes to release branches are
    // posted, in the rule's words.
    let (text, _) = d
        .admin(
            &["webhook", "rule-add"],
            &[
                ("name", "builder"),
                ("hook_id", &id),
                ("trigger", "push"),
                ("conditions", "branch=release/*"),
                ("template", "{{author}} pushed to {{branch}}"),
            ],
        )
        .await;
    assert!(text.starts_with("✅ Rule `cmd_") && text.contains("release/*"), "{text}");
    let rule_id = text.split('`').nth(1).unwrap().to_owned();
    for (n, branch) in [(2, "main"), (3, "release/1.2")] {
        let push = serde_json::json!({"ref": format!("refs/heads/{branch}"), "commits": [],
            "repository": {"full_name": "chorus/app"}, "sender": {"login": "ana"}});
        let raw = serde_json::to_vec(&push).unwrap();
        let resp = d
            .http
            .post(&url)
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("i-{n}"))
            .header("x-hub-signature-256", chorus_verify::sign_body_hex(&secret, &raw))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // Events go out in order: had the push to main been posted, it would be
    // the second message.
    let messages = fake.wait_for_messages(2, WAIT).await;
    assert!(messages[1].1.to_string().contains("ana pushed to release/1.2"), "{messages:?}");
    let (text, _) =
        d.command(SEND_MESSAGES, &["webhook", "rule-list"], &[("name", "builder"), ("hook_id", &id)]).await;
    assert!(text.contains(&rule_id) && text.contains("notify"), "{text}");
    let (text, ephemeral) = d
        .admin(
            &["webhook", "rule-add"],
            &[("name", "builder"), ("hook_id", &id), ("trigger", "push"), ("if", "pr.reviews >=")],
        )
        .await;
    assert!(ephemeral && text.starts_with('❌') && text.contains("conditions.if"), "{text}");
    let (text, _) = d
        .admin(&["webhook", "rule-remove"], &[("name", "builder"), ("hook_id", &id), ("rule_id", &rule_id)])
        .await;
    assert!(text.contains("removed"), "{text}");
    let rules =
        api(&d.http, &server.base, reqwest::Method::GET, &format!("/api/webhooks/{id}/commands"), None).await;
    assert_eq!(rules["items"], serde_json::json!([]));

    // Bad inputs: a clear ephemeral error each, and nothing changes.
    for (perms, path, options, needle) in [
        (MANAGE_WEBHOOKS, &["webhook", "explode"][..], &[("name", "builder")][..], "unknown subcommand"),
        (MANAGE_WEBHOOKS, &["webhook", "remove"], &[("name", "builder")], "missing option `hook_id`"),
        (
            MANAGE_WEBHOOKS,
            &["webhook", "add"],
            &[("name", "builder"), ("type", "outgoing"), ("url", "not a url")],
            "url",
        ),
        (MANAGE_WEBHOOKS, &["webhook", "add"], &[("name", "ghost"), ("type", "incoming")], "ghost"),
        (
            SEND_MESSAGES,
            &["webhook", "remove"],
            &[("name", "builder"), ("hook_id", id.as_str())],
            "Manage Webhooks",
        ),
        (
            MANAGE_WEBHOOKS,
            &["webhook", "add"],
            &[("name", "builder"), ("type", "incoming"), ("source", "gitlub")],
            "gitlub",
        ),
        (
            MANAGE_WEBHOOKS,
            &["webhook", "add"],
            &[("name", "builder"), ("type", "incoming"), ("url", "https://example.com/")],
            "outgoing webhooks",
        ),
    ] {
        let (text, ephemeral) = d.command(perms, path, options).await;
        assert!(ephemeral && text.starts_with('❌') && text.contains(needle), "{path:?} {options:?}: {text}");
    }
    let hooks = api(&d.http, &server.base, reqwest::Method::GET, "/api/webhooks", None).await;
    assert_eq!(hooks["items"].as_array().unwrap().len(), 1, "a refused command changed something: {hooks}");

    let (text, _) = d.admin(&["webhook", "remove"], &[("name", "builder"), ("hook_id", &id)]).await;
    assert!(text.contains("deleted"), "{text}");
    let gone = d.http.post(&url).body(body.to_vec()).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    let audit = api(&d.http, &server.base, reqwest::Method::GET, "/api/audit", None).await;
    // Every change made from Discord is on record with its Discord actor
    // (written in the change's own transaction), and nothing refused is.
    let discord: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "discord")
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap_or_default()))
        .collect();
    for (action, target) in [
        ("agents.create", "builder"),
        ("webhooks.create", id.as_str()),
        ("webhooks.commands.create", id.as_str()),
        ("webhooks.commands.delete", id.as_str()),
        ("webhooks.delete", id.as_str()),
    ] {
        assert_eq!(
            discord.iter().filter(|(a, t)| *a == action && *t == target).count(),
            1,
            "{action} {target} in {discord:?}"
        );
    }
    assert_eq!(discord.len(), 5, "refused commands are not on record: {discord:?}");
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["via"] != "discord" || e["actor"].as_str().unwrap().starts_with("discord user "))
    );
}
