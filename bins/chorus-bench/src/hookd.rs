//! Starting the release `chorus-hookd` for a scenario.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chorus_testkit::Process;
use serde_json::Value;

pub(crate) const TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// `chorus-hookd` beside this binary, built first if it is not there.
pub(crate) fn binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating chorus-bench")?;
    let dir = me.parent().context("chorus-bench has no directory")?;
    let hookd = dir.join("chorus-hookd");
    if !hookd.exists() {
        let release = dir.ends_with("release");
        eprintln!("building chorus-hookd ({})…", if release { "release" } else { "debug" });
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-p", "chorus-hookd"]);
        if release {
            cmd.arg("--release");
        }
        if !cmd.status().context("running cargo build")?.success() {
            bail!("cargo build -p chorus-hookd failed");
        }
    }
    Ok(hookd)
}

/// Start hookd on a fresh data directory.
pub(crate) async fn start(data: &Path, extra: &[(&str, String)]) -> anyhow::Result<Process> {
    let mut env =
        vec![("CHORUS_API_TOKEN", TOKEN.to_owned()), ("CHORUS_LOG", "warn,chorus_hookd=info".to_owned())];
    env.extend(extra.iter().cloned());
    Ok(Process::start(&binary()?, data, &env).await)
}

/// Call the management API; fail on a non-2xx answer.
pub(crate) async fn api(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let resp = http.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send().await?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path}: {status} {v}");
    }
    Ok(v)
}

/// Peak resident set of a process, in MiB (Linux `VmHWM`).
pub(crate) fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// An agent on `channel_id` and a GitHub hook for it that allows any rate:
/// the hook's id and secret.
pub(crate) async fn github_hook(
    http: &reqwest::Client,
    base: &str,
    agent: &str,
    channel_id: &str,
) -> anyhow::Result<(String, chorus_core::Secret)> {
    api(http, base, "/api/agents", serde_json::json!({"name": agent, "channel_id": channel_id})).await?;
    let hook = api(
        http,
        base,
        "/api/webhooks",
        serde_json::json!({"agent": agent, "source": "github", "rate_limit_per_minute": 100_000}),
    )
    .await?;
    let secret = chorus_core::Secret::new(hook["secret"].as_str().context("secret")?);
    Ok((hook["id"].as_str().context("id")?.to_owned(), secret))
}
