//! `chorus-bot`: Chorus as a Discord bot. One tokio runtime runs the gateway
//! shard (slash commands, `!hook` text commands) and the whole HTTP side of
//! `chorus-hookd` (ingress, management API, delivery workers).

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use chorus_server::{CancellationToken, Chorus, Config};
use clap::{Parser, Subcommand};
use tracing_subscriber::{EnvFilter, fmt};

mod bot;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "chorus-bot", version, about = "Chorus webhook gateway as a Discord bot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to Discord and serve webhooks and the management API.
    Serve {
        /// TOML configuration file; `CHORUS_*` variables override it.
        #[arg(long, env = "CHORUS_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address of the HTTP side (overrides config and CHORUS_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (overrides config and CHORUS_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log as JSON lines instead of text.
        #[arg(long)]
        log_json: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let Command::Serve { config, listen, data_dir, log_json } = command;
    let filter = EnvFilter::try_from_env("CHORUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = Config::load(config.as_deref(), |k| std::env::var(k).ok()).context("configuration")?;
    config.override_with(listen.as_deref(), data_dir).context("command line")?;
    if config.discord_token.as_deref().is_none_or(|t| t.trim().is_empty()) {
        anyhow::bail!(
            "chorus-bot needs a bot token: set CHORUS_DISCORD_TOKEN (or run chorus-hookd for the HTTP side alone)"
        );
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    let (chorus, notes, listener) = Chorus::bind(&mut config).await.context("starting Chorus")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(chorus_server::cancel_on_signal(shutdown.clone()));
    let addr = config.listen;
    if let Some(notice) = notes.token_notice(&config.data_dir) {
        eprintln!("{notice}");
    }
    let bot = bot::Bot::new(&config, &chorus);
    tracing::info!(listen = %addr, database = %notes.database, public_url = %config.public_base(), "chorus-bot listening");

    let http_stop = CancellationToken::new();
    let http = tokio::spawn(chorus.serve(listener, http_stop.clone()));
    let asked = bot.run(bot::shard_config(&config), shutdown).await;
    // The gateway is closed; agent.stopped is stored before the HTTP side
    // and its delivery workers finish what is in flight.
    bot.stopped().await;
    http_stop.cancel();
    http.await.context("the HTTP side panicked")?.context("serving")?;
    if !asked {
        anyhow::bail!(
            "Discord closed the gateway connection for good: check CHORUS_DISCORD_TOKEN and the bot's intents"
        );
    }
    tracing::info!("chorus-bot stopped");
    Ok(())
}
