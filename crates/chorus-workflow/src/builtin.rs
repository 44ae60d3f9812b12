//! The built-in tools: `discord_message`, `http_request`, `emit_event`,
//! `forward`, `create_task` and `shell_exec` (with `wait`, which the
//! runner implements).
//!
//! Tools that act inside Chorus (messages, events, tasks) return effects
//! that commit with the step's record, so they happen once. Tools that
//! reach outside carry the step's idempotency key.

use std::{process::Stdio, sync::Arc};

use async_trait::async_trait;
use chorus_core::{
    AgentName, Clock, DeliveryId, EventId, Message, NewDelivery, NewOutgoingEvent, Store, Task, TaskStatus,
    is_known_event, random_token,
};
use chorus_deliver::SsrfGuard;
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use crate::tool::{ArgError, Output, Tool, ToolCall, ToolError, Tools};

/// Most bytes of a response body or a command's output kept as a step's output.
pub const OUTPUT_CAP: usize = 64 * 1024;

/// What the built-in tools need from their host.
#[derive(Clone)]
pub struct BuiltinEnv {
    /// Agents (for where messages go).
    pub store: Arc<dyn Store>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Which addresses `http_request` and `forward` may reach.
    pub guard: Arc<SsrfGuard>,
    /// Programs `shell_exec` may run (names looked up on `PATH`, or
    /// absolute paths); empty turns `shell_exec` off.
    pub shell_allow: Vec<String>,
}

/// Register every built-in tool in `tools`.
pub fn register_builtins(tools: &mut Tools, env: &BuiltinEnv) {
    let client = chorus_deliver::guarded_client(env.guard.clone());
    tools
        .register("discord_message", DiscordMessage { env: env.clone() })
        .register("emit_event", EmitEvent { clock: env.clock.clone() })
        .register("create_task", CreateTask { env: env.clone() })
        .register("http_request", HttpRequest { client: client.clone(), guard: env.guard.clone() })
        .register("forward", Forward { client, guard: env.guard.clone() })
        .register("shell_exec", ShellExec { allow: env.shell_allow.clone() });
}

fn text_arg<'a>(args: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn require_static(args: &Map<String, Value>, name: &str, what: &str) -> Result<(), ArgError> {
    match args.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
        Some(v) if !v.is_null() && !v.is_string() => Err(ArgError::at(name, format!("{what} must be text"))),
        _ => Err(ArgError::at(name, format!("{what} is required"))),
    }
}

fn agent_of(call: &ToolCall) -> Result<AgentName, ToolError> {
    match text_arg(&call.args, "agent") {
        Some(a) => a.parse().map_err(|e| ToolError::new(format!("agent: {e}"))),
        None => call
            .agent
            .clone()
            .ok_or_else(|| ToolError::new("no agent: set the workflow's or the step's `agent`")),
    }
}

/// Text for a message: strings as they are, other values as JSON.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

struct DiscordMessage {
    env: BuiltinEnv,
}

#[async_trait]
impl Tool for DiscordMessage {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        if args.get("content").is_none() && args.get("title").is_none() {
            return Err(ArgError::at("content", "content (or title) is required"));
        }
        Ok(())
    }

    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let agent = agent_of(&call)?;
        let target = chorus_deliver::target_for(self.env.store.as_ref(), &agent)
            .await
            .map_err(|e| ToolError::new(format!("looking up agent {agent}: {e}")))?
            .ok_or_else(|| ToolError::new(format!("agent {agent} does not exist or has no channel")))?;
        let message = Message {
            description: call.args.get("content").map(as_text).unwrap_or_default(),
            footer: Some(format!("workflow {} · {}", call.workflow, call.run_id)),
            ..Message::titled(call.args.get("title").map(as_text).unwrap_or_default())
        };
        let id = DeliveryId::generate();
        let delivery = NewDelivery {
            id: id.clone(),
            event_id: None,
            hook_id: call.workflow_id.clone(),
            target,
            payload: serde_json::to_value(&message).expect("a message serializes"),
            due_at: self.env.clock.now(),
        };
        let mut out = Output::value(json!({"delivery_id": id, "agent": agent}));
        out.effects.deliveries.push(delivery);
        Ok(out)
    }
}

struct EmitEvent {
    clock: Arc<dyn Clock>,
}

#[async_trait]
impl Tool for EmitEvent {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        require_static(args, "event", "event")?;
        let name = args["event"].as_str().unwrap_or_default();
        if !name.contains("{{") && !is_known_event(name) {
            return Err(ArgError::at("event", format!("{name:?} is not in the event catalogue or custom.*")));
        }
        Ok(())
    }

    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let event = text_arg(&call.args, "event").unwrap_or_default().to_owned();
        if !is_known_event(&event) {
            return Err(ToolError::new(format!("{event:?} is not in the event catalogue or custom.*")));
        }
        let agent = match text_arg(&call.args, "agent") {
            Some(a) => Some(a.parse().map_err(|e| ToolError::new(format!("agent: {e}")))?),
            None => call.agent.clone(),
        };
        let data = call.args.get("data").cloned().unwrap_or_else(|| (*call.payload).clone());
        let id = EventId::generate();
        let mut out = Output::value(json!({"event_id": id, "event": event}));
        out.effects.events.push(NewOutgoingEvent {
            id,
            event,
            agent,
            data,
            metadata: json!({"workflow": call.workflow, "run_id": call.run_id, "step": call.step}),
            at: self.clock.now(),
        });
        Ok(out)
    }
}

struct CreateTask {
    env: BuiltinEnv,
}

#[async_trait]
impl Tool for CreateTask {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        require_static(args, "title", "title")
    }

    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let agent = agent_of(&call)?;
        if self.env.store.agent(&agent).await.map_err(|e| ToolError::new(e.to_string()))?.is_none() {
            return Err(ToolError::new(format!("agent {agent} does not exist")));
        }
        let title: String =
            as_text(&call.args["title"]).lines().next().unwrap_or_default().chars().take(200).collect();
        let now = self.env.clock.now();
        let task = Task {
            id: random_token("task_", 12),
            agent: agent.clone(),
            title,
            body: call.args.get("body").map(as_text).unwrap_or_default(),
            url: text_arg(&call.args, "url").map(str::to_owned),
            hook_id: Some(call.workflow_id.clone()),
            event_id: None,
            rule_id: Some(format!("workflow:{}/{}", call.workflow, call.step)),
            status: TaskStatus::Open,
            result: None,
            reply: false,
            created_at: now,
            updated_at: now,
        };
        let mut out = Output::value(json!({"task_id": task.id, "agent": agent}));
        if let Some(target) = chorus_deliver::target_for(self.env.store.as_ref(), &agent)
            .await
            .map_err(|e| ToolError::new(e.to_string()))?
        {
            let message = Message {
                description: task.body.clone(),
                url: task.url.clone(),
                footer: Some(format!("{} · workflow {}", task.id, call.workflow)),
                color: Some(0x00F1_C40F),
                ..Message::titled(format!("New task: {}", task.title))
            };
            out.effects.deliveries.push(NewDelivery {
                id: DeliveryId::generate(),
                event_id: None,
                hook_id: call.workflow_id.clone(),
                target,
                payload: serde_json::to_value(&message).expect("a message serializes"),
                due_at: now,
            });
        }
        out.effects.tasks.push(task);
        Ok(out)
    }
}

fn check_url(args: &Map<String, Value>) -> Result<(), ArgError> {
    require_static(args, "url", "url")?;
    let url = args["url"].as_str().unwrap_or_default();
    if url.contains("{{") || url.contains("{%") {
        return Ok(());
    }
    let parsed = url::Url::parse(url).map_err(|e| ArgError::at("url", format!("not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ArgError::at("url", "only http and https URLs"));
    }
    Ok(())
}

fn check_headers(args: &Map<String, Value>) -> Result<(), ArgError> {
    match args.get("headers") {
        None => Ok(()),
        Some(Value::Object(map)) => {
            for (name, value) in map {
                http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| ArgError::at("headers", format!("{name:?} is not a header name")))?;
                if !value.is_string() {
                    return Err(ArgError::at("headers", format!("the value of {name} must be text")));
                }
            }
            Ok(())
        }
        Some(_) => Err(ArgError::at("headers", "a map of header names to values")),
    }
}

/// Send one request through the guard; the step's key rides along.
async fn send(
    client: &reqwest::Client,
    guard: &SsrfGuard,
    call: &ToolCall,
    method: reqwest::Method,
    body: Option<(Vec<u8>, String)>,
) -> Result<Value, ToolError> {
    let url = text_arg(&call.args, "url").ok_or_else(|| ToolError::new("url is empty"))?;
    let url = guard.check_url(url).await.map_err(|e| ToolError::new(e.to_string()))?;
    let mut request = client
        .request(method, url)
        .timeout(call.timeout)
        .header("Idempotency-Key", &call.idempotency_key)
        .header("X-Chorus-Workflow", &call.workflow)
        .header("X-Chorus-Run", call.run_id.as_str());
    if let Some(Value::Object(headers)) = call.args.get("headers") {
        for (name, value) in headers {
            request = request.header(name.as_str(), as_text(value));
        }
    }
    if let Some((bytes, content_type)) = body {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
    }
    let mut response = request.send().await.map_err(|e| {
        let what = if e.is_timeout() { "timed out".to_owned() } else { format!("failed: {e}") };
        ToolError::new(format!("request {what}"))
    })?;
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| ToolError::new(format!("reading the response: {e}")))?
    {
        bytes.extend_from_slice(&chunk[..chunk.len().min(OUTPUT_CAP + 1 - bytes.len().min(OUTPUT_CAP + 1))]);
        if bytes.len() > OUTPUT_CAP {
            break;
        }
    }
    let truncated = bytes.len() > OUTPUT_CAP;
    bytes.truncate(OUTPUT_CAP);
    let body = if truncated {
        Value::String(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    if status >= 400 {
        let text = as_text(&body);
        let excerpt: String = text.chars().take(300).collect();
        return Err(ToolError::new(format!("HTTP {status}: {excerpt}")));
    }
    Ok(json!({"status": status, "body": body, "truncated": truncated}))
}

struct HttpRequest {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
}

#[async_trait]
impl Tool for HttpRequest {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        check_url(args)?;
        check_headers(args)?;
        if let Some(m) = args.get("method") {
            let m = m.as_str().ok_or_else(|| ArgError::at("method", "method must be text"))?;
            if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(&m.to_ascii_uppercase().as_str()) {
                return Err(ArgError::at("method", "one of GET, POST, PUT, PATCH, DELETE, HEAD"));
            }
        }
        Ok(())
    }

    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let method = text_arg(&call.args, "method").unwrap_or("GET").to_ascii_uppercase();
        let method =
            reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| ToolError::new("bad method"))?;
        let body = match call.args.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some((s.clone().into_bytes(), "text/plain; charset=utf-8".to_owned())),
            Some(v) => Some((serde_json::to_vec(v).expect("JSON"), "application/json".to_owned())),
        };
        send(&self.client, &self.guard, &call, method, body).await.map(Output::value)
    }
}

struct Forward {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
}

#[async_trait]
impl Tool for Forward {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        check_url(args)?;
        check_headers(args)
    }

    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let body = serde_json::to_vec(call.payload.as_ref()).expect("JSON");
        send(&self.client, &self.guard, &call, reqwest::Method::POST, Some((body, "application/json".into())))
            .await
            .map(Output::value)
    }
}

struct ShellExec {
    allow: Vec<String>,
}

impl ShellExec {
    fn argv(args: &Map<String, Value>) -> Result<Vec<String>, ArgError> {
        match (args.get("argv"), args.get("command")) {
            (Some(Value::Array(items)), None) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_owned).ok_or_else(|| ArgError::at("argv", "a list of strings"))
                })
                .collect(),
            (None, Some(Value::String(command))) => shell_words::split(command)
                .map_err(|e| ArgError::at("command", format!("cannot split into words: {e}"))),
            (Some(_), Some(_)) => Err(ArgError::at("command", "give command or argv, not both")),
            _ => Err(ArgError::at("command", "command (text) or argv (a list) is required")),
        }
    }

    fn allowed(&self, program: &str) -> bool {
        self.allow.iter().any(|a| a == program)
    }
}

#[async_trait]
impl Tool for ShellExec {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        let words = Self::argv(args)?;
        let field = if args.contains_key("argv") { "argv" } else { "command" };
        let Some(program) = words.first() else { return Err(ArgError::at(field, "the command is empty")) };
        if program.contains("{{") || program.contains("{%") {
            return Err(ArgError::at(field, "the program must be written out, not a template"));
        }
        if self.allow.is_empty() {
            return Err(ArgError::at(
                field,
                "shell_exec is off: list the programs it may run in CHORUS_WORKFLOWS_SHELL_ALLOW",
            ));
        }
        if !self.allowed(program) {
            return Err(ArgError::at(
                field,
                format!("{program:?} is not in CHORUS_WORKFLOWS_SHELL_ALLOW ({})", self.allow.join(", ")),
            ));
        }
        Ok(())
    }

    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
        let argv = Self::argv(&call.args).map_err(|e| ToolError::new(e.message))?;
        let Some((program, rest)) = argv.split_first() else {
            return Err(ToolError::new("the command is empty"));
        };
        // Checked again: the allow list may have shrunk since the load.
        if !self.allowed(program) {
            return Err(ToolError::new(format!("{program:?} is not in CHORUS_WORKFLOWS_SHELL_ALLOW")));
        }
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            // No shell, and none of Chorus's environment (its keys and
            // tokens) leaks into the command.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()))
            .env("CHORUS_WORKFLOW", &call.workflow)
            .env("CHORUS_RUN_ID", call.run_id.as_str())
            .env("CHORUS_IDEMPOTENCY_KEY", &call.idempotency_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ToolError::new(format!("cannot run {program}: {e}")))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let read = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let cap = (OUTPUT_CAP + 1) as u64;
            let (mut o, mut e) = ((&mut stdout).take(cap), (&mut stderr).take(cap));
            let (a, b) = tokio::join!(o.read_to_end(&mut out), e.read_to_end(&mut err));
            a.and(b).map(|_| (out, err))
        };
        let run = async {
            let (out, err) = read.await?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, err))
        };
        let (status, out, err) = match tokio::time::timeout(call.timeout, run).await {
            Ok(r) => r.map_err(|e| ToolError::new(format!("running {program}: {e}")))?,
            Err(_) => return Err(ToolError::new(format!("{program} timed out after {:?}", call.timeout))),
        };
        let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(OUTPUT_CAP)]).into_owned();
        let output = json!({
            "exit_code": status.code(),
            "stdout": text(&out),
            "stderr": text(&err),
            "truncated": out.len() > OUTPUT_CAP || err.len() > OUTPUT_CAP,
        });
        if !status.success() {
            let code = status.code().map_or_else(|| "a signal".to_owned(), |c| format!("exit code {c}"));
            let excerpt: String = text(&err).chars().take(300).collect();
            return Err(ToolError::new(format!("{program} ended with {code}: {}", excerpt.trim())));
        }
        Ok(Output::value(output))
    }
}
