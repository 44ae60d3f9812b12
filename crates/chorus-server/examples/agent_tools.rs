//! An agent's own tools in Chorus workflows: serves like `chorus-hookd
//! serve` (same configuration, same data directory) with seed 003's
//! `memory_store` and `read_file` registered, so its example workflows run
//! as written.
//!
//! ```text
//! CHORUS_WORKFLOWS_SHELL_ALLOW=echo cargo run --example agent_tools -p chorus-server -- serve
//! ```
//!
//! It takes `chorus-hookd serve`'s `--listen` and `--log-json`.
//!
//! `memory_store` appends `{"section", "fact", "key"}` lines to
//! `<data dir>/memory.jsonl`, once per idempotency key; `read_file` reads a
//! file under `<data dir>/files` (or `CHORUS_READ_FILE_ROOT`).

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    sync::Mutex,
};

use chorus_server::{CancellationToken, Chorus, Config};
use chorus_workflow::{ArgError, Output, Tool, ToolCall, ToolError};
use serde_json::{Map, Value, json};

/// Remembers facts, one JSON line each; a step retried after a crash
/// carries the same key and is not written twice.
struct MemoryStore {
    file: PathBuf,
    lock: Mutex<()>,
}

#[async_trait::async_trait]
impl Tool for MemoryStore {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        match args.get("fact") {
            Some(Value::String(_)) => Ok(()),
            _ => Err(ArgError::at("fact", "fact (text) is required")),
        }
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let section = call.args.get("section").and_then(Value::as_str).unwrap_or("General");
        let fact = call.args.get("fact").and_then(Value::as_str).unwrap_or_default();
        let _guard = self.lock.lock().map_err(|_| ToolError::new("memory lock poisoned"))?;
        let known = std::fs::read_to_string(&self.file).unwrap_or_default();
        let key = json!(call.idempotency_key).to_string();
        if !known.lines().any(|l| l.contains(&format!("\"key\":{key}"))) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.file)
                .map_err(|e| ToolError::new(format!("memory: {e}")))?;
            let line = json!({"section": section, "fact": fact, "key": call.idempotency_key});
            writeln!(f, "{line}").map_err(|e| ToolError::new(format!("memory: {e}")))?;
        }
        Ok(Output::value(json!({"section": section, "stored": fact})))
    }
}

/// Reads a text file, confined to one directory.
struct ReadFile {
    root: PathBuf,
}

#[async_trait::async_trait]
impl Tool for ReadFile {
    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let asked = call.args.get("path").and_then(Value::as_str).unwrap_or_default();
        let name = Path::new(asked).file_name().ok_or_else(|| ToolError::new("path names no file"))?;
        let path = self.root.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| ToolError::new(format!("{}: {e}", path.display())))?;
        Ok(Output::value(json!({"path": path, "text": text})))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    let data = config.data_dir.clone();
    let root = std::env::var_os("CHORUS_READ_FILE_ROOT").map_or_else(|| data.join("files"), PathBuf::from);
    let (chorus, notes, listener) = Chorus::bind_with(&mut config, |builder| {
        builder
            .tool("memory_store", MemoryStore { file: data.join("memory.jsonl"), lock: Mutex::new(()) })
            .tool("read_file", ReadFile { root })
    })
    .await?;
    if let Some(notice) = notes.token_notice(&config.data_dir) {
        eprintln!("{notice}");
    }
    tracing::info!(listen = %config.listen, "agent_tools listening");
    let shutdown = CancellationToken::new();
    tokio::spawn(chorus_server::cancel_on_signal(shutdown.clone()));
    chorus.serve(listener, shutdown).await?;
    Ok(())
}
