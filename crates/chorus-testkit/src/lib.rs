#![doc = include_str!("../README.md")]

mod fake_discord;
mod fake_forge;
mod fake_gateway;
pub mod interactions;
mod process;
mod receiver;

pub use fake_discord::{FakeDiscord, Limits, Mode, RecordedRequest, Shown, shown_in};
pub use fake_forge::{FakeForge, Forge};
pub use fake_gateway::{APPLICATION_ID, BOT_USER_ID, FakeGateway};
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
