//! Routing rules of an incoming hook (seed 001's "command mappings"): which
//! event types trigger which action, for which agent, with which template.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{AgentName, HookId};

/// What a matching rule does with the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Post the formatted (or templated) message to the agent's channel.
    Notify,
    /// Hand the agent a task built from the template.
    CreateTask,
    /// Post a comment back to the source (an issue, a merge request).
    Comment,
    /// Ask the agent, interactively, for clarification.
    Ask,
    /// Answer the sender at once.
    Respond,
    /// Pass the event on to another URL.
    Forward,
}

impl Action {
    /// Every action, in documentation order.
    pub const ALL: [Action; 6] =
        [Action::Notify, Action::CreateTask, Action::Comment, Action::Ask, Action::Respond, Action::Forward];

    /// The name used in JSON, config files and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Notify => "notify",
            Action::CreateTask => "create_task",
            Action::Comment => "comment",
            Action::Ask => "ask",
            Action::Respond => "respond",
            Action::Forward => "forward",
        }
    }

    /// The action named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One routing rule of an incoming hook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// `cmd_…`, stable across updates.
    pub id: String,
    /// The hook the rule belongs to.
    pub hook_id: HookId,
    /// Event type or pattern: `issues.opened`, `issues` (any action), `*`.
    pub trigger: String,
    /// What to do.
    pub action: Action,
    /// The agent to involve; the hook's own agent when absent.
    pub agent: Option<AgentName>,
    /// Message template (minijinja over the payload).
    pub template: Option<String>,
    /// Payload conditions, all of which must hold (`{"labels": ["bug"]}`).
    pub conditions: Map<String, Value>,
    /// Destination of a `forward`.
    pub url: Option<String>,
    /// Higher runs first; ties keep creation order.
    pub priority: i32,
    /// When this rule fires, rules after it are not evaluated.
    pub stop: bool,
    /// `create_task` only: when the task is finished, its result is posted
    /// back on the source as a comment.
    pub reply: bool,
    /// `forward` only: how the forwarded request is signed.
    pub signature: crate::SignatureScheme,
    /// Creation time.
    pub created_at: Timestamp,
}

impl RuleResult {
    /// The name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleResult::Fired => "fired",
            RuleResult::Skipped => "skipped",
            RuleResult::Failed => "failed",
        }
    }
}

/// What came of one rule for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RuleResult {
    /// Trigger and conditions held; the action was prepared.
    Fired,
    /// The trigger matched; a condition did not hold.
    Skipped,
    /// The conditions could not be evaluated, or the action could not be
    /// prepared (the note says why).
    Failed,
}

/// What one rule did with one event, as the event log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RuleOutcome {
    /// The rule (`cmd_…`).
    pub rule_id: String,
    /// Its action.
    pub action: Action,
    /// What came of it.
    pub result: RuleResult,
    /// The delivery the action became, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// The task it created (`create_task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The question it asked (`ask`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_id: Option<String>,
    /// Why it was skipped or failed, or what went wrong with its template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Rule {
    /// Whether `event_type` fires this rule. A trigger matches the type
    /// exactly, or its part before the action (`issues` fires on
    /// `issues.opened`), and `*` matches everything.
    pub fn fires_on(&self, event_type: &str) -> bool {
        crate::event_matches(&self.trigger, event_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_by_name() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), Value::String(a.as_str().into()));
        }
        assert_eq!(Action::parse("delete_everything"), None);
    }

    #[test]
    fn triggers_match_type_or_family() {
        let mut c = Rule {
            id: "cmd_1".into(),
            hook_id: HookId::generate(),
            trigger: "issues".into(),
            action: Action::Notify,
            agent: None,
            template: None,
            conditions: Map::new(),
            url: None,
            priority: 0,
            stop: false,
            reply: false,
            signature: crate::SignatureScheme::Chorus,
            created_at: Timestamp::UNIX_EPOCH,
        };
        assert!(c.fires_on("issues.opened"));
        assert!(c.fires_on("issues"));
        assert!(!c.fires_on("issues_comment.created"));
        c.trigger = "*".into();
        assert!(c.fires_on("push"));
    }
}
