//! Runs a client subcommand against the management API and prints the answer.

use std::{fmt::Write as _, path::PathBuf, process::ExitCode};

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::cli::{
    AgentCmd, AuthType, ClientArgs, Format, HookFields, HookType, RunCmd, Scope, TaskCmd, TokenCmd,
    WebhookCmd, WorkflowCmd,
};

/// Why a client command did not succeed; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The arguments cannot make a request (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The server answered with an error (exit 1).
    #[error("{status} {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    /// The server could not be reached or answered nonsense (exit 1).
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            ClientError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// A resolved client: base URL, token, output format.
pub(crate) struct Client {
    base: reqwest::Url,
    token: Option<String>,
    format: Format,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(args: ClientArgs) -> Result<Self, ClientError> {
        let base = reqwest::Url::parse(&args.server)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .ok_or_else(|| {
                ClientError::Usage(format!("--server {:?} must be an http:// or https:// URL", args.server))
            })?;
        // Beside a local server the generated token is in its data directory.
        let token = args.token.filter(|t| !t.is_empty()).or_else(|| {
            let dir =
                std::env::var_os("CHORUS_DATA_DIR").map_or_else(|| PathBuf::from("data"), PathBuf::from);
            std::fs::read_to_string(dir.join("api-token")).ok().map(|t| t.trim().to_owned())
        });
        let http = reqwest::Client::builder()
            .user_agent(concat!("chorus-hookd/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Transport(format!("building the HTTP client: {e}")))?;
        Ok(Self { base, token, format: args.format, http })
    }

    fn url(&self, route: &Route) -> reqwest::Url {
        let mut url = self.base.clone();
        // Segments are percent-encoded by the URL, so an id cannot change the path.
        url.path_segments_mut().expect("checked in new").pop_if_empty().extend(&route.segments);
        if !route.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&route.query);
        }
        url
    }

    async fn call(&self, method: Method, route: Route, body: Option<Value>) -> Result<Value, ClientError> {
        let url = self.url(&route);
        // The audit log records that the change came through the CLI.
        let mut req = self.http.request(method, url).header("x-chorus-client", "cli");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            ClientError::Transport(format!("cannot reach {}: {}", self.base, error_chain(&e)))
        })?;
        let status = resp.status();
        let text =
            resp.text().await.map_err(|e| ClientError::Transport(format!("reading the answer: {e}")))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                ClientError::Transport(format!(
                    "{} answered {status} with a body that is not JSON",
                    self.base
                ))
            })?
        };
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        Err(ClientError::Refused {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or("error").to_owned(),
            message: error["message"].as_str().map_or_else(|| status.to_string(), str::to_owned),
        })
    }

    /// A whole list, following `next_cursor` page after page.
    async fn every_page(&self, route: Route) -> Result<Value, ClientError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page = Route { segments: route.segments.clone(), query: route.query.clone() };
            page.query.push(("limit", "250".to_owned()));
            if let Some(c) = cursor.take() {
                page.query.push(("cursor", c));
            }
            let mut value = self.call(Method::GET, page, None).await?;
            if let Some(Value::Array(more)) = value.get_mut("items").map(Value::take) {
                items.extend(more);
            }
            match value["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(json!({"items": items, "next_cursor": null})),
            }
        }
    }

    fn print(&self, value: &Value, shape: Shape) {
        let out = match self.format {
            Format::Json => serde_json::to_string_pretty(value).expect("serializable"),
            Format::Table => render(value, shape),
        };
        if !out.is_empty() {
            use std::io::Write as _;
            // A closed pipe (`| head`) is not worth an error.
            let _ = writeln!(std::io::stdout().lock(), "{out}");
        }
    }

    pub(crate) async fn agents(&self, cmd: AgentCmd) -> Result<(), ClientError> {
        let (method, route, body, shape) = match cmd {
            AgentCmd::Add { name, channel_id, discord_webhook_url, disabled } => {
                let mut body = json!({"name": name, "enabled": !disabled});
                put(&mut body, "channel_id", channel_id);
                put(&mut body, "discord_webhook_url", discord_webhook_url);
                (Method::POST, api(&["agents"]), Some(body), Shape::One)
            }
            AgentCmd::List => {
                let value = self.every_page(api(&["agents"])).await?;
                self.print(&value, Shape::List(AGENT_COLUMNS));
                return Ok(());
            }
            AgentCmd::Info { name } => (Method::GET, api(&["agents", &name]), None, Shape::One),
            AgentCmd::Update { name, channel_id, discord_webhook_url } => {
                let mut body = json!({});
                put(&mut body, "channel_id", channel_id);
                if let Some(url) = discord_webhook_url {
                    body["discord_webhook_url"] = if url.is_empty() { Value::Null } else { json!(url) };
                }
                if body.as_object().is_some_and(Map::is_empty) {
                    return Err(ClientError::Usage(
                        "nothing to change: give --channel or --discord-webhook-url".into(),
                    ));
                }
                (Method::PATCH, api(&["agents", &name]), Some(body), Shape::One)
            }
            AgentCmd::Remove { name } => {
                (Method::DELETE, api(&["agents", &name]), None, Shape::Done("removed", name))
            }
            AgentCmd::Enable { name } => (Method::POST, api(&["agents", &name, "enable"]), None, Shape::One),
            AgentCmd::Disable { name } => {
                (Method::POST, api(&["agents", &name, "disable"]), None, Shape::One)
            }
        };
        let value = self.call(method, route, body).await?;
        self.print(&value, shape);
        Ok(())
    }

    pub(crate) async fn webhooks(&self, cmd: WebhookCmd) -> Result<(), ClientError> {
        let (method, route, body, shape) = match cmd {
            WebhookCmd::List { agent, kind } => {
                let mut route = api(&["webhooks"]);
                if let Some(a) = agent {
                    route.query.push(("agent", a));
                }
                if let Some(k) = kind {
                    route.query.push(("type", hook_type(k).to_owned()));
                }
                let value = self.every_page(route).await?;
                self.print(&value, Shape::List(HOOK_COLUMNS));
                return Ok(());
            }
            WebhookCmd::Create { agent, kind, source, signature, secret, disabled, fields } => {
                let mut body = json!({"type": hook_type(kind), "enabled": !disabled});
                put(&mut body, "agent", agent);
                put(&mut body, "source", source);
                put(&mut body, "signature", signature);
                put(&mut body, "secret", secret);
                fields.apply(&mut body, false)?;
                (Method::POST, api(&["webhooks"]), Some(body), Shape::One)
            }
            WebhookCmd::Info { id } => (Method::GET, api(&["webhooks", &id]), None, Shape::One),
            WebhookCmd::Update { id, enabled, fields } => {
                let mut body = json!({});
                put(&mut body, "enabled", enabled);
                fields.apply(&mut body, true)?;
                if body.as_object().is_some_and(Map::is_empty) {
                    return Err(ClientError::Usage(
                        "nothing to change: give at least one field to update".into(),
                    ));
                }
                (Method::PATCH, api(&["webhooks", &id]), Some(body), Shape::One)
            }
            WebhookCmd::Delete { id } => {
                (Method::DELETE, api(&["webhooks", &id]), None, Shape::Done("deleted", id))
            }
            WebhookCmd::Enable { id } => (Method::POST, api(&["webhooks", &id, "enable"]), None, Shape::One),
            WebhookCmd::Disable { id } => {
                (Method::POST, api(&["webhooks", &id, "disable"]), None, Shape::One)
            }
            WebhookCmd::Pause { id } => (Method::POST, api(&["webhooks", &id, "pause"]), None, Shape::One),
            WebhookCmd::Resume { id } => (Method::POST, api(&["webhooks", &id, "resume"]), None, Shape::One),
            WebhookCmd::RotateSecret { id, grace_period_seconds } => {
                let mut body = json!({});
                put(&mut body, "grace_period_seconds", grace_period_seconds);
                (Method::POST, api(&["webhooks", &id, "rotate-secret"]), Some(body), Shape::One)
            }
            WebhookCmd::Test { id } => (Method::POST, api(&["webhooks", &id, "test"]), None, Shape::One),
            cmd @ (WebhookCmd::Events { .. }
            | WebhookCmd::Commands { .. }
            | WebhookCmd::CommandAdd { .. }
            | WebhookCmd::CommandRemove { .. }
            | WebhookCmd::Comment { .. }
            | WebhookCmd::Ask { .. }
            | WebhookCmd::Respond { .. }) => log_and_rules(cmd)?,
            WebhookCmd::Deliveries { id, status, limit } => {
                let mut route = api(&["webhooks", &id, "deliveries"]);
                if let Some(s) = status {
                    route.query.push(("status", s));
                }
                if let Some(l) = limit {
                    route.query.push(("limit", l.to_string()));
                }
                (Method::GET, route, None, Shape::List(DELIVERY_COLUMNS))
            }
            WebhookCmd::Stats { id } => (Method::GET, api(&["webhooks", &id, "stats"]), None, Shape::One),
            WebhookCmd::Trigger { event, agent, data, metadata } => {
                let mut body = json!({"event": event, "data": json_arg("--data", &data)?});
                put(&mut body, "agent", agent);
                if let Some(m) = metadata {
                    body["metadata"] = json_arg("--metadata", &m)?;
                }
                (Method::POST, api(&["events"]), Some(body), Shape::One)
            }
            WebhookCmd::Retry { delivery } => {
                (Method::POST, api(&["deliveries", &delivery, "retry"]), None, Shape::One)
            }
            WebhookCmd::Recover { id, since } => {
                if since.parse::<jiff::Timestamp>().is_err() {
                    return Err(ClientError::Usage(format!(
                        "--since {since:?} is not an RFC 3339 time such as 2026-11-24T00:00:00Z"
                    )));
                }
                (Method::POST, api(&["webhooks", &id, "recover"]), Some(json!({"since": since})), Shape::One)
            }
        };
        let value = self.call(method, route, body).await?;
        self.print(&value, shape);
        Ok(())
    }
}

impl Client {
    pub(crate) async fn tokens(&self, cmd: TokenCmd) -> Result<(), ClientError> {
        let (method, route, body, shape) = match cmd {
            TokenCmd::Create { name, scope } => {
                let scope = match scope {
                    Scope::Admin => "admin",
                    Scope::Read => "read",
                };
                (Method::POST, api(&["tokens"]), Some(json!({"name": name, "scope": scope})), Shape::One)
            }
            TokenCmd::List => (Method::GET, api(&["tokens"]), None, Shape::List(TOKEN_COLUMNS)),
            TokenCmd::Revoke { id } => (Method::DELETE, api(&["tokens", &id]), None, Shape::One),
        };
        let value = self.call(method, route, body).await?;
        self.print(&value, shape);
        Ok(())
    }

    pub(crate) async fn tasks(&self, cmd: TaskCmd) -> Result<(), ClientError> {
        let finish = |id: &str, verb: &str, result: Option<String>| {
            let body = result.map_or_else(|| json!({}), |r| json!({"result": r}));
            (Method::POST, api(&["tasks", id, verb]), Some(body), Shape::One)
        };
        let (method, route, body, shape) = match cmd {
            TaskCmd::List { agent, status } => {
                let mut route = api(&["tasks"]);
                route.query.extend(agent.map(|a| ("agent", a)));
                route.query.extend(status.map(|s| ("status", s)));
                let value = self.every_page(route).await?;
                self.print(&value, Shape::List(TASK_COLUMNS));
                return Ok(());
            }
            TaskCmd::Info { id } => (Method::GET, api(&["tasks", &id]), None, Shape::One),
            TaskCmd::Complete { id, result } => finish(&id, "complete", result),
            TaskCmd::Fail { id, result } => finish(&id, "fail", result),
            TaskCmd::Cancel { id, result } => finish(&id, "cancel", result),
        };
        let value = self.call(method, route, body).await?;
        self.print(&value, shape);
        Ok(())
    }

    pub(crate) async fn workflows(&self, cmd: WorkflowCmd) -> Result<(), ClientError> {
        let (method, route, body, shape) = match cmd {
            WorkflowCmd::List => (Method::GET, api(&["workflows"]), None, Shape::List(WORKFLOW_COLUMNS)),
            WorkflowCmd::Info { name } => (Method::GET, api(&["workflows", &name]), None, Shape::One),
            WorkflowCmd::Test { name, data } => {
                let body = match data {
                    None => json!({}),
                    Some(text) => {
                        let text = match text.strip_prefix('@') {
                            Some(path) => std::fs::read_to_string(path)
                                .map_err(|e| ClientError::Usage(format!("--data @{path}: {e}")))?,
                            None => text,
                        };
                        serde_json::from_str(&text)
                            .map_err(|e| ClientError::Usage(format!("--data is not JSON: {e}")))?
                    }
                };
                (Method::POST, api(&["workflows", &name, "test"]), Some(body), Shape::One)
            }
            WorkflowCmd::Enable { name } => {
                (Method::POST, api(&["workflows", &name, "enable"]), None, Shape::One)
            }
            WorkflowCmd::Disable { name } => {
                (Method::POST, api(&["workflows", &name, "disable"]), None, Shape::One)
            }
            WorkflowCmd::Reload => (Method::POST, api(&["workflows", "reload"]), None, Shape::One),
        };
        let value = self.call(method, route, body).await?;
        if let (Format::Table, Some(errors)) = (self.format, value.get("errors").and_then(Value::as_array))
            && !errors.is_empty()
        {
            let errors = json!({"items": errors});
            self.print(&value, shape);
            eprintln!("files that could not be applied:");
            self.print(&errors, Shape::List(CONFIG_ERROR_COLUMNS));
            return Ok(());
        }
        self.print(&value, shape);
        Ok(())
    }

    pub(crate) async fn runs(&self, cmd: RunCmd) -> Result<(), ClientError> {
        let (method, route, shape) = match cmd {
            RunCmd::List { workflow, status } => {
                let mut route = api(&["runs"]);
                route.query.extend(workflow.map(|w| ("workflow", w)));
                route.query.extend(status.map(|s| ("status", s)));
                let value = self.every_page(route).await?;
                self.print(&value, Shape::List(RUN_COLUMNS));
                return Ok(());
            }
            RunCmd::Info { id } => (Method::GET, api(&["runs", &id]), Shape::One),
            RunCmd::Approve { id } => (Method::POST, api(&["runs", &id, "approve"]), Shape::One),
            RunCmd::Deny { id } => (Method::POST, api(&["runs", &id, "deny"]), Shape::One),
            RunCmd::Cancel { id } => (Method::POST, api(&["runs", &id, "cancel"]), Shape::One),
        };
        let value = self.call(method, route, None).await?;
        self.print(&value, shape);
        Ok(())
    }

    pub(crate) async fn config_errors(&self) -> Result<(), ClientError> {
        let value = self.call(Method::GET, api(&["config", "errors"]), None).await?;
        self.print(&value, Shape::List(CONFIG_ERROR_COLUMNS));
        Ok(())
    }

    pub(crate) async fn audit(&self, limit: Option<u32>) -> Result<(), ClientError> {
        let mut route = api(&["audit"]);
        if let Some(l) = limit {
            route.query.push(("limit", l.to_string()));
        }
        let value = self.call(Method::GET, route, None).await?;
        self.print(&value, Shape::List(AUDIT_COLUMNS));
        Ok(())
    }
}

/// The incoming log, routing-rule and interaction verbs.
fn log_and_rules(cmd: WebhookCmd) -> Result<(Method, Route, Option<Value>, Shape), ClientError> {
    Ok(match cmd {
        WebhookCmd::Events { id, status, event_type, since, until, limit } => {
            let mut route = api(&["webhooks", &id, "events"]);
            for (name, value) in [("status", status), ("event_type", event_type)] {
                if let Some(v) = value {
                    route.query.push((name, v));
                }
            }
            for (name, value) in [("since", since), ("until", until)] {
                if let Some(v) = value {
                    if v.parse::<jiff::Timestamp>().is_err() {
                        return Err(ClientError::Usage(format!(
                            "--{name} {v:?} is not an RFC 3339 time such as 2026-11-24T00:00:00Z"
                        )));
                    }
                    route.query.push((name, v));
                }
            }
            if let Some(l) = limit {
                route.query.push(("limit", l.to_string()));
            }
            (Method::GET, route, None, Shape::List(EVENT_COLUMNS))
        }
        WebhookCmd::Commands { id } => {
            (Method::GET, api(&["webhooks", &id, "commands"]), None, Shape::List(COMMAND_COLUMNS))
        }
        WebhookCmd::CommandAdd { id, trigger, action, agent, template, conditions, url, priority } => {
            let mut body = json!({"trigger": trigger});
            put(&mut body, "action", action);
            put(&mut body, "agent", agent);
            put(&mut body, "template", template);
            put(&mut body, "url", url);
            put(&mut body, "priority", priority);
            if let Some(c) = conditions {
                body["conditions"] = json_arg("--conditions", &c)?;
            }
            (Method::POST, api(&["webhooks", &id, "commands"]), Some(body), Shape::One)
        }
        WebhookCmd::Comment { id, event, message } => {
            let body = json!({"event_id": event, "message": message});
            (Method::POST, api(&["webhooks", &id, "comment"]), Some(body), Shape::One)
        }
        WebhookCmd::Ask { id, event, message } => {
            let body = json!({"event_id": event, "question": message});
            (Method::POST, api(&["webhooks", &id, "ask"]), Some(body), Shape::One)
        }
        WebhookCmd::Respond { id, event, message } => {
            let body = json!({"event_id": event, "response": message});
            (Method::POST, api(&["webhooks", &id, "respond"]), Some(body), Shape::One)
        }
        WebhookCmd::CommandRemove { id, command_id } => (
            Method::DELETE,
            api(&["webhooks", &id, "commands", &command_id]),
            None,
            Shape::Done("removed", command_id),
        ),
        _ => unreachable!("only log and rule verbs are passed here"),
    })
}

impl HookFields {
    /// Put the given fields into a create or update body. `update`: an
    /// empty `--template` clears it.
    fn apply(self, body: &mut Value, update: bool) -> Result<(), ClientError> {
        put(body, "name", self.name);
        put(body, "events", self.events);
        put(body, "rate_limit_per_minute", self.rate_limit_per_minute);
        put(body, "ip_allowlist", self.ip_allowlist);
        match self.template {
            Some(t) if t.is_empty() && update => body["template"] = Value::Null,
            t => put(body, "template", t),
        }
        put(body, "aggregate", self.aggregate);
        put(body, "notify", self.notify);
        put(body, "threads", self.threads);
        put(body, "url", self.url);
        put(body, "method", self.method);
        if !self.headers.is_empty() {
            let mut map = Map::new();
            for h in &self.headers {
                let Some((name, value)) = h.split_once(':') else {
                    return Err(ClientError::Usage(format!("--header {h:?} is not `Name: value`")));
                };
                map.insert(name.trim().to_owned(), json!(value.trim()));
            }
            body["headers"] = Value::Object(map);
        }
        match (self.auth_type, self.auth_credentials) {
            (None, None) => {}
            (None, Some(_)) => return Err(ClientError::Usage("--auth-credentials needs --auth-type".into())),
            (Some(kind), credentials) => {
                let mut auth = match credentials {
                    Some(c) => json_arg("--auth-credentials", &c)?,
                    None => json!({}),
                };
                let Some(obj) = auth.as_object_mut() else {
                    return Err(ClientError::Usage("--auth-credentials must be a JSON object".into()));
                };
                let name = match kind {
                    AuthType::None => "none",
                    AuthType::Basic => "basic",
                    AuthType::Bearer => "bearer",
                    AuthType::ApiKey => "api_key",
                };
                obj.insert("type".into(), json!(name));
                body["auth"] = auth;
            }
        }
        put(body, "timeout_ms", self.timeout_ms);
        if let Some(r) = self.retry {
            body["retry"] = json_arg("--retry", &r)?;
        }
        put(body, "max_concurrency", self.max_concurrency);
        Ok(())
    }
}

fn put<T: serde::Serialize>(body: &mut Value, key: &str, value: Option<T>) {
    if let Some(v) = value {
        body[key] = json!(v);
    }
}

fn json_arg(flag: &str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text).map_err(|e| ClientError::Usage(format!("{flag} is not valid JSON: {e}")))
}

fn hook_type(kind: HookType) -> &'static str {
    match kind {
        HookType::Incoming => "incoming",
        HookType::Outgoing => "outgoing",
    }
}

/// An API path (under `/api`, segments unencoded) and its query.
struct Route {
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
}

fn api(segments: &[&str]) -> Route {
    let segments = std::iter::once("api").chain(segments.iter().copied()).map(str::to_owned).collect();
    Route { segments, query: Vec::new() }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// How an answer is laid out as a table.
#[derive(Debug, Clone)]
enum Shape {
    /// One object: `key: value` lines.
    One,
    /// `{"items": [...]}`: the given columns.
    List(&'static [&'static str]),
    /// An empty answer: say what was done to what.
    Done(&'static str, String),
}

const AGENT_COLUMNS: &[&str] = &["name", "channel_id", "enabled", "created_at"];
const HOOK_COLUMNS: &[&str] = &["id", "type", "agent", "name", "source|url", "enabled"];
const DELIVERY_COLUMNS: &[&str] = &["id", "status", "attempts", "next_attempt_at", "last_error"];
const TOKEN_COLUMNS: &[&str] = &["id", "name", "scope", "created_at", "revoked_at"];
const AUDIT_COLUMNS: &[&str] = &["at", "via", "action", "target", "actor"];
const EVENT_COLUMNS: &[&str] =
    &["id", "event_type", "status", "received_at", "size", "matched_command", "task_id"];
const COMMAND_COLUMNS: &[&str] = &["id", "priority", "trigger", "action", "agent"];
const TASK_COLUMNS: &[&str] = &["id", "agent", "status", "title", "created_at"];
const CONFIG_ERROR_COLUMNS: &[&str] = &["file", "line", "field", "message"];
const WORKFLOW_COLUMNS: &[&str] = &["name", "url", "enabled", "agent", "origin", "signed"];
const RUN_COLUMNS: &[&str] = &["id", "workflow", "status", "error", "created_at"];

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render(value: &Value, shape: Shape) -> String {
    match shape {
        Shape::Done(what, name) => format!("{what} {name}"),
        Shape::One => match value.as_object() {
            Some(obj) => {
                let width = obj.keys().map(String::len).max().unwrap_or(0);
                obj.iter().map(|(k, v)| format!("{k:width$}  {}", cell(v))).collect::<Vec<_>>().join("\n")
            }
            None => cell(value),
        },
        Shape::List(columns) => {
            let items = value["items"].as_array().cloned().unwrap_or_default();
            let pick = |item: &Value, col: &str| {
                // `a|b`: the first of the two the item has.
                col.split('|').map(|c| &item[c]).find(|v| !v.is_null()).map_or_else(|| "-".to_owned(), cell)
            };
            let header: Vec<String> =
                columns.iter().map(|c| c.split('|').next().unwrap_or(c).to_owned()).collect();
            let rows: Vec<Vec<String>> =
                items.iter().map(|item| columns.iter().map(|c| pick(item, c)).collect()).collect();
            let widths: Vec<usize> = (0..columns.len())
                .map(|i| {
                    rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0)
                })
                .collect();
            let line = |cells: &[String]| {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i + 1 == cells.len() {
                        s.push_str(c);
                    } else {
                        let _ = write!(s, "{c:w$}  ", w = widths[i]);
                    }
                }
                s.trim_end().to_owned()
            };
            let mut out = vec![line(&header.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>())];
            out.extend(rows.iter().map(|r| line(r)));
            if items.is_empty() {
                out.push("(none)".into());
            }
            out.join("\n")
        }
    }
}

/// The folders of a backup, one per kind of file.
const BACKUP_FOLDERS: [&str; 4] = ["agents", "webhooks", "workflows", "subscriptions"];

impl Client {
    /// Write the server's backup files under `out`, a new or empty folder.
    pub(crate) async fn export(&self, out: &std::path::Path, secrets: bool) -> Result<(), ClientError> {
        let io = |what: &str, path: &std::path::Path, e: std::io::Error| {
            ClientError::Transport(format!("{what} {}: {e}", path.display()))
        };
        if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(ClientError::Usage(format!(
                "{} is not empty: export into a new or empty folder",
                out.display()
            )));
        }
        let mut route = api(&["backup"]);
        if secrets {
            route.query.push(("secrets", "true".into()));
        }
        let value = self.call(Method::GET, route, None).await?;
        let files = value["files"].as_object().cloned().unwrap_or_default();
        for (path, text) in &files {
            // Only the four folders, and no way out of them.
            let (folder, name) = path.split_once('/').unwrap_or_default();
            let safe = BACKUP_FOLDERS.contains(&folder)
                && !name.is_empty()
                && !name.contains(['/', '\\'])
                && !name.starts_with('.');
            let Some(text) = text.as_str().filter(|_| safe) else {
                return Err(ClientError::Transport(format!("the server sent an unexpected file {path:?}")));
            };
            let target = out.join(folder);
            std::fs::create_dir_all(&target).map_err(|e| io("creating", &target, e))?;
            let file = target.join(name);
            std::fs::write(&file, text).map_err(|e| io("writing", &file, e))?;
        }
        if matches!(self.format, Format::Json) {
            self.print(
                &json!({"files": files.keys().collect::<Vec<_>>(), "skipped": value["skipped"]}),
                Shape::One,
            );
            return Ok(());
        }
        let mut text = format!("wrote {} files to {}", files.len(), out.display());
        if !secrets {
            text.push_str(" (without secrets: add --secrets to keep them, sealed under the master key)");
        }
        for skipped in value["skipped"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let _ = write!(text, "\nskipped {skipped}: its file is its backup");
        }
        self.print(&Value::String(text), Shape::One);
        Ok(())
    }

    /// Create on the server what the backup files under `dir` describe.
    pub(crate) async fn import(&self, dir: &std::path::Path) -> Result<(), ClientError> {
        let mut files = Map::new();
        for folder in BACKUP_FOLDERS {
            let path = dir.join(folder);
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ClientError::Usage(format!("reading {}: {e}", path.display()))),
            };
            for entry in entries {
                let entry =
                    entry.map_err(|e| ClientError::Usage(format!("reading {}: {e}", path.display())))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let wanted = [".json", ".yaml", ".yml"].iter().any(|ext| name.ends_with(ext));
                if name.starts_with('.') || !wanted {
                    continue;
                }
                let text = std::fs::read_to_string(entry.path())
                    .map_err(|e| ClientError::Usage(format!("reading {}: {e}", entry.path().display())))?;
                files.insert(format!("{folder}/{name}"), Value::String(text));
            }
        }
        if files.is_empty() {
            return Err(ClientError::Usage(format!(
                "no backup files in {}: expected agents/, webhooks/, workflows/ or subscriptions/",
                dir.display()
            )));
        }
        let body = json!({"format": "chorus-backup/1", "files": files});
        let value = self.call(Method::POST, api(&["backup", "import"]), Some(body)).await?;
        if matches!(self.format, Format::Json) {
            self.print(&value, Shape::One);
            return Ok(());
        }
        let mut text = String::new();
        for kind in BACKUP_FOLDERS {
            for item in value[kind].as_array().into_iter().flatten() {
                let name = item.as_str().or_else(|| item["id"].as_str()).unwrap_or_default();
                let _ = write!(
                    text,
                    "{}created {} {name}",
                    if text.is_empty() { "" } else { "\n" },
                    &kind[..kind.len() - 1]
                );
                if let Some(secret) = item["secret"].as_str() {
                    let _ = write!(text, "  new secret (shown once): {secret}");
                }
            }
        }
        self.print(&Value::String(text), Shape::One);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_render_as_aligned_columns() {
        let v = json!({"items": [
            {"id": "hk_1", "type": "incoming", "agent": "builder", "name": "repo", "source": "github", "enabled": true},
            {"id": "hk_22", "type": "outgoing", "agent": null, "name": "ci", "url": "https://x.example/h", "enabled": false},
        ]});
        let table = render(&v, Shape::List(HOOK_COLUMNS));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "ID     TYPE      AGENT    NAME  SOURCE               ENABLED");
        assert_eq!(lines[1], "hk_1   incoming  builder  repo  github               true");
        assert_eq!(lines[2], "hk_22  outgoing  -        ci    https://x.example/h  false");
        assert_eq!(render(&json!({"items": []}), Shape::List(AGENT_COLUMNS)).lines().nth(1), Some("(none)"));
    }

    #[test]
    fn ids_cannot_change_the_path() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(ClientArgs {
            server: "http://127.0.0.1:8080/base/".into(),
            token: Some("t".into()),
            format: Format::Json,
        })
        .unwrap();
        let mut route = api(&["webhooks", "hk_a/../b c", "deliveries"]);
        route.query.push(("status", "failed&limit=1".into()));
        assert_eq!(
            client.url(&route).as_str(),
            "http://127.0.0.1:8080/base/api/webhooks/hk_a%2F..%2Fb%20c/deliveries?status=failed%26limit%3D1"
        );
    }
}
