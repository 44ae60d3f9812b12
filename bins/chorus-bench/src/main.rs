//! `chorus-bench`: throughput and latency of Chorus, each figure beside a
//! baseline measured in the same run on the same machine.
//!
//! ```sh
//! cargo run --release -p chorus-bench -- ingress --seconds 20 --connections 32 --json
//! cargo run --release -p chorus-bench -- ingress --database postgres --json
//! cargo run --release -p chorus-bench -- deliver --events 2000 --subscriptions 5 --json
//! cargo run --release -p chorus-bench -- discord-burst --events 1000 --json
//! ```

mod baseline;
mod burst;
mod deliver;
mod hookd;
mod ingress;
mod load;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chorus-bench", about = "Benchmarks of Chorus against same-run baselines")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// chorus-hookd ingress (verify + durable store) against a bare hyper
    /// server that verifies the same HMAC and stores nothing.
    Ingress {
        /// Total measured seconds, split into alternating runs of equal length.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// `postgres`: also measure a hookd on PostgreSQL, in the same run,
        /// beside the SQLite one (the server in `--postgres-url`).
        #[arg(long, value_enum, default_value_t = ingress::Database::Sqlite)]
        database: ingress::Database,
        /// The PostgreSQL server for `--database postgres`; a schema of its
        /// own is made there and dropped after.
        #[arg(
            long,
            env = "CHORUS_BENCH_POSTGRES_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/test"
        )]
        postgres_url: String,
        /// End with one JSON line of the figures.
        #[arg(long)]
        json: bool,
    },
    /// Outgoing deliveries from emit to receipt against plain POSTs from a bare client.
    Deliver {
        /// Events to emit.
        #[arg(long, default_value_t = 2000)]
        events: usize,
        /// Subscriptions receiving each event.
        #[arg(long, default_value_t = 5)]
        subscriptions: usize,
        /// Concurrent emitting connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Emit at this many events a second, on a schedule (open loop),
        /// and time each delivery from its scheduled emit; without it,
        /// emit as fast as the connections allow.
        #[arg(long)]
        rate: Option<f64>,
        /// End with one JSON line of the figures.
        #[arg(long)]
        json: bool,
    },
    /// A burst of incoming events for one channel against a fake Discord that
    /// enforces Discord's rate limits (5 messages per 5 s per channel, 50
    /// requests per second).
    DiscordBurst {
        /// Events to post.
        #[arg(long, default_value_t = 1000)]
        events: u64,
        /// Concurrent posting connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// End with one JSON line of the figures.
        #[arg(long)]
        json: bool,
    },
    /// Internal: the ingress baseline server, run as its own process.
    #[command(hide = true)]
    BaselineServer {
        /// The HMAC secret to verify.
        #[arg(long)]
        secret: String,
        /// Append each body to a file here, answering after its group's
        /// `fdatasync`.
        #[arg(long)]
        durable: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.scenario {
            Scenario::Ingress { seconds, connections, database, postgres_url, json } => {
                let postgres = (database == ingress::Database::Postgres).then_some(postgres_url);
                ingress::run(seconds, connections, postgres.as_deref(), json).await
            }
            Scenario::Deliver { events, subscriptions, connections, rate, json } => {
                deliver::run(events, subscriptions, connections, rate, json).await
            }
            Scenario::DiscordBurst { events, connections, json } => {
                burst::run(events, connections, json).await
            }
            Scenario::BaselineServer { secret, durable } => baseline::serve(secret, durable).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
