//! A closed-loop HTTP/1.1 load generator: C connections, each sending its
//! next request as soon as the previous answer is read.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// Builds request number `n`.
pub(crate) type MakeRequest = Arc<dyn Fn(u64) -> Request<Full<Bytes>> + Send + Sync>;

/// What one run measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// Latencies of answered requests, in microseconds.
    pub(crate) latencies_us: Vec<u32>,
    /// 2xx answers.
    pub(crate) ok: u64,
    /// Other answers and transport errors.
    pub(crate) errors: u64,
    /// Wall time of the run.
    pub(crate) elapsed: Duration,
}

impl Outcome {
    pub(crate) fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile latency in milliseconds.
    pub(crate) fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let rank = ((p * self.latencies_us.len() as f64).ceil() as usize).clamp(1, self.latencies_us.len());
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }
}

/// Run `connections` connections against `addr` for `duration`, or until
/// `limit` requests were sent in all.
pub(crate) async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    limit: Option<u64>,
    make: MakeRequest,
    counter: Arc<AtomicU64>,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (make, counter) = (make.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let stream = tokio::net::TcpStream::connect(addr).await.context("connect")?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
                sender.ready().await?;
                let t = Instant::now();
                match sender.send_request(make(n)).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        let _ = resp.into_body().collect().await;
                        out.latencies_us.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        if ok { out.ok += 1 } else { out.errors += 1 }
                    }
                    Err(_) => {
                        out.errors += 1;
                        break;
                    }
                }
            }
            anyhow::Ok(out)
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        match t.await? {
            Ok(o) => total.merge(o),
            Err(e) => {
                eprintln!("connection failed: {e:#}");
                total.errors += 1;
            }
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}
