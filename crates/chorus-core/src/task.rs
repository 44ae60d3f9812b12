//! Tasks: work a rule hands to an agent (`create_task`), tracked until the
//! agent completes or fails it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{AgentName, EventId, HookId};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting for the agent.
    Open,
    /// Completed, with a result.
    Done,
    /// The agent could not do it.
    Failed,
    /// Withdrawn.
    Cancelled,
}

impl TaskStatus {
    /// Every state.
    pub const ALL: [TaskStatus; 4] =
        [TaskStatus::Open, TaskStatus::Done, TaskStatus::Failed, TaskStatus::Cancelled];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the task is finished (no further change).
    pub fn is_final(self) -> bool {
        self != TaskStatus::Open
    }
}

/// A task for an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Task {
    /// `task_…`.
    pub id: String,
    /// Who is to do it.
    pub agent: AgentName,
    /// One line.
    pub title: String,
    /// The rendered template, whole.
    pub body: String,
    /// Link to the thing it is about (the issue, the alert).
    pub url: Option<String>,
    /// The hook whose event created it.
    pub hook_id: Option<HookId>,
    /// That event.
    pub event_id: Option<EventId>,
    /// The rule that created it.
    pub rule_id: Option<String>,
    /// State.
    pub status: TaskStatus,
    /// What the agent reported when it finished.
    pub result: Option<String>,
    /// Whether the result is commented back on the source when finished.
    pub reply: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Filters for listing tasks.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// Only this agent's.
    pub agent: Option<AgentName>,
    /// Only in this state.
    pub status: Option<TaskStatus>,
    /// Page size.
    pub limit: usize,
    /// From a previous page.
    pub cursor: Option<String>,
}

/// Where a question is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum QuestionStatus {
    /// Waiting for an answer.
    Pending,
    /// Answered; the answer went back to the source.
    Answered,
}

impl QuestionStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionStatus::Pending => "pending",
            QuestionStatus::Answered => "answered",
        }
    }

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [QuestionStatus::Pending, QuestionStatus::Answered].into_iter().find(|x| x.as_str() == s)
    }
}

/// A question about an event: put to an agent by an `ask` rule, or to the
/// source's people through `POST /api/webhooks/{id}/ask`; its answer goes
/// back to the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Question {
    /// `q_…`.
    pub id: String,
    /// The hook whose event it is about.
    pub hook_id: HookId,
    /// That event.
    pub event_id: EventId,
    /// The agent it concerns.
    pub agent: AgentName,
    /// The question.
    pub question: String,
    /// State.
    pub status: QuestionStatus,
    /// The answer, once given.
    pub answer: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it was answered.
    pub answered_at: Option<Timestamp>,
}
