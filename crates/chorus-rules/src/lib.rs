#![doc = include_str!("../README.md")]

mod condition;
mod derive;
mod expr;
mod outcome;
pub mod trigger;

pub use condition::{Conditions, Miss};
pub use derive::{SubjectState, advance, derive, subject};
pub use outcome::{Change, Outcome, outcome_of};

use chorus_core::{Rule, Source};
use serde_json::{Map, Value};

/// A rule part that cannot be used, with the field it is in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// The field, as a dotted path within the rule (`conditions.label`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Check the parts of a rule for a hook of `source`: its trigger can match
/// what the source sends, its conditions and template compile.
pub fn check(rule: &Rule, source: Source) -> Result<(), RuleError> {
    trigger::check(&rule.trigger, source)?;
    Conditions::parse(&rule.conditions)?;
    if let Some(t) = &rule.template {
        check_template(t)?;
    }
    Ok(())
}

/// Check a template compiles; the error names the line and column.
pub fn check_template(template: &str) -> Result<(), RuleError> {
    match chorus_format::validate_template(template) {
        Ok(()) => Ok(()),
        Err(chorus_format::TemplateError::Render(e)) => {
            Err(RuleError::new("template", expr::describe(&e, template)))
        }
        Err(e) => Err(RuleError::new("template", e.to_string())),
    }
}

/// What conditions, expressions and templates see: the payload's top-level
/// keys, the derived variables over them, `payload` (the whole body) and
/// `event` (the event type).
pub fn context(source: Source, event_type: &str, payload: &Value, state: &SubjectState) -> Value {
    let mut body = payload.clone();
    if source == Source::Jira {
        derive::lift_jira_fields(&mut body);
    }
    let mut ctx = match &body {
        Value::Object(top) => top.clone(),
        _ => Map::new(),
    };
    for (k, v) in derive(source, payload, state) {
        ctx.insert(k, v);
    }
    ctx.insert("payload".into(), body);
    ctx.entry("event").or_insert_with(|| Value::String(event_type.to_owned()));
    ctx.insert("event_type".into(), Value::String(event_type.to_owned()));
    Value::Object(ctx)
}

/// The verdict on one rule for one event.
#[derive(Debug, Clone)]
pub enum Verdict<'r> {
    /// Trigger and conditions hold: the action fires.
    Fired(&'r Rule),
    /// The trigger matched but the conditions did not hold, or could not be
    /// evaluated (the reason says which).
    Skipped(&'r Rule, Miss),
}

/// Evaluate `rules` (highest priority first) for an event: every rule whose
/// trigger matches `event_type` and whose conditions hold fires, until one
/// that fires says `stop`. Rules whose trigger does not match are left out.
pub fn evaluate<'r>(rules: &'r [Rule], event_type: &str, ctx: &Value) -> Vec<Verdict<'r>> {
    let mut out = Vec::new();
    for rule in rules.iter().filter(|r| trigger::matches(&r.trigger, event_type)) {
        let verdict = match Conditions::parse(&rule.conditions) {
            Ok(c) => c.check(ctx),
            // Stored rules were checked when written; a rule that no longer
            // compiles (an older version's grammar) does not fire.
            Err(e) => Err(Miss::Failed(e.to_string())),
        };
        match verdict {
            Ok(()) => {
                out.push(Verdict::Fired(rule));
                if rule.stop {
                    break;
                }
            }
            Err(miss) => out.push(Verdict::Skipped(rule, miss)),
        }
    }
    out
}

/// Render a rule's template against the event's context.
pub fn render(template: &str, ctx: &Value) -> Result<String, RuleError> {
    chorus_format::render_context(template, ctx).map_err(|e| match e {
        chorus_format::TemplateError::Render(e) => RuleError::new("template", expr::describe(&e, template)),
        other => RuleError::new("template", other.to_string()),
    })
}
