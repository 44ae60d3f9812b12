//! The deployment files and the configuration reference agree with what
//! Chorus reads: every `CHORUS_*` variable `deploy/` sets is read and
//! documented, and every variable the reference documents is read.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Mutex,
};

use chorus_server::Config;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `CHORUS_*` names in `text`.
fn variables(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("CHORUS_") {
        let name: String = rest[at..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
        if name.len() > "CHORUS_".len() {
            out.insert(name.trim_end_matches('_').to_owned());
        }
        rest = &rest[at + "CHORUS_".len()..];
    }
    out
}

/// Variables read outside `Config::load`: the config file's path (clap)
/// and the log filter (the binaries' logging set-up).
const READ_ELSEWHERE: [&str; 2] = ["CHORUS_CONFIG", "CHORUS_LOG"];

/// The variables `Config::load` asks for.
fn read_by_config() -> BTreeSet<String> {
    let asked = Mutex::new(BTreeSet::new());
    Config::load(None, |k| {
        asked.lock().unwrap().insert(k.to_owned());
        None
    })
    .unwrap();
    let mut read = asked.into_inner().unwrap();
    read.extend(READ_ELSEWHERE.map(str::to_owned));
    read
}

fn deploy_files() -> Vec<PathBuf> {
    let dir = repo().join("deploy");
    vec![dir.join("Dockerfile"), dir.join("kubernetes/chorus.yaml")]
}

#[test]
fn every_variable_deploy_sets_is_read_and_documented() {
    let read = read_by_config();
    let documented = variables(&std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap());
    let mut seen = 0;
    for file in deploy_files() {
        let set = variables(&std::fs::read_to_string(&file).unwrap());
        assert!(!set.is_empty(), "{} sets no CHORUS_ variable", file.display());
        for name in set {
            seen += 1;
            assert!(read.contains(&name), "{} sets {name}, which Chorus does not read", file.display());
            assert!(
                documented.contains(&name),
                "{} sets {name}, missing from docs/configuration.md",
                file.display()
            );
        }
    }
    assert!(seen >= 8, "{seen}");
}

#[test]
fn the_configuration_reference_documents_only_what_is_read() {
    let read = read_by_config();
    let documented = variables(&std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap());
    for name in &documented {
        assert!(read.contains(name), "docs/configuration.md documents {name}, which Chorus does not read");
    }
    for name in &read {
        assert!(documented.contains(name), "{name} is read but missing from docs/configuration.md");
    }
}
