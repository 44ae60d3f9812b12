//! `discord-burst`: a burst of incoming events for one channel against a fake
//! Discord that enforces Discord's documented rate limits.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use anyhow::bail;
use bytes::Bytes;
use chorus_testkit::{FakeDiscord, Limits};
use serde_json::json;

use crate::{hookd, ingress, load};

pub(crate) async fn run(events: u64, connections: usize, json_out: bool) -> anyhow::Result<()> {
    let discord = FakeDiscord::start_limited(Limits::DISCORD).await;
    let data = tempfile::tempdir()?;
    let server = hookd::start(
        data.path(),
        &[("CHORUS_DISCORD_TOKEN", "bench-bot-token".into()), ("CHORUS_DISCORD_PROXY", discord.host_port())],
    )
    .await?;
    let http = reqwest::Client::new();
    let (hook_id, secret) = hookd::github_hook(&http, &server.base, "burst", "4242").await?;
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse()?;
    let make =
        ingress::maker(addr, format!("/webhook/burst/{hook_id}"), &secret, Bytes::from(ingress::payload()));

    eprintln!("posting {events} events for one channel…");
    let started = Instant::now();
    let posted = load::run(
        addr,
        connections,
        Duration::from_secs(600),
        Some(events),
        make,
        Arc::new(AtomicU64::new(0)),
    )
    .await?;
    let post_seconds = started.elapsed().as_secs_f64();
    let acked = posted.ok;
    eprintln!("{acked} acknowledged in {post_seconds:.2} s; waiting for Discord to show them…");
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut have = 0;
    while Instant::now() < deadline {
        // Polling a counter in another part of this process; the figure is
        // the time of the last message, taken from the fake's own records.
        have = discord.shown().len() as u64;
        if have >= acked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let requests = discord.requests();
    let messages = discord.messages();
    let last = requests.iter().filter(|r| r.status == 200).map(|r| r.at).max();
    let drain_seconds = last.map_or(f64::NAN, |t| t.saturating_duration_since(started).as_secs_f64());
    let throttled = requests.iter().filter(|r| r.status == 429).count();
    if have < acked {
        eprintln!("only {have} of {acked} events reached Discord in time");
    }
    if posted.errors > 0 {
        bail!("{} posts failed", posted.errors);
    }

    let figures = json!({
        "scenario": "discord-burst",
        "events": events,
        "acked": acked,
        "post_seconds": (post_seconds * 100.0).round() / 100.0,
        "drain_seconds": (drain_seconds * 100.0).round() / 100.0,
        "messages": messages.len(),
        "events_per_message": ((have as f64 / messages.len().max(1) as f64) * 10.0).round() / 10.0,
        "rate_limited_429": throttled,
        "lost": acked.saturating_sub(have),
        // Discord's limit alone: one event per message, 5 per 5 s.
        "one_per_message_seconds": (acked as f64 / 5.0 * 5.0).round(),
    });
    ingress::report(&figures, json_out);
    drop(server);
    Ok(())
}
