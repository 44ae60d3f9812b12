//! `ingress`: chorus-hookd against the baseline, same load, alternating runs.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use anyhow::Context as _;
use bytes::Bytes;
use chorus_core::Secret;
use http_body_util::Full;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

use crate::{
    hookd,
    load::{self, MakeRequest, Outcome},
};

pub(crate) fn payload() -> Vec<u8> {
    if let Some(dir) = chorus_testkit::fixtures_dir()
        && let Ok(bytes) = std::fs::read(dir.join("github/push.commits.json"))
    {
        return bytes;
    }
    // The same shape and size class as GitHub's push payload.
    let commits: Vec<_> = (0..3)
        .map(|i| json!({"id": format!("{i:040}"), "message": "Update README with a longer commit message body",
                        "url": "https://github.com/o/r/commit/x", "author": {"name": "dev", "email": "dev@example.com"},
                        "added": [], "removed": [], "modified": ["README.md"]}))
        .collect();
    serde_json::to_vec(&json!({"ref": "refs/heads/main", "before": "0".repeat(40), "after": "1".repeat(40),
        "repository": {"full_name": "o/r", "html_url": "https://github.com/o/r", "description": "x".repeat(2000)},
        "pusher": {"name": "dev"}, "sender": {"login": "dev"}, "commits": commits}))
    .expect("serializable")
}

pub(crate) fn maker(addr: SocketAddr, path: String, secret: &Secret, body: Bytes) -> MakeRequest {
    let signature = chorus_verify::sign_body_hex(secret, &body);
    Arc::new(move |n| {
        hyper::Request::post(path.as_str())
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("bench-{n}"))
            .header("x-hub-signature-256", signature.as_str())
            .body(Full::new(body.clone()))
            .expect("valid request")
    })
}

async fn start_baseline(
    secret: &str,
    durable: Option<&std::path::Path>,
) -> anyhow::Result<(tokio::process::Child, SocketAddr)> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.args(["baseline-server", "--secret", secret]);
    if let Some(dir) = durable {
        command.arg("--durable").arg(dir);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the baseline server")?;
    let stdout = child.stdout.take().context("baseline stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = lines.next_line().await?.context("baseline server exited")?;
    let addr = line.strip_prefix("listening ").context("baseline did not announce its address")?.parse()?;
    Ok((child, addr))
}

/// Which stores `ingress` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Database {
    /// SQLite alone.
    Sqlite,
    /// SQLite, and PostgreSQL beside it.
    Postgres,
}

/// A hookd on PostgreSQL in a schema of its own, dropped after.
struct OnPostgres {
    server: chorus_testkit::Process,
    _data: tempfile::TempDir,
    client: tokio_postgres::Client,
    schema: String,
    hook_id: String,
    request: MakeRequest,
    addr: SocketAddr,
}

impl OnPostgres {
    async fn start(url: &str, body: &Bytes) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        tokio::spawn(connection);
        let schema = format!("chorus_bench_{}", std::process::id());
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
            .await?;
        let join = if url.contains('?') { '&' } else { '?' };
        let database_url = format!("{url}{join}options=-csearch_path%3D{schema}");
        let data = tempfile::tempdir()?;
        let server = hookd::start(data.path(), &[("CHORUS_DATABASE_URL", database_url)]).await?;
        let http = reqwest::Client::new();
        let (hook_id, secret) = hookd::github_hook(&http, &server.base, "bench", "1").await?;
        let addr: SocketAddr = server.base.trim_start_matches("http://").parse()?;
        let request = maker(addr, format!("/webhook/bench/{hook_id}"), &secret, body.clone());
        Ok(Self { server, _data: data, client, schema, hook_id, request, addr })
    }

    /// Its figures beside the baseline's and SQLite's rates.
    async fn figures(
        self,
        total: &mut Outcome,
        warm_ok: u64,
        baseline_rps: f64,
        sqlite_rps: f64,
    ) -> anyhow::Result<serde_json::Value> {
        let (stored, rss) = self.finish().await?;
        let rps = total.rps();
        Ok(json!({
            "postgres_rps": (rps * 10.0).round() / 10.0,
            "postgres_ratio": ((rps / baseline_rps) * 1000.0).round() / 1000.0,
            "postgres_vs_sqlite": ((rps / sqlite_rps) * 1000.0).round() / 1000.0,
            "postgres_p50_ms": total.percentile_ms(0.50),
            "postgres_p99_ms": total.percentile_ms(0.99),
            "postgres_errors": total.errors,
            "postgres_rss_mb": (rss * 10.0).round() / 10.0,
            "postgres_acked": total.ok + warm_ok,
            "postgres_stored": stored,
        }))
    }

    /// Stop hookd, count what it stored, drop the schema.
    async fn finish(mut self) -> anyhow::Result<(u64, f64)> {
        let rss = self.server.pid().and_then(hookd::peak_rss_mb).unwrap_or(f64::NAN);
        self.server.terminate(Duration::from_secs(60)).await;
        let stored: i64 = self
            .client
            .query_one(
                &format!("SELECT COUNT(*) FROM {}.events WHERE hook_id = $1", self.schema),
                &[&self.hook_id],
            )
            .await?
            .get(0);
        self.client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema)).await?;
        Ok((stored as u64, rss))
    }
}

pub(crate) async fn run(
    seconds: u64,
    connections: usize,
    postgres: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut server = hookd::start(data.path(), &[]).await?;
    let http = reqwest::Client::new();
    let (hook_id, secret) = hookd::github_hook(&http, &server.base, "bench", "1").await?;
    let hookd_addr: SocketAddr = server.base.trim_start_matches("http://").parse()?;
    let (_baseline, baseline_addr) = start_baseline(secret.expose(), None).await?;
    // On the same file system as hookd's data directory.
    let durable_dir = tempfile::tempdir()?;
    let (_durable, durable_addr) = start_baseline(secret.expose(), Some(durable_dir.path())).await?;
    let body = Bytes::from(payload());
    let on_postgres = match postgres {
        Some(url) => Some(OnPostgres::start(url, &body).await?),
        None => None,
    };

    let counter = Arc::new(AtomicU64::new(0));
    let mut sides = vec![
        (baseline_addr, maker(baseline_addr, "/".into(), &secret, body.clone())),
        (durable_addr, maker(durable_addr, "/".into(), &secret, body.clone())),
        (hookd_addr, maker(hookd_addr, format!("/webhook/bench/{hook_id}"), &secret, body.clone())),
    ];
    if let Some(pg) = &on_postgres {
        sides.push((pg.addr, pg.request.clone()));
    }
    let (warm, mut totals) = alternate(&sides, connections, seconds, &counter).await?;
    let (pg_warm_ok, mut pg_total) = match totals.get(3) {
        Some(total) => (warm[3].ok, total.clone()),
        None => (0, Outcome::default()),
    };
    let [base_total, durable_total, hookd_total, ..] = totals.as_mut_slice() else {
        unreachable!("three sides at least")
    };
    let pid = server.pid().context("hookd pid")?;
    let rss_mb = hookd::peak_rss_mb(pid).unwrap_or(f64::NAN);
    server.terminate(Duration::from_secs(60)).await;
    let stored: u64 = {
        let conn = rusqlite::Connection::open_with_flags(
            data.path().join("chorus.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        conn.query_row("SELECT COUNT(*) FROM events WHERE hook_id = ?1", [hook_id.as_str()], |r| {
            r.get::<_, i64>(0)
        })? as u64
    };
    // Every 2xx, warm-up included, promised a stored event.
    let acked = hookd_total.ok + warm[2].ok;

    let hookd_rps = hookd_total.rps();
    let baseline_rps = base_total.rps();
    let durable_rps = durable_total.rps();
    let figures = json!({
        "scenario": "ingress",
        "connections": connections,
        "seconds": seconds,
        "payload_bytes": body.len(),
        "hookd_rps": (hookd_rps * 10.0).round() / 10.0,
        "baseline_rps": (baseline_rps * 10.0).round() / 10.0,
        "ratio": ((hookd_rps / baseline_rps) * 1000.0).round() / 1000.0,
        "p50_ms": hookd_total.percentile_ms(0.50),
        "p99_ms": hookd_total.percentile_ms(0.99),
        "p999_ms": hookd_total.percentile_ms(0.999),
        "baseline_p99_ms": base_total.percentile_ms(0.99),
        "durable_baseline_rps": (durable_rps * 10.0).round() / 10.0,
        "ratio_durable": ((hookd_rps / durable_rps) * 1000.0).round() / 1000.0,
        "durable_baseline_p99_ms": durable_total.percentile_ms(0.99),
        "durable_baseline_errors": durable_total.errors,
        "errors": hookd_total.errors,
        "rss_mb": (rss_mb * 10.0).round() / 10.0,
        "acked": acked,
        "stored": stored,
    });
    let mut figures = figures;
    if let Some(pg) = on_postgres {
        let extra = pg.figures(&mut pg_total, pg_warm_ok, baseline_rps, hookd_rps).await?;
        if let (Some(all), Some(more)) = (figures.as_object_mut(), extra.as_object()) {
            all.extend(more.clone());
        }
    }
    report(&figures, json_out);
    Ok(())
}

/// Warm each side up for a second, then run them in turn, twice round, in
/// equal slices of `seconds`, so drift on a shared machine affects every
/// side alike. Answers each side's warm-up and total.
async fn alternate(
    sides: &[(SocketAddr, MakeRequest)],
    connections: usize,
    seconds: u64,
    counter: &Arc<AtomicU64>,
) -> anyhow::Result<(Vec<Outcome>, Vec<Outcome>)> {
    let mut warm = Vec::with_capacity(sides.len());
    for (addr, make) in sides {
        warm.push(
            load::run(*addr, connections, Duration::from_secs(1), None, make.clone(), counter.clone())
                .await?,
        );
    }
    let rounds = 2;
    let slice = Duration::from_secs_f64(seconds as f64 / (sides.len() * rounds) as f64);
    let mut totals = vec![Outcome::default(); sides.len()];
    for _ in 0..rounds {
        for ((addr, make), total) in sides.iter().zip(&mut totals) {
            total.merge(load::run(*addr, connections, slice, None, make.clone(), counter.clone()).await?);
        }
    }
    Ok((warm, totals))
}

pub(crate) fn report(figures: &serde_json::Value, json_out: bool) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for (k, v) in figures.as_object().expect("an object") {
        let _ = writeln!(out, "{k:>18}  {v}");
    }
    if json_out {
        let _ = writeln!(out, "{figures}");
    }
}
