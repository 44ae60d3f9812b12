//! The Docker watcher of the built binary against a fake engine on a unix
//! socket: container events become messages for the agent, enriched with
//! the exit's cause, uptime and last logs; neither the engine's restart nor
//! a `kill -9` of hookd loses or repeats an event.

use chorus_testkit::{FakeDiscord, FakeDocker};
use serde_json::{Value, json};

use crate::support::{TOKEN, WAIT, env_for, exe, init};

const SEC: i64 = 1_000_000_000;

/// Titles shown in `channel`, in order.
fn titles(discord: &FakeDiscord, channel: &str) -> Vec<String> {
    discord.shown().into_iter().filter(|s| s.channel == channel).map(|s| s.title).collect()
}

#[tokio::test]
async fn container_events_reach_the_agent_across_engine_and_hookd_restarts() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let mut engine = FakeDocker::start(&socket).await;
    let discord = FakeDiscord::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut env = env_for(Some(&discord));
    env.push(("CHORUS_DOCKER_HOST", format!("unix://{}", socket.display())));
    let mut server = chorus_testkit::Process::start(exe(), data.path(), &env).await;
    let http = reqwest::Client::new();
    let hook = create_hooks(&http, &server.base).await;
    engine.wait_for_streams(1, WAIT).await;

    // The engine's life: a start, a health check's exec (chatter, not
    // shown), and a crash with what `docker inspect` and `logs` would say.
    let t0 = 1_765_000_000 * SEC;
    let web = "a".repeat(64);
    let attrs = |name: &str| json!({"name": name, "image": format!("{name}:latest")});
    engine.emit(FakeDocker::event("container", "start", &web, attrs("web"), t0));
    engine.emit(FakeDocker::event("container", "exec_start: sh -c true", &web, attrs("web"), t0 + SEC));
    engine.set_container(
        &web,
        json!({"Name": "/web", "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": true,
               "StartedAt": "2025-12-06T05:46:40Z", "FinishedAt": "2025-12-06T08:01:40Z"}}),
        "loading model\nMemoryError: Out of memory",
    );
    let mut died = attrs("web");
    died["exitCode"] = json!("137");
    engine.emit(FakeDocker::event("container", "die", &web, died, t0 + 2 * SEC));
    discord.wait_for_shown(3, WAIT).await;
    let shown: Vec<_> = discord.shown().into_iter().filter(|s| s.channel == "4242").collect();
    assert_eq!(titles(&discord, "4242"), ["▶️ Container Started: web", "🚨 Container Stopped: web"]);
    assert_eq!(titles(&discord, "777"), ["🚨 Container Stopped: web"]);
    let crash = shown[1].embed.as_ref().unwrap();
    let text = crash["description"].as_str().unwrap();
    assert!(text.contains("Exit code: **137** (OOM)"), "{text}");
    assert!(text.contains("Uptime: 2h 15m"), "{text}");
    assert!(text.contains("MemoryError: Out of memory"), "{text}");

    // The engine goes away: the watcher says so at /readyz and retries;
    // what happened meanwhile arrives when it is back.
    engine.stop().await;
    engine.emit(FakeDocker::event("container", "start", &"b".repeat(64), attrs("db"), t0 + 3 * SEC));
    let ready = out_of_reach(&http, &server.base).await;
    assert_eq!(ready["status"], "ready", "a missing engine does not make hookd unready: {ready}");
    assert!(ready["docker"]["error"].as_str().unwrap().contains("docker.sock"), "{ready}");
    engine.restart();
    discord.wait_for_shown(4, WAIT).await;
    assert_eq!(titles(&discord, "4242")[2], "▶️ Container Started: db");
    let sinces = engine.sinces();
    assert_eq!(sinces.last().unwrap().as_deref(), Some("1765000002.000000000"), "resumed after the crash");

    // hookd dies; the engine goes on; the restarted hookd reads on from
    // its cursor, and the event at the cursor is not shown twice.
    server.kill().await;
    engine.emit(FakeDocker::event("container", "health_status: unhealthy", &web, attrs("web"), t0 + 4 * SEC));
    let streams = engine.sinces().len();
    server = chorus_testkit::Process::start(exe(), data.path(), &env).await;
    engine.wait_for_streams(streams + 1, WAIT).await;
    assert_eq!(engine.sinces().last().unwrap().as_deref(), Some("1765000003.000000000"));
    discord.wait_for_shown(5, WAIT).await;
    engine.emit(FakeDocker::event("image", "tag", "sha256:1", json!({"name": "web:2"}), t0 + 5 * SEC));
    discord.wait_for_shown(6, WAIT).await;
    assert_eq!(
        titles(&discord, "4242"),
        [
            "▶️ Container Started: web",
            "🚨 Container Stopped: web",
            "▶️ Container Started: db",
            "🩺 Container Unhealthy: web",
            "🔨 Image Built: web:2",
        ]
    );

    assert_eq!(titles(&discord, "777"), ["🚨 Container Stopped: web"], "filtered: only web's crash");

    // Its URL takes no requests.
    let url = hook["url"].as_str().unwrap();
    let url = format!("{}{}", server.base, &url[url.find("/webhook/").unwrap()..]);
    let refused = http.post(url).json(&json!({"Type": "container"})).send().await.unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "watched_hook");
}

/// Agent `builder` with an unfiltered `docker` hook (returned), and agent
/// `ops` with one filtered as `!hook docker on --containers web --events
/// die` makes it.
async fn create_hooks(http: &reqwest::Client, base: &str) -> Value {
    let api = |path: &str| format!("{base}{path}");
    let created = http
        .post(api("/api/agents"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "builder", "channel_id": "4242"}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let hook: Value = http
        .post(api("/api/webhooks"))
        .bearer_auth(TOKEN)
        .json(&json!({"agent": "builder", "source": "docker"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(hook.get("secret").is_none_or(Value::is_null), "a docker hook has no secret: {hook}");
    for (path, body) in [
        ("/api/agents", json!({"name": "ops", "channel_id": "777"})),
        (
            "/api/webhooks",
            json!({"agent": "ops", "source": "docker", "events": ["container.die"],
                   "commands": [{"trigger": "*", "action": "notify", "conditions": {"container": ["web"]}}]}),
        ),
    ] {
        let r = http.post(api(path)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().await.unwrap());
    }
    hook
}

/// `/readyz` once it reports the engine out of reach.
async fn out_of_reach(http: &reqwest::Client, base: &str) -> Value {
    let poll = async {
        loop {
            let v: Value = http.get(format!("{base}/readyz")).send().await.unwrap().json().await.unwrap();
            if v["docker"]["error"].as_str().is_some_and(|e| e.starts_with("cannot reach the Docker engine"))
            {
                break v;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, poll).await.expect("/readyz reports the engine out of reach")
}
