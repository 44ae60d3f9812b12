//! The `Tool` trait steps call, and the registry of tools by name.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use chorus_core::{AgentName, Effects, HookId, RunId};
use serde_json::{Map, Value};

/// A step's arguments that a tool cannot take, found when the workflow is
/// loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    /// The argument at fault (`command`), when one is.
    pub arg: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ArgError {
    /// A problem with argument `arg`.
    pub fn at(arg: &str, message: impl Into<String>) -> Self {
        Self { arg: Some(arg.to_owned()), message: message.into() }
    }
}

/// A step could not do its work. The message is recorded on the step and
/// shown to people; keep secrets out of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToolError(pub String);

impl ToolError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// What a step produced.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Its output, seen by the next step as `previous_output` and by later
    /// ones as `steps.<name>.output`.
    pub value: Value,
    /// Messages, outgoing events and tasks, committed with the step's
    /// record (so they happen once, even when a run resumes after a crash).
    pub effects: Effects,
}

impl Output {
    /// An output with no effects inside Chorus.
    pub fn value(value: Value) -> Self {
        Self { value, effects: Effects::default() }
    }
}

/// One call of a tool by one step of one run.
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The step's arguments, rendered (and, for tools that want it, with
    /// the payload's fields merged in beneath them).
    pub args: Map<String, Value>,
    /// The same for every attempt of this step of this run, including one
    /// after a crash: send it along (`Idempotency-Key`) so receivers can
    /// drop repeats.
    pub idempotency_key: String,
    /// The run.
    pub run_id: RunId,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow's id (the deliveries it makes belong to it).
    pub workflow_id: HookId,
    /// The step's name.
    pub step: String,
    /// The workflow's agent.
    pub agent: Option<AgentName>,
    /// The request body that started the run.
    pub payload: Arc<Value>,
    /// How long the step may take; the runner also enforces it.
    pub timeout: Duration,
}

/// Something a workflow step can do. Embedders implement it and register
/// it with `Chorus::builder().tool(name, tool)`.
///
/// ```
/// use chorus_workflow::{Output, Tool, ToolCall, ToolError};
///
/// struct Echo;
///
/// #[async_trait::async_trait]
/// impl Tool for Echo {
///     async fn call(&self, call: ToolCall) -> Result<Output, ToolError> {
///         Ok(Output::value(serde_json::Value::Object(call.args)))
///     }
/// }
/// ```
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Check a step's arguments when its workflow is loaded. String values
    /// may still be templates, rendered only when the step runs.
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        let _ = args;
        Ok(())
    }

    /// Whether the request body's fields are merged into the arguments
    /// (the step's own arguments win), with `previous_output` beside them.
    /// Tools that reach outside Chorus say no, so that a sender cannot set
    /// an argument the workflow left out; they see the payload through
    /// templates instead.
    fn merges_payload(&self) -> bool {
        true
    }

    /// Do the work.
    async fn call(&self, call: ToolCall) -> Result<Output, ToolError>;
}

/// Tools by name.
#[derive(Clone, Default)]
pub struct Tools {
    by_name: BTreeMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for Tools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

/// Tool names the runner itself implements: `wait` pauses the run durably.
pub const WAIT: &str = "wait";

struct Wait;

#[async_trait]
impl Tool for Wait {
    fn check(&self, args: &Map<String, Value>) -> Result<(), ArgError> {
        let d =
            args.get("duration").ok_or_else(|| ArgError::at("duration", "required (like 30s, 5m, 2h)"))?;
        if d.as_str().is_some_and(|s| s.contains("{{")) {
            return Ok(());
        }
        let d = crate::def::parse_duration(d).map_err(|m| ArgError::at("duration", m))?;
        if d > crate::def::WAIT_MAX {
            return Err(ArgError::at("duration", "at most 30 days"));
        }
        Ok(())
    }

    fn merges_payload(&self) -> bool {
        false
    }

    async fn call(&self, _: ToolCall) -> Result<Output, ToolError> {
        Err(ToolError::new("wait is run by the workflow runner"))
    }
}

impl Tools {
    /// A registry holding only `wait`.
    pub fn new() -> Self {
        let mut tools = Self::default();
        tools.register(WAIT, Wait);
        tools
    }

    /// Register `tool` under `name`, replacing any tool of that name.
    pub fn register(&mut self, name: impl Into<String>, tool: impl Tool) -> &mut Self {
        self.by_name.insert(name.into(), Arc::new(tool));
        self
    }

    /// Register a shared tool under `name`.
    pub fn register_arc(&mut self, name: impl Into<String>, tool: Arc<dyn Tool>) -> &mut Self {
        self.by_name.insert(name.into(), tool);
        self
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }
}
