//! Chorus on a clock you drive: the time its aggregation windows, retry
//! schedules and signature tolerances read comes from a file of Unix
//! seconds instead of the system clock. For replaying recorded
//! traffic at its own pace, simulations, and tests of long windows across
//! restarts.
//!
//! ```sh
//! echo 1800000000 > /tmp/now
//! CHORUS_CLOCK_FILE=/tmp/now cargo run -p chorus-server --example driven_clock -- --listen 127.0.0.1:8080
//! echo 1800000300 > /tmp/now    # five minutes later, as far as Chorus can tell
//! ```

use std::path::PathBuf;

use chorus_core::Clock;
use chorus_server::{CancellationToken, Chorus, Config};
use jiff::Timestamp;

/// The time written in a file, read at every call: whoever writes the file
/// moves Chorus's time.
struct FileClock {
    path: PathBuf,
}

impl Clock for FileClock {
    fn now(&self) -> Timestamp {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let secs: i64 =
            text.trim().parse().unwrap_or_else(|_| panic!("{}: not Unix seconds", self.path.display()));
        Timestamp::from_second(secs).expect("a time jiff can hold")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = PathBuf::from(std::env::var("CHORUS_CLOCK_FILE").map_err(|_| "set CHORUS_CLOCK_FILE")?);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = args.iter().position(|a| a == "--listen").and_then(|i| args.get(i + 1));
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHORUS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if args.iter().any(|a| a == "--log-json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let mut config = Config::load(None, |k| std::env::var(k).ok())?;
    config.override_with(listen.map(String::as_str), None)?;
    let clock = std::sync::Arc::new(FileClock { path });
    let (chorus, notes, listener) = Chorus::bind_with(&mut config, |builder| builder.clock(clock)).await?;
    if let Some(notice) = notes.token_notice(&config.data_dir) {
        eprintln!("{notice}");
    }
    tracing::info!(listen = %config.listen, "driven_clock listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(chorus_server::cancel_on_signal(shutdown.clone()));
    chorus.serve(listener, shutdown).await?;
    Ok(())
}
