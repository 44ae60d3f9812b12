#![doc = include_str!("../README.md")]

mod access;
mod clock;
mod ids;
mod message;
mod model;
mod outgoing;
mod rule;
mod secret;
mod sink;
mod store;
mod task;
mod workflow;

pub use access::{ApiToken, AuditEntry, NewApiToken, TokenScope};
pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{
    AgentName, ApprovalId, DeliveryId, EventId, HookId, IdError, RunId, ordered_token, random_token,
};
pub use message::{Button, ButtonStyle, Field, Message};
pub use model::{
    Agent, AgentPatch, Attempt, BreakerStep, BreakerTrip, Delivery, DeliveryCounts, DeliveryStatus, Event,
    EventStatus, GenericScheme, HookPatch, IncomingHook, NewAgent, NewAttempt, NewDelivery, NewEvent,
    ReplyConfig, RetryPolicy, RetryStrategy, SignatureEncoding, Source, SubjectMessage, Target,
    UnknownSource, event_matches, glob_matches,
};
pub use outgoing::{
    EVENT_CATALOGUE, HookStats, HourStats, HttpMethod, HttpSpec, NewOutgoingEvent, OutgoingAuth,
    OutgoingHook, OutgoingPatch, SignatureScheme, is_known_event, is_valid_pattern, pattern_matches,
};
pub use rule::{Action, Rule, RuleOutcome, RuleResult};
pub use secret::Secret;
pub use sink::{SendError, SendOutcome, Sink, TargetKind};
pub use store::{
    Change, ClaimedDelivery, CommitRecorder, CommitStats, DeliveryQuery, DeliveryStore, EventQuery,
    IdempotentResponse, IngestOutcome, IngressStore, ManagementStore, OutgoingStore, Page, RateDecision,
    RoutedEvent, RoutingStore, Store, StoreCounts, StoreError, SubjectUpdate, WatchGuard, WindowSlot,
};
pub use task::{Question, QuestionStatus, Task, TaskQuery, TaskStatus};
pub use workflow::{
    Approval, ApprovalStatus, Effects, NewRun, Run, RunQuery, RunStatus, SecretChange, StepCommit,
    StepRecord, StepStatus, StoredWorkflow, WorkflowStore,
};
