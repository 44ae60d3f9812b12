//! `GET /metrics` in Prometheus's text format (version 0.0.4): counters kept
//! by ingress as requests arrive, and what the store holds, counted at each
//! scrape (events and deliveries by state, the retry queue's oldest due
//! time, workflow runs and tasks by status).

use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex};

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

use crate::{api::Api, error::ApiError};

/// The store's group commits: writes carried and time taken, each a
/// histogram.
fn commits(out: &mut String, c: &chorus_core::CommitStats) {
    family(
        out,
        "chorus_store_commit_writes",
        "histogram",
        "Writes carried by each group commit of the store.",
    );
    for (bound, n) in chorus_core::CommitStats::SIZES.iter().zip(c.size_buckets) {
        let _ = writeln!(out, "chorus_store_commit_writes_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "chorus_store_commit_writes_bucket{{le=\"+Inf\"}} {}", c.count);
    let _ = writeln!(out, "chorus_store_commit_writes_sum {}", c.size_sum);
    let _ = writeln!(out, "chorus_store_commit_writes_count {}", c.count);
    family(
        out,
        "chorus_store_commit_duration_seconds",
        "histogram",
        "Time each group commit took to be durable.",
    );
    for (bound, n) in chorus_core::CommitStats::MICROS.iter().zip(c.latency_buckets) {
        let _ = writeln!(
            out,
            "chorus_store_commit_duration_seconds_bucket{{le=\"{}\"}} {n}",
            *bound as f64 / 1e6
        );
    }
    let _ = writeln!(out, "chorus_store_commit_duration_seconds_bucket{{le=\"+Inf\"}} {}", c.count);
    let _ = writeln!(out, "chorus_store_commit_duration_seconds_sum {}", c.latency_sum_micros as f64 / 1e6);
    let _ = writeln!(out, "chorus_store_commit_duration_seconds_count {}", c.count);
}

/// Upper bounds of the body-size histogram's buckets, in bytes.
const BODY_BUCKETS: [u64; 8] = [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304];

/// Counters ingress keeps, and the router's and Discord sink's; read at
/// each scrape.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
    router: std::sync::Arc<chorus_deliver::RouterStats>,
    discord: Option<std::sync::Arc<chorus_discord::DiscordStats>>,
}

#[derive(Debug, Default)]
struct Counters {
    /// (source, status) → requests.
    requests: BTreeMap<(&'static str, u16), u64>,
    /// (source, reason) → refused signatures.
    verification_failures: BTreeMap<(&'static str, &'static str), u64>,
    /// Cumulative counts per bucket of [`BODY_BUCKETS`], then the sum and count.
    body_buckets: [u64; BODY_BUCKETS.len()],
    body_sum: u64,
    body_count: u64,
}

impl Metrics {
    /// Reporting also the router's decisions and, when Chorus sends to
    /// Discord itself, its sink's rate-limit counts.
    pub(crate) fn new(
        router: std::sync::Arc<chorus_deliver::RouterStats>,
        discord: Option<std::sync::Arc<chorus_discord::DiscordStats>>,
    ) -> Self {
        Self { router, discord, ..Self::default() }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Counters) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// A request to a hook URL, answered `status`.
    pub(crate) fn request(&self, source: &'static str, status: u16) {
        self.with(|c| *c.requests.entry((source, status)).or_default() += 1);
    }

    /// A request body read in full.
    pub(crate) fn body(&self, bytes: usize) {
        let bytes = bytes as u64;
        self.with(|c| {
            for (bound, count) in BODY_BUCKETS.iter().zip(c.body_buckets.iter_mut()) {
                if bytes <= *bound {
                    *count += 1;
                }
            }
            c.body_sum += bytes;
            c.body_count += 1;
        });
    }

    /// A signature refused, for `reason`.
    pub(crate) fn verification_failure(&self, source: &'static str, reason: &'static str) {
        self.with(|c| *c.verification_failures.entry((source, reason)).or_default() += 1);
    }
}

/// A label value as the text format wants it.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `GET /metrics` (any API token, read-only ones included).
pub(crate) async fn serve(Api(state): Api) -> Result<Response, ApiError> {
    let counts = state.store.counts().await?;
    let mut out = String::new();
    state.metrics.with(|c| {
        family(
            &mut out,
            "chorus_ingress_requests_total",
            "counter",
            "Requests to hook URLs, by source and answer.",
        );
        for ((source, status), n) in &c.requests {
            let _ = writeln!(
                out,
                "chorus_ingress_requests_total{{source=\"{}\",status=\"{status}\"}} {n}",
                label(source)
            );
        }
        family(
            &mut out,
            "chorus_ingress_verification_failures_total",
            "counter",
            "Requests refused for their signature, by source and reason.",
        );
        for ((source, reason), n) in &c.verification_failures {
            let _ = writeln!(
                out,
                "chorus_ingress_verification_failures_total{{source=\"{}\",reason=\"{reason}\"}} {n}",
                label(source)
            );
        }
        family(&mut out, "chorus_ingress_body_bytes", "histogram", "Sizes of request bodies read in full.");
        for (bound, n) in BODY_BUCKETS.iter().zip(c.body_buckets) {
            let _ = writeln!(out, "chorus_ingress_body_bytes_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "chorus_ingress_body_bytes_bucket{{le=\"+Inf\"}} {}", c.body_count);
        let _ = writeln!(out, "chorus_ingress_body_bytes_sum {}", c.body_sum);
        let _ = writeln!(out, "chorus_ingress_body_bytes_count {}", c.body_count);
    });
    workers(&mut out, &state.metrics);
    family(&mut out, "chorus_events", "gauge", "Stored incoming events, by status.");
    for (status, n) in &counts.events {
        let _ = writeln!(out, "chorus_events{{status=\"{}\"}} {n}", label(status));
    }
    family(&mut out, "chorus_deliveries", "gauge", "Stored deliveries, by destination kind and status.");
    for (kind, status, n) in &counts.deliveries {
        let _ =
            writeln!(out, "chorus_deliveries{{kind=\"{}\",status=\"{}\"}} {n}", label(kind), label(status));
    }
    family(
        &mut out,
        "chorus_delivery_queue_oldest_due_seconds",
        "gauge",
        "How long the longest-waiting pending delivery has been due (0 when none is).",
    );
    let overdue = counts.oldest_due.map_or(0.0, |due| {
        let late = state.clock.now().duration_since(due).as_secs_f64();
        late.max(0.0)
    });
    let _ = writeln!(out, "chorus_delivery_queue_oldest_due_seconds {overdue}");
    family(&mut out, "chorus_workflow_runs", "gauge", "Workflow runs, by status.");
    for (status, n) in &counts.runs {
        let _ = writeln!(out, "chorus_workflow_runs{{status=\"{}\"}} {n}", label(status));
    }
    family(&mut out, "chorus_tasks", "gauge", "Agent tasks, by status.");
    for (status, n) in &counts.tasks {
        let _ = writeln!(out, "chorus_tasks{{status=\"{}\"}} {n}", label(status));
    }
    commits(&mut out, &counts.commits);
    let mut response = out.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

/// The router's decisions and the Discord sink's rate-limit waits.
fn workers(out: &mut String, metrics: &Metrics) {
    let routed = metrics.router.snapshot();
    family(out, "chorus_events_routed_total", "counter", "Events routed, by the status routing gave them.");
    for (status, n) in &routed.events {
        let _ = writeln!(out, "chorus_events_routed_total{{status=\"{}\"}} {n}", label(status));
    }
    family(out, "chorus_rules_total", "counter", "Rules evaluated, by action and result.");
    for ((action, result), n) in &routed.rules {
        let _ = writeln!(
            out,
            "chorus_rules_total{{action=\"{}\",result=\"{}\"}} {n}",
            label(action),
            label(result)
        );
    }
    if let Some(discord) = &metrics.discord {
        let (waits, waited) = discord.waits();
        family(
            out,
            "chorus_discord_rate_limit_waits_total",
            "counter",
            "Sends that waited for a used-up Discord rate-limit window to reset.",
        );
        let _ = writeln!(out, "chorus_discord_rate_limit_waits_total {waits}");
        family(
            out,
            "chorus_discord_rate_limit_wait_seconds_total",
            "counter",
            "Time spent waiting for Discord rate-limit windows.",
        );
        let _ = writeln!(out, "chorus_discord_rate_limit_wait_seconds_total {}", waited.as_secs_f64());
        family(out, "chorus_discord_rate_limited_total", "counter", "Answers of 429 from Discord.");
        let _ = writeln!(out, "chorus_discord_rate_limited_total {}", discord.rate_limited());
    }
}
