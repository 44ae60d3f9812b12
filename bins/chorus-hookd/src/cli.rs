//! The client subcommands: each one is a call to the management API of a
//! running Chorus, so the CLI checks nothing the server does not (one copy
//! of validation, one set of errors).

use clap::{Args, Subcommand, ValueEnum};

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Columns and `key: value` lines for a person.
    Table,
    /// The server's JSON, one document, for scripts.
    Json,
}

/// Where the server is and how to authenticate.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// The Chorus server.
    #[arg(long, global = true, env = "CHORUS_SERVER", default_value = "http://127.0.0.1:8080")]
    pub(crate) server: String,
    /// Bearer token; without it, `<data dir>/api-token` is read when present.
    #[arg(long, global = true, env = "CHORUS_API_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentCmd {
    /// Create an agent bound to a Discord channel (or an execute-webhook URL).
    Add {
        name: String,
        /// Discord channel id (a snowflake).
        #[arg(long = "channel")]
        channel_id: Option<String>,
        /// A Discord webhook URL to post through instead of a bot.
        #[arg(long)]
        discord_webhook_url: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// All agents.
    List,
    /// One agent.
    Info { name: String },
    /// Change an agent.
    Update {
        name: String,
        /// New channel id.
        #[arg(long = "channel")]
        channel_id: Option<String>,
        /// New Discord webhook URL; an empty value removes it.
        #[arg(long)]
        discord_webhook_url: Option<String>,
    },
    /// Delete an agent and its hooks.
    Remove { name: String },
    /// Enable an agent.
    Enable { name: String },
    /// Disable an agent: its hooks answer 503 until it is enabled.
    Disable { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HookType {
    Incoming,
    Outgoing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthType {
    None,
    Basic,
    Bearer,
    #[value(name = "api_key")]
    ApiKey,
}

/// Fields shared by `create` and `update`; names follow the API's JSON.
#[derive(Debug, Args)]
pub(crate) struct HookFields {
    /// Display name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Events: incoming, event types to keep; outgoing, names and `prefix.*`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) events: Option<Vec<String>>,
    /// Requests a minute (incoming) or sends a minute (outgoing).
    #[arg(long)]
    pub(crate) rate_limit_per_minute: Option<u32>,
    /// Incoming: CIDRs allowed to post, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) ip_allowlist: Option<Vec<String>>,
    /// Incoming: a message template (minijinja); an empty value clears it.
    #[arg(long)]
    pub(crate) template: Option<String>,
    /// Incoming: collect events and post one summary per window (1m to
    /// 24h, like `5m`); `off` posts each event again.
    #[arg(long)]
    pub(crate) aggregate: Option<String>,
    /// Incoming: `every` event, or only `changes` of CI results and alerts
    /// (a pipeline breaking or being fixed).
    #[arg(long)]
    pub(crate) notify: Option<String>,
    /// Incoming: `true` gives each pull request and incident a Discord
    /// thread for its later events; `false` posts them in the channel.
    #[arg(long)]
    pub(crate) threads: Option<bool>,
    /// Outgoing: the receiver's URL.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Outgoing: HTTP method.
    #[arg(long)]
    pub(crate) method: Option<String>,
    /// Outgoing: an extra header, `Name: value`; repeatable.
    #[arg(long = "header")]
    pub(crate) headers: Vec<String>,
    /// Outgoing: how Chorus authenticates to the receiver.
    #[arg(long, value_enum)]
    pub(crate) auth_type: Option<AuthType>,
    /// Outgoing: the credentials for `--auth-type` as JSON, e.g.
    /// `{"token":"…"}`, `{"username":"…","password":"…"}` or
    /// `{"header_name":"X-Api-Key","key":"…"}`.
    #[arg(long)]
    pub(crate) auth_credentials: Option<String>,
    /// Outgoing: per-attempt timeout in milliseconds.
    #[arg(long)]
    pub(crate) timeout_ms: Option<u64>,
    /// Outgoing: retry policy as JSON, e.g. `{"strategy":"fixed","max_attempts":5}`.
    #[arg(long)]
    pub(crate) retry: Option<String>,
    /// Outgoing: concurrent sends at most.
    #[arg(long)]
    pub(crate) max_concurrency: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCmd {
    /// Hooks of both directions.
    List {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// Only one direction.
        #[arg(long = "type", value_enum)]
        kind: Option<HookType>,
    },
    /// Create an incoming hook or an outgoing subscription; the secret is shown this once.
    Create {
        /// The agent (required for incoming; a scope for outgoing).
        #[arg(long)]
        agent: Option<String>,
        #[arg(long = "type", value_enum, default_value_t = HookType::Incoming)]
        kind: HookType,
        /// Incoming: verification and formatting (github, gitlab, standard, slack, stripe, chorus, generic, none, …).
        #[arg(long)]
        source: Option<String>,
        /// Outgoing: signature scheme, chorus or standard.
        #[arg(long)]
        signature: Option<String>,
        /// Bring your own secret instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        fields: HookFields,
    },
    /// One hook.
    Info { id: String },
    /// Change a hook (only the fields given).
    Update {
        id: String,
        /// Enable or disable.
        #[arg(long)]
        enabled: Option<bool>,
        #[command(flatten)]
        fields: HookFields,
    },
    /// Delete a hook; an incoming hook's URL then answers 404.
    Delete { id: String },
    /// Enable a hook.
    Enable { id: String },
    /// Disable a hook.
    Disable { id: String },
    /// Outgoing: hold deliveries (they accrue).
    Pause { id: String },
    /// Outgoing: send what accrued and resume.
    Resume { id: String },
    /// A new secret, shown once; the old one stays valid for the grace period.
    RotateSecret {
        id: String,
        /// Seconds the old secret keeps working (default one day; 0 for none).
        #[arg(long)]
        grace_period_seconds: Option<u64>,
    },
    /// Incoming: send a signed sample through the pipeline; outgoing: queue a sample delivery.
    Test { id: String },
    /// Incoming: the events received, newest first.
    Events {
        id: String,
        /// received, routed, filtered or unmatched.
        #[arg(long)]
        status: Option<String>,
        /// An event type (pull_request.opened) or family (pull_request).
        #[arg(long)]
        event_type: Option<String>,
        /// Only events received at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only events received before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// At most this many (1–250).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Incoming: the routing rules, highest priority first.
    Commands { id: String },
    /// Incoming: add a routing rule.
    CommandAdd {
        id: String,
        /// Event type or family that fires the rule (issues.opened, push, *).
        #[arg(long)]
        trigger: String,
        /// notify, create_task, comment, ask, respond or forward.
        #[arg(long)]
        action: Option<String>,
        /// The agent to involve (default: the hook's).
        #[arg(long)]
        agent: Option<String>,
        /// Message template.
        #[arg(long)]
        template: Option<String>,
        /// Payload conditions, a JSON object such as '{"label": "urgent"}'.
        #[arg(long)]
        conditions: Option<String>,
        /// Where a forward goes.
        #[arg(long)]
        url: Option<String>,
        /// Higher runs first (-1000 to 1000).
        #[arg(long, allow_hyphen_values = true)]
        priority: Option<i32>,
    },
    /// Incoming: remove a routing rule.
    CommandRemove {
        id: String,
        /// The rule's id (cmd_…).
        command_id: String,
    },
    /// Incoming: comment on an event's thread at its source (needs the hook's reply credentials).
    Comment {
        id: String,
        /// The event (evt_…).
        #[arg(long)]
        event: String,
        /// The comment.
        #[arg(long)]
        message: String,
    },
    /// Incoming: ask the source's people a question about an event.
    Ask {
        id: String,
        /// The event (evt_…).
        #[arg(long)]
        event: String,
        /// The question.
        #[arg(long)]
        message: String,
    },
    /// Incoming: answer an event's source (and the event's open question).
    Respond {
        id: String,
        /// The event (evt_…).
        #[arg(long)]
        event: String,
        /// The answer.
        #[arg(long)]
        message: String,
    },
    /// A hook's deliveries, newest first.
    Deliveries {
        id: String,
        /// pending, succeeded or failed.
        #[arg(long)]
        status: Option<String>,
        /// At most this many (1–250).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Delivery figures over the last hour and day.
    Stats { id: String },
    /// Emit an outgoing event to every matching subscription.
    Trigger {
        /// Event name, e.g. agent.commit or custom.deploy.
        #[arg(long)]
        event: String,
        /// Limit to subscriptions of this agent (and unscoped ones).
        #[arg(long)]
        agent: Option<String>,
        /// The event's data, JSON.
        #[arg(long, default_value = "{}")]
        data: String,
        /// Metadata, JSON.
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Send a delivery again now.
    Retry {
        /// The delivery id (dlv_…).
        delivery: String,
    },
    /// Outgoing: retry every failed delivery created since a time.
    Recover {
        id: String,
        /// RFC 3339 time, e.g. 2026-11-24T00:00:00Z.
        #[arg(long)]
        since: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scope {
    /// Everything, including managing tokens.
    Admin,
    /// Reading only.
    Read,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCmd {
    /// Make an API token; its value is shown this once.
    Create {
        /// What it is for.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        scope: Scope,
    },
    /// All tokens (never their values).
    List,
    /// Revoke a token: it is refused from now on.
    Revoke {
        /// The token's id (tok_…).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCmd {
    /// Tasks made by rules, newest first (every page).
    List {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// Only in this state: open, done, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
    },
    /// One task, whole.
    Info {
        /// The task's id (task_…).
        id: String,
    },
    /// Mark a task done (emits agent.task_complete and task.executed).
    Complete {
        /// The task's id.
        id: String,
        /// What was done.
        #[arg(long)]
        result: Option<String>,
    },
    /// Mark a task failed (emits task.failed).
    Fail {
        /// The task's id.
        id: String,
        /// Why.
        #[arg(long)]
        result: Option<String>,
    },
    /// Withdraw a task.
    Cancel {
        /// The task's id.
        id: String,
        /// Why.
        #[arg(long)]
        result: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowCmd {
    /// Workflows with their URL and state, and files that could not be applied.
    List,
    /// One workflow with its definition.
    Info {
        /// The workflow's name.
        name: String,
    },
    /// Run a workflow with a body, as a sender would (your token stands in
    /// for the signature); prints the answer the sender would get.
    Test {
        /// The workflow's name.
        name: String,
        /// The JSON body (default `{}`); `@file` reads it from a file.
        #[arg(long)]
        data: Option<String>,
    },
    /// Turn a workflow on.
    Enable {
        /// The workflow's name.
        name: String,
    },
    /// Turn a workflow off: senders get 409.
    Disable {
        /// The workflow's name.
        name: String,
    },
    /// Read <data dir>/workflows again now; prints the errors.
    Reload,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RunCmd {
    /// Runs, newest first.
    List {
        /// Only this workflow's.
        #[arg(long)]
        workflow: Option<String>,
        /// Only in this state: running, waiting, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
    },
    /// One run: each step's status, output, duration and error.
    Info {
        /// The run's id (run_…).
        id: String,
    },
    /// Approve the run's waiting gate: the step and the rest run.
    Approve {
        /// The run's id.
        id: String,
    },
    /// Deny the run's waiting gate: the run fails.
    Deny {
        /// The run's id.
        id: String,
    },
    /// Stop a run before its next step.
    Cancel {
        /// The run's id.
        id: String,
    },
}
