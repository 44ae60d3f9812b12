#![doc = include_str!("../README.md")]

mod builtin;
mod def;
mod runner;
mod template;
mod tool;

pub use builtin::{BuiltinEnv, OUTPUT_CAP, register_builtins};
pub use def::{
    APPROVAL_TIMEOUT_DEFAULT, DefinitionError, OnFailure, STEP_TIMEOUT_DEFAULT, STEP_TIMEOUT_MAX, STEPS_MAX,
    Step, StepDefinition, VERIFY_SCHEMES, WAIT_MAX, Workflow, WorkflowDefinition, parse_duration, valid_name,
    without_secret,
};
pub use runner::{
    APPROVE_PREFIX, DENY_PREFIX, RunSummary, Runner, RunnerConfig, context, idempotency_key, parse_button,
    started_event,
};
pub use template::{Expr, Template, render};
pub use tool::{ArgError, Output, Tool, ToolCall, ToolError, Tools, WAIT};
