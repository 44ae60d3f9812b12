//! Three `chorus-hookd` replicas on one PostgreSQL database behind a
//! round-robin loader, one killed with `kill -9` mid-stream and restarted:
//! nothing acknowledged is lost or shown twice, each sender's events reach
//! the channel in order, outgoing deliveries keep their ids, and a rate
//! limit is one budget across the replicas.
//!
//! Needs `CHORUS_TEST_POSTGRES_URL` (CI sets it); without it the test says
//! so and passes.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use base64::Engine as _;
use chorus_testkit::{FakeDiscord, Process, Reply, TestReceiver};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};

use crate::support::{WAIT, api, env_for, exe, init};

const SENDERS: usize = 8;
const PER_SENDER: usize = 250;
const KILL_AT: usize = 600;
const RESTART_AT: usize = 1200;

/// A schema of its own on the test server, dropped afterwards.
pub(crate) struct Schema {
    server: String,
    name: String,
}

impl Schema {
    pub(crate) async fn create(server: &str) -> Self {
        let random: String = chorus_core::random_token("", 8)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { 'x' })
            .collect();
        let name = format!("chorus_e2e_{random}");
        let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("CHORUS_TEST_POSTGRES_URL is set but unusable: {e}"));
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.unwrap();
        Self { server: server.to_owned(), name }
    }

    pub(crate) fn url(&self) -> String {
        let join = if self.server.contains('?') { '&' } else { '?' };
        format!("{}{join}options=-csearch_path%3D{}", self.server, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&server, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).await;
                }
            });
        })
        .join();
    }
}

struct Cluster {
    env: Vec<(&'static str, String)>,
    dirs: Vec<tempfile::TempDir>,
    replicas: Vec<Option<Process>>,
    bases: Arc<Mutex<Vec<Option<String>>>>,
}

impl Cluster {
    async fn start(schema: &Schema, discord: &FakeDiscord) -> Self {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let mut env = env_for(Some(discord));
        env.push(("CHORUS_DATABASE_URL", schema.url()));
        env.push(("CHORUS_MASTER_KEY", key));
        env.push(("CHORUS_OUTGOING_ALLOWED_NETS", "127.0.0.0/8".to_owned()));
        let mut cluster =
            Self { env, dirs: Vec::new(), replicas: Vec::new(), bases: Arc::new(Mutex::new(Vec::new())) };
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let p = Process::start(exe(), dir.path(), &cluster.env).await;
            cluster.bases.lock().unwrap().push(Some(p.base.clone()));
            cluster.replicas.push(Some(p));
            cluster.dirs.push(dir);
        }
        cluster
    }

    fn base(&self, i: usize) -> String {
        self.bases.lock().unwrap()[i].clone().expect("replica running")
    }

    async fn kill(&mut self, i: usize) {
        self.bases.lock().unwrap()[i] = None;
        self.replicas[i].take().unwrap().kill().await;
    }

    async fn restart(&mut self, i: usize) {
        let p = Process::start(exe(), self.dirs[i].path(), &self.env).await;
        self.bases.lock().unwrap()[i] = Some(p.base.clone());
        self.replicas[i] = Some(p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_survive_a_kill_9_without_loss_or_reordering() {
    let Ok(server) = std::env::var("CHORUS_TEST_POSTGRES_URL") else {
        eprintln!("CHORUS_TEST_POSTGRES_URL is not set: skipping the PostgreSQL replicas test");
        return;
    };
    init();
    let schema = Schema::create(&server).await;
    let discord = FakeDiscord::start().await;
    let receiver = TestReceiver::start().await;
    receiver.set_default(Reply::status(200));
    let mut cluster = Cluster::start(&schema, &discord).await;
    let http = reqwest::Client::new();

    // Made through one replica, seen by all: the store is the one truth.
    let first = cluster.base(0);
    api(
        &http,
        &first,
        reqwest::Method::POST,
        "/api/agents",
        Some(json!({"name": "builder", "channel_id": "4242"})),
    )
    .await;
    let hook = api(
        &http,
        &first,
        reqwest::Method::POST,
        "/api/webhooks",
        Some(json!({"agent": "builder", "source": "chorus", "rate_limit_per_minute": 100_000})),
    )
    .await;
    let (hook_id, secret) =
        (hook["id"].as_str().unwrap().to_owned(), hook["secret"].as_str().unwrap().to_owned());
    let secret = chorus_core::Secret::new(secret);
    api(
        &http,
        &first,
        reqwest::Method::POST,
        "/api/webhooks",
        Some(json!({"type": "outgoing", "url": receiver.url("/in"), "events": ["custom.*"]})),
    )
    .await;

    let load = Load::start(&cluster, &hook_id, &secret);
    let mut seen = load.progress.subscribe();
    seen.wait_for(|n| *n >= KILL_AT).await.unwrap();
    cluster.kill(1).await;
    seen.wait_for(|n| *n >= RESTART_AT).await.unwrap();
    cluster.restart(1).await;
    load.task.await.unwrap();
    let acked = load.acked.lock().unwrap().clone();
    assert!(acked.len() > RESTART_AT, "{} acknowledged", acked.len());
    each_acknowledged_event_shown_once_in_order(&discord, &acked).await;
    let emitted = load.emitted.lock().unwrap().clone();
    each_emitted_delivery_received_under_its_id(&receiver, &emitted).await;
}

/// The round-robin loader: eight senders, each posting its events one after
/// another, each post to the next replica in turn; a replica that is down
/// answers nothing and the sender moves on, as behind a load balancer.
/// Every 25th post also emits an outgoing event.
struct Load {
    /// Acknowledged event ids, with their sender and number.
    acked: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    /// Delivery ids of acknowledged emits.
    emitted: Arc<Mutex<HashSet<String>>>,
    /// How many events are acknowledged so far.
    progress: Arc<tokio::sync::watch::Sender<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(cluster: &Cluster, hook_id: &str, secret: &chorus_core::Secret) -> Self {
        let acked: Arc<Mutex<HashMap<String, (usize, usize)>>> = Arc::default();
        let emitted: Arc<Mutex<HashSet<String>>> = Arc::default();
        let progress = Arc::new(tokio::sync::watch::channel(0usize).0);
        let http = reqwest::Client::new();
        let senders: Vec<Sender> = (0..SENDERS)
            .map(|index| Sender {
                index,
                acked: acked.clone(),
                emitted: emitted.clone(),
                progress: progress.clone(),
                bases: cluster.bases.clone(),
                http: http.clone(),
                hook_id: hook_id.to_owned(),
                secret: secret.clone(),
            })
            .collect();
        let task = tokio::spawn(async move {
            stream::iter(senders).for_each_concurrent(SENDERS, Sender::run).await;
        });
        Self { acked, emitted, progress, task }
    }
}

struct Sender {
    /// Which sender this is: titles are `s<index> n<number>`.
    index: usize,
    acked: Arc<Mutex<HashMap<String, (usize, usize)>>>,
    emitted: Arc<Mutex<HashSet<String>>>,
    progress: Arc<tokio::sync::watch::Sender<usize>>,
    bases: Arc<Mutex<Vec<Option<String>>>>,
    http: reqwest::Client,
    hook_id: String,
    secret: chorus_core::Secret,
}

impl Sender {
    async fn run(self) {
        let sender = self.index;
        for n in 0..PER_SENDER {
            let Some(base) = self.bases.lock().unwrap()[(sender + n) % 3].clone() else { continue };
            let body = serde_json::to_vec(&json!({"title": format!("s{sender} n{n}")})).unwrap();
            let sent = self
                .http
                .post(format!("{base}/webhook/builder/{}", self.hook_id))
                .header("content-type", "application/json")
                .header("x-chorus-delivery", format!("s{sender}-n{n}"))
                .header("x-chorus-signature-256", chorus_verify::sign_body_hex(&self.secret, &body))
                .body(body)
                .send()
                .await;
            if let Ok(resp) = sent
                && resp.status().is_success()
                && let Ok(v) = resp.json::<Value>().await
            {
                let id = v["event_id"].as_str().unwrap().to_owned();
                let total = {
                    let mut acked = self.acked.lock().unwrap();
                    acked.insert(id, (sender, n));
                    acked.len()
                };
                self.progress.send_replace(total);
            }
            if n % 25 == 0 {
                let emit = self
                    .http
                    .post(format!("{base}/api/events"))
                    .bearer_auth(crate::support::TOKEN)
                    .json(&json!({"event": "custom.tick", "data": {"sender": sender, "n": n}}))
                    .send()
                    .await;
                if let Ok(resp) = emit
                    && resp.status().is_success()
                    && let Ok(v) = resp.json::<Value>().await
                {
                    self.emitted.lock().unwrap().insert(v["deliveries"][0].as_str().unwrap().to_owned());
                }
            }
        }
    }
}

/// `s3 n17` → (3, 17).
fn sender_and_number(title: &str) -> (usize, usize) {
    let parsed = title.strip_prefix('s').and_then(|t| t.split_once(" n"));
    let Some((s, n)) = parsed else { panic!("unexpected title {title}") };
    (s.parse().unwrap(), n.parse().unwrap())
}

/// Every acknowledged event is shown once, and a sender's events in the
/// order it sent them.
async fn each_acknowledged_event_shown_once_in_order(
    discord: &FakeDiscord,
    acked: &HashMap<String, (usize, usize)>,
) {
    let title_of: HashMap<String, String> =
        acked.iter().map(|(id, (s, n))| (id.clone(), format!("s{s} n{n}"))).collect();
    let wanted: HashSet<&String> = title_of.values().collect();
    let mut want = acked.len();
    let shown = loop {
        let shown = discord.wait_for_shown(want, WAIT).await;
        let titles: HashSet<String> =
            shown.iter().map(|s| s.title.rsplit(": ").next().unwrap().to_owned()).collect();
        if wanted.iter().all(|t| titles.contains(*t)) {
            break shown;
        }
        // Events committed but not acknowledged before the kill arrive too.
        want = shown.len() + 1;
    };
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut last: HashMap<usize, usize> = HashMap::new();
    for s in &shown {
        let title = s.title.rsplit(": ").next().unwrap().to_owned();
        *count.entry(title.clone()).or_default() += 1;
        let (sender, n) = sender_and_number(&title);
        if let Some(before) = last.insert(sender, n) {
            assert!(before < n, "sender {sender}: n{n} shown after n{before}");
        }
    }
    for title in &wanted {
        assert_eq!(count[*title], 1, "{title} shown {} times", count[*title]);
    }
}

/// Each emitted delivery reaches the receiver under its own id; a repeat
/// (its send cut by the kill) carries the same id, never a new one.
async fn each_emitted_delivery_received_under_its_id(receiver: &TestReceiver, emitted: &HashSet<String>) {
    let mut want = emitted.len();
    loop {
        let got = receiver.wait_for(want, WAIT).await;
        let ids: HashSet<String> = got.iter().map(|r| r.header("x-webhook-id").unwrap().to_owned()).collect();
        if emitted.iter().all(|id| ids.contains(id)) {
            let ticks: HashSet<String> = got.iter().map(|r| r.json()["data"].to_string()).collect();
            assert_eq!(ticks.len(), ids.len(), "one delivery id per emitted event");
            break;
        }
        want = got.len() + 1;
    }
}

/// A hook allowing 60 a minute takes 60 in total from three replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_is_one_budget_across_three_replicas() {
    let Ok(server) = std::env::var("CHORUS_TEST_POSTGRES_URL") else {
        eprintln!("CHORUS_TEST_POSTGRES_URL is not set: skipping the PostgreSQL rate limit test");
        return;
    };
    init();
    let schema = Schema::create(&server).await;
    let discord = FakeDiscord::start().await;
    let cluster = Cluster::start(&schema, &discord).await;
    let http = reqwest::Client::new();
    let first = cluster.base(0);
    api(
        &http,
        &first,
        reqwest::Method::POST,
        "/api/agents",
        Some(json!({"name": "builder", "channel_id": "4242"})),
    )
    .await;
    let hook = api(
        &http,
        &first,
        reqwest::Method::POST,
        "/api/webhooks",
        Some(json!({"agent": "builder", "source": "none", "rate_limit_per_minute": 60})),
    )
    .await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = stream::iter(0..120)
        .map(|i| {
            let (http, url) = (http.clone(), format!("{}/webhook/builder/{hook_id}", cluster.base(i % 3)));
            async move {
                http.post(url)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"n":{i}}}"#))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    // The bucket refills one a second; the posts took a moment.
    let refilled = started.elapsed().as_secs() as usize + 1;
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(accepted + limited, 120, "{statuses:?}");
    assert!((60..=60 + refilled).contains(&accepted), "{accepted} accepted across three replicas");
}
