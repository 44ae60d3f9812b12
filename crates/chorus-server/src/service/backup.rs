//! Backups: the team's agents, incoming hooks with their rules, workflows
//! and outgoing subscriptions as files in the config-file format, and such
//! files back into a server. Secrets are left out unless asked for; then
//! they are written as `sealed:` references that only the master key opens.
//!
//! An import checks every file before it keeps anything: agents first
//! (the rest names them), then hooks, workflows and subscriptions. A
//! problem anywhere answers every problem found and leaves the server as
//! it was.

use std::collections::{BTreeMap, BTreeSet};

use chorus_core::{
    Agent, AgentName, HookId, IncomingHook, NewAgent, OutgoingAuth, OutgoingHook, ReplyConfig, Rule, Secret,
    SecretChange,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    agents::{CreateAgent, new_agent},
    hooks::{self, CreatedIncoming},
    outgoing::{self, CreateOutgoing},
};
use crate::{
    config_files::{self, ConfigFileError, HookFile, Parsed, Problem, Refs},
    error::{ApiError, ErrorCode},
    state::AppState,
    workflows::{self, Origin},
};

/// What a backup says it is, so a future format is not misread.
pub(crate) const FORMAT: &str = "chorus-backup/1";
/// Most files one import takes.
const MAX_FILES: usize = 10_000;
/// Who imported items were created by.
const CREATED_BY: &str = "import";

/// Files of a backup, by path.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backup {
    /// `chorus-backup/1`.
    #[schemars(extend("enum" = [FORMAT]))]
    pub(crate) format: String,
    /// Each file's text by its path: `agents/<name>.json`,
    /// `webhooks/<id>.json`, `workflows/<name>.json`,
    /// `subscriptions/<id>.json` (`.yaml` and `.yml` files are read too).
    pub(crate) files: BTreeMap<String, String>,
}

/// A backup as exported.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Export")]
pub(crate) struct ExportView {
    /// `chorus-backup/1`.
    pub(crate) format: &'static str,
    /// Whether secrets are in the files (as `sealed:` references).
    pub(crate) secrets: bool,
    /// Each file's text by its path.
    pub(crate) files: BTreeMap<String, String>,
    /// What was left out and why: hooks and workflows defined by files of
    /// the config directory, which are their own backup.
    pub(crate) skipped: Vec<String>,
}

/// A hook or subscription an import made.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ImportedHook {
    pub(crate) id: HookId,
    /// The file it came from.
    pub(crate) file: String,
    /// A secret made because the file had none (a backup without secrets):
    /// shown once, here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<String>,
}

/// What an import made.
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Imported")]
pub(crate) struct ImportedView {
    pub(crate) agents: Vec<AgentName>,
    pub(crate) webhooks: Vec<ImportedHook>,
    pub(crate) workflows: Vec<String>,
    pub(crate) subscriptions: Vec<ImportedHook>,
}

/// The team's configuration as backup files; `secrets`: with every secret
/// sealed under the master key.
pub(crate) async fn export(state: &AppState, secrets: bool) -> Result<ExportView, ApiError> {
    let key = match (secrets, state.settings.sealing_key.as_ref()) {
        (false, _) => None,
        (true, Some(key)) => Some(key),
        (true, None) => {
            return Err(ApiError::invalid("secrets", "this server has no master key to seal secrets with"));
        }
    };
    let seal = |s: &Secret| key.map(|k| Value::String(k.seal_reference(s)));
    let mut files = BTreeMap::new();
    let mut skipped = Vec::new();
    for agent in state.store.agents().await? {
        files.insert(format!("agents/{}.json", agent.name), pretty(&agent_file(&agent, &seal)));
    }
    for hook in state.store.hooks(None).await? {
        if let Some(stem) = hook.created_by.strip_prefix("config:") {
            skipped.push(format!("webhook {} (config file {stem})", hook.id));
            continue;
        }
        let rules = state.store.rules(&hook.id).await?;
        let reply = state.store.reply(&hook.id).await?;
        let secret = match key {
            Some(_) => state.store.hook_with_secrets(&hook.id).await?.and_then(|(_, s)| s.into_iter().next()),
            None => None,
        };
        let file = hook_file(&hook, &rules, reply.as_ref(), secret.as_ref().and_then(&seal), &seal);
        files.insert(format!("webhooks/{}.json", hook.id), pretty(&file));
    }
    if let Some(sys) = &state.workflows {
        for w in sys.store.workflows().await? {
            if let Some(file) = w.origin.strip_prefix("file:") {
                skipped.push(format!("workflow {} (workflow file {file})", w.name));
                continue;
            }
            let mut spec = w.spec.clone();
            if let Some(map) = spec.as_object_mut() {
                map.insert("enabled".into(), Value::Bool(w.enabled));
                if key.is_some()
                    && let Some((_, Some(secret))) = sys.store.workflow_secret(&w.name).await?
                    && let Some(sealed) = seal(&secret)
                {
                    map.insert("secret".into(), sealed);
                }
            }
            files.insert(format!("workflows/{}.json", w.name), pretty(&spec));
        }
    }
    for sub in state.store.outgoing_hooks(None).await? {
        let Some(spec) = state.store.outgoing_with_secrets(&sub.id).await? else { continue };
        let file = subscription_file(&sub, &spec.auth, &spec.secret, &seal);
        files.insert(format!("subscriptions/{}.json", sub.id), pretty(&file));
    }
    Ok(ExportView { format: FORMAT, secrets, files, skipped })
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// Put `value` at `key` unless it is absent.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v);
    }
}

fn agent_file(agent: &Agent, seal: &impl Fn(&Secret) -> Option<Value>) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), json!(agent.name));
    put(&mut map, "channel_id", agent.channel_id.clone().map(Value::String));
    put(&mut map, "discord_webhook_url", agent.discord_webhook_url.as_ref().and_then(seal));
    map.insert("enabled".into(), Value::Bool(agent.enabled));
    Value::Object(map)
}

fn hook_file(
    hook: &IncomingHook,
    rules: &[Rule],
    reply: Option<&ReplyConfig>,
    secret: Option<Value>,
    seal: &impl Fn(&Secret) -> Option<Value>,
) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(hook.id));
    map.insert("name".into(), json!(hook.name));
    map.insert("agent".into(), json!(hook.agent));
    map.insert("provider".into(), json!(hook.source));
    put(&mut map, "webhook_id", hook.slug.clone().map(Value::String));
    put(&mut map, "generic", hook.generic.as_ref().map(|g| json!(g)));
    put(&mut map, "secret", secret);
    map.insert("enabled".into(), Value::Bool(hook.enabled));
    map.insert("rate_limit_per_minute".into(), json!(hook.rate_limit_per_minute));
    map.insert("ip_allowlist".into(), json!(hook.ip_allowlist));
    put(&mut map, "template", hook.template.clone().map(Value::String));
    map.insert("events".into(), json!(hook.events));
    put(&mut map, "aggregate", super::show_aggregate(hook.aggregate_secs).map(Value::String));
    map.insert("notify".into(), json!(super::show_notify(hook.notify_changes)));
    map.insert("threads".into(), Value::Bool(hook.threads));
    map.insert("commands".into(), Value::Array(rules.iter().map(rule_spec).collect()));
    if let Some(r) = reply {
        let mut reply = Map::new();
        put(&mut reply, "token", seal(&r.token));
        put(&mut reply, "email", r.email.clone().map(Value::String));
        put(&mut reply, "api_url", r.api_url.clone().map(Value::String));
        map.insert("reply".into(), Value::Object(reply));
    }
    Value::Object(map)
}

/// A rule as a hook file's `commands` entry writes it.
fn rule_spec(rule: &Rule) -> Value {
    let mut map = Map::new();
    map.insert("trigger".into(), json!(rule.trigger));
    map.insert("action".into(), json!(rule.action));
    put(&mut map, "agent", rule.agent.as_ref().map(|a| json!(a)));
    put(&mut map, "template", rule.template.clone().map(Value::String));
    if !rule.conditions.is_empty() {
        map.insert("conditions".into(), Value::Object(rule.conditions.clone()));
    }
    put(&mut map, "url", rule.url.clone().map(Value::String));
    map.insert("priority".into(), json!(rule.priority));
    map.insert("stop".into(), Value::Bool(rule.stop));
    map.insert("reply".into(), Value::Bool(rule.reply));
    if rule.action == chorus_core::Action::Forward {
        map.insert("signature".into(), json!(rule.signature));
    }
    Value::Object(map)
}

fn subscription_file(
    sub: &OutgoingHook,
    auth: &OutgoingAuth,
    secret: &Secret,
    seal: &impl Fn(&Secret) -> Option<Value>,
) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(sub.id));
    map.insert("type".into(), json!("outgoing"));
    put(&mut map, "agent", sub.agent.as_ref().map(|a| json!(a)));
    map.insert("name".into(), json!(sub.name));
    map.insert("url".into(), json!(sub.url));
    map.insert("events".into(), json!(sub.events));
    map.insert("method".into(), json!(sub.method));
    let headers: Map<String, Value> =
        sub.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    map.insert("headers".into(), Value::Object(headers));
    let auth = match auth {
        OutgoingAuth::None => None,
        OutgoingAuth::Basic { username, password } => {
            let mut a =
                Map::from_iter([("type".into(), json!("basic")), ("username".into(), json!(username))]);
            put(&mut a, "password", seal(&Secret::new(password.clone())));
            Some(a)
        }
        OutgoingAuth::Bearer { token } => {
            let mut a = Map::from_iter([("type".into(), json!("bearer"))]);
            put(&mut a, "token", seal(&Secret::new(token.clone())));
            Some(a)
        }
        OutgoingAuth::ApiKey { header_name, key } => {
            let mut a = Map::from_iter([
                ("type".into(), json!("api_key")),
                ("header_name".into(), json!(header_name)),
            ]);
            put(&mut a, "key", seal(&Secret::new(key.clone())));
            Some(a)
        }
    };
    put(&mut map, "auth", auth.map(Value::Object));
    map.insert("signature".into(), json!(sub.signature));
    put(&mut map, "secret", seal(secret));
    map.insert("timeout_ms".into(), json!(sub.timeout_ms));
    map.insert(
        "retry".into(),
        json!({
            "strategy": sub.retry.strategy,
            "max_attempts": sub.retry.max_attempts,
            "initial_delay_ms": sub.retry.initial_delay_ms,
            "max_delay_ms": sub.retry.max_delay_ms,
            "jitter": sub.retry.jitter,
        }),
    );
    put(&mut map, "rate_limit_per_minute", sub.rate_limit_per_minute.map(|r| json!(r)));
    map.insert("max_concurrency".into(), json!(sub.max_concurrency));
    map.insert("enabled".into(), Value::Bool(sub.enabled));
    Value::Object(map)
}

/// Problems found in an import's files, each with the code it would be
/// answered with alone.
#[derive(Default)]
struct Problems(Vec<(ConfigFileError, ErrorCode)>);

impl Problems {
    fn add(&mut self, file: &str, parsed: Option<&Parsed>, problem: Problem, code: ErrorCode) {
        self.0.push((config_files::located(file, parsed, problem), code));
    }

    fn api(&mut self, file: &str, parsed: Option<&Parsed>, e: ApiError) {
        let code = e.code;
        self.add(file, parsed, e.into(), code);
    }

    /// Every problem as one answer: the first one's code and field, and
    /// each on its own line.
    fn answer(&self) -> Result<(), ApiError> {
        let Some((first, code)) = self.0.first() else { return Ok(()) };
        let field = match &first.field {
            Some(f) => format!("files[{:?}].{f}", first.file),
            None => format!("files[{:?}]", first.file),
        };
        let message = self.0.iter().map(|(e, _)| e.to_string()).collect::<Vec<_>>().join("\n");
        Err(ApiError { field: Some(field), ..ApiError::new(*code, message) })
    }
}

/// The files of a backup sorted by what they hold.
#[derive(Default)]
struct Sorted {
    agents: Vec<(String, Parsed)>,
    webhooks: Vec<(String, Parsed)>,
    workflows: Vec<(String, Parsed)>,
    subscriptions: Vec<(String, Parsed)>,
}

fn sort(backup: &Backup, problems: &mut Problems) -> Sorted {
    let mut sorted = Sorted::default();
    for (path, text) in &backup.files {
        let Some((kind, name)) = path.split_once('/').filter(|(_, n)| config_files::extension(n).is_some())
        else {
            let message =
                "a backup file is agents/, webhooks/, workflows/ or subscriptions/<name>.json (or .yaml)";
            problems.add(
                path,
                None,
                Problem { field: None, line: Some(1), message: message.into() },
                ErrorCode::InvalidRequest,
            );
            continue;
        };
        if text.len() as u64 > config_files::MAX_FILE_BYTES {
            let message = format!("file is over {} bytes", config_files::MAX_FILE_BYTES);
            problems.add(
                path,
                None,
                Problem { field: None, line: Some(1), message },
                ErrorCode::PayloadTooLarge,
            );
            continue;
        }
        let parsed = match config_files::parse(name, text) {
            Ok(p) => p,
            Err(p) => {
                problems.add(path, None, p, ErrorCode::InvalidRequest);
                continue;
            }
        };
        let list = match kind {
            "agents" => &mut sorted.agents,
            "webhooks" => &mut sorted.webhooks,
            "workflows" => &mut sorted.workflows,
            "subscriptions" => &mut sorted.subscriptions,
            _ => {
                let message = format!("{kind}/ is not agents/, webhooks/, workflows/ or subscriptions/");
                problems.add(
                    path,
                    None,
                    Problem { field: None, line: Some(1), message },
                    ErrorCode::InvalidRequest,
                );
                continue;
            }
        };
        list.push((path.clone(), parsed));
    }
    sorted
}

/// Replace the secret references at `fields` (dotted paths) of `value`
/// with what they name.
fn resolve_in(value: &mut Value, fields: &[&str], refs: Refs<'_>) -> Result<(), Problem> {
    for field in fields {
        let mut at = Some(&mut *value);
        for part in field.split('.') {
            at = at.and_then(|v| v.get_mut(part));
        }
        if let Some(Value::String(reference)) = at {
            *reference = config_files::resolve_secret(reference, refs, field)?;
        }
    }
    Ok(())
}

/// Take a file's `id` out of `value`: the id the item is created with.
fn take_id(value: &mut Value) -> Result<Option<HookId>, Problem> {
    match value.as_object_mut().and_then(|m| m.remove("id")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => {
            id.parse().map(Some).map_err(|e: chorus_core::IdError| Problem::at("id", e.to_string()))
        }
        Some(_) => Err(Problem::at("id", "id must be text: the hk_… id the item is created with")),
    }
}

/// Whether a hook or subscription has the id `id` already.
async fn id_taken(state: &AppState, id: &HookId) -> Result<bool, ApiError> {
    Ok(state.store.hook(id).await?.is_some() || state.store.outgoing(id).await?.is_some())
}

/// What an import has written so far, for undoing it.
#[derive(Default)]
struct Written {
    agents: Vec<AgentName>,
    webhooks: Vec<HookId>,
    workflows: Vec<String>,
    subscriptions: Vec<HookId>,
}

impl Written {
    /// Delete what was written, newest first (nothing refers to it yet).
    async fn undo(self, state: &AppState) {
        for id in self.subscriptions.iter().rev() {
            if let Err(e) = state.store.delete_outgoing(id).await {
                tracing::warn!(hook = %id, error = %e, "import: could not undo a subscription");
            }
        }
        if let Some(sys) = &state.workflows {
            for name in self.workflows.iter().rev() {
                if let Err(e) = sys.store.delete_workflow(name, None).await {
                    tracing::warn!(workflow = %name, error = %e, "import: could not undo a workflow");
                }
            }
        }
        for id in self.webhooks.iter().rev() {
            if let Err(e) = state.store.delete_hook(id).await {
                tracing::warn!(hook = %id, error = %e, "import: could not undo a webhook");
            }
        }
        for name in self.agents.iter().rev() {
            if let Err(e) = state.store.delete_agent(name).await {
                tracing::warn!(agent = %name, error = %e, "import: could not undo an agent");
            }
        }
    }
}

/// Create what a backup's files describe, checking them all first; on any
/// problem nothing is kept and every problem is answered.
pub(crate) async fn import(state: &AppState, backup: Backup) -> Result<ImportedView, ApiError> {
    if backup.format != FORMAT {
        return Err(ApiError::invalid(
            "format",
            format!("this server reads {FORMAT:?}, not {:?}", backup.format),
        ));
    }
    if backup.files.len() > MAX_FILES {
        return Err(ApiError::invalid("files", format!("at most {MAX_FILES} files at once")));
    }
    let refs = Refs { dir: None, key: state.settings.sealing_key.as_ref() };
    let mut problems = Problems::default();
    let sorted = sort(&backup, &mut problems);
    let before = problems.0.len();
    let agents = check_agents(state, refs, &sorted.agents, &mut problems).await?;
    // Without its agents the rest cannot be checked; with them, it is,
    // so that every problem is answered at once.
    if problems.0.len() > before {
        return Err(problems.answer().expect_err("a problem was found"));
    }
    // The rest names the agents, so they are written first and undone if
    // anything after them fails its checks.
    let mut written = Written::default();
    let mut view = ImportedView::default();
    for agent in agents {
        if let Err(e) = state.store.create_agent(agent.clone()).await {
            written.undo(state).await;
            return Err(e.into());
        }
        written.agents.push(agent.name.clone());
        view.agents.push(agent.name);
    }
    let checked = match check_rest(state, refs, &sorted, &mut problems).await {
        Ok(checked) => checked,
        Err(e) => {
            written.undo(state).await;
            return Err(e);
        }
    };
    if let Err(e) = problems.answer() {
        written.undo(state).await;
        return Err(e);
    }
    if let Err(e) = write_rest(state, checked, &mut written, &mut view).await {
        written.undo(state).await;
        return Err(e);
    }
    tracing::info!(
        agents = view.agents.len(),
        webhooks = view.webhooks.len(),
        workflows = view.workflows.len(),
        subscriptions = view.subscriptions.len(),
        "backup imported"
    );
    Ok(view)
}

async fn check_agents(
    state: &AppState,
    refs: Refs<'_>,
    files: &[(String, Parsed)],
    problems: &mut Problems,
) -> Result<Vec<NewAgent>, ApiError> {
    let mut agents: Vec<NewAgent> = Vec::new();
    for (path, parsed) in files {
        let at = |p: Problem, problems: &mut Problems| {
            problems.add(path, Some(parsed), p, ErrorCode::InvalidRequest);
        };
        let body: CreateAgent = match config_files::typed(&parsed.value, &["discord_webhook_url"]) {
            Ok(b) => b,
            Err(p) => {
                at(p, problems);
                continue;
            }
        };
        let mut value = json!({"discord_webhook_url": body.discord_webhook_url});
        if let Err(p) = resolve_in(&mut value, &["discord_webhook_url"], refs) {
            at(p, problems);
            continue;
        }
        let body = CreateAgent {
            discord_webhook_url: value["discord_webhook_url"].as_str().map(str::to_owned),
            ..body
        };
        let agent = match new_agent(body) {
            Ok(a) => a,
            Err(e) => {
                problems.api(path, Some(parsed), e);
                continue;
            }
        };
        if state.store.agent(&agent.name).await?.is_some() || agents.iter().any(|a| a.name == agent.name) {
            let message = format!("agent {} exists already", agent.name);
            problems.add(path, Some(parsed), Problem::at("name", message), ErrorCode::Conflict);
            continue;
        }
        agents.push(agent);
    }
    Ok(agents)
}

/// Hooks, workflows and subscriptions checked and ready to write.
#[derive(Default)]
struct Checked {
    webhooks: Vec<(String, CreatedIncoming, bool)>,
    workflows: Vec<(String, Value, SecretChange)>,
    subscriptions: Vec<(String, OutgoingHook, Secret, OutgoingAuth, bool)>,
}

async fn check_rest(
    state: &AppState,
    refs: Refs<'_>,
    sorted: &Sorted,
    problems: &mut Problems,
) -> Result<Checked, ApiError> {
    let mut checked = Checked::default();
    let mut ids = BTreeSet::new();
    let mut slugs = BTreeSet::new();
    for (path, parsed) in &sorted.webhooks {
        match check_hook(state, refs, parsed, &mut ids, &mut slugs).await {
            Ok(Ok((created, given))) => checked.webhooks.push((path.clone(), created, given)),
            Ok(Err((p, code))) => problems.add(path, Some(parsed), p, code),
            Err(e) => return Err(e),
        }
    }
    let mut names = BTreeSet::new();
    for (path, parsed) in &sorted.workflows {
        match check_workflow(state, refs, path, parsed, &mut names).await {
            Ok(Ok((value, secret))) => checked.workflows.push((path.clone(), value, secret)),
            Ok(Err((p, code))) => problems.add(path, Some(parsed), p, code),
            Err(e) => return Err(e),
        }
    }
    for (path, parsed) in &sorted.subscriptions {
        match check_subscription(state, refs, parsed, &mut ids).await {
            Ok(Ok((hook, secret, auth, given))) => {
                checked.subscriptions.push((path.clone(), hook, secret, auth, given));
            }
            Ok(Err((p, code))) => problems.add(path, Some(parsed), p, code),
            Err(e) => return Err(e),
        }
    }
    Ok(checked)
}

/// A problem with one file, or a failure of the store (`Err`).
type Checking<T> = Result<Result<T, (Problem, ErrorCode)>, ApiError>;

fn invalid(p: Problem) -> (Problem, ErrorCode) {
    (p, ErrorCode::InvalidRequest)
}

/// An error of a check as one file's problem, unless the store failed.
fn refused<T>(e: ApiError) -> Checking<T> {
    match e.code {
        ErrorCode::Internal | ErrorCode::Unavailable => Err(e),
        code => Ok(Err((e.into(), code))),
    }
}

fn conflict(field: &str, message: String) -> (Problem, ErrorCode) {
    (Problem::at(field, message), ErrorCode::Conflict)
}

/// Check a hook file; the hook, and whether the file gave its secret.
async fn check_hook(
    state: &AppState,
    refs: Refs<'_>,
    parsed: &Parsed,
    ids: &mut BTreeSet<HookId>,
    slugs: &mut BTreeSet<String>,
) -> Checking<(CreatedIncoming, bool)> {
    let plan = match config_files::typed::<HookFile>(&parsed.value, &["secret", "reply.token"])
        .and_then(|file| config_files::plan(file, refs))
    {
        Ok(plan) => plan,
        Err(p) => return Ok(Err(invalid(p))),
    };
    if let Some(id) = &plan.id
        && (id_taken(state, id).await? || !ids.insert(id.clone()))
    {
        return Ok(Err(conflict("id", format!("a webhook {id} exists already"))));
    }
    if let Some(slug) = &plan.spec.webhook_id
        && (state.store.hook_by_slug(slug).await?.is_some() || !slugs.insert(slug.clone()))
    {
        return Ok(Err(conflict("webhook_id", format!("webhook_id {slug:?} is taken"))));
    }
    match hooks::check_incoming(state, &plan.spec, CREATED_BY, plan.id).await {
        Ok(created) => Ok(Ok((created, plan.secret.is_some()))),
        Err(e) => refused(e),
    }
}

/// Check a workflow file; its definition and secret.
async fn check_workflow(
    state: &AppState,
    refs: Refs<'_>,
    path: &str,
    parsed: &Parsed,
    names: &mut BTreeSet<String>,
) -> Checking<(Value, SecretChange)> {
    let sys = workflows::manage(state)?;
    let mut value = parsed.value.clone();
    let Some(map) = value.as_object_mut() else {
        return Ok(Err(invalid(Problem {
            field: None,
            line: Some(1),
            message: "a workflow file is a map".into(),
        })));
    };
    // As in the workflows directory, the file name names a workflow that
    // gives no name.
    let stem = path.rsplit('/').next().and_then(|n| n.rsplit_once('.')).map_or(path, |(s, _)| s);
    map.entry("name").or_insert_with(|| Value::String(stem.to_owned()));
    let secret = match crate::workflow_files::secret_change(map, refs) {
        Ok(s) => s,
        Err(p) => return Ok(Err(invalid(p))),
    };
    map.remove("secret");
    let wf = match workflows::check(sys, &value) {
        Ok(wf) => wf,
        Err(e) => return refused(e),
    };
    if let Some(agent) = &wf.agent
        && let Err(e) = super::existing_agent(state, "agent", agent.as_str()).await
    {
        return refused(e);
    }
    if sys.store.workflow(&wf.name).await?.is_some() || !names.insert(wf.name.clone()) {
        return Ok(Err(conflict("name", format!("a workflow named {} exists already", wf.name))));
    }
    Ok(Ok((value, secret)))
}

/// Check a subscription file; the subscription, its secret and
/// credentials, and whether the file gave its secret.
async fn check_subscription(
    state: &AppState,
    refs: Refs<'_>,
    parsed: &Parsed,
    ids: &mut BTreeSet<HookId>,
) -> Checking<(OutgoingHook, Secret, OutgoingAuth, bool)> {
    const SECRETS: [&str; 4] = ["secret", "auth.password", "auth.token", "auth.key"];
    let mut value = parsed.value.clone();
    let id = match take_id(&mut value) {
        Ok(id) => id,
        Err(p) => return Ok(Err(invalid(p))),
    };
    let given = value.get("secret").is_some_and(|s| !s.is_null());
    if let Err(p) = resolve_in(&mut value, &SECRETS, refs) {
        return Ok(Err(invalid(p)));
    }
    // A mistake at a secret's own field is reported without its value.
    let body: CreateOutgoing = match config_files::typed(&value, &SECRETS) {
        Ok(body) => body,
        Err(p) => return Ok(Err(invalid(p))),
    };
    let (mut hook, secret, auth) = match outgoing::check_new(state, body, CREATED_BY).await {
        Ok(checked) => checked,
        Err(e) => return refused(e),
    };
    if let Some(id) = id {
        if id_taken(state, &id).await? || !ids.insert(id.clone()) {
            return Ok(Err(conflict("id", format!("a webhook {id} exists already"))));
        }
        hook.id = id;
    }
    Ok(Ok((hook, secret, auth, given)))
}

async fn write_rest(
    state: &AppState,
    checked: Checked,
    written: &mut Written,
    view: &mut ImportedView,
) -> Result<(), ApiError> {
    for (file, created, given) in checked.webhooks {
        hooks::write_incoming(state, &created).await?;
        written.webhooks.push(created.hook.id.clone());
        let secret = (!given).then(|| created.secret.as_ref().map(|s| s.expose().to_owned())).flatten();
        view.webhooks.push(ImportedHook { id: created.hook.id, file, secret });
    }
    for (file, value, secret) in checked.workflows {
        let stored = workflows::put(state, &value, secret, Origin::Api, true)
            .await
            .map_err(|e| ApiError { message: format!("{file}: {}", e.message), ..e })?;
        written.workflows.push(stored.name.clone());
        view.workflows.push(stored.name);
    }
    for (file, hook, secret, auth, given) in checked.subscriptions {
        state.store.create_outgoing(hook.clone(), secret.clone(), auth).await?;
        written.subscriptions.push(hook.id.clone());
        view.subscriptions.push(ImportedHook {
            id: hook.id,
            file,
            secret: (!given).then(|| secret.expose().to_owned()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_are_not_exported_without_a_key_to_seal_them() {
        let dir = tempfile::tempdir().unwrap();
        let chorus = crate::test_chorus(dir.path());
        let refused = export(chorus.state(), true).await.unwrap_err();
        assert_eq!((refused.code, refused.field.as_deref()), (ErrorCode::InvalidRequest, Some("secrets")));
        let plain = export(chorus.state(), false).await.unwrap();
        assert!(!plain.secrets && plain.files.is_empty());
        // And an import's sealed values need the key too.
        let sealed = chorus_store::MasterKey::from_bytes(&[1; 32])
            .unwrap()
            .seal_reference(&Secret::new("x".repeat(20)));
        let files = BTreeMap::from([(
            "agents/a.json".to_owned(),
            format!("{{\"name\": \"a\", \"discord_webhook_url\": \"{sealed}\"}}"),
        )]);
        let e = import(chorus.state(), Backup { format: FORMAT.into(), files }).await.unwrap_err();
        assert!(e.message.contains("need the master key"), "{}", e.message);
    }
}
