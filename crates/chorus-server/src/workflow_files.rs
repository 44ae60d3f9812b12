//! Workflow files: `<data dir>/workflows/*.yaml|*.yml|*.json`, one workflow
//! per file in seed 003's shape. Loaded at start, whenever a file changes,
//! and on `workflows reload`; a broken file changes nothing and is reported
//! with file, line and field. Removing a file deletes its workflow.

use std::{collections::BTreeMap, path::Path, time::Duration};

use chorus_core::{Secret, SecretChange};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{
    ConfigFileError,
    config_files::{MAX_FILE_BYTES, Parsed, Problem, parse, resolve_secret},
    error::ApiError,
    state::AppState,
    workflows::{self, Origin},
};

/// Watch the workflows directory until `stop`, scanning every `every`.
pub(crate) async fn watch(state: AppState, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        scan(&state).await;
    }
}

/// One pass over the directory: apply new and changed files, delete the
/// workflows of files that are gone, publish the errors. Returns them.
pub(crate) async fn scan(state: &AppState) -> Vec<ConfigFileError> {
    let Some(sys) = &state.workflows else { return Vec::new() };
    let Some(dir) = sys.files.dir().map(Path::to_path_buf) else { return Vec::new() };
    let mut applied = sys.applied.lock().await;
    let files = match crate::config_files::read_files(&dir) {
        Ok(f) => f,
        Err(e) => {
            let error = ConfigFileError {
                file: dir.display().to_string(),
                line: 1,
                field: None,
                message: e.to_string(),
            };
            sys.files.publish(vec![error.clone()]);
            return vec![error];
        }
    };
    let mut errors = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (file, text) in &files {
        if applied.get(file) == Some(text) {
            if let Some(name) = applied_names(&sys.store, file).await {
                names.insert(name, file.clone());
            }
            continue;
        }
        match apply(state, &dir, file, text, &names).await {
            Ok(name) => {
                names.insert(name, file.clone());
                applied.insert(file.clone(), text.clone());
            }
            Err(e) => {
                applied.remove(file);
                errors.push(e);
            }
        }
    }
    applied.retain(|f, _| files.contains_key(f));
    // Workflows whose file is gone (or no longer defines them) go too;
    // one whose file is broken stays as it was until the file is fixed.
    let broken: Vec<&str> = errors.iter().map(|e| e.file.as_str()).collect();
    if let Ok(all) = sys.store.workflows().await {
        for w in all {
            let Some(file) = w.origin.strip_prefix("file:") else { continue };
            let still = names.get(&w.name).is_some_and(|f| f == file) || broken.contains(&file);
            if !still {
                let by = Some(file_actor(state, file, "workflows.delete", &w.name));
                match sys.store.delete_workflow(&w.name, by).await {
                    Ok(()) => {
                        tracing::info!(workflow = %w.name, file, "workflow file removed; workflow deleted");
                    }
                    Err(e) => {
                        tracing::warn!(workflow = %w.name, error = %e, "could not delete a removed file's workflow");
                    }
                }
            }
        }
    }
    sys.files.publish(errors.clone());
    errors
}

/// The name of the workflow a file last applied defined.
async fn applied_names(store: &std::sync::Arc<dyn chorus_core::WorkflowStore>, file: &str) -> Option<String> {
    let origin = format!("file:{file}");
    store.workflows().await.ok()?.into_iter().find(|w| w.origin == origin).map(|w| w.name)
}

fn file_actor(state: &AppState, file: &str, action: &str, target: &str) -> chorus_core::AuditEntry {
    chorus_core::AuditEntry {
        at: state.clock.now(),
        actor: format!("workflow file {file}"),
        via: "config".into(),
        action: action.into(),
        target: Some(target.to_owned()),
    }
}

/// The secret a workflow file's `secret` reference names; none: the
/// workflow takes unsigned requests (where that is allowed).
pub(crate) fn secret_change(
    map: &serde_json::Map<String, Value>,
    refs: crate::config_files::Refs<'_>,
) -> Result<SecretChange, Problem> {
    match map.get("secret") {
        None | Some(Value::Null) => Ok(SecretChange::Clear),
        Some(Value::String(reference)) => {
            let s = resolve_secret(reference, refs, "secret")?;
            if s.len() < 16 {
                return Err(Problem::at("secret", "the secret must be at least 16 characters"));
            }
            Ok(SecretChange::Set(Secret::new(s)))
        }
        Some(_) => Err(Problem::at("secret", "secret must be text: env:NAME, file:PATH or sealed:…")),
    }
}

/// Apply one file; the name of the workflow it defines.
async fn apply(
    state: &AppState,
    dir: &Path,
    file: &str,
    text: &str,
    seen: &BTreeMap<String, String>,
) -> Result<String, ConfigFileError> {
    let report = |p: Problem, parsed: Option<&Parsed>| crate::config_files::located(file, parsed, p);
    if let Some(marker) = text.strip_prefix('\u{0}') {
        let message = format!("file is {marker} (limit {MAX_FILE_BYTES} bytes, UTF-8)");
        return Err(report(Problem { field: None, line: Some(1), message }, None));
    }
    let parsed = parse(file, text).map_err(|p| report(p, None))?;
    let mut value = parsed.value.clone();
    let Some(map) = value.as_object_mut() else {
        return Err(report(
            Problem { field: None, line: Some(1), message: "a workflow file is a map".into() },
            None,
        ));
    };
    // Seed 003: the file name is the workflow's name when it gives none.
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    map.entry("name").or_insert_with(|| Value::String(stem.to_owned()));
    let name = map.get("name").and_then(Value::as_str).unwrap_or(stem).to_owned();
    if let Some(other) = seen.get(&name) {
        return Err(report(
            Problem::at("name", format!("{other} already defines workflow {name:?}")),
            Some(&parsed),
        ));
    }
    let secret = secret_change(map, crate::config_files::Refs::dir(state, dir))
        .map_err(|p| report(p, Some(&parsed)))?;
    let sys = workflows::manage(state).map_err(|e| report(e.into(), None))?;
    if let Some(existing) =
        sys.store.workflow(&name).await.map_err(|e| report(ApiError::from(e).into(), None))?
        && existing.origin != format!("file:{file}")
    {
        let from = existing.origin.strip_prefix("file:").map_or("the API".to_owned(), str::to_owned);
        return Err(report(
            Problem::at("name", format!("workflow {name:?} already exists (defined by {from})")),
            Some(&parsed),
        ));
    }
    let mut by = state.clone();
    by.actor = Some(file_actor(state, file, "", &name));
    workflows::put(&by, &value, secret, Origin::File(file), false)
        .await
        .map_err(|e| report(e.into(), Some(&parsed)))?;
    tracing::info!(workflow = %name, file, "workflow file applied");
    Ok(name)
}
