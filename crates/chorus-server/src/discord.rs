//! The Discord commands' view of Chorus: [`HookService`] over the handlers
//! and service layer of the REST API, so `/agent …`, `!hook …` and the API
//! share every check and message. Changes are put on record with
//! `via = discord`.

use async_trait::async_trait;
use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chorus_core::{AgentName, AuditEntry, HookPatch};
use chorus_discord::commands::{
    self, Created, HookKind, HookRef, HookService, Invoker, Listed, ListedRule, ListedWorkflow, NewHook,
    NewRule, Posting, ServiceError,
};
use serde_json::{Value, json};

use crate::{
    error::ApiError, error::ErrorCode, service, service::agents, service::hooks, service::outgoing,
    state::AppState,
};

/// Chorus as the Discord commands see it.
#[derive(Clone)]
pub struct DiscordCommands {
    state: AppState,
}

impl DiscordCommands {
    /// Over `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// The state to make one change through: its store puts the change on
    /// record, with the Discord user as actor, in the change's own
    /// transaction. `target` `None`: the id of what the change creates.
    fn acting(&self, by: &Invoker, action: &str, target: Option<&str>) -> AppState {
        let entry = AuditEntry {
            at: self.state.clock.now(),
            actor: format!("discord user {} ({})", by.user_name, by.user_id),
            via: "discord".into(),
            action: action.into(),
            target: target.map(str::to_owned),
        };
        let store = self.state.store.audited(entry.clone());
        AppState {
            emitter: self.state.emitter.with_store(store.clone()),
            store,
            actor: Some(entry),
            ..self.state.clone()
        }
    }

    /// A button click (a message component interaction): Approve / Deny
    /// at a workflow's approval gate. Answers with the interaction
    /// response: the message edited to show the decision, or an ephemeral
    /// refusal that changes nothing. Fast enough for Discord's 3-second
    /// deadline: one read and one commit.
    pub async fn click(&self, interaction: &Value) -> Value {
        match self.decide_click(interaction).await {
            Ok(update) => update,
            Err(refusal) => json!({
                "type": 4,
                "data": {"content": format!("❌ {refusal}"), "flags": chorus_discord::commands::EPHEMERAL,
                         "allowed_mentions": {"parse": []}},
            }),
        }
    }

    async fn decide_click(&self, interaction: &Value) -> Result<Value, String> {
        let custom_id = interaction["data"]["custom_id"].as_str().unwrap_or_default();
        let (approve, gate_id) = chorus_workflow::parse_button(custom_id)
            .ok_or_else(|| "this button is not one of Chorus's".to_owned())?;
        let sys = crate::workflows::manage(&self.state).map_err(|e| e.message)?;
        let gate = sys
            .store
            .approval(&gate_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "this approval no longer exists".to_owned())?;
        let run = sys
            .store
            .run(&gate.run_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "this run no longer exists".to_owned())?;
        let member = &interaction["member"];
        let user = if member["user"].is_object() { &member["user"] } else { &interaction["user"] };
        let (user_id, user_name) =
            (user["id"].as_str().unwrap_or_default(), user["username"].as_str().unwrap_or("unknown"));
        // Permissions come computed for the channel with the interaction.
        let permissions = member["permissions"].as_str().and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
        // Discord's ADMINISTRATOR (1 << 3) and MANAGE_GUILD (1 << 5) bits.
        let allowed = match run.spec.get("approver_role").and_then(Value::as_str) {
            Some(role) => member["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == role)),
            None => permissions & ((1 << 3) | (1 << 5)) != 0,
        };
        if !allowed {
            let need = match run.spec.get("approver_role").and_then(Value::as_str) {
                Some(role) => format!("the <@&{role}> role"),
                None => "the Manage Server permission".to_owned(),
            };
            return Err(format!("deciding this approval needs {need}; nothing was changed"));
        }
        let by = format!("discord:{user_id} ({user_name})");
        let st = self.acting_as(user_id, user_name);
        let decided =
            crate::workflows::decide(&st, &gate.id, approve, &by, false).await.map_err(|e| e.message)?;
        let (mark, color) = if approve { ("✅ Approved", 0x002E_CC71) } else { ("❌ Denied", 0x00E7_4C3C) };
        let when = decided.decided_at.map_or(0, jiff::Timestamp::as_second);
        let mut embeds = interaction["message"]["embeds"].as_array().cloned().unwrap_or_default();
        if let Some(first) = embeds.first_mut() {
            first["color"] = json!(color);
            let mut fields = first["fields"].as_array().cloned().unwrap_or_default();
            fields.push(json!({"name": "Decision", "value": format!("{mark} by <@{user_id}> <t:{when}:R>"), "inline": false}));
            first["fields"] = Value::Array(fields);
        }
        let content = format!("{mark} by <@{user_id}>: {} → {}", run.workflow, gate.step_name);
        Ok(json!({
            "type": 7,
            "data": {"content": content, "embeds": embeds, "components": [], "allowed_mentions": {"parse": []}},
        }))
    }

    /// The state a Discord user's change goes through (its audit actor).
    fn acting_as(&self, user_id: &str, user_name: &str) -> AppState {
        let by = Invoker {
            user_id: user_id.into(),
            user_name: user_name.into(),
            channel_id: None,
            can_manage: false,
        };
        self.acting(&by, "", None)
    }

    /// One of `agent`'s incoming hooks: by id, or its hook of a source.
    async fn hook_ref(&self, agent: &str, hook: HookRef) -> Result<chorus_core::IncomingHook, ServiceError> {
        match hook {
            HookRef::Id(id) => self.incoming(agent, &id).await,
            HookRef::Source(source) => {
                let name = self.existing_agent(agent).await.map_err(message)?;
                let hooks = self.state.store.hooks(Some(&name)).await.map_err(|e| message(e.into()))?;
                // `ci` and `dockerhub` name the unsigned hooks `!hook ci on`
                // and `!hook dockerhub on` make.
                let wanted = |h: &chorus_core::IncomingHook| match source.as_str() {
                    "ci" => h.source == chorus_core::Source::None && h.name == commands::CI_HOOK_NAME,
                    "dockerhub" => {
                        h.source == chorus_core::Source::None && h.name == commands::DOCKERHUB_HOOK_NAME
                    }
                    s => h.source.as_str() == s,
                };
                hooks.into_iter().find(wanted).ok_or_else(|| {
                    ServiceError(format!(
                        "**{agent}** has no {source} webhook yet: `!hook {source} on` makes one"
                    ))
                })
            }
        }
    }

    /// The hook `id` if it belongs to `agent`.
    async fn owned(&self, agent: &str, id: &str) -> Result<hooks::Found, ApiError> {
        // Another agent's hook is "not found", as an unknown one.
        let missing = || ApiError::not_found(format!("webhook {id} not found for agent {agent}"));
        let agent: AgentName = agent.parse().map_err(|_| missing())?;
        let found = hooks::find_any(&self.state, id)
            .await
            .map_err(|e| if e.status == StatusCode::NOT_FOUND { missing() } else { e })?;
        match &found {
            hooks::Found::Incoming(h) if h.agent == agent => Ok(found),
            hooks::Found::Outgoing(h) if h.agent.as_ref() == Some(&agent) => Ok(found),
            _ => Err(missing()),
        }
    }

    /// The incoming hook `id` of `agent`.
    async fn incoming(&self, agent: &str, id: &str) -> Result<chorus_core::IncomingHook, ServiceError> {
        match self.owned(agent, id).await.map_err(message)? {
            hooks::Found::Incoming(h) => Ok(h),
            hooks::Found::Outgoing(_) => Err(ServiceError("rules apply to incoming webhooks".into())),
        }
    }

    /// The same check and answer as the API's (`agent` is the field at fault).
    async fn existing_agent(&self, agent: &str) -> Result<AgentName, ApiError> {
        service::existing_agent(&self.state, "agent", agent).await
    }

    async fn patch(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        patch: HookPatch,
        action: &str,
    ) -> Result<(), ServiceError> {
        let hooks::Found::Incoming(hook) = self.owned(agent, id).await.map_err(message)? else {
            return Err(ServiceError(format!("{action} applies to incoming webhooks")));
        };
        let st = self.acting(by, &format!("webhooks.{action}"), Some(id));
        hooks::update_incoming(&st, &hook, patch).await.map_err(message)?;
        Ok(())
    }
}

fn message(e: ApiError) -> ServiceError {
    ServiceError(e.message)
}

#[async_trait]
impl HookService for DiscordCommands {
    async fn create_agent(&self, by: &Invoker, name: &str, channel_id: &str) -> Result<(), ServiceError> {
        let new = agents::new_agent(agents::CreateAgent {
            name: name.to_owned(),
            channel_id: Some(channel_id.to_owned()),
            discord_webhook_url: None,
            enabled: true,
        })
        .map_err(message)?;
        let st = self.acting(by, "agents.create", Some(name));
        st.store.create_agent(new).await.map_err(|e| message(e.into()))?;
        Ok(())
    }

    async fn channel_agent(&self, channel_id: &str) -> Result<Option<String>, ServiceError> {
        let agents = self.state.store.agents().await.map_err(|e| message(e.into()))?;
        Ok(agents
            .into_iter()
            .find(|a| a.channel_id.as_deref() == Some(channel_id))
            .map(|a| a.name.to_string()))
    }

    async fn add_hook(&self, by: &Invoker, agent: &str, hook: NewHook) -> Result<Created, ServiceError> {
        self.existing_agent(agent).await.map_err(message)?;
        match (hook.kind, &hook.url, &hook.source) {
            (HookKind::Incoming, Some(_), _) => {
                return Err(ServiceError(
                    "url applies to outgoing webhooks; incoming ones get a URL from Chorus".into(),
                ));
            }
            (HookKind::Outgoing, _, Some(_)) => {
                return Err(ServiceError("source applies to incoming webhooks".into()));
            }
            _ => {}
        }
        let created_by = format!("discord:{}", by.user_id);
        let st = self.acting(by, "webhooks.create", None);
        let created = match hook.kind {
            HookKind::Outgoing => {
                let url = hook.url.ok_or_else(|| ServiceError("an outgoing webhook needs a url".into()))?;
                let events = if hook.events.is_empty() { vec!["*".to_owned()] } else { hook.events };
                let spec = outgoing::CreateOutgoing::new(Some(agent.to_owned()), hook.name, url, events);
                let (made, secret) = outgoing::create_typed(&st, spec, &created_by).await.map_err(message)?;
                Created { id: made.id.to_string(), url: made.url, secret: Some(secret.expose().to_owned()) }
            }
            HookKind::Incoming => {
                let mut spec = service::IncomingSpec::for_agent(agent);
                spec.source = hook.source;
                spec.name = hook.name;
                spec.events = hook.events;
                let made = hooks::create_incoming(&st, &spec, &created_by).await.map_err(message)?;
                Created {
                    id: made.hook.id.to_string(),
                    url: self.state.hook_url(made.hook.agent.as_str(), made.hook.id.as_str()),
                    secret: made.secret.map(|s| s.expose().to_owned()),
                }
            }
        };
        Ok(created)
    }

    async fn list_hooks(&self, agent: &str) -> Result<Vec<Listed>, ServiceError> {
        let name = self.existing_agent(agent).await.map_err(message)?;
        let store = &self.state.store;
        let mut out: Vec<Listed> = store
            .hooks(Some(&name))
            .await
            .map_err(|e| message(e.into()))?
            .into_iter()
            .map(|h| Listed {
                id: h.id.to_string(),
                kind: HookKind::Incoming,
                name: h.name,
                target: h.source.to_string(),
                enabled: h.enabled,
            })
            .collect();
        out.extend(store.outgoing_hooks(Some(&name)).await.map_err(|e| message(e.into()))?.into_iter().map(
            |h| Listed {
                id: h.id.to_string(),
                kind: HookKind::Outgoing,
                name: h.name,
                target: h.url,
                enabled: h.enabled,
            },
        ));
        Ok(out)
    }

    async fn remove_hook(&self, by: &Invoker, agent: &str, id: &str) -> Result<(), ServiceError> {
        let found = self.owned(agent, id).await.map_err(message)?;
        hooks::delete(&self.acting(by, "webhooks.delete", Some(id)), &found).await.map_err(message)
    }

    async fn test_hook(&self, by: &Invoker, agent: &str, id: &str) -> Result<String, ServiceError> {
        let found = self.owned(agent, id).await.map_err(message)?;
        // The test's stored event (or queued delivery) and its record commit together.
        let st = self.acting(by, "webhooks.test", Some(id));
        let outcome = match found {
            hooks::Found::Incoming(h) => {
                let tested = hooks::test_incoming(&st, &h.id).await.map_err(message)?;
                format!("accepted ({}); its message is on its way to the channel", tested.status.as_u16())
            }
            hooks::Found::Outgoing(h) => {
                let emitted = st.emitter.test(&h.id).await.map_err(|e| message(e.into()))?;
                format!("a webhook.test delivery is queued (event {})", emitted.event_id)
            }
        };
        Ok(outcome)
    }

    async fn set_template(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        template: Option<String>,
    ) -> Result<(), ServiceError> {
        let patch = HookPatch { template: Some(template), ..HookPatch::default() };
        self.patch(by, agent, id, patch, "format").await
    }

    async fn set_events(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        events: Vec<String>,
    ) -> Result<(), ServiceError> {
        let patch = HookPatch { events: Some(events), ..HookPatch::default() };
        self.patch(by, agent, id, patch, "filter").await
    }

    async fn set_enabled(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        let found = self.owned(agent, id).await.map_err(message)?;
        let st = self.acting(by, if enabled { "webhooks.enable" } else { "webhooks.disable" }, Some(id));
        hooks::set_enabled(&st, &found, enabled).await.map_err(message)?;
        Ok(())
    }

    async fn add_rule(
        &self,
        by: &Invoker,
        agent: &str,
        hook: HookRef,
        rule: NewRule,
    ) -> Result<(String, String), ServiceError> {
        let hook = self.hook_ref(agent, hook).await?;
        let spec = service::RuleSpec {
            trigger: rule.trigger,
            action: rule.action,
            agent: None,
            template: rule.template,
            conditions: rule.conditions,
            url: None,
            priority: 0,
            stop: false,
            reply: false,
            signature: None,
        };
        let st = self.acting(by, "webhooks.commands.create", Some(hook.id.as_str()));
        let made = service::rules::add(&st, &hook, &spec).await.map_err(|e| {
            ServiceError(e.field.map_or_else(|| e.message.clone(), |f| format!("{f}: {}", e.message)))
        })?;
        Ok((made.id, hook.id.to_string()))
    }

    async fn answer_question(
        &self,
        by: &Invoker,
        question_id: &str,
        text: &str,
    ) -> Result<String, ServiceError> {
        let store = &self.state.store;
        let q = store
            .question(question_id)
            .await
            .map_err(|e| message(e.into()))?
            .ok_or_else(|| ServiceError(format!("question {question_id} not found")))?;
        if q.status != chorus_core::QuestionStatus::Pending {
            return Err(ServiceError(format!("question {question_id} is already answered")));
        }
        let hook = store
            .hook(&q.hook_id)
            .await
            .map_err(|e| message(e.into()))?
            .ok_or_else(|| ServiceError("the question's webhook is gone".into()))?;
        let event = store
            .event(&q.event_id)
            .await
            .map_err(|e| message(e.into()))?
            .ok_or_else(|| ServiceError("the question's event is gone".into()))?;
        let st = self.acting(by, "webhooks.respond", Some(hook.id.as_str()));
        crate::service::interact::answer(&st, &hook, &event, Some(&q), text).await.map_err(message)?;
        Ok(format!("the {} thread", hook.source))
    }

    async fn list_rules(&self, agent: &str, id: &str) -> Result<Vec<ListedRule>, ServiceError> {
        let hook = self.incoming(agent, id).await?;
        let rules = self.state.store.rules(&hook.id).await.map_err(|e| message(e.into()))?;
        Ok(rules
            .into_iter()
            .map(|r| ListedRule {
                id: r.id,
                trigger: r.trigger,
                action: r.action.as_str().to_owned(),
                conditions: Value::Object(r.conditions).to_string(),
            })
            .collect())
    }

    async fn remove_rule(
        &self,
        by: &Invoker,
        agent: &str,
        id: &str,
        rule_id: &str,
    ) -> Result<(), ServiceError> {
        let hook = self.incoming(agent, id).await?;
        let st = self.acting(by, "webhooks.commands.delete", Some(hook.id.as_str()));
        service::rules::remove(&st, &hook, rule_id).await.map_err(|e| match e.code {
            crate::error::ErrorCode::NotFound => ServiceError(format!("rule {rule_id} not found on {id}")),
            _ => message(e),
        })
    }

    async fn set_aggregate(
        &self,
        by: &Invoker,
        agent: &str,
        hook: HookRef,
        window: Option<String>,
    ) -> Result<String, ServiceError> {
        let found = self.hook_ref(agent, hook).await?;
        let secs = match window {
            Some(w) => service::parse_aggregate(&Value::String(w)).map_err(message)?,
            None => None,
        };
        let patch = HookPatch { aggregate_secs: Some(secs), ..HookPatch::default() };
        let id = found.id.to_string();
        self.patch(by, agent, &id, patch, "aggregate").await?;
        Ok(id)
    }

    async fn set_posting(
        &self,
        by: &Invoker,
        agent: &str,
        hook: HookRef,
        posting: Posting,
    ) -> Result<String, ServiceError> {
        let found = self.hook_ref(agent, hook).await?;
        let (patch, what) = match posting {
            Posting::NotifyChanges(v) => {
                (HookPatch { notify_changes: Some(v), ..HookPatch::default() }, "notify")
            }
            Posting::Threads(v) => (HookPatch { threads: Some(v), ..HookPatch::default() }, "threads"),
        };
        let id = found.id.to_string();
        self.patch(by, agent, &id, patch, what).await?;
        Ok(id)
    }

    async fn list_workflows(&self) -> Result<Vec<ListedWorkflow>, ServiceError> {
        let sys = crate::workflows::manage(&self.state).map_err(message)?;
        let all = sys.store.workflows().await.map_err(|e| message(e.into()))?;
        Ok(all
            .into_iter()
            .map(|w| ListedWorkflow {
                url: format!("{}/webhooks/{}", self.state.settings.public_base, w.name),
                name: w.name,
                enabled: w.enabled,
            })
            .collect())
    }

    async fn test_workflow(&self, by: &Invoker, name: &str) -> Result<(u16, String), ServiceError> {
        let st = self.acting(by, "workflows.test", Some(name));
        let sys = crate::workflows::system(&st).map_err(message)?.clone();
        let body = json!({"test": true, "from": format!("discord user {}", by.user_name)}).to_string();
        let answer = crate::workflows::trigger(
            &st,
            &sys,
            name,
            &HeaderMap::new(),
            body.as_bytes(),
            crate::workflows::Trigger::Test,
        )
        .await;
        Ok(match answer {
            Ok((status, body)) => (status.as_u16(), body.to_string()),
            Err(e) => (
                e.status.as_u16(),
                json!({"error": {"code": e.code.as_str(), "message": e.message}}).to_string(),
            ),
        })
    }

    async fn reload_workflows(&self, _by: &Invoker) -> Result<(usize, Vec<String>), ServiceError> {
        let sys = crate::workflows::manage(&self.state).map_err(message)?;
        if sys.files.dir().is_none() {
            return Err(ServiceError("this instance has no workflows directory".into()));
        }
        let errors = crate::workflow_files::scan(&self.state).await;
        let count = sys.store.workflows().await.map_err(|e| message(e.into()))?.len();
        Ok((count, errors.iter().map(ToString::to_string).collect()))
    }
}

/// `POST /interactions`: Discord's HTTP interactions endpoint, for running
/// the slash commands without a gateway connection.
pub(crate) async fn interactions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = &state.settings.discord_public_key else {
        return ApiError::not_found("the interactions endpoint needs CHORUS_DISCORD_PUBLIC_KEY")
            .into_response();
    };
    if let Err(e) = key.verify(&headers, &body, state.clock.now()) {
        // Discord sends deliberately bad signatures when the URL is saved
        // and expects 401 for them.
        return ApiError::with_status(StatusCode::UNAUTHORIZED, ErrorCode::SignatureInvalid, e.to_string())
            .into_response();
    }
    let Ok(interaction) = serde_json::from_slice::<Value>(&body) else {
        return ApiError::bad_request("body is not JSON").into_response();
    };
    match interaction["type"].as_u64() {
        Some(1) => Json(json!({"type": 1})).into_response(),
        Some(3) => Json(DiscordCommands::new(state.clone()).click(&interaction).await).into_response(),
        Some(2) => {
            let by = Invoker::from_interaction(&interaction, state.settings.discord_manager_role.as_deref());
            let commands = DiscordCommands::new(state.clone());
            let reply = chorus_discord::commands::handle_interaction(&commands, &interaction, &by).await;
            Json(reply.interaction_response()).into_response()
        }
        _ => ApiError::bad_request("only PING, application commands and buttons are handled").into_response(),
    }
}
