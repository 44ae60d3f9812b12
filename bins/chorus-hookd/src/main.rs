//! `chorus-hookd`: the Chorus webhook gateway, HTTP side only (no Discord
//! gateway connection), for running behind a reverse proxy.

use std::{io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use chorus_server::{CancellationToken, Chorus, Config};
use clap::{Parser, Subcommand};
use tracing_subscriber::{EnvFilter, fmt};

mod cli;
mod client;

// Ingress parses and formats every payload: with glibc's allocator,
// malloc and free took about a third of the server's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "chorus-hookd", version, about = "Chorus webhook gateway for Discord agent bots")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    client: cli::ClientArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: ingress, management API and delivery workers.
    Serve {
        /// TOML configuration file; `CHORUS_*` variables override it.
        #[arg(long, env = "CHORUS_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address (overrides config and CHORUS_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (overrides config and CHORUS_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
    /// Move a SQLite database into an empty PostgreSQL database, with its
    /// secrets still sealed under the same master key. Stop the server first.
    Migrate {
        /// The SQLite database (default: chorus.db in the data directory).
        #[arg(long)]
        from: Option<PathBuf>,
        /// The empty target: postgres://user@host:port/database.
        #[arg(long)]
        to: String,
        /// TOML configuration file (for the data directory and master key).
        #[arg(long, env = "CHORUS_CONFIG")]
        config: Option<PathBuf>,
        /// Data directory (overrides config and CHORUS_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Manage agents on a running server.
    Agents {
        #[command(subcommand)]
        cmd: cli::AgentCmd,
    },
    /// Manage incoming hooks and outgoing subscriptions on a running server.
    Webhooks {
        #[command(subcommand)]
        cmd: Box<cli::WebhookCmd>,
    },
    /// Manage API tokens (admin or read-only) on a running server.
    Tokens {
        #[command(subcommand)]
        cmd: cli::TokenCmd,
    },
    /// Tasks that rules made for agents: list, inspect, complete, fail.
    Tasks {
        #[command(subcommand)]
        cmd: cli::TaskCmd,
    },
    /// Workflows (POST /webhooks/{name}): list, inspect, test, enable, disable, reload.
    Workflows {
        #[command(subcommand)]
        cmd: cli::WorkflowCmd,
    },
    /// Workflow runs: list, inspect, approve or deny a waiting gate, cancel.
    Runs {
        #[command(subcommand)]
        cmd: cli::RunCmd,
    },
    /// Recent changes on record: who did what, through what.
    Audit {
        /// At most this many (1–250).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Config files in <data dir>/config/webhooks that could not be applied.
    ConfigErrors,
    /// Back up a running server's agents, hooks with their rules, workflows
    /// and subscriptions as config files under a new folder.
    Export {
        /// The folder to write (new or empty).
        #[arg(long)]
        out: PathBuf,
        /// Keep secrets, sealed under the server's master key (only a
        /// server with that key can import them).
        #[arg(long)]
        secrets: bool,
    },
    /// Create on a running server what an export's folder describes; all or
    /// nothing, and nothing that exists is changed.
    Import {
        /// The folder an export wrote.
        dir: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error is one line (clap's first), not a page of usage.
        Err(e) if e.use_stderr() => {
            let text = e.render().to_string();
            let what: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
                .map(str::trim)
                .collect();
            let what = what.join(" ");
            eprintln!("chorus-hookd: {} (see --help)", what.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let (cmd, args) = match cli.command {
        Command::Agents { cmd } => (Client::Agents(cmd), cli.client),
        Command::Webhooks { cmd } => (Client::Webhooks(cmd), cli.client),
        Command::Tokens { cmd } => (Client::Tokens(cmd), cli.client),
        Command::Audit { limit } => (Client::Audit(limit), cli.client),
        Command::Tasks { cmd } => (Client::Tasks(cmd), cli.client),
        Command::Workflows { cmd } => (Client::Workflows(cmd), cli.client),
        Command::Runs { cmd } => (Client::Runs(cmd), cli.client),
        Command::ConfigErrors => (Client::ConfigErrors, cli.client),
        Command::Export { out, secrets } => (Client::Export(out, secrets), cli.client),
        Command::Import { dir } => (Client::Import(dir), cli.client),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "chorus-hookd", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        moving @ Command::Migrate { .. } => {
            return match migrate(moving) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("chorus-hookd: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        serve @ Command::Serve { .. } => {
            return match run(serve) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("chorus-hookd: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match run_client(cmd, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chorus-hookd: {e}");
            e.exit_code()
        }
    }
}

enum Client {
    Agents(cli::AgentCmd),
    Webhooks(Box<cli::WebhookCmd>),
    Tokens(cli::TokenCmd),
    Audit(Option<u32>),
    Tasks(cli::TaskCmd),
    Workflows(cli::WorkflowCmd),
    Runs(cli::RunCmd),
    ConfigErrors,
    Export(PathBuf, bool),
    Import(PathBuf),
}

fn run_client(cmd: Client, args: cli::ClientArgs) -> Result<(), client::ClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client::Client::new(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| client::ClientError::Transport(format!("starting the runtime: {e}")))?;
    runtime.block_on(async {
        match cmd {
            Client::Agents(c) => client.agents(c).await,
            Client::Webhooks(c) => client.webhooks(*c).await,
            Client::Tokens(c) => client.tokens(c).await,
            Client::Audit(limit) => client.audit(limit).await,
            Client::Tasks(c) => client.tasks(c).await,
            Client::Workflows(c) => client.workflows(c).await,
            Client::Runs(c) => client.runs(c).await,
            Client::ConfigErrors => client.config_errors().await,
            Client::Export(out, secrets) => client.export(&out, secrets).await,
            Client::Import(dir) => client.import(&dir).await,
        }
    })
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_env("CHORUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let Command::Serve { config, listen, data_dir, log_json } = command else {
        anyhow::bail!("not a server command");
    };
    init_logging(log_json);
    // One process-wide TLS provider, chosen explicitly (twilight and reqwest
    // are built without one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = Config::load(config.as_deref(), |k| std::env::var(k).ok()).context("configuration")?;
    config.override_with(listen.as_deref(), data_dir).context("command line")?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(serve(config))
}

fn migrate(command: Command) -> anyhow::Result<()> {
    let Command::Migrate { from, to, config, data_dir } = command else {
        anyhow::bail!("not a migration");
    };
    let mut config = Config::load(config.as_deref(), |k| std::env::var(k).ok()).context("configuration")?;
    config.override_with(None, data_dir).context("command line")?;
    let from = from.unwrap_or_else(|| config.data_dir.join("chorus.db"));
    anyhow::ensure!(from.is_file(), "no SQLite database at {}", from.display());
    // The key the data was sealed with; never a new one.
    let key = match &config.master_key {
        Some(b64) => chorus_store::MasterKey::from_base64(b64).context("CHORUS_MASTER_KEY")?,
        None => {
            let path = config.data_dir.join("master.key");
            anyhow::ensure!(
                path.is_file(),
                "no master key at {}: set CHORUS_MASTER_KEY to the key the database was sealed with",
                path.display()
            );
            chorus_store::MasterKey::load_or_create(&path).context("master key")?
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let clock: std::sync::Arc<dyn chorus_core::Clock> = std::sync::Arc::new(chorus_core::SystemClock);
    let report = runtime
        .block_on(chorus_store::migrate_sqlite_to_postgres(&from, &to, key, clock))
        .with_context(|| format!("migrating {}", from.display()))?;
    let mut out = std::io::stdout().lock();
    for (table, rows) in &report.tables {
        let _ = writeln!(out, "{table:<18} {rows:>10}");
    }
    let _ = writeln!(
        out,
        "moved and counted; run every replica with CHORUS_DATABASE_URL set to the target and the same master key"
    );
    Ok(())
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let (chorus, notes, listener) = Chorus::bind(&mut config).await.context("starting Chorus")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(chorus_server::cancel_on_signal(shutdown.clone()));
    let addr = config.listen;
    if let Some(notice) = notes.token_notice(&config.data_dir) {
        eprintln!("{notice}");
    }
    tracing::info!(
        listen = %addr,
        database = %notes.database,
        discord_bot = config.discord_token.is_some(),
        public_url = %config.public_base(),
        "chorus-hookd listening"
    );
    if config.discord_token.is_none() {
        tracing::warn!(
            "CHORUS_DISCORD_TOKEN is not set: channel messages wait in the store until a bot token is configured"
        );
    }
    chorus.serve(listener, shutdown).await.context("serving")?;
    tracing::info!("chorus-hookd stopped");
    Ok(())
}
