//! Managing hooks from Discord: the `/agent …` application commands and the
//! `!hook …` text commands of seed 002. Parsing, permissions and replies live
//! here; every change goes through a [`HookService`], which the server
//! implements over the same service layer as its REST API, so Discord gets
//! the API's checks and error messages.

use std::fmt::Write as _;

use async_trait::async_trait;
use serde_json::{Value, json};
use twilight_model::{
    application::command::{Command, CommandType},
    channel::message::{AllowedMentions, MessageFlags},
    guild::Permissions,
    http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType},
};
use twilight_util::builder::command::{
    ChannelBuilder, CommandBuilder, StringBuilder, SubCommandBuilder, SubCommandGroupBuilder,
};

/// Interaction response flag: only the invoking user sees the reply.
pub const EPHEMERAL: u64 = 1 << 6;

/// Who is asking, and whether they may change hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoker {
    /// Discord user id.
    pub user_id: String,
    /// Display name, for the audit log.
    pub user_name: String,
    /// The channel the command came from.
    pub channel_id: Option<String>,
    /// Whether they hold Manage Webhooks (or Administrator, or the
    /// configured manager role).
    pub can_manage: bool,
}

impl Invoker {
    /// From an interaction payload: permissions come with `member` in a
    /// guild; in a DM nobody may manage.
    pub fn from_interaction(interaction: &Value, manager_role: Option<&str>) -> Self {
        let member = &interaction["member"];
        let user = if member["user"].is_object() { &member["user"] } else { &interaction["user"] };
        let permissions = member["permissions"]
            .as_str()
            .and_then(|p| p.parse::<u64>().ok())
            .map_or(Permissions::empty(), Permissions::from_bits_truncate);
        let has_role = manager_role
            .is_some_and(|role| member["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == role)));
        Self {
            user_id: user["id"].as_str().unwrap_or_default().to_owned(),
            user_name: user["username"].as_str().unwrap_or("unknown").to_owned(),
            channel_id: interaction["channel_id"]
                .as_str()
                .or_else(|| interaction["channel"]["id"].as_str())
                .map(str::to_owned),
            can_manage: has_role || may_manage(permissions),
        }
    }
}

/// Manage Webhooks or Administrator.
pub fn may_manage(permissions: Permissions) -> bool {
    permissions.intersects(Permissions::MANAGE_WEBHOOKS | Permissions::ADMINISTRATOR)
}

/// Direction of a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// A URL senders post to.
    Incoming,
    /// A subscription Chorus delivers to.
    Outgoing,
}

impl HookKind {
    fn as_str(self) -> &'static str {
        match self {
            HookKind::Incoming => "incoming",
            HookKind::Outgoing => "outgoing",
        }
    }
}

/// A hook to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHook {
    /// Direction.
    pub kind: HookKind,
    /// Incoming: verification scheme and formatter (`github`, …).
    pub source: Option<String>,
    /// Outgoing: where deliveries go.
    pub url: Option<String>,
    /// Name shown in lists.
    pub name: Option<String>,
    /// Incoming: event filter; outgoing: subscribed events.
    pub events: Vec<String>,
}

/// A hook just created: the one moment its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// `hk_…`.
    pub id: String,
    /// Incoming: the URL to give the sender; outgoing: the destination.
    pub url: String,
    /// The secret, when the hook has one.
    pub secret: Option<String>,
}

/// A hook as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// `hk_…`.
    pub id: String,
    /// Direction.
    pub kind: HookKind,
    /// Name.
    pub name: String,
    /// Incoming: the source; outgoing: the destination URL.
    pub target: String,
    /// Whether it is on.
    pub enabled: bool,
}

/// Which incoming hook of an agent a rule goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookRef {
    /// By id (`hk_…`, or its `webhook_id`).
    Id(String),
    /// The agent's first incoming hook of this source (`!hook github …`).
    Source(String),
}

/// The name `!hook ci on` gives its unsigned hook; `!hook ci …` finds it by it.
pub const CI_HOOK_NAME: &str = "CI/CD";
/// The name `!hook dockerhub on` gives its unsigned hook.
pub const DOCKERHUB_HOOK_NAME: &str = "Docker Hub";

/// How a hook posts, as `!hook <source> notify|threads …` changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posting {
    /// `notify changes` (`true`) or `notify every` (`false`).
    NotifyChanges(bool),
    /// `threads on` or `threads off`.
    Threads(bool),
}

/// A rule to add, as a Discord command describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRule {
    /// Event type, family or glob.
    pub trigger: String,
    /// `notify`, `create_task`, …
    pub action: String,
    /// Message template.
    pub template: Option<String>,
    /// Conditions, in the map form of the API.
    pub conditions: serde_json::Map<String, Value>,
}

/// A rule as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    /// `cmd_…`.
    pub id: String,
    /// Trigger.
    pub trigger: String,
    /// Action.
    pub action: String,
    /// Conditions, as JSON text.
    pub conditions: String,
}

/// A refusal, in words fit for the user (the API's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError(pub String);

impl<T: std::fmt::Display> From<T> for ServiceError {
    fn from(e: T) -> Self {
        Self(e.to_string())
    }
}

/// What Discord commands may do, implemented by the server over the service
/// layer its REST API uses. Hooks are addressed within an agent: a hook of
/// another agent is "not found".
#[async_trait]
pub trait HookService: Send + Sync {
    /// Create an agent bound to a channel.
    async fn create_agent(&self, by: &Invoker, name: &str, channel_id: &str) -> Result<(), ServiceError>;
    /// The agent bound to a channel, if any.
    async fn channel_agent(&self, channel_id: &str) -> Result<Option<String>, ServiceError>;
    /// Create a hook for an agent.
    async fn add_hook(&self, by: &Invoker, agent: &str, hook: NewHook) -> Result<Created, ServiceError>;
    /// An agent's hooks.
    async fn list_hooks(&self, agent: &str) -> Result<Vec<Listed>, ServiceError>;
    /// Delete a hook.
    async fn remove_hook(&self, by: &Invoker, agent: &str, id: &str) -> Result<(), ServiceError>;
    /// Send a test through a hook; answers what happened.
    async fn test_hook(&self, by: &Invoker, agent: &str, id: &str) -> Result<String, ServiceError>;
    /// Set (or with `None` clear) an incoming hook's message template.
    async fn set_template(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        template: Option<String>,
    ) -> Result<(), ServiceError>;
    /// Set an incoming hook's event filter (empty: everything).
    async fn set_events(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        events: Vec<String>,
    ) -> Result<(), ServiceError>;
    /// Turn a hook on or off.
    async fn set_enabled(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        enabled: bool,
    ) -> Result<(), ServiceError>;
    /// Add a rule to one of the agent's incoming hooks; answers the rule's
    /// id and the hook's id.
    async fn add_rule(
        &self,
        by: &Invoker,
        agent: &str,
        hook: HookRef,
        rule: NewRule,
    ) -> Result<(String, String), ServiceError>;
    /// A hook's rules, in the order they are evaluated.
    async fn list_rules(&self, agent: &str, id: &str) -> Result<Vec<ListedRule>, ServiceError>;
    /// Answer an open question (`q_…`): the answer goes back to the source
    /// of the event it is about. Answers where it went.
    async fn answer_question(
        &self,
        by: &Invoker,
        question_id: &str,
        text: &str,
    ) -> Result<String, ServiceError>;
    /// Remove a rule.
    async fn remove_rule(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        rule_id: &str,
    ) -> Result<(), ServiceError>;
    /// Set (or with `None` end) the aggregation window of one of the
    /// agent's incoming hooks; answers the hook's id.
    async fn set_aggregate(
        &self,
        by: &Invoker,
        agent: &str,
        hook: HookRef,
        window: Option<String>,
    ) -> Result<String, ServiceError>;
    /// Change how one of the agent's incoming hooks posts (`notify`,
    /// `threads`); answers the hook's id.
    async fn set_posting(
        &self,
        by: &Invoker,
        agent: &str,
        hook: HookRef,
        posting: Posting,
    ) -> Result<String, ServiceError>;
    /// The workflows (`POST /webhooks/{name}`), by name.
    async fn list_workflows(&self) -> Result<Vec<ListedWorkflow>, ServiceError>;
    /// Run a workflow with a test body through the whole pipeline; answers
    /// the status and body a sender would get.
    async fn test_workflow(&self, by: &Invoker, name: &str) -> Result<(u16, String), ServiceError>;
    /// Read the workflow files again; answers how many workflows there are
    /// and the files that could not be applied.
    async fn reload_workflows(&self, by: &Invoker) -> Result<(usize, Vec<String>), ServiceError>;
}

/// A workflow as `/webhook list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedWorkflow {
    /// Its name (the URL path).
    pub name: String,
    /// Where senders post.
    pub url: String,
    /// Whether it runs.
    pub enabled: bool,
}

/// An answer. Through interactions, `content` is the reply (ephemeral when
/// `ephemeral`); as a text command, `content` goes to the channel and `dm`,
/// which may hold a secret, to the user alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply text.
    pub content: String,
    /// Only the invoker sees it.
    pub ephemeral: bool,
    /// Text commands: what goes to the user by direct message.
    pub dm: Option<String>,
}

impl Reply {
    fn error(message: impl Into<String>) -> Self {
        Self { content: format!("❌ {}", message.into()), ephemeral: true, dm: None }
    }

    fn done(message: impl Into<String>) -> Self {
        Self { content: message.into(), ephemeral: true, dm: None }
    }

    /// The interaction callback (a message, ephemeral when asked), with
    /// mentions disabled: replies quote user input.
    pub fn to_response(&self) -> InteractionResponse {
        InteractionResponse {
            kind: InteractionResponseType::ChannelMessageWithSource,
            data: Some(InteractionResponseData {
                content: Some(self.content.clone()),
                flags: self.ephemeral.then_some(MessageFlags::EPHEMERAL),
                allowed_mentions: Some(AllowedMentions::default()),
                ..InteractionResponseData::default()
            }),
        }
    }

    /// [`Self::to_response`] as the JSON body of an HTTP interaction answer.
    pub fn interaction_response(&self) -> Value {
        serde_json::to_value(self.to_response())
            .unwrap_or_else(|_| json!({"type": 4, "data": {"content": self.content}}))
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq)]
enum Cmd {
    CreateAgent {
        name: String,
        channel: Option<String>,
    },
    /// `rule`: added to the new hook with it (`!hook docker on --containers`).
    Add {
        agent: Option<String>,
        hook: NewHook,
        guide: Guide,
        rule: Option<NewRule>,
    },
    List {
        agent: Option<String>,
    },
    Remove {
        agent: Option<String>,
        id: String,
    },
    Test {
        agent: Option<String>,
        id: String,
    },
    Format {
        agent: Option<String>,
        id: String,
        template: Option<String>,
    },
    Filter {
        agent: Option<String>,
        id: String,
        events: Vec<String>,
    },
    Enable {
        agent: Option<String>,
        id: String,
        on: bool,
    },
    RuleAdd {
        agent: Option<String>,
        hook: HookRef,
        rule: NewRule,
    },
    RuleList {
        agent: Option<String>,
        id: String,
    },
    RuleRemove {
        agent: Option<String>,
        id: String,
        rule_id: String,
    },
    Aggregate {
        hook: HookRef,
        window: Option<String>,
    },
    Posting {
        hook: HookRef,
        posting: Posting,
    },
    WorkflowList,
    WorkflowTest {
        name: String,
    },
    WorkflowReload,
    Help,
}

/// Which setup instructions follow a create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guide {
    Github,
    Ci,
    Docker,
    DockerHub,
    Plain,
}

/// The application commands Chorus registers.
pub fn definitions() -> Vec<Command> {
    let name = || StringBuilder::new("name", "The agent's name").required(true).max_length(64);
    let hook_id = || StringBuilder::new("hook_id", "The hook's id (hk_…)").required(true).max_length(64);
    let sub = |n: &str, d: &str| SubCommandBuilder::new(n, d).option(name()).option(hook_id());
    let webhook = SubCommandGroupBuilder::new("webhook", "An agent's webhooks").subcommands([
        SubCommandBuilder::new("add", "Create a webhook for an agent")
            .option(name())
            .option(
                StringBuilder::new("type", "incoming (a URL to post to) or outgoing (Chorus posts to a URL)")
                    .required(true)
                    .choices([("incoming", "incoming"), ("outgoing", "outgoing")]),
            )
            .option(StringBuilder::new("url", "Outgoing: where Chorus posts").max_length(2000))
            .option(
                StringBuilder::new(
                    "source",
                    "Incoming: who sends (github, gitlab, standard, slack, stripe, generic, chorus)",
                )
                .max_length(20),
            ),
        SubCommandBuilder::new("list", "An agent's webhooks").option(name()),
        sub("remove", "Delete a webhook"),
        sub("test", "Send a test through a webhook"),
        sub("format", "Set a webhook's message template").option(
            StringBuilder::new(
                "template",
                "A template such as {{ repository.full_name }}: {{ action }}; empty clears it",
            )
            .max_length(2000),
        ),
        sub("filter", "Choose the events a webhook passes on").option(
            StringBuilder::new(
                "events",
                "Comma-separated event types (push, pull_request); empty passes all",
            )
            .max_length(1000),
        ),
        sub("enable", "Turn a webhook on"),
        sub("disable", "Turn a webhook off"),
        sub("rule-add", "Add a rule: what an event makes happen")
            .option(
                StringBuilder::new(
                    "trigger",
                    "Event type, family or glob: issues.opened, push, pull_request.*, *",
                )
                .required(true)
                .max_length(100),
            )
            .option(StringBuilder::new("action", "What it does (default notify)").choices([
                ("notify", "notify"),
                ("create_task", "create_task"),
                ("comment", "comment"),
                ("ask", "ask"),
                ("respond", "respond"),
            ]))
            .option(
                StringBuilder::new("template", "Message template, e.g. {{author}} pushed to {{branch}}")
                    .max_length(2000),
            )
            .option(
                StringBuilder::new("if", "An expression that must hold, e.g. pr.reviews >= 2")
                    .max_length(1000),
            )
            .option(
                StringBuilder::new(
                    "conditions",
                    "Conditions as key=value, e.g. branch=main author=!dependabot*",
                )
                .max_length(1000),
            ),
        sub("rule-list", "A webhook's rules"),
        sub("rule-remove", "Remove a rule")
            .option(StringBuilder::new("rule_id", "The rule's id (cmd_…)").required(true).max_length(64)),
    ]);
    let create = SubCommandBuilder::new("create", "Create an agent bound to a channel")
        .option(name())
        .option(ChannelBuilder::new("channel", "Where its messages go (default: this channel)"));
    let workflow_name = StringBuilder::new("name", "The workflow's name (POST /webhooks/<name>)")
        .required(true)
        .max_length(64);
    vec![
        CommandBuilder::new("agent", "Agents and their webhooks", CommandType::ChatInput)
            .option(create)
            .option(webhook)
            .build(),
        CommandBuilder::new("webhook", "Webhook-triggered workflows", CommandType::ChatInput)
            .option(SubCommandBuilder::new("list", "Workflows with their URLs"))
            .option(SubCommandBuilder::new("test", "Send a test POST to a workflow").option(workflow_name))
            .build(),
        CommandBuilder::new("workflow", "Workflows", CommandType::ChatInput)
            .option(SubCommandBuilder::new("reload", "Read the workflow files again"))
            .build(),
    ]
}

fn option<'a>(options: &'a Value, name: &str) -> Option<&'a Value> {
    options.as_array()?.iter().find(|o| o["name"] == name).map(|o| &o["value"])
}

fn string_option(options: &Value, name: &str) -> Option<String> {
    option(options, name).and_then(|v| match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn required(options: &Value, name: &str) -> Result<String, String> {
    string_option(options, name).filter(|s| !s.is_empty()).ok_or_else(|| format!("missing option `{name}`"))
}

fn event_list(text: &str) -> Vec<String> {
    text.split([',', ' ']).map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect()
}

/// `!hook github alert-if "<expression>"`: `rest` is the text after `!hook`.
fn alert_if(rest: &str) -> Result<Cmd, String> {
    let expr = rest.trim_start()["github".len()..].trim_start()["alert-if".len()..].trim();
    let expr = expr.trim_matches(|c| c == '"' || c == '“' || c == '”').trim();
    if expr.is_empty() {
        return Err("usage: `!hook github alert-if \"<expression>\"`".into());
    }
    let mut conditions = serde_json::Map::new();
    conditions.insert("if".into(), Value::String(expr.to_owned()));
    Ok(Cmd::RuleAdd {
        agent: None,
        hook: HookRef::Source("github".into()),
        rule: NewRule { trigger: "*".into(), action: "notify".into(), template: None, conditions },
    })
}

/// `!hook docker on [--containers web,db] [--events die,oom]`: a hook the
/// engine watcher feeds; `--events` narrows the container actions (`die`
/// stands for `container.die`), `--containers` adds a rule on the names.
fn docker_on(flags: &[&str]) -> Result<Cmd, String> {
    const USAGE: &str =
        "usage: `!hook docker on [--containers web,db] [--events start,die,oom,health_status]`";
    let mut hook = NewHook {
        kind: HookKind::Incoming,
        source: Some("docker".into()),
        url: None,
        name: Some("Docker".into()),
        events: Vec::new(),
    };
    let mut rule = None;
    let mut rest = flags.iter();
    while let Some(flag) = rest.next() {
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, v.to_owned()),
            None => (*flag, (*rest.next().ok_or(USAGE)?).to_owned()),
        };
        let list = event_list(&value);
        if list.is_empty() {
            return Err(USAGE.into());
        }
        match name {
            "--events" => {
                hook.events = list
                    .into_iter()
                    .map(|e| if e.contains('.') { e } else { format!("container.{e}") })
                    .collect();
            }
            "--containers" => {
                let mut conditions = serde_json::Map::new();
                conditions.insert("container".into(), Value::from(list));
                rule = Some(NewRule {
                    trigger: "*".into(),
                    action: "notify".into(),
                    template: None,
                    conditions,
                });
            }
            _ => return Err(USAGE.into()),
        }
    }
    Ok(Cmd::Add { agent: None, hook, guide: Guide::Docker, rule })
}

/// `/agent …` from an interaction's `data`.
fn parse_interaction(data: &Value) -> Result<Cmd, String> {
    let sub = &data["options"][0];
    match (data["name"].as_str(), sub["name"].as_str()) {
        (Some("agent"), _) => {}
        (Some("webhook"), Some("list")) => return Ok(Cmd::WorkflowList),
        (Some("webhook"), Some("test")) => {
            return Ok(Cmd::WorkflowTest { name: required(&sub["options"], "name")? });
        }
        (Some("workflow"), Some("reload")) => return Ok(Cmd::WorkflowReload),
        (Some(name @ ("webhook" | "workflow")), other) => {
            return Err(format!("unknown subcommand `/{name} {}`", other.unwrap_or_default()));
        }
        (other, _) => return Err(format!("unknown command `/{}`", other.unwrap_or_default())),
    }
    let first = &data["options"][0];
    match (first["name"].as_str(), first["type"].as_u64()) {
        (Some("create"), _) => {
            let o = &first["options"];
            Ok(Cmd::CreateAgent { name: required(o, "name")?, channel: string_option(o, "channel") })
        }
        (Some("webhook"), _) => {
            let sub = &first["options"][0];
            let o = &sub["options"];
            let sub_name = sub["name"].as_str().unwrap_or_default();
            let agent = || required(o, "name").map(Some);
            let id = || required(o, "hook_id");
            Ok(match sub_name {
                "add" => {
                    let kind = match required(o, "type")?.as_str() {
                        "incoming" => HookKind::Incoming,
                        "outgoing" => HookKind::Outgoing,
                        other => return Err(format!("type must be incoming or outgoing, not `{other}`")),
                    };
                    let hook = NewHook {
                        kind,
                        source: string_option(o, "source").filter(|s| !s.is_empty()),
                        url: string_option(o, "url").filter(|s| !s.is_empty()),
                        name: None,
                        events: Vec::new(),
                    };
                    let guide = match hook.source.as_deref() {
                        Some("github") => Guide::Github,
                        _ => Guide::Plain,
                    };
                    Cmd::Add { agent: agent()?, hook, guide, rule: None }
                }
                "list" => Cmd::List { agent: agent()? },
                "remove" => Cmd::Remove { agent: agent()?, id: id()? },
                "test" => Cmd::Test { agent: agent()?, id: id()? },
                "format" => Cmd::Format {
                    agent: agent()?,
                    id: id()?,
                    template: string_option(o, "template").filter(|t| !t.is_empty()),
                },
                "filter" => Cmd::Filter {
                    agent: agent()?,
                    id: id()?,
                    events: string_option(o, "events").map(|e| event_list(&e)).unwrap_or_default(),
                },
                "enable" => Cmd::Enable { agent: agent()?, id: id()?, on: true },
                "disable" => Cmd::Enable { agent: agent()?, id: id()?, on: false },
                "rule-add" => {
                    let mut conditions = pairs(&string_option(o, "conditions").unwrap_or_default())?;
                    if let Some(expr) = string_option(o, "if").filter(|e| !e.is_empty()) {
                        conditions.insert("if".into(), Value::String(expr));
                    }
                    let rule = NewRule {
                        trigger: required(o, "trigger")?,
                        action: string_option(o, "action")
                            .filter(|a| !a.is_empty())
                            .unwrap_or_else(|| "notify".into()),
                        template: string_option(o, "template").filter(|t| !t.is_empty()),
                        conditions,
                    };
                    Cmd::RuleAdd { agent: agent()?, hook: HookRef::Id(id()?), rule }
                }
                "rule-list" => Cmd::RuleList { agent: agent()?, id: id()? },
                "rule-remove" => {
                    Cmd::RuleRemove { agent: agent()?, id: id()?, rule_id: required(o, "rule_id")? }
                }
                other => return Err(format!("unknown subcommand `webhook {other}`")),
            })
        }
        (Some(other), _) => Err(format!("unknown subcommand `{other}`")),
        (None, _) => Err("missing subcommand: try `/agent webhook add`".into()),
    }
}

const TEXT_HELP: &str = "**!hook commands**\n\
`!hook github on` · `!hook ci on` · `!hook docker on` · `!hook dockerhub on` · `!hook custom <url>`\n\
`!hook list` · `!hook delete <id>` · `!hook test <id>` · `!hook format <id> <template>`\n\
`!hook filter <id> <events>` · `!hook enable <id>` · `!hook disable <id>`\n\
`!hook github on --events push,pr,release` · `!hook github filter branch=main author=!dependabot* label=urgent`\n\
`!hook github alert-if \"pr.status == 'approved' and pr.reviews >= 2\"` · `!hook rules <id>` · `!hook rule-remove <id> <rule>`\n\
`!hook github aggregate 5m` · `!hook github aggregate off` · `!hook ci notify changes` · `!hook github threads on`\n\
They act on the agent bound to this channel (`/agent create`).";

/// `!hook <source> aggregate <window|off>`.
fn aggregate_cmd(words: &[&str]) -> Result<Cmd, String> {
    match words {
        [source, "aggregate", window] => Ok(Cmd::Aggregate {
            hook: HookRef::Source((*source).to_owned()),
            window: (*window != "off").then(|| (*window).to_owned()),
        }),
        _ => Err("usage: `!hook github aggregate 5m` (1m to 24h) or `aggregate off`".into()),
    }
}

/// `key=value` pairs (`branch=main author=!dependabot*`) as conditions; a
/// value may list alternatives with commas (`label=bug,urgent`).
fn pairs(text: &str) -> Result<serde_json::Map<String, Value>, String> {
    let mut out = serde_json::Map::new();
    for pair in text.split_whitespace() {
        let (k, v) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not key=value"))?;
        if k.is_empty() || v.is_empty() {
            return Err(format!("`{pair}` is not key=value"));
        }
        let values: Vec<Value> =
            v.split(',').filter(|x| !x.is_empty()).map(|x| Value::String(x.to_owned())).collect();
        out.insert(k.to_owned(), if values.len() == 1 { values[0].clone() } else { Value::Array(values) });
    }
    Ok(out)
}

/// Short names people type for GitHub events.
fn github_event(name: &str) -> String {
    match name {
        "pr" | "prs" | "pull" | "pulls" => "pull_request",
        "issue" => "issues",
        "review" | "reviews" => "pull_request_review",
        "comment" | "comments" => "issue_comment",
        "ci" | "actions" => "workflow_run",
        "tag" | "tags" | "branch" => "create",
        "releases" => "release",
        other => other,
    }
    .to_owned()
}

/// `!hook …` text; `None` when the message is not a `!hook` command.
fn parse_text(text: &str) -> Option<Result<Cmd, String>> {
    let rest = text.trim().strip_prefix("!hook")?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let incoming = |source: &str, name: &str| NewHook {
        kind: HookKind::Incoming,
        source: Some(source.to_owned()),
        url: None,
        name: Some(name.to_owned()),
        events: Vec::new(),
    };
    let id = |i: usize| words.get(i).map(|s| (*s).to_owned()).ok_or_else(|| "missing the hook id".to_owned());
    Some(match words.as_slice() {
        [] | ["help"] => Ok(Cmd::Help),
        ["github", "on"] => {
            Ok(Cmd::Add { agent: None, hook: incoming("github", "GitHub"), guide: Guide::Github, rule: None })
        }
        ["github", "on", "--events", list] => {
            let mut hook = incoming("github", "GitHub");
            hook.events = event_list(list).iter().map(|e| github_event(e)).collect();
            Ok(Cmd::Add { agent: None, hook, guide: Guide::Github, rule: None })
        }
        ["github", "on", flag] if flag.starts_with("--events=") => {
            let mut hook = incoming("github", "GitHub");
            hook.events = event_list(&flag["--events=".len()..]).iter().map(|e| github_event(e)).collect();
            Ok(Cmd::Add { agent: None, hook, guide: Guide::Github, rule: None })
        }
        ["github", "filter", conditions @ ..] if !conditions.is_empty() => {
            pairs(&conditions.join(" ")).map(|c| Cmd::RuleAdd {
                agent: None,
                hook: HookRef::Source("github".into()),
                rule: NewRule { trigger: "*".into(), action: "notify".into(), template: None, conditions: c },
            })
        }
        ["github", "filter"] => Err("usage: `!hook github filter branch=main author=… label=…`".into()),
        ["github", "alert-if", ..] => alert_if(rest),
        [_, "aggregate", ..] => aggregate_cmd(&words),
        [source, "notify", how] => match *how {
            "changes" | "every" => Ok(Cmd::Posting {
                hook: HookRef::Source((*source).to_owned()),
                posting: Posting::NotifyChanges(*how == "changes"),
            }),
            _ => Err("usage: `!hook github notify changes` or `notify every`".into()),
        },
        [source, "threads", how] => match *how {
            "on" | "off" => Ok(Cmd::Posting {
                hook: HookRef::Source((*source).to_owned()),
                posting: Posting::Threads(*how == "on"),
            }),
            _ => Err("usage: `!hook github threads on` or `threads off`".into()),
        },
        ["rules", ..] => id(1).map(|id| Cmd::RuleList { agent: None, id }),
        ["rule-remove", _, rule] => {
            id(1).map(|id| Cmd::RuleRemove { agent: None, id, rule_id: (*rule).to_owned() })
        }
        ["rule-remove", ..] => Err("usage: `!hook rule-remove <hook id> <rule id>`".into()),
        // One URL for every CI system, most of which cannot sign for it:
        // senders are recognised by their payloads.
        ["ci", "on"] => {
            Ok(Cmd::Add { agent: None, hook: incoming("none", CI_HOOK_NAME), guide: Guide::Ci, rule: None })
        }
        ["docker", "on", flags @ ..] => docker_on(flags),
        // Docker Hub cannot sign its requests.
        ["dockerhub", "on"] => Ok(Cmd::Add {
            agent: None,
            hook: incoming("none", DOCKERHUB_HOOK_NAME),
            guide: Guide::DockerHub,
            rule: None,
        }),
        ["custom", url] => Ok(Cmd::Add {
            agent: None,
            hook: NewHook {
                kind: HookKind::Outgoing,
                source: None,
                url: Some((*url).to_owned()),
                name: Some("custom".into()),
                events: vec!["*".into()],
            },
            guide: Guide::Plain,
            rule: None,
        }),
        ["custom"] => Err("usage: `!hook custom <url>`".into()),
        ["list"] => Ok(Cmd::List { agent: None }),
        ["delete" | "remove", ..] => id(1).map(|id| Cmd::Remove { agent: None, id }),
        ["test", ..] => id(1).map(|id| Cmd::Test { agent: None, id }),
        ["format", _, ..] if words.len() >= 3 => {
            // The template is the rest of the message, spaces kept.
            let after_id = rest.trim_start()["format".len()..].trim_start();
            let template = after_id.split_once(char::is_whitespace).map(|(_, t)| t.trim().to_owned());
            id(1).map(|id| Cmd::Format { agent: None, id, template })
        }
        ["format", ..] => Err("usage: `!hook format <id> <template>`".into()),
        ["filter", ..] => {
            id(1).map(|id| Cmd::Filter { agent: None, id, events: event_list(&words[2..].join(",")) })
        }
        ["enable", ..] => id(1).map(|id| Cmd::Enable { agent: None, id, on: true }),
        ["disable", ..] => id(1).map(|id| Cmd::Enable { agent: None, id, on: false }),
        [first, ..] => Err(format!("unknown `!hook {first}`; `!hook help` lists the commands")),
    })
}

/// The command parsers alone, for the fuzz targets: whatever the input,
/// they answer a command or a message, never panic.
#[doc(hidden)]
pub mod fuzzing {
    use serde_json::Value;

    /// Parse a slash command's `data` as Discord sends it.
    pub fn interaction(data: &Value) -> bool {
        super::parse_interaction(data).is_ok()
    }

    /// Parse a `!hook …` text command.
    pub fn text(text: &str) -> Option<bool> {
        super::parse_text(text).map(|r| r.is_ok())
    }
}

/// Handle an application command interaction (`type` 2).
pub async fn handle_interaction(service: &dyn HookService, interaction: &Value, by: &Invoker) -> Reply {
    match parse_interaction(&interaction["data"]) {
        Ok(cmd) => run(service, cmd, by, false).await,
        Err(e) => Reply::error(e),
    }
}

/// The question (`q_…`) a message replies to, when it replies to one of the
/// bot's question messages.
pub fn question_of(message: &Value) -> Option<&str> {
    let asked = &message["referenced_message"];
    if asked["author"]["bot"] != true {
        return None;
    }
    asked["embeds"].as_array()?.iter().find_map(|embed| {
        embed["fields"].as_array()?.iter().find_map(|f| {
            (f["name"] == "Question").then(|| f["value"].as_str()).flatten().filter(|v| v.starts_with("q_"))
        })
    })
}

/// A reply (in Discord's sense: a message that references another) to one
/// of Chorus's question messages: the reply's text is the answer. `None`
/// when the message is not such a reply.
pub async fn handle_answer(service: &dyn HookService, message: &Value, by: &Invoker) -> Option<Reply> {
    let question = question_of(message)?;
    let text = message["content"].as_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Some(Reply::error("an answer needs text"));
    }
    Some(match service.answer_question(by, question, text).await {
        Ok(to) => Reply::done(format!("✅ Answer to `{question}` sent back to {to}.")),
        Err(e) => Reply::error(e.0),
    })
}

/// Handle a text message; `None` when it is not a `!hook` command.
pub async fn handle_text(service: &dyn HookService, text: &str, by: &Invoker) -> Option<Reply> {
    Some(match parse_text(text)? {
        Ok(cmd) => run(service, cmd, by, true).await,
        Err(e) => Reply::error(e),
    })
}

fn changes(cmd: &Cmd) -> bool {
    !matches!(cmd, Cmd::List { .. } | Cmd::RuleList { .. } | Cmd::Help | Cmd::WorkflowList)
}

async fn run(service: &dyn HookService, cmd: Cmd, by: &Invoker, text: bool) -> Reply {
    if changes(&cmd) && !by.can_manage {
        return Reply::error("you need the Manage Webhooks permission (or the Chorus manager role) for this");
    }
    let agent = |given: Option<String>| async move {
        match given {
            Some(a) => Ok(a),
            None => {
                let channel = by.channel_id.as_deref().ok_or_else(|| ServiceError("no channel".into()))?;
                service.channel_agent(channel).await?.ok_or_else(|| {
                    ServiceError(
                        "no agent is bound to this channel; create one with `/agent create <name>`".into(),
                    )
                })
            }
        }
    };
    let result: Result<Reply, ServiceError> = async {
        Ok(match cmd {
            Cmd::Help => Reply::done(TEXT_HELP),
            Cmd::CreateAgent { name, channel } => {
                let channel = channel
                    .or_else(|| by.channel_id.clone())
                    .ok_or_else(|| ServiceError("no channel".into()))?;
                service.create_agent(by, &name, &channel).await?;
                Reply::done(format!("✅ Agent **{name}** created; its messages go to <#{channel}>."))
            }
            Cmd::Add { agent: given, hook, guide, rule } => {
                let agent = agent(given).await?;
                let kind = hook.kind;
                let source = hook.source.clone();
                let created = service.add_hook(by, &agent, hook).await?;
                if let Some(rule) = rule {
                    service.add_rule(by, &agent, HookRef::Id(created.id.clone()), rule).await?;
                }
                created_reply(&agent, kind, source.as_deref(), guide, &created, text)
            }
            Cmd::List { agent: given } => {
                let agent = agent(given).await?;
                let hooks = service.list_hooks(&agent).await?;
                Reply::done(list_text(&agent, &hooks))
            }
            Cmd::Remove { agent: given, id } => {
                let agent = agent(given).await?;
                service.remove_hook(by, &agent, &id).await?;
                Reply::done(format!("🗑️ Webhook `{id}` of **{agent}** deleted; its URL now answers 404."))
            }
            Cmd::Test { agent: given, id } => {
                let agent = agent(given).await?;
                let outcome = service.test_hook(by, &agent, &id).await?;
                Reply::done(format!("🧪 Test sent through `{id}`: {outcome}"))
            }
            Cmd::Format { agent: given, id, template } => {
                let agent = agent(given).await?;
                let cleared = template.is_none();
                service.set_template(by, &agent, &id, template).await?;
                Reply::done(if cleared {
                    format!("✅ `{id}` uses its source's own format again.")
                } else {
                    format!("✅ `{id}` now formats messages with your template.")
                })
            }
            Cmd::Filter { agent: given, id, events } => {
                let agent = agent(given).await?;
                let shown = if events.is_empty() { "every event".to_owned() } else { events.join(", ") };
                service.set_events(by, &agent, &id, events).await?;
                Reply::done(format!("✅ `{id}` passes on {shown}."))
            }
            Cmd::Enable { agent: given, id, on } => {
                let agent = agent(given).await?;
                service.set_enabled(by, &agent, &id, on).await?;
                Reply::done(format!("✅ `{id}` {}.", if on { "enabled" } else { "disabled" }))
            }
            cmd @ Cmd::Aggregate { .. } => aggregate(service, cmd, by, &agent(None).await?).await?,
            Cmd::Posting { hook, posting } => {
                posting_reply(posting, &service.set_posting(by, &agent(None).await?, hook, posting).await?)
            }
            cmd @ (Cmd::WorkflowList | Cmd::WorkflowTest { .. } | Cmd::WorkflowReload) => {
                run_workflow(service, cmd, by).await?
            }
            cmd @ (Cmd::RuleAdd { .. } | Cmd::RuleList { .. } | Cmd::RuleRemove { .. }) => {
                let given = match &cmd {
                    Cmd::RuleAdd { agent, .. }
                    | Cmd::RuleList { agent, .. }
                    | Cmd::RuleRemove { agent, .. } => agent.clone(),
                    _ => None,
                };
                let agent = agent(given).await?;
                run_rule(service, cmd, by, &agent).await?
            }
        })
    }
    .await;
    result.unwrap_or_else(|e| Reply::error(e.0))
}

/// `!hook <source> aggregate <window|off>` for an agent already resolved.
async fn aggregate(
    service: &dyn HookService,
    cmd: Cmd,
    by: &Invoker,
    agent: &str,
) -> Result<Reply, ServiceError> {
    let Cmd::Aggregate { hook, window } = cmd else { return Ok(Reply::error("not an aggregate command")) };
    let shown = window.clone();
    let id = service.set_aggregate(by, agent, hook, window).await?;
    Ok(Reply::done(match shown {
        Some(w) => format!("✅ `{id}` now collects its events and posts one summary every {w}."),
        None => format!("✅ `{id}` posts each event again."),
    }))
}

/// What changed, after `!hook <source> notify|threads …`.
fn posting_reply(posting: Posting, id: &str) -> Reply {
    Reply::done(match posting {
        Posting::NotifyChanges(true) => {
            format!("✅ `{id}` posts CI results and alerts only when they break or are fixed.")
        }
        Posting::NotifyChanges(false) => format!("✅ `{id}` posts every event again."),
        Posting::Threads(true) => {
            format!("✅ `{id}` gives each pull request and incident a thread for its later events.")
        }
        Posting::Threads(false) => format!("✅ `{id}` posts every event in the channel again."),
    })
}

/// `/webhook list|test` and `/workflow reload`.
async fn run_workflow(service: &dyn HookService, cmd: Cmd, by: &Invoker) -> Result<Reply, ServiceError> {
    Ok(match cmd {
        Cmd::WorkflowTest { name } => {
            let (status, body) = service.test_workflow(by, &name).await?;
            let reason = match status {
                200 => "OK",
                202 => "Accepted",
                _ => "",
            };
            let body: String = body.chars().take(1800).collect();
            Reply::done(format!("Testing webhook: {name}\nResponse: {status} {reason}\n```json\n{body}\n```"))
        }
        Cmd::WorkflowReload => {
            let (count, errors) = service.reload_workflows(by).await?;
            let mut out = format!("🔄 Workflows reloaded: {count} loaded.");
            for e in errors.iter().take(10) {
                out.push_str("\n❌ ");
                out.push_str(e);
            }
            Reply::done(out)
        }
        _ => Reply::done(workflow_list_text(&service.list_workflows().await?)),
    })
}

/// The rule commands, for an agent already resolved.
async fn run_rule(
    service: &dyn HookService,
    cmd: Cmd,
    by: &Invoker,
    agent: &str,
) -> Result<Reply, ServiceError> {
    Ok(match cmd {
        Cmd::RuleAdd { hook, rule, .. } => {
            let what =
                rule_text(&rule.trigger, &rule.action, &Value::Object(rule.conditions.clone()).to_string());
            let (rule_id, hook_id) = service.add_rule(by, agent, hook, rule).await?;
            Reply::done(format!(
                "✅ Rule `{rule_id}` on `{hook_id}`: {what}. With rules, only events a rule fires on are acted on."
            ))
        }
        Cmd::RuleList { id, .. } => {
            let rules = service.list_rules(agent, &id).await?;
            Reply::done(if rules.is_empty() {
                format!("`{id}` has no rules: every event it passes on is posted here.")
            } else {
                let mut out = format!("**Rules of `{id}`**, in order\n");
                for r in &rules {
                    let _ = writeln!(out, "• `{}` {}", r.id, rule_text(&r.trigger, &r.action, &r.conditions));
                }
                out
            })
        }
        Cmd::RuleRemove { id, rule_id, .. } => {
            service.remove_rule(by, agent, &id, &rule_id).await?;
            Reply::done(format!("🗑️ Rule `{rule_id}` removed from `{id}`."))
        }
        _ => Reply::error("not a rule command"),
    })
}

fn rule_text(trigger: &str, action: &str, conditions: &str) -> String {
    if conditions == "{}" {
        format!("on `{trigger}` → {action}")
    } else {
        format!("on `{trigger}` when `{conditions}` → {action}")
    }
}

/// Seed 003's `/webhook list`.
fn workflow_list_text(workflows: &[ListedWorkflow]) -> String {
    if workflows.is_empty() {
        return "No workflows. Put one in `<data dir>/workflows/` or create it through the API.".into();
    }
    let mut out = String::from("Webhooks:\n```\n");
    for w in workflows {
        out.push_str("POST ");
        out.push_str(&w.url);
        out.push_str(if w.enabled { "  [enabled]\n" } else { "  [disabled]\n" });
    }
    out.push_str("```");
    out
}

fn list_text(agent: &str, hooks: &[Listed]) -> String {
    if hooks.is_empty() {
        return format!("**{agent}** has no webhooks yet: `/agent webhook add {agent} incoming`.");
    }
    let mut out = format!("**Webhooks of {agent}**\n");
    for h in hooks {
        let state = if h.enabled { "" } else { " (disabled)" };
        let _ = writeln!(out, "• `{}` {} · {} · {}{state}", h.id, h.kind.as_str(), h.name, h.target);
    }
    out
}

/// The answer to a hook's creation: its setup privately (a direct message
/// for a text command, an ephemeral reply for a slash command).
fn created_reply(
    agent: &str,
    kind: HookKind,
    source: Option<&str>,
    guide: Guide,
    c: &Created,
    text: bool,
) -> Reply {
    let details = setup(agent, kind, source, guide, c);
    if text {
        Reply {
            content: format!(
                "✅ {} webhook `{}` created for **{agent}**. I sent you its URL and secret in a direct message.",
                kind.as_str(),
                c.id
            ),
            ephemeral: false,
            dm: Some(details),
        }
    } else {
        Reply { content: details, ephemeral: true, dm: None }
    }
}

/// What to do with a new hook, secret included: for ephemeral replies and
/// direct messages only.
fn setup(agent: &str, kind: HookKind, source: Option<&str>, guide: Guide, c: &Created) -> String {
    let secret = c.secret.as_deref().map_or_else(|| "none".to_owned(), |s| format!("`{s}`"));
    if kind == HookKind::Outgoing {
        return format!(
            "📤 **Outgoing webhook for {agent}**\nDestination: {}\nSigning secret: {secret}\n\
             Chorus signs each delivery with `X-Chorus-Signature-256: sha256=<HMAC-SHA256 of the body>`.\n\
             Hook id: `{}`. The secret is not shown again.",
            c.url, c.id
        );
    }
    let head = format!("Webhook URL: {}\nSecret: {secret}\nHook id: `{}`", c.url, c.id);
    match guide {
        Guide::Github => format!(
            "🔗 **GitHub Webhook Setup** for {agent}\n\n{head}\n\n{}\n\nThe secret is not shown again.",
            chorus_providers::of(chorus_core::Source::Github).setup().unwrap_or_default()
        ),
        Guide::Ci => format!(
            "🔧 **CI/CD Webhook Ready** for {agent}\n\nWebhook URL: {url}\nHook id: `{id}`\n\n\
             Paste this URL into Jenkins (Notification plugin, JSON), CircleCI (project settings → Webhooks), \
             GitLab (Settings → Webhooks → Pipeline events) or GitHub (Settings → Webhooks → Workflow runs): \
             each is recognised and formatted. Any pipeline step can post JSON too:\n```sh\n\
             curl -H 'Content-Type: application/json' -d '{{\"title\":\"Deploy done\",\"status\":\"success\"}}' {url}\n```\n\
             Most CI systems cannot sign for this URL, so the URL is the key: keep it private.",
            url = c.url,
            id = c.id
        ),
        Guide::Docker => format!(
            "🐳 **Docker Monitoring Active** for {agent}\nHook id: `{}`\n\n\
             Events: container start, stop (exit code, OOM, uptime, last logs), health, restarts; image builds, \
             pulls and pushes. `!hook docker on --containers web,db --events die,oom` narrows them.\n\n{}",
            c.id,
            chorus_providers::of(chorus_core::Source::Docker).setup().unwrap_or_default()
        ),
        Guide::DockerHub => format!(
            "🐳 **Docker Hub webhook** for {agent}\n\nWebhook URL: {}\nHook id: `{}`\n\n\
             Docker Hub → your repository → Webhooks → paste the URL.\n\
             Docker Hub does not sign its requests, so this URL is the only key: keep it private.",
            c.url, c.id
        ),
        Guide::Plain => {
            let steps = source
                .and_then(|s| s.parse::<chorus_core::Source>().ok())
                .and_then(|s| chorus_providers::of(s).setup())
                .map(|steps| format!("{steps}\n\n"))
                .unwrap_or_default();
            format!(
                "🔗 **{} webhook for {agent}**\n\n{head}\n\n{steps}The secret is not shown again.",
                source.unwrap_or("chorus")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_text_commands_parse() {
        let Some(Ok(Cmd::RuleAdd { hook, rule, .. })) =
            parse_text(r#"!hook github alert-if "pr.status == 'approved' and pr.reviews >= 2""#)
        else {
            panic!("alert-if")
        };
        assert_eq!(hook, HookRef::Source("github".into()));
        assert_eq!(rule.conditions["if"], "pr.status == 'approved' and pr.reviews >= 2");
        let Some(Ok(Cmd::RuleAdd { rule, .. })) =
            parse_text("!hook github filter branch=main author=!dependabot* label=bug,urgent")
        else {
            panic!("filter")
        };
        assert_eq!(
            Value::Object(rule.conditions),
            json!({"branch": "main", "author": "!dependabot*", "label": ["bug", "urgent"]})
        );
        let Some(Ok(Cmd::Add { hook, .. })) = parse_text("!hook github on --events push,pr,release") else {
            panic!("on --events")
        };
        assert_eq!(hook.events, ["push", "pull_request", "release"]);
        assert!(matches!(parse_text("!hook github filter branch"), Some(Err(_))));
        assert!(matches!(parse_text("!hook github alert-if"), Some(Err(_))));
        assert!(matches!(parse_text("!hook rule-remove hk_1"), Some(Err(_))));
        assert!(matches!(parse_text("!hook rules hk_1"), Some(Ok(Cmd::RuleList { .. }))));
    }

    #[test]
    fn docker_on_takes_the_seed_filters() {
        let Some(Ok(Cmd::Add { hook, guide: Guide::Docker, rule, .. })) =
            parse_text("!hook docker on --containers web,db --events=die,oom,image.tag")
        else {
            panic!("docker on")
        };
        assert_eq!(hook.source.as_deref(), Some("docker"));
        assert_eq!(hook.events, ["container.die", "container.oom", "image.tag"]);
        assert_eq!(
            Value::Object(rule.expect("a rule on the names").conditions),
            json!({"container": ["web", "db"]})
        );
        let Some(Ok(Cmd::Add { hook, rule: None, .. })) = parse_text("!hook docker on") else {
            panic!("plain")
        };
        assert!(hook.events.is_empty());
        for bad in ["!hook docker on --containers", "!hook docker on --events=", "!hook docker on --since 5m"]
        {
            assert!(matches!(parse_text(bad), Some(Err(_))), "{bad}");
        }
        assert!(matches!(
            parse_text("!hook dockerhub on"),
            Some(Ok(Cmd::Add { guide: Guide::DockerHub, .. }))
        ));
    }

    #[test]
    fn posting_commands_parse() {
        let github = || HookRef::Source("github".into());
        assert_eq!(
            parse_text("!hook github notify changes"),
            Some(Ok(Cmd::Posting { hook: github(), posting: Posting::NotifyChanges(true) }))
        );
        assert_eq!(
            parse_text("!hook ci notify every"),
            Some(Ok(Cmd::Posting {
                hook: HookRef::Source("ci".into()),
                posting: Posting::NotifyChanges(false)
            }))
        );
        assert_eq!(
            parse_text("!hook github threads on"),
            Some(Ok(Cmd::Posting { hook: github(), posting: Posting::Threads(true) }))
        );
        for bad in ["!hook github notify sometimes", "!hook github threads maybe"] {
            assert!(matches!(parse_text(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn text_commands_parse() {
        assert_eq!(parse_text("hello"), None);
        assert_eq!(parse_text("!hooks"), None);
        assert_eq!(parse_text("!hook"), Some(Ok(Cmd::Help)));
        assert!(matches!(parse_text("!hook github on"), Some(Ok(Cmd::Add { guide: Guide::Github, .. }))));
        assert!(matches!(
            parse_text("!hook custom https://example.com/x"),
            Some(Ok(Cmd::Add { hook: NewHook { kind: HookKind::Outgoing, .. }, .. }))
        ));
        assert_eq!(
            parse_text("!hook format hk_1 {{ repository.full_name }} pushed"),
            Some(Ok(Cmd::Format {
                agent: None,
                id: "hk_1".into(),
                template: Some("{{ repository.full_name }} pushed".into())
            }))
        );
        assert_eq!(
            parse_text("!hook filter hk_1 push, pull_request"),
            Some(Ok(Cmd::Filter {
                agent: None,
                id: "hk_1".into(),
                events: vec!["push".into(), "pull_request".into()]
            }))
        );
        assert!(matches!(parse_text("!hook delete"), Some(Err(e)) if e.contains("hook id")));
        assert!(matches!(parse_text("!hook custom"), Some(Err(e)) if e.contains("usage")));
        assert!(matches!(parse_text("!hook format hk_1"), Some(Err(e)) if e.contains("usage")));
        assert!(matches!(parse_text("!hook github"), Some(Err(e)) if e.contains("!hook github")));
        assert!(matches!(parse_text("!hook frobnicate"), Some(Err(e)) if e.contains("frobnicate")));
        assert_eq!(
            parse_text("!hook github aggregate 5m"),
            Some(Ok(Cmd::Aggregate { hook: HookRef::Source("github".into()), window: Some("5m".into()) }))
        );
        assert_eq!(
            parse_text("!hook github aggregate off"),
            Some(Ok(Cmd::Aggregate { hook: HookRef::Source("github".into()), window: None }))
        );
        assert!(matches!(parse_text("!hook github aggregate"), Some(Err(e)) if e.contains("usage")));
    }

    #[test]
    fn interactions_parse_and_name_what_is_missing() {
        let data = json!({"name": "agent", "options": [{"name": "webhook", "type": 2, "options": [
            {"name": "add", "type": 1, "options": [
                {"name": "name", "type": 3, "value": "builder"}, {"name": "type", "type": 3, "value": "incoming"}]}]}]});
        assert!(matches!(parse_interaction(&data), Ok(Cmd::Add { agent: Some(a), .. }) if a == "builder"));
        let missing = json!({"name": "agent", "options": [{"name": "webhook", "type": 2, "options": [
            {"name": "remove", "type": 1, "options": [{"name": "name", "type": 3, "value": "builder"}]}]}]});
        assert_eq!(parse_interaction(&missing), Err("missing option `hook_id`".into()));
        let unknown = json!({"name": "agent", "options": [{"name": "webhook", "type": 2, "options": [
            {"name": "explode", "type": 1, "options": []}]}]});
        assert!(parse_interaction(&unknown).unwrap_err().contains("unknown subcommand"));
    }

    #[test]
    fn permissions_come_from_the_member() {
        let interaction = |perms: u64, roles: Value| {
            json!({"channel_id": "9", "member": {"permissions": perms.to_string(), "roles": roles,
                   "user": {"id": "1", "username": "ana"}}})
        };
        assert!(Invoker::from_interaction(&interaction(1 << 29, json!([])), None).can_manage);
        assert!(Invoker::from_interaction(&interaction(1 << 3, json!([])), None).can_manage);
        assert!(!Invoker::from_interaction(&interaction(1 << 11, json!([])), None).can_manage);
        assert!(Invoker::from_interaction(&interaction(0, json!(["42"])), Some("42")).can_manage);
        let dm = json!({"channel_id": "9", "user": {"id": "1", "username": "ana"}});
        assert!(!Invoker::from_interaction(&dm, None).can_manage);
    }

    #[test]
    fn definitions_pass_discord_validation() {
        for c in definitions() {
            twilight_validate::command::command(&c).unwrap();
        }
    }
}
