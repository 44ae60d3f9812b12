//! Workflow definitions: parsed from the JSON value of a file or an API
//! body, checked once (tools exist, templates compile, names are unique),
//! and kept typed.

use std::time::Duration;

use chorus_core::{AgentName, Source};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    template::{Expr, Template},
    tool::Tools,
};

/// The longest a step may run.
pub const STEP_TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// A step's timeout when it sets none.
pub const STEP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);
/// How long an approval waits when the workflow sets nothing.
pub const APPROVAL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(24 * 3600);
/// The longest a `wait` step or an approval may wait.
pub const WAIT_MAX: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most steps in one workflow.
pub const STEPS_MAX: usize = 50;

/// A definition that cannot be used, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct DefinitionError {
    /// The field (`steps[1].tool`), when one is at fault.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl DefinitionError {
    fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), message: message.into() }
    }
}

/// What to do when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The run fails (the default).
    #[default]
    Stop,
    /// The next step runs; the run can still succeed.
    Continue,
}

/// One step, checked.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique within the workflow.
    pub name: String,
    /// The registered tool it calls.
    pub tool: String,
    /// Its arguments: strings may be templates over the run's context.
    pub args: Map<String, Value>,
    /// A person approves before it runs.
    pub requires_approval: bool,
    /// Runs only when this expression is true.
    pub when: Option<Expr>,
    /// How long it may run.
    pub timeout: Duration,
    /// What a failure does to the run.
    pub on_failure: OnFailure,
}

/// A workflow, checked.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Unique; the URL path.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// A disabled workflow answers 409.
    pub enabled: bool,
    /// Where results and approvals go.
    pub agent: Option<AgentName>,
    /// How requests are signed (when it has a secret).
    pub verify: Source,
    /// Discord role id whose members may approve; without one, members
    /// with Manage Server may.
    pub approver_role: Option<String>,
    /// How long an approval waits before the run fails as expired.
    pub approval_timeout: Duration,
    /// Requests a minute this workflow takes.
    pub rate_limit_per_minute: u32,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// A workflow as a file or an API body writes it, before it is checked.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    /// Unique; the URL path (`/webhooks/{name}`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")))]
    name: String,
    /// What it is for.
    #[serde(default)]
    description: String,
    /// What starts a run: a request to its URL.
    #[serde(default = "webhook")]
    #[cfg_attr(feature = "schema", schemars(extend("enum" = ["webhook"])))]
    trigger: String,
    /// A disabled workflow answers 409.
    #[serde(default = "yes")]
    enabled: bool,
    /// The agent whose channel gets results and approvals.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = chorus_core::AgentName::PATTERN)))]
    agent: Option<String>,
    /// The secret senders sign with: 16 to 256 characters in an API body,
    /// `${ENV}` or `file:` in a workflow file. Read by the caller; only its
    /// presence matters here.
    #[serde(rename = "secret")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>", length(min = 16, max = 256)))]
    _secret: Option<Value>,
    /// The signature scheme senders use; `chorus` unless said.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "verify_schema"))]
    verify: Option<String>,
    /// A Discord role id whose members may approve.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[1-9][0-9]{0,18}$")))]
    approver_role: Option<String>,
    /// How long an approval waits: `30m`, `24h`, or seconds.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "duration_schema"))]
    approval_timeout: Option<Value>,
    /// Requests a minute the workflow takes.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100_000)))]
    rate_limit_per_minute: Option<u32>,
    /// The steps, in order.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 50)))]
    steps: Vec<StepDefinition>,
}

/// One step as written.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StepDefinition {
    /// Unique within the workflow.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 100)))]
    name: String,
    /// The registered tool it calls.
    tool: String,
    /// The tool's arguments; strings may be templates over the run's context.
    #[serde(default)]
    args: Map<String, Value>,
    /// A person approves before it runs.
    #[serde(default)]
    requires_approval: bool,
    /// Runs only when this expression is true.
    when: Option<String>,
    /// How long it may run: `30s`, `5m`, or seconds.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "duration_schema"))]
    timeout: Option<Value>,
    /// What a failure does to the run.
    #[serde(default)]
    on_failure: OnFailure,
}

#[cfg(feature = "schema")]
fn verify_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = VERIFY_SCHEMES.iter().map(|s| s.as_str()).collect();
    schemars::json_schema!({"type": "string", "enum": names})
}

#[cfg(feature = "schema")]
fn duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": ["string", "integer"]})
}

fn yes() -> bool {
    true
}

fn webhook() -> String {
    "webhook".into()
}

/// Schemes a workflow's requests may be signed with.
pub const VERIFY_SCHEMES: [Source; 7] = [
    Source::Github,
    Source::Chorus,
    Source::Gitlab,
    Source::Standard,
    Source::Slack,
    Source::Stripe,
    Source::Jira,
];

/// Whether `name` can be a workflow name: it is a URL path segment
/// (`reload` is taken by `POST /api/workflows/reload`).
pub fn valid_name(name: &str) -> bool {
    name != "reload"
        && (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

/// A duration as a definition writes it: seconds as a number, or `30s`,
/// `5m`, `24h`, `2d`.
pub fn parse_duration(v: &Value) -> Result<Duration, String> {
    let bad = || format!("{v} is not a duration (seconds, or like 30s, 5m, 24h, 2d)");
    if let Some(n) = v.as_u64() {
        return Ok(Duration::from_secs(n));
    }
    let s = v.as_str().ok_or_else(bad)?.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => return Ok(Duration::from_millis(n)),
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(secs))
}

impl Workflow {
    /// Check a definition against the registered tools.
    pub fn parse(value: &Value, tools: &Tools) -> Result<Workflow, DefinitionError> {
        let raw: WorkflowDefinition = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            DefinitionError { field: (field != ".").then_some(field), message: e.into_inner().to_string() }
        })?;
        if !valid_name(&raw.name) {
            return Err(DefinitionError::at(
                "name",
                "1 to 64 characters: letters, digits, '-', '_' and '.' (it is the URL path)",
            ));
        }
        if raw.trigger != "webhook" {
            return Err(DefinitionError::at("trigger", "the only trigger is \"webhook\""));
        }
        let agent = raw
            .agent
            .map(|a| a.parse::<AgentName>().map_err(|e| DefinitionError::at("agent", e.to_string())))
            .transpose()?;
        let verify = match raw.verify.as_deref() {
            None => Source::Github,
            Some(s) => s.parse::<Source>().ok().filter(|s| VERIFY_SCHEMES.contains(s)).ok_or_else(|| {
                let names: Vec<&str> = VERIFY_SCHEMES.iter().map(|s| s.as_str()).collect();
                DefinitionError::at("verify", format!("one of {}", names.join(", ")))
            })?,
        };
        if let Some(role) = &raw.approver_role
            && (role.is_empty() || !role.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(DefinitionError::at("approver_role", "a Discord role id (digits)"));
        }
        let approval_timeout = match &raw.approval_timeout {
            None => APPROVAL_TIMEOUT_DEFAULT,
            Some(v) => parse_duration(v)
                .and_then(|d| bounded(d, Duration::from_secs(1), WAIT_MAX))
                .map_err(|m| DefinitionError::at("approval_timeout", m))?,
        };
        let rate_limit_per_minute = raw.rate_limit_per_minute.unwrap_or(60);
        if !(1..=100_000).contains(&rate_limit_per_minute) {
            return Err(DefinitionError::at("rate_limit_per_minute", "between 1 and 100000"));
        }
        if raw.steps.is_empty() || raw.steps.len() > STEPS_MAX {
            return Err(DefinitionError::at("steps", format!("1 to {STEPS_MAX} steps")));
        }
        let mut steps: Vec<Step> = Vec::with_capacity(raw.steps.len());
        for (i, s) in raw.steps.into_iter().enumerate() {
            let at = |f: &str| format!("steps[{i}].{f}");
            if s.name.trim().is_empty() || s.name.len() > 100 {
                return Err(DefinitionError::at(at("name"), "1 to 100 characters"));
            }
            if let Some(first) = steps.iter().position(|p| p.name == s.name) {
                return Err(DefinitionError::at(
                    at("name"),
                    format!("{:?} is already the name of steps[{first}]", s.name),
                ));
            }
            let Some(tool) = tools.get(&s.tool) else {
                return Err(DefinitionError::at(
                    at("tool"),
                    format!("unknown tool {:?}; registered: {}", s.tool, tools.names().join(", ")),
                ));
            };
            check_templates(&Value::Object(s.args.clone()), &at("args"))?;
            tool.check(&s.args).map_err(|e| {
                let field = e.arg.map_or_else(|| at("args"), |a| at(&format!("args.{a}")));
                DefinitionError::at(field, e.message)
            })?;
            let when = s
                .when
                .as_deref()
                .map(Expr::compile)
                .transpose()
                .map_err(|m| DefinitionError::at(at("when"), m))?;
            let timeout = match &s.timeout {
                None => STEP_TIMEOUT_DEFAULT,
                Some(v) => parse_duration(v)
                    .and_then(|d| bounded(d, Duration::from_secs(1), STEP_TIMEOUT_MAX))
                    .map_err(|m| DefinitionError::at(at("timeout"), m))?,
            };
            steps.push(Step {
                name: s.name,
                tool: s.tool,
                args: s.args,
                requires_approval: s.requires_approval,
                when,
                timeout,
                on_failure: s.on_failure,
            });
        }
        Ok(Workflow {
            name: raw.name,
            description: raw.description,
            enabled: raw.enabled,
            agent,
            verify,
            approver_role: raw.approver_role,
            approval_timeout,
            rate_limit_per_minute,
            steps,
        })
    }
}

fn bounded(d: Duration, min: Duration, max: Duration) -> Result<Duration, String> {
    if d < min || d > max {
        return Err(format!("between {}s and {}s", min.as_secs(), max.as_secs()));
    }
    Ok(d)
}

/// Every string in `v` that is a template must compile.
fn check_templates(v: &Value, at: &str) -> Result<(), DefinitionError> {
    match v {
        Value::String(s) => Template::compile(s).map(|_| ()).map_err(|m| DefinitionError::at(at, m)),
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| check_templates(item, &format!("{at}[{i}]")))
        }
        Value::Object(map) => {
            map.iter().try_for_each(|(k, item)| check_templates(item, &format!("{at}.{k}")))
        }
        _ => Ok(()),
    }
}

/// The definition without its `secret`, as it is stored and shown.
pub fn without_secret(value: &Value) -> Value {
    let mut v = value.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("secret");
    }
    v
}
