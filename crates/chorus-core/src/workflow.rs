//! Workflows: a named list of steps that a `POST /webhooks/{name}` runs,
//! durably, with approval gates. The definitions and the step runner live
//! in chorus-workflow; this module holds what is stored and the storage
//! trait.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    AgentName, ApprovalId, AuditEntry, HookId, NewDelivery, NewOutgoingEvent, Page, RunId, Secret,
    StoreError, Task,
};

/// A workflow definition as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredWorkflow {
    /// Stable id; the deliveries a workflow makes belong to it.
    pub id: HookId,
    /// Unique; the URL path `POST /webhooks/{name}`.
    pub name: String,
    /// A disabled workflow answers 409.
    pub enabled: bool,
    /// Where notifications and approvals go.
    pub agent: Option<AgentName>,
    /// `api`, or `file:<file name>` for one loaded from the workflows
    /// directory (which the API then refuses to change).
    pub origin: String,
    /// The definition as given (its `secret` removed), checked by
    /// chorus-workflow before it is stored.
    pub spec: serde_json::Value,
    /// Whether requests must be signed.
    pub has_secret: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A secret change with [`WorkflowStore::put_workflow`].
#[derive(Debug, Clone)]
pub enum SecretChange {
    /// Keep the stored one (or none).
    Keep,
    /// Store this one (sealed).
    Set(Secret),
    /// Remove it: the workflow takes unsigned requests (where allowed).
    Clear,
}

macro_rules! named_states {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every state.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The state named `s`, if any.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|x| x.as_str() == s)
            }
        }
    };
}

named_states!(
    /// Where a run is in its life.
    RunStatus {
        /// Steps are being run (or are due to be).
        Running = "running",
        /// Paused at an approval gate or a `wait` step.
        Waiting = "waiting",
        /// Every step ran (or was skipped, or failed with `on_failure: continue`).
        Succeeded = "succeeded",
        /// A step failed, was denied, or its approval expired.
        Failed = "failed",
        /// Stopped by a person.
        Cancelled = "cancelled",
    }
);

impl RunStatus {
    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled)
    }
}

named_states!(
    /// What became of one step.
    StepStatus {
        /// The tool ran and succeeded.
        Succeeded = "succeeded",
        /// The tool failed or timed out.
        Failed = "failed",
        /// Its `when` condition was false.
        Skipped = "skipped",
        /// Its approval was denied.
        Denied = "denied",
        /// Its approval was not given in time.
        Expired = "expired",
    }
);

named_states!(
    /// An approval gate's state.
    ApprovalStatus {
        /// Waiting for a decision.
        Pending = "pending",
        /// Approved: the step runs.
        Approved = "approved",
        /// Denied: the run fails.
        Denied = "denied",
        /// Nobody decided before it expired: the run fails.
        Expired = "expired",
    }
);

/// One step's recorded outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StepRecord {
    /// Position in the definition, from 0.
    pub index: u32,
    /// The step's name.
    pub name: String,
    /// What became of it.
    pub status: StepStatus,
    /// The tool's output (`null` when it produced none).
    pub output: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// How long it ran.
    pub duration_ms: u64,
}

/// An approval gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Approval {
    /// Its id (in the buttons' custom ids).
    pub id: ApprovalId,
    /// The run.
    pub run_id: RunId,
    /// The gated step's position.
    pub step: u32,
    /// The gated step's name.
    pub step_name: String,
    /// Its state.
    pub status: ApprovalStatus,
    /// Who decided (`discord:<user id> (<name>)`, `api`, …).
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<Timestamp>,
    /// When it expires as denied.
    pub expires_at: Timestamp,
    /// When the gate was reached.
    pub created_at: Timestamp,
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow's id.
    pub workflow_id: HookId,
    /// Its state.
    pub status: RunStatus,
    /// The definition as it was when the run started: later edits do not
    /// change a run under way.
    pub spec: serde_json::Value,
    /// The request body (JSON; a body that is not JSON is kept as a string).
    pub payload: serde_json::Value,
    /// Selected request headers.
    pub headers: Vec<(String, String)>,
    /// Accepted without a signature (development mode).
    pub unsigned: bool,
    /// Started by a test (`workflows test`), not by a sender.
    pub test: bool,
    /// Recorded steps, in order.
    pub steps: Vec<StepRecord>,
    /// Approval gates reached, in order.
    pub approvals: Vec<Approval>,
    /// Why it failed.
    pub error: Option<String>,
    /// When a waiting run is due again (an approval's expiry, a `wait`'s end).
    pub wake_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
}

/// What committing a step (or starting a run) does besides: messages,
/// outgoing events and tasks, in the same transaction, so a step's effect
/// inside Chorus happens exactly once.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Messages and requests to queue.
    pub deliveries: Vec<NewDelivery>,
    /// Outgoing events to emit.
    pub events: Vec<NewOutgoingEvent>,
    /// Tasks to create.
    pub tasks: Vec<Task>,
}

impl Effects {
    /// Add `other`'s effects to these.
    pub fn extend(&mut self, other: Effects) {
        self.deliveries.extend(other.deliveries);
        self.events.extend(other.events);
        self.tasks.extend(other.tasks);
    }
}

/// A run to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id.
    pub id: RunId,
    /// The workflow.
    pub workflow: StoredWorkflow,
    /// The request body.
    pub payload: serde_json::Value,
    /// Selected request headers.
    pub headers: Vec<(String, String)>,
    /// Accepted without a signature.
    pub unsigned: bool,
    /// Started by a test.
    pub test: bool,
    /// Arrival time.
    pub created_at: Timestamp,
}

/// The outcome of one step of a run, committed in one transaction with
/// the run's new state and the step's effects.
#[derive(Debug, Clone)]
pub struct StepCommit {
    /// The run.
    pub run_id: RunId,
    /// The step's record, when it is finished.
    pub step: Option<StepRecord>,
    /// The run's state after it.
    pub status: RunStatus,
    /// For `Waiting`: when the run is due again.
    pub wake_at: Option<Timestamp>,
    /// For a failed run: why.
    pub error: Option<String>,
    /// A gate just reached.
    pub approval: Option<Approval>,
    /// A gate that expired undecided.
    pub expired: Option<ApprovalId>,
    /// What the step did inside Chorus.
    pub effects: Effects,
    /// The time.
    pub now: Timestamp,
    /// For `Running`: the runner's lease, renewed.
    pub lease_until: Option<Timestamp>,
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    /// Only this workflow's runs.
    pub workflow: Option<String>,
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// Page size.
    pub limit: usize,
    /// From a previous page.
    pub cursor: Option<String>,
}

/// Storage for workflows, their runs and approval gates. Kept apart from
/// [`crate::Store`]: the step runner and the workflow endpoint need only
/// this.
#[async_trait]
pub trait WorkflowStore: Send + Sync + 'static {
    /// All workflows, by name.
    async fn workflows(&self) -> Result<Vec<StoredWorkflow>, StoreError>;
    /// One workflow.
    async fn workflow(&self, name: &str) -> Result<Option<StoredWorkflow>, StoreError>;
    /// One workflow with its secret, unsealed.
    async fn workflow_secret(
        &self,
        name: &str,
    ) -> Result<Option<(StoredWorkflow, Option<Secret>)>, StoreError>;
    /// Create a workflow, or replace the one with the same name (keeping
    /// its id and creation time), putting `audit` on record in the same
    /// transaction.
    async fn put_workflow(
        &self,
        workflow: StoredWorkflow,
        secret: SecretChange,
        audit: Option<AuditEntry>,
    ) -> Result<StoredWorkflow, StoreError>;
    /// Delete a workflow; its runs stay for the record. `NotFound` if unknown.
    async fn delete_workflow(&self, name: &str, audit: Option<AuditEntry>) -> Result<(), StoreError>;

    /// Commit a new run, due at once, with what starting it does.
    async fn start_run(&self, run: NewRun, effects: Effects) -> Result<(), StoreError>;
    /// Runs due now (running, or waiting past `wake_at`), oldest first,
    /// leased for `lease` so that a crashed runner's runs are picked up again.
    async fn claim_runs(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<Run>, StoreError>;
    /// Record a step. `Conflict` when the run is no longer running or
    /// waiting (it was cancelled meanwhile): nothing is written.
    async fn commit_step(&self, commit: StepCommit) -> Result<(), StoreError>;
    /// One run, with its steps and approvals.
    async fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError>;
    /// Runs, newest first.
    async fn runs(&self, query: RunQuery) -> Result<Page<Run>, StoreError>;
    /// One approval gate.
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError>;
    /// Decide a pending gate, with what telling of it does; its run becomes
    /// due at once. `Conflict` if it was decided or expired already.
    async fn decide(
        &self,
        id: &ApprovalId,
        approve: bool,
        by: &str,
        now: Timestamp,
        effects: Effects,
        audit: Option<AuditEntry>,
    ) -> Result<Approval, StoreError>;
    /// Stop a run that is not over, with what stopping it does. `Conflict`
    /// if it is over.
    async fn cancel_run(
        &self,
        id: &RunId,
        now: Timestamp,
        effects: Effects,
        audit: Option<AuditEntry>,
    ) -> Result<Run, StoreError>;
    /// When the next waiting run is due, so the runner sleeps until then.
    async fn next_wake(&self) -> Result<Option<Timestamp>, StoreError>;
}
