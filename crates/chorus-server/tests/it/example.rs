//! Seed 003's examples end to end against a built binary: the
//! documentation's embedding example (`examples/agent_tools.rs`), which
//! serves like `chorus-hookd serve` with `memory_store` and `read_file`
//! registered. The workflow files are the seed's, read at run time; the
//! approval gates are decided by signed interaction clicks.

use std::{path::PathBuf, time::Duration};

use chorus_testkit::{
    FakeDiscord, Process, Reply, TestReceiver,
    interactions::{InteractionSigner, MANAGE_GUILD, button_click},
};
use serde_json::{Value, json};

use crate::support::TOKEN;

const WAIT: Duration = Duration::from_secs(60);
const CHANNEL: &str = "4242";

/// `target/<profile>/examples/agent_tools`, which `cargo test` (the
/// README's `cargo test --workspace`, or `-p chorus-server`) builds before
/// running the tests; a run filtered to one test target (`--test it`) does
/// not build it, and these tests then say so and pass.
fn example() -> Option<PathBuf> {
    example_binary("agent_tools")
}

/// `target/<profile>/examples/<name>`, when this run built it.
pub(crate) fn example_binary(name: &str) -> Option<PathBuf> {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let exe = deps.parent().unwrap().join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if exe.exists() {
        Some(exe)
    } else {
        eprintln!("notice: {} is not built (a filtered test run); skipping", exe.display());
        None
    }
}

struct Example {
    server: Process,
    discord: FakeDiscord,
    receiver: TestReceiver,
    signer: InteractionSigner,
    http: reqwest::Client,
    data: tempfile::TempDir,
}

impl Example {
    async fn start() -> Option<Self> {
        let blocks = chorus_testkit::seed_yaml("003_")?;
        let exe = example()?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let discord = FakeDiscord::start().await;
        let receiver = TestReceiver::start().await;
        receiver.set_default(Reply::status(200));
        let signer = InteractionSigner::from_seed(21);
        let data = tempfile::tempdir().unwrap();
        let workflows = data.path().join("workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        std::fs::create_dir_all(data.path().join("files")).unwrap();
        // read_file's `/tmp/review.md` is confined to <data dir>/files.
        std::fs::write(data.path().join("files").join("review.md"), "Looks good.\n").unwrap();
        for name in ["deploy-notify", "github-push", "process-event"] {
            let block = blocks.iter().find(|b| b.contains(&format!("name: {name}\n"))).unwrap();
            // Offline: the example's API is a local receiver. The gate needs
            // a channel to post its buttons in: the agent's.
            let mut text = block.replace("https://api.example.com/details", &receiver.url("/details"));
            if name == "process-event" {
                text.push_str("agent: builder\n");
            }
            std::fs::write(workflows.join(format!("{name}.yaml")), text).unwrap();
        }
        let env = vec![
            ("CHORUS_API_TOKEN", TOKEN.to_owned()),
            ("CHORUS_DISCORD_TOKEN", "example-bot-token".to_owned()),
            ("CHORUS_DISCORD_PROXY", format!("http://{}", discord.host_port())),
            ("CHORUS_DISCORD_PUBLIC_KEY", signer.public_hex()),
            ("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned()),
            ("CHORUS_WORKFLOWS_ALLOW_UNSIGNED", "true".to_owned()),
            ("CHORUS_WORKFLOWS_SHELL_ALLOW", "echo".to_owned()),
            ("CHORUS_WORKFLOWS_SYNC_WAIT_MS", "3000".to_owned()),
        ];
        let server = Process::start(&exe, data.path(), &env).await;
        let this = Self { server, discord, receiver, signer, http: reqwest::Client::new(), data };
        this.api(
            reqwest::Method::POST,
            "/api/agents",
            Some(json!({"name": "builder", "channel_id": CHANNEL})),
        )
        .await;
        // process-event names the agent, which exists only now.
        let loaded = this.api(reqwest::Method::POST, "/api/workflows/reload", None).await;
        assert_eq!(loaded, json!({"workflows": 3, "errors": []}), "{}", this.server.output());
        Some(this)
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.server.base)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn post(&self, name: &str, body: &Value) -> (u16, Value) {
        let resp =
            self.http.post(format!("{}/webhooks/{name}", self.server.base)).json(body).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn run_reaches(&self, id: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let run = self.api(reqwest::Method::GET, &format!("/api/runs/{id}"), None).await;
            if run["status"] == status {
                return run;
            }
            assert!(tokio::time::Instant::now() < deadline, "run never reached {status}: {run}");
            // Polling the API for a state, not sleeping in place of one.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Start process-event and click one of its gate's buttons (0 approve,
    /// 1 deny) as a member with Manage Server; the run and the click's answer.
    async fn gate_clicked(&self, button: usize) -> (String, Value) {
        let before = self.gate_messages().len();
        let (status, answer) = self.post("process-event", &json!({"id": 7})).await;
        assert_eq!(status, 202, "{answer}");
        let run = answer["run_id"].as_str().unwrap().to_owned();
        self.discord.wait_until("the gate's buttons", WAIT, |_| self.gate_messages().len() > before).await;
        let message = self.gate_messages().pop().unwrap();
        let id = message["components"][0]["components"][button]["custom_id"].as_str().unwrap().to_owned();
        let click = button_click(CHANNEL, "800000000000000005", MANAGE_GUILD, &[], &id, &message);
        let body = serde_json::to_vec(&click).unwrap();
        let now = chorus_core::Clock::now(&chorus_core::SystemClock).as_second();
        let mut req = self.http.post(format!("{}/interactions", self.server.base)).body(body.clone());
        for (k, v) in self.signer.headers(&body, now) {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        (run, resp.json().await.unwrap())
    }

    fn gate_messages(&self) -> Vec<Value> {
        self.discord
            .messages()
            .into_iter()
            .filter(|(c, m)| c == CHANNEL && m.get("components").is_some())
            .map(|(_, m)| m)
            .collect()
    }
}

#[tokio::test]
async fn the_seed_examples_run_in_the_embedding_example_and_a_click_approves() {
    let Some(ex) = Example::start().await else { return };
    let (status, answer) =
        ex.post("deploy-notify", &json!({"ref": "refs/heads/main", "status": "success"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "ok");
    // memory_store kept the fact, once for the step's key.
    let memory = std::fs::read_to_string(ex.data.path().join("memory.jsonl")).unwrap();
    let facts: Vec<Value> = memory.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0]["section"], "Deployments");
    assert_eq!(facts[0]["key"], format!("{}.1", answer["run_id"].as_str().unwrap()));

    let (status, answer) = ex.post("github-push", &json!({"ref": "refs/heads/main"})).await;
    assert_eq!(status, 200, "{answer}");

    let (run, clicked) = ex.gate_clicked(0).await;
    assert_eq!(clicked["type"], 7, "the message is edited: {clicked}");
    assert_eq!(clicked["data"]["components"], json!([]));
    assert!(clicked["data"]["content"].as_str().unwrap().contains("Approved"), "{clicked}");
    let run = ex.run_reaches(&run, "succeeded").await;
    assert_eq!(run["steps"][0]["output"]["status"], 200);
    assert_eq!(run["steps"][2]["output"]["text"], "Looks good.\n");
    assert_eq!(ex.receiver.received()[0].path, "/details");
}

#[tokio::test]
async fn a_click_on_deny_stops_the_seed_example() {
    let Some(ex) = Example::start().await else { return };
    let (run, clicked) = ex.gate_clicked(1).await;
    assert_eq!(clicked["type"], 7, "{clicked}");
    assert!(clicked["data"]["content"].as_str().unwrap().contains("Denied"), "{clicked}");
    let run = ex.run_reaches(&run, "failed").await;
    assert_eq!(run["steps"][2]["status"], "denied");
    assert_eq!(run["steps"][2]["error"], "denied by discord:800000000000000005 (user800000000000000005)");
    // The summary reaches the channel.
    ex.discord
        .wait_until("the summary", WAIT, |d| {
            d.messages()
                .iter()
                .any(|(_, m)| m["embeds"][0]["title"] == "Webhook 'process-event' triggered workflow:")
        })
        .await;
}
