#![doc = include_str!("../README.md")]

mod fake_discord;
mod fake_docker;
mod fake_forge;
mod fake_gateway;
mod fault_proxy;
pub mod interactions;
mod process;
mod receiver;

pub use fake_discord::{FakeDiscord, Limits, Mode, RecordedRequest, Shown, shown_in};
pub use fake_docker::FakeDocker;
pub use fake_forge::{FakeForge, Forge};
pub use fake_gateway::{APPLICATION_ID, BOT_USER_ID, FakeGateway};
pub use fault_proxy::{Fault, FaultProxy, Handled};
pub use process::Process;
pub use receiver::{Received, Reply, TestReceiver};

/// The Python interpreter with `standardwebhooks` installed (`CHORUS_TEST_PYTHON`),
/// for interoperability checks; `None`, with a notice, where it is not set.
pub fn python() -> Option<std::path::PathBuf> {
    match std::env::var_os("CHORUS_TEST_PYTHON") {
        Some(p) => Some(p.into()),
        None => {
            eprintln!("notice: CHORUS_TEST_PYTHON is not set; skipping the Python interoperability checks");
            None
        }
    }
}

use std::path::PathBuf;

/// The shared third-party fixtures (`../shared/fixtures` beside the
/// checkout, or `CHORUS_FIXTURES`). `None`, with a notice on stderr, where
/// they are absent: tests that need them then pass without checking.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CHORUS_FIXTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
        PathBuf::from,
    );
    if dir.join("README.md").exists() {
        Some(dir)
    } else {
        eprintln!("notice: shared fixtures not found at {}; skipping fixture checks", dir.display());
        None
    }
}

/// Every `*.json` fixture in `fixtures/<group>`, sorted by name.
pub fn fixture_files(group: &str) -> Vec<PathBuf> {
    let Some(dir) = fixtures_dir() else { return Vec::new() };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(group))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The ```yaml examples of the seed document whose file name starts with
/// `prefix` (`003_`), read at run time from the shared seeds (or
/// `CHORUS_SEEDS`); `None`, with a notice, where they are not present.
pub fn seed_yaml(prefix: &str) -> Option<Vec<String>> {
    let dir = std::env::var_os("CHORUS_SEEDS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds"),
        PathBuf::from,
    );
    let file = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)));
    let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
        eprintln!("notice: seed {prefix}* not found in {}; skipping seed examples", dir.display());
        return None;
    };
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```yaml") => current = Some(String::new()),
            (Some(block), l) if l.starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    Some(blocks)
}
