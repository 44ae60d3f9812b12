//! Declarative hooks: `<data dir>/config/webhooks/*.json|*.yaml|*.yml`, one
//! incoming hook per file, in seed 001's shape. Loaded at start and whenever
//! a file changes; applying a file twice changes nothing; a broken file
//! changes nothing and is reported with file, line and field.
//!
//! A file's hook is known by its file name without the extension (kept as
//! `created_by = "config:<stem>"`), so editing the file updates the same
//! hook and its URL stays. Removing the file deletes the hook.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use chorus_core::{AuditEntry, HookId, HookPatch, IncomingHook, Rule, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use yaml_rust2::{
    parser::{Event, MarkedEventReceiver, Parser},
    scanner::{Marker, TScalarStyle},
};

use crate::{
    error::ApiError,
    service::{self, IncomingSpec, RuleSpec},
    state::AppState,
};

/// Largest config file read.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;

/// A file that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConfigFileError {
    /// File name inside the config directory.
    pub file: String,
    /// 1-based line the problem is on (the field's line when one is at fault).
    #[schemars(range(min = 1))]
    pub line: usize,
    /// The field at fault (`commands[1].action`), when one is.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What the loader reports: the directory, the errors of the last scan and
/// a counter of finished scans (for waiting on a change to be picked up).
#[derive(Debug)]
pub struct ConfigStatus {
    dir: Option<PathBuf>,
    errors: Mutex<Vec<ConfigFileError>>,
    scans: tokio::sync::watch::Sender<u64>,
}

impl ConfigStatus {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir, errors: Mutex::new(Vec::new()), scans: tokio::sync::watch::Sender::new(0) }
    }

    /// The watched directory, if config files are in use.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Files that could not be applied in the last scan.
    pub fn errors(&self) -> Vec<ConfigFileError> {
        self.errors.lock().expect("config errors").clone()
    }

    /// Changes after every scan of the directory.
    pub fn scans(&self) -> tokio::sync::watch::Receiver<u64> {
        self.scans.subscribe()
    }

    /// Publish a scan's errors, logging those that are new.
    pub(crate) fn publish(&self, errors: Vec<ConfigFileError>) {
        let previous = self.errors();
        for e in &errors {
            if !previous.contains(e) {
                tracing::warn!(file = %e.file, line = e.line, field = e.field.as_deref(), "file not applied: {e}");
            }
        }
        *self.errors.lock().expect("config errors") = errors;
        self.scans.send_modify(|n| *n += 1);
    }
}

/// A hook file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HookFile {
    /// The hook's id when the file creates it (a backup's files keep their
    /// hooks' URLs this way); an existing hook's id cannot change.
    id: Option<String>,
    name: Option<String>,
    agent: Option<String>,
    /// Seed 001 calls the source `provider`.
    #[serde(alias = "source")]
    provider: Option<String>,
    secret: Option<String>,
    /// Seed 001's user-chosen id, for `/webhooks/{provider}/{webhook_id}`.
    webhook_id: Option<String>,
    /// Seed 001's `endpoint`: computed by Chorus, accepted and ignored.
    #[serde(rename = "endpoint")]
    _endpoint: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    rate_limit_per_minute: Option<u32>,
    #[serde(default)]
    ip_allowlist: Vec<String>,
    template: Option<String>,
    #[serde(default)]
    events: Vec<String>,
    generic: Option<chorus_core::GenericScheme>,
    /// A window (`5m`) in which events collect into one summary.
    aggregate: Option<Value>,
    /// `every` or `changes`.
    notify: Option<String>,
    /// A Discord thread per pull request and incident.
    #[serde(default)]
    threads: bool,
    #[serde(default)]
    commands: Vec<RuleSpec>,
    /// Credentials for comment rules; `token` is a reference like `secret`.
    reply: Option<ReplyFile>,
}

/// `reply` as a file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyFile {
    token: String,
    email: Option<String>,
    api_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// A problem found in a file, before its line is known.
pub(crate) struct Problem {
    pub(crate) field: Option<String>,
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn at(field: &str, message: impl Into<String>) -> Self {
        Self { field: Some(field.to_owned()), line: None, message: message.into() }
    }
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        Self { field: e.field, line: None, message: e.message }
    }
}

/// A file parsed: its value and where each field is.
pub(crate) struct Parsed {
    pub(crate) value: Value,
    lines: HashMap<String, usize>,
}

impl Parsed {
    /// The line of `field`, or of its nearest enclosing field that has one.
    pub(crate) fn line_of(&self, field: &str) -> usize {
        let mut path = field;
        loop {
            if let Some(line) = self.lines.get(path) {
                return *line;
            }
            match path.rfind(['.', '[']) {
                Some(i) => path = &path[..i],
                None => return 1,
            }
        }
    }
}

pub(crate) fn parse(name: &str, text: &str) -> Result<Parsed, Problem> {
    let yaml = extension(name).as_deref() != Some("json");
    let mut builder = Builder::default();
    let scanned = Parser::new_from_str(text).load(&mut builder, false);
    if yaml {
        if let Err(e) = scanned {
            return Err(Problem { field: None, line: Some(e.marker().line()), message: e.info().to_owned() });
        }
        if let Some(p) = builder.problem {
            return Err(p);
        }
        let value = builder.done.unwrap_or(Value::Null);
        return Ok(Parsed { value, lines: builder.lines });
    }
    // JSON's own parser for the value and its errors; the YAML events (JSON
    // is YAML) only for where the fields are.
    let value: Value = serde_json::from_str(text).map_err(|e| Problem {
        field: None,
        line: Some(e.line().max(1)),
        message: e.to_string(),
    })?;
    Ok(Parsed { value, lines: builder.lines })
}

/// A hook file's text through the parser and the field checks, for the
/// fuzz targets: whatever the text, an answer, never a panic. Whether it
/// parsed to a hook file.
#[doc(hidden)]
pub fn fuzz_hook_file(name: &str, text: &str) -> bool {
    match parse(name, text) {
        Ok(parsed) => match typed::<HookFile>(&parsed.value, &["secret", "reply.token"]) {
            Ok(_) => true,
            Err(p) => {
                let _ = located(name, Some(&parsed), p);
                false
            }
        },
        Err(p) => {
            let _ = located(name, None, p);
            false
        }
    }
}

/// `problem` in `file`, at its field's line when `parsed` knows it.
pub(crate) fn located(file: &str, parsed: Option<&Parsed>, problem: Problem) -> ConfigFileError {
    let line = problem.line.unwrap_or_else(|| match (&problem.field, parsed) {
        (Some(f), Some(parsed)) => parsed.line_of(f),
        _ => 1,
    });
    ConfigFileError { file: file.to_owned(), line, field: problem.field, message: problem.message }
}

/// `parsed` as a `T`; a mistake at one of the `secrets` fields is
/// reported without its value.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(value: &Value, secrets: &[&str]) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        // serde quotes the offending value; for a secret that could be the
        // secret itself, and errors are logged and served.
        let message = if secrets.contains(&field.as_str()) {
            format!("{field} must be a string: env:NAME, file:PATH or sealed:…")
        } else {
            e.into_inner().to_string()
        };
        let field = (field != ".").then_some(field);
        Problem { field, line: None, message }
    })
}

/// Builds a JSON value from YAML events, noting the line of every field.
#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    done: Option<Value>,
    lines: HashMap<String, usize>,
    problem: Option<Problem>,
}

enum Frame {
    Map { path: String, map: Map<String, Value>, key: Option<String> },
    Seq { path: String, items: Vec<Value> },
}

impl Builder {
    /// The path of the next value, noting its line.
    fn next_path(&mut self, line: usize) -> Option<String> {
        let path = match self.stack.last() {
            None => String::new(),
            Some(Frame::Map { path, key: Some(k), .. }) if path.is_empty() => k.clone(),
            Some(Frame::Map { path, key: Some(k), .. }) => format!("{path}.{k}"),
            Some(Frame::Map { key: None, .. }) => return None,
            Some(Frame::Seq { path, items }) => {
                let p = format!("{path}[{}]", items.len());
                self.lines.entry(p.clone()).or_insert(line);
                p
            }
        };
        Some(path)
    }

    fn push_value(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.done = Some(value),
            Some(Frame::Map { map, key, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, value);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
        }
    }

    fn fail(&mut self, mark: Marker, message: &str) {
        if self.problem.is_none() {
            self.problem =
                Some(Problem { field: None, line: Some(mark.line()), message: message.to_owned() });
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.problem.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, _, _) => {
                if let Some(Frame::Map { path, key: key @ None, .. }) = self.stack.last_mut() {
                    let full = if path.is_empty() { text.clone() } else { format!("{path}.{text}") };
                    self.lines.entry(full).or_insert(line);
                    *key = Some(text);
                    return;
                }
                self.next_path(line);
                let value =
                    if style == TScalarStyle::Plain { plain_scalar(&text) } else { Value::String(text) };
                self.push_value(value);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let Some(path) = self.next_path(line) else {
                    return self.fail(mark, "keys must be plain text, not lists or maps");
                };
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map { path, map: Map::new(), key: None },
                    _ => Frame::Seq { path, items: Vec::new() },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let value = match self.stack.pop() {
                    Some(Frame::Map { map, .. }) => Value::Object(map),
                    Some(Frame::Seq { items, .. }) => Value::Array(items),
                    None => return,
                };
                self.push_value(value);
            }
            Event::Alias(_) => self.fail(mark, "YAML aliases are not supported in hook files"),
            _ => {}
        }
    }
}

/// A plain YAML scalar under the core schema.
fn plain_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = s.parse::<i64>() {
                return Value::from(i);
            }
            if s.bytes().any(|b| b.is_ascii_digit())
                && let Ok(f) = s.parse::<f64>()
                && f.is_finite()
            {
                return Value::from(f);
            }
            Value::String(s.to_owned())
        }
    }
}

/// Where the secret references of a file are resolved: `file:` paths
/// relative to `dir` (none for an import, which has no directory), and
/// `sealed:` values opened with `key`.
#[derive(Clone, Copy)]
pub(crate) struct Refs<'a> {
    pub(crate) dir: Option<&'a Path>,
    pub(crate) key: Option<&'a chorus_store::MasterKey>,
}

impl<'a> Refs<'a> {
    /// The config directory `dir`, with the server's key.
    pub(crate) fn dir(state: &'a AppState, dir: &'a Path) -> Self {
        Self { dir: Some(dir), key: state.settings.sealing_key.as_ref() }
    }
}

/// `env:NAME`, `file:PATH` (relative to the config directory) or
/// `sealed:…` (from an export, opened with the master key), for the secret
/// at `field`.
pub(crate) fn resolve_secret(reference: &str, refs: Refs<'_>, field: &str) -> Result<String, Problem> {
    if reference.starts_with("sealed:") {
        let Some(key) = refs.key else {
            return Err(Problem::at(
                field,
                "sealed: references need the master key, which this server was not given",
            ));
        };
        return key.open_reference(reference).map(|s| s.expose().to_owned()).ok_or_else(|| {
            Problem::at(
                field,
                "this sealed: value does not open: it was sealed under another master key, or altered",
            )
        });
    }
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name)
            .map_err(|_| Problem::at(field, format!("environment variable {name} is not set")));
    }
    if let Some(path) = reference.strip_prefix("file:") {
        let Some(dir) = refs.dir else {
            return Err(Problem::at(
                field,
                "file: references are read from the config directory; use env:NAME or sealed:…",
            ));
        };
        let path = dir.join(path);
        return std::fs::read_to_string(&path)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| Problem::at(field, format!("cannot read {}: {e}", path.display())));
    }
    Err(Problem::at(
        field,
        "secrets in config files are references: env:NAME, file:PATH or sealed:…, never the secret itself",
    ))
}

/// A file's hook checked against the store: everything needed to apply it.
pub(crate) struct Plan {
    pub(crate) id: Option<HookId>,
    pub(crate) spec: IncomingSpec,
    pub(crate) secret: Option<Secret>,
    /// Where the hook's agent was written when not at the top
    /// (`commands[0].agent`), so errors about it point there.
    pub(crate) agent_from: Option<String>,
}

pub(crate) fn plan(file: HookFile, refs: Refs<'_>) -> Result<Plan, Problem> {
    let id = file
        .id
        .as_deref()
        .map(|id| id.parse::<HookId>().map_err(|e| Problem::at("id", e.to_string())))
        .transpose()?;
    let from_commands = file.commands.iter().enumerate().find_map(|(i, c)| Some((i, c.agent.clone()?)));
    let (agent, agent_from) = match (&file.agent, from_commands) {
        (Some(a), _) => (a.clone(), None),
        // Seed 001's files name agents only in their commands.
        (None, Some((i, a))) => (a, Some(format!("commands[{i}].agent"))),
        (None, None) => {
            return Err(Problem::at("agent", "missing: the agent whose channel gets the messages"));
        }
    };
    let secret = file.secret.as_deref().map(|r| resolve_secret(r, refs, "secret")).transpose()?;
    let reply = match file.reply {
        Some(r) => Some(service::ReplySpec {
            token: resolve_secret(&r.token, refs, "reply.token")?,
            email: r.email,
            api_url: r.api_url,
        }),
        None => None,
    };
    let spec = IncomingSpec {
        agent: Some(agent),
        webhook_id: file.webhook_id,
        _endpoint: None,
        _kind: None,
        name: file.name,
        source: file.provider,
        secret: secret.clone(),
        enabled: file.enabled,
        rate_limit_per_minute: file.rate_limit_per_minute,
        ip_allowlist: file.ip_allowlist,
        template: file.template,
        events: file.events,
        aggregate: file.aggregate,
        notify: file.notify,
        threads: file.threads,
        generic: file.generic,
        commands: file.commands,
        reply,
    };
    Ok(Plan { id, spec, secret: secret.map(Secret::new), agent_from })
}

/// Whether two rule sets say the same, ids and creation times aside.
fn same_rules(a: &[Rule], b: &[Rule]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (
                &x.trigger,
                x.action,
                &x.agent,
                &x.template,
                &x.conditions,
                &x.url,
                x.priority,
                x.stop,
                x.reply,
                x.signature,
            ) == (
                &y.trigger,
                y.action,
                &y.agent,
                &y.template,
                &y.conditions,
                &y.url,
                y.priority,
                y.stop,
                y.reply,
                y.signature,
            )
        })
}

/// The extension of a hook file (`json`, `yaml`, `yml`), lowercased.
pub(crate) fn extension(name: &str) -> Option<String> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    ["json", "yaml", "yml"].contains(&ext.as_str()).then_some(ext)
}

/// Reads, checks and applies the config directory.
pub(crate) struct Loader {
    state: AppState,
    dir: PathBuf,
    /// Contents last applied without error, by file name.
    applied: HashMap<String, String>,
    /// The hook names whose files were present at the last orphan check;
    /// hooks only lose their file when this set changes.
    checked: Option<BTreeMap<String, String>>,
}

impl Loader {
    pub(crate) fn new(state: AppState, dir: PathBuf) -> Self {
        Self { state, dir, applied: HashMap::new(), checked: None }
    }

    /// Watch the directory until `stop`, scanning every `every`.
    pub(crate) async fn run(mut self, every: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            self.scan().await;
        }
    }

    /// One pass: apply new and changed files, delete hooks whose file is
    /// gone, and publish the errors.
    pub(crate) async fn scan(&mut self) {
        let files = match self.read_dir() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read the config directory");
                self.state.config.scans.send_modify(|n| *n += 1);
                return;
            }
        };
        let previous: HashMap<String, ConfigFileError> =
            self.state.config.errors().into_iter().map(|e| (e.file.clone(), e)).collect();
        let mut errors = Vec::new();
        let mut stems: BTreeMap<String, String> = BTreeMap::new();
        for (name, text) in &files {
            let stem = stem(name).to_owned();
            if let Some(other) = stems.get(&stem) {
                errors.push(ConfigFileError {
                    file: name.clone(),
                    line: 1,
                    field: None,
                    message: format!("{other} already defines hook {stem:?}; one file per hook name"),
                });
                continue;
            }
            stems.insert(stem.clone(), name.clone());
            if self.applied.get(name) == Some(text) {
                continue;
            }
            match self.apply(name, &stem, text).await {
                Ok(()) => {
                    self.applied.insert(name.clone(), text.clone());
                }
                Err(e) => errors.push(e),
            }
        }
        self.applied.retain(|name, _| files.contains_key(name));
        if self.checked.as_ref() != Some(&stems) {
            match self.remove_orphans(&stems).await {
                Ok(()) => self.checked = Some(stems),
                Err(e) => {
                    tracing::warn!(error = %e.message, "config: could not remove hooks whose file is gone");
                }
            }
        }
        for e in &errors {
            if previous.get(&e.file) != Some(e) {
                tracing::warn!(file = %e.file, line = e.line, field = e.field.as_deref(), "config file not applied: {e}");
            }
        }
        *self.state.config.errors.lock().expect("config errors") = errors;
        self.state.config.scans.send_modify(|n| *n += 1);
    }

    fn read_dir(&self) -> std::io::Result<BTreeMap<String, String>> {
        read_files(&self.dir)
    }

    async fn apply(&self, name: &str, stem: &str, text: &str) -> Result<(), ConfigFileError> {
        let report = |p: Problem, parsed: Option<&Parsed>| located(name, parsed, p);
        if let Some(marker) = text.strip_prefix('\u{0}') {
            let message = format!("file is {marker} (limit {MAX_FILE_BYTES} bytes, UTF-8)");
            return Err(report(Problem { field: None, line: Some(1), message }, None));
        }
        let parsed = parse(name, text).map_err(|p| report(p, None))?;
        let file: HookFile =
            typed(&parsed.value, &["secret", "reply.token"]).map_err(|p| report(p, Some(&parsed)))?;
        let plan = plan(file, Refs::dir(&self.state, &self.dir)).map_err(|p| report(p, Some(&parsed)))?;
        self.converge(stem, name, plan).await.map_err(|p| report(p, Some(&parsed)))
    }

    /// Make the store hold what `plan` says, changing only what differs.
    async fn converge(&self, stem: &str, file: &str, plan: Plan) -> Result<(), Problem> {
        let state = &self.state;
        let created_by = format!("config:{stem}");
        let now = service::now(state);
        let existing = state
            .store
            .hooks(None)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .find(|h| h.created_by == created_by);
        // The given secret, checked, or a generated one (shown by no view;
        // `webhooks rotate-secret` hands out a new one).
        let (mut fresh, secret) =
            service::incoming_hook(state, &plan.spec, &created_by, now).await.map_err(|e| {
                match &plan.agent_from {
                    Some(from) if e.field.as_deref() == Some("agent") => {
                        ApiError { field: Some(from.clone()), ..e }
                    }
                    _ => e,
                }
            })?;
        let reply = match &plan.spec.reply {
            Some(r) => Some(service::reply_config(state, fresh.source, r).await?),
            None => None,
        };
        let Some(current) = existing else {
            if let Some(id) = plan.id.clone() {
                if state.store.hook(&id).await.map_err(ApiError::from)?.is_some() {
                    return Err(Problem::at("id", format!("hook {id} exists already")));
                }
                fresh.id = id;
            }
            return self.create(file, &plan, fresh, secret, reply).await;
        };
        if plan.id.as_ref().is_some_and(|id| *id != current.id) {
            return Err(Problem::at("id", "the id of an existing hook cannot change; use a new file"));
        }
        if current.agent != fresh.agent {
            return Err(Problem::at(
                "agent",
                "the agent of an existing hook cannot change (its URL names it); use a new file",
            ));
        }
        if current.slug != fresh.slug {
            return Err(Problem::at(
                "webhook_id",
                "the webhook_id of an existing hook cannot change; use a new file",
            ));
        }
        if current.source != fresh.source || current.generic != fresh.generic {
            return Err(Problem::at(
                "provider",
                "the provider of an existing hook cannot change; use a new file",
            ));
        }
        // A file without `reply` leaves credentials set through the API.
        let stored_reply = state.store.reply(&current.id).await.map_err(ApiError::from)?;
        let can_reply = reply.is_some() || stored_reply.is_some();
        let commands = service::rules(state, &current, can_reply, &plan.spec.commands, now).await?;
        if let Some(r) = reply
            && stored_reply.as_ref() != Some(&r)
        {
            self.audited(file, "webhooks.update", &current.id)
                .set_reply(&current.id, Some(r))
                .await
                .map_err(ApiError::from)?;
        }
        let patch = diff(&current, &fresh);
        let stored = state.store.rules(&current.id).await.map_err(ApiError::from)?;
        let rules_changed = !same_rules(&stored, &commands);
        let rotate = match &plan.secret {
            Some(wanted) => {
                let secrets = state.store.hook_with_secrets(&current.id).await.map_err(ApiError::from)?;
                secrets.and_then(|(_, s)| s.into_iter().next()).is_none_or(|s| s != *wanted)
            }
            None => false,
        };
        if let Some(patch) = patch {
            self.audited(file, "webhooks.update", &current.id)
                .update_hook(&current.id, patch)
                .await
                .map_err(ApiError::from)?;
        }
        if rules_changed {
            self.audited(file, "webhooks.commands.replace", &current.id)
                .replace_rules(&current.id, commands)
                .await
                .map_err(ApiError::from)?;
        }
        if let (true, Some(secret)) = (rotate, plan.secret) {
            // Senders still signing with the old secret keep working for the
            // usual grace period, as with a rotation through the API.
            let until = now + jiff::SignedDuration::from_hours(24);
            self.audited(file, "webhooks.rotate-secret", &current.id)
                .rotate_secret(&current.id, secret, until)
                .await
                .map_err(ApiError::from)?;
        }
        Ok(())
    }

    /// Create the hook a new file describes.
    async fn create(
        &self,
        file: &str,
        plan: &Plan,
        hook: IncomingHook,
        secret: Option<Secret>,
        reply: Option<chorus_core::ReplyConfig>,
    ) -> Result<(), Problem> {
        let state = &self.state;
        let now = service::now(state);
        let commands = service::rules(state, &hook, reply.is_some(), &plan.spec.commands, now).await?;
        self.audited(file, "webhooks.create", &hook.id)
            .create_hook_with_rules(hook.clone(), secret, commands)
            .await
            .map_err(ApiError::from)?;
        if let Some(r) = reply {
            state.store.set_reply(&hook.id, Some(r)).await.map_err(ApiError::from)?;
        }
        tracing::info!(hook = %hook.id, file, "config: webhook created");
        Ok(())
    }

    /// Hooks from files that are gone are deleted.
    async fn remove_orphans(&self, stems: &BTreeMap<String, String>) -> Result<(), ApiError> {
        if !self.dir.is_dir() {
            return Ok(());
        }
        for hook in self.state.store.hooks(None).await? {
            let Some(stem) = hook.created_by.strip_prefix("config:") else { continue };
            if stems.contains_key(stem) {
                continue;
            }
            self.audited(stem, "webhooks.delete", &hook.id).delete_hook(&hook.id).await?;
            tracing::info!(hook = %hook.id, file = stem, "config: file removed, webhook deleted");
        }
        Ok(())
    }

    /// The store to make one change through: the change is put on record,
    /// with the file as actor, in its own transaction.
    fn audited(&self, file: &str, action: &str, hook: &HookId) -> std::sync::Arc<dyn chorus_core::Store> {
        self.state.store.audited(AuditEntry {
            at: self.state.clock.now(),
            actor: format!("config file {file}"),
            via: "config".into(),
            action: action.into(),
            target: Some(hook.to_string()),
        })
    }
}

/// The `*.json|*.yaml|*.yml` files of `dir` by name, with their text (an
/// oversized or non-UTF-8 file as a `\u{0}` marker the apply step
/// reports); an absent directory has none.
pub(crate) fn read_files(dir: &Path) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        // Editors' swap and backup files are not hook files.
        let wanted = extension(&name).is_some() && !name.starts_with('.');
        if !wanted || !entry.file_type()?.is_file() {
            continue;
        }
        let text = if entry.metadata()?.len() > MAX_FILE_BYTES {
            // Kept as a marker the apply step reports.
            String::from("\u{0}too large")
        } else {
            match std::fs::read_to_string(entry.path()) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => String::from("\u{0}not UTF-8"),
                Err(e) => return Err(e),
            }
        };
        out.insert(name, text);
    }
    Ok(out)
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

/// The patch that turns `current` into `wanted`, if anything differs.
fn diff(current: &IncomingHook, wanted: &IncomingHook) -> Option<HookPatch> {
    fn changed<T: PartialEq + Clone>(a: &T, b: &T) -> Option<T> {
        (a != b).then(|| b.clone())
    }
    let patch = HookPatch {
        name: changed(&current.name, &wanted.name),
        enabled: changed(&current.enabled, &wanted.enabled),
        rate_limit_per_minute: changed(&current.rate_limit_per_minute, &wanted.rate_limit_per_minute),
        ip_allowlist: changed(&current.ip_allowlist, &wanted.ip_allowlist),
        template: changed(&current.template, &wanted.template),
        events: changed(&current.events, &wanted.events),
        aggregate_secs: changed(&current.aggregate_secs, &wanted.aggregate_secs),
        notify_changes: changed(&current.notify_changes, &wanted.notify_changes),
        threads: changed(&current.threads, &wanted.threads),
    };
    let empty = patch.aggregate_secs.is_none()
        && patch.notify_changes.is_none()
        && patch.threads.is_none()
        && patch.name.is_none()
        && patch.enabled.is_none()
        && patch.rate_limit_per_minute.is_none()
        && patch.ip_allowlist.is_none()
        && patch.template.is_none()
        && patch.events.is_none();
    (!empty).then_some(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_values_and_lines() {
        let text = "name: Urgent\nprovider: github\nrate_limit_per_minute: 30\ncommands:\n  - trigger: issues.labeled\n    action: create_task\n    conditions: {label: urgent, n: 2.5, off: false}\n  - trigger: push\n";
        let parsed = parse("a.yaml", text).unwrap_or_else(|p| panic!("{}", p.message));
        assert_eq!(parsed.value["rate_limit_per_minute"], 30);
        assert_eq!(parsed.value["commands"][0]["conditions"]["n"], 2.5);
        assert_eq!(parsed.value["commands"][0]["conditions"]["off"], false);
        assert_eq!(parsed.line_of("provider"), 2);
        assert_eq!(parsed.line_of("commands[0].action"), 6);
        assert_eq!(parsed.line_of("commands[1].trigger"), 8);
        assert_eq!(parsed.line_of("commands[1].nothing"), 8);
    }

    #[test]
    fn json_lines_and_syntax_errors() {
        let text = "{\n  \"name\": \"x\",\n  \"commands\": [\n    {\"trigger\": \"push\"},\n    {\n      \"trigger\": \"pr\"\n    }\n  ]\n}\n";
        let parsed = parse("a.json", text).unwrap_or_else(|p| panic!("{}", p.message));
        assert_eq!(parsed.line_of("commands[1].trigger"), 6);
        assert_eq!(parsed.line_of("commands[0].trigger"), 4);
        let broken = parse("a.json", "{\n  \"name\": \"x\",\n  \"agent\" \"y\"\n}").err().unwrap();
        assert_eq!(broken.line, Some(3));
        let broken = parse("a.yaml", "name: x\ncommands: [\n  - a\n").err().unwrap();
        assert!(broken.line.is_some_and(|l| l >= 2), "{:?}", broken.line);
    }

    #[tokio::test]
    async fn a_mistyped_secret_is_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let chorus = crate::test_chorus(dir.path());
        let loader = Loader::new(chorus.state().clone(), dir.path().to_owned());
        let e = loader.apply("a.yaml", "a", "agent: builder\nsecret: 987654321987\n").await.unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("secret")));
        assert!(!e.message.contains("987654321987"), "{e}");
    }

    #[test]
    fn secrets_are_references() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gh.secret"), "from-a-file-0123456789\n").unwrap();
        let refs = Refs { dir: Some(dir.path()), key: None };
        assert_eq!(resolve_secret("file:gh.secret", refs, "secret").ok().unwrap(), "from-a-file-0123456789");
        let literal = resolve_secret("hunter2-hunter2-hunter2", refs, "secret").err().unwrap();
        assert!(literal.message.contains("env:NAME, file:PATH or sealed:"));
        let unset = resolve_secret("env:CHORUS_TEST_SURELY_UNSET_VARIABLE", refs, "secret").err().unwrap();
        assert!(unset.message.contains("is not set"));
        let key = chorus_store::MasterKey::from_bytes(&[3; 32]).unwrap();
        let sealed = key.seal_reference(&Secret::new("sealed-for-a-file-0123"));
        let unkeyed = resolve_secret(&sealed, refs, "secret").err().unwrap();
        assert!(unkeyed.message.contains("need the master key"), "{}", unkeyed.message);
        let keyed = Refs { key: Some(&key), ..refs };
        assert_eq!(resolve_secret(&sealed, keyed, "secret").ok().unwrap(), "sealed-for-a-file-0123");
        let other = chorus_store::MasterKey::from_bytes(&[4; 32]).unwrap();
        let wrong = resolve_secret(&sealed, Refs { key: Some(&other), ..refs }, "secret").err().unwrap();
        assert!(wrong.message.contains("another master key"), "{}", wrong.message);
        let no_dir = resolve_secret("file:gh.secret", Refs { dir: None, key: None }, "secret").err().unwrap();
        assert!(no_dir.message.contains("config directory"), "{}", no_dir.message);
    }
}
