//! The gateway side: one shard, whose dispatches are read as JSON and handed
//! to chorus-discord's command handling (the same code `POST /interactions`
//! runs), answered through twilight's REST client.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use chorus_core::{AgentName, Store};
use chorus_deliver::Emitter;
use chorus_discord::{
    DiscordSinkConfig,
    commands::{self, Invoker, Reply},
};
use chorus_server::{CancellationToken, Chorus, Config, DiscordCommands};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use twilight_gateway::{CloseFrame, ConfigBuilder, Intents, Message, Shard, ShardId};
use twilight_http::Client;
use twilight_model::{
    channel::{ChannelType, permission_overwrite::PermissionOverwrite},
    guild::Permissions,
    id::{
        Id,
        marker::{ApplicationMarker, ChannelMarker, GuildMarker, InteractionMarker, RoleMarker, UserMarker},
    },
};
use twilight_util::permission_calculator::PermissionCalculator;

/// What the shard needs: the token, the intents for `!hook` text commands,
/// and a gateway stand-in when configured.
pub(crate) fn shard_config(config: &Config) -> twilight_gateway::Config {
    let token = config.discord_token.clone().unwrap_or_default();
    let token = token.strip_prefix("Bot ").map(str::to_owned).unwrap_or(token);
    let intents = Intents::GUILD_MESSAGES | Intents::DIRECT_MESSAGES | Intents::MESSAGE_CONTENT;
    let mut builder = ConfigBuilder::new(token, intents);
    if let Some(url) = &config.discord_gateway {
        builder = builder.proxy_url(url.trim_end_matches('/').to_owned());
    }
    builder.build()
}

/// The bot: REST client, command handling, and the events it emits.
#[derive(Clone)]
pub(crate) struct Bot {
    rest: Arc<Client>,
    commands: DiscordCommands,
    emitter: Emitter,
    store: Arc<dyn Store>,
    application_id: Option<String>,
    guild_id: Option<String>,
    manager_role: Option<String>,
    started: Arc<AtomicBool>,
}

impl Bot {
    pub(crate) fn new(config: &Config, chorus: &Chorus) -> Self {
        let rest = chorus_discord::rest_client(&DiscordSinkConfig {
            token: config.discord_token.clone(),
            proxy: config.discord_proxy.clone(),
            timeout: None,
        });
        Self {
            rest: Arc::new(rest),
            commands: chorus.discord_commands(),
            emitter: chorus.emitter(),
            store: chorus.state().store.clone(),
            application_id: config.discord_application_id.clone(),
            guild_id: config.discord_guild_id.clone(),
            manager_role: config.discord_manager_role.clone(),
            started: Arc::default(),
        }
    }

    /// Read the gateway until `shutdown`, then close the session cleanly.
    /// `false` when the gateway ended the connection for good instead (a
    /// fatal close code such as an invalid token).
    pub(crate) async fn run(&self, config: twilight_gateway::Config, shutdown: CancellationToken) -> bool {
        let mut shard = Shard::with_config(ShardId::ONE, config);
        let asked = loop {
            let item = tokio::select! {
                () = shutdown.cancelled() => break true,
                item = shard.next() => item,
            };
            match item {
                None => break false,
                Some(Ok(Message::Text(text))) => {
                    // Handled beside the shard so heartbeats keep flowing.
                    let bot = self.clone();
                    tokio::spawn(async move { bot.on_payload(&text).await });
                }
                Some(Ok(Message::Close(frame))) => {
                    tracing::info!(?frame, "gateway closed the session; reconnecting");
                }
                Some(Err(e)) => tracing::warn!(error = %e, "gateway error"),
            }
        };
        if !asked {
            return false;
        }
        shard.close(CloseFrame::NORMAL);
        // Drain until the close is acknowledged, so Discord sees a clean end.
        let drained = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while let Some(item) = shard.next().await {
                if matches!(item, Ok(Message::Close(_)) | Err(_)) {
                    break;
                }
            }
        });
        let _ = drained.await;
        true
    }

    async fn on_payload(&self, text: &str) {
        let Ok(payload) = serde_json::from_str::<Value>(text) else { return };
        if payload["op"] != 0 {
            return;
        }
        let data = &payload["d"];
        match payload["t"].as_str() {
            Some("READY") => self.on_ready(data).await,
            Some("INTERACTION_CREATE") if data["type"] == 2 => self.on_command(data).await,
            Some("INTERACTION_CREATE") if data["type"] == 3 => self.on_click(data).await,
            Some("MESSAGE_CREATE") => self.on_message(data).await,
            _ => {}
        }
    }

    /// Register the commands (idempotent: a bulk overwrite) and, once per
    /// run, emit `agent.started` for every enabled agent.
    async fn on_ready(&self, ready: &Value) {
        let app =
            self.application_id.clone().or_else(|| ready["application"]["id"].as_str().map(str::to_owned));
        match app.as_deref().and_then(|a| a.parse::<Id<ApplicationMarker>>().ok()) {
            Some(app) => self.register(app).await,
            None => tracing::warn!(
                "no application id (CHORUS_DISCORD_APPLICATION_ID): slash commands not registered"
            ),
        }
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let bot_user = ready["user"]["username"].clone();
        self.emit_for_agents("agent.started", json!({"bot": bot_user})).await;
    }

    async fn register(&self, app: Id<ApplicationMarker>) {
        let definitions = commands::definitions();
        let client = self.rest.interaction(app);
        let result = match self.guild_id.as_deref().and_then(|g| g.parse::<Id<GuildMarker>>().ok()) {
            Some(guild) => {
                client.set_guild_commands(guild, &definitions).await.map(|_| format!("guild {guild}"))
            }
            None => client.set_global_commands(&definitions).await.map(|_| "global".to_owned()),
        };
        match result {
            Ok(scope) => tracing::info!(%scope, "slash commands registered"),
            Err(e) => tracing::error!(error = %e, "registering slash commands failed"),
        }
    }

    /// `agent.stopped` for every enabled agent, stored before shutdown ends.
    pub(crate) async fn stopped(&self) {
        if self.started.load(Ordering::SeqCst) {
            self.emit_for_agents("agent.stopped", json!({"reason": "shutdown"})).await;
        }
    }

    async fn emit_for_agents(&self, event: &str, data: Value) {
        let agents = match self.store.agents().await {
            Ok(a) => a,
            Err(e) => return tracing::warn!(error = %e, event, "could not list agents"),
        };
        for agent in agents.into_iter().filter(|a| a.enabled) {
            let name: AgentName = agent.name.clone();
            if let Err(e) = self.emitter.emit(event, Some(name), data.clone(), Value::Null).await {
                tracing::warn!(error = %e, event, agent = %agent.name, "could not emit");
            }
        }
    }

    async fn on_command(&self, interaction: &Value) {
        let by = Invoker::from_interaction(interaction, self.manager_role.as_deref());
        let reply = commands::handle_interaction(&self.commands, interaction, &by).await;
        self.respond(interaction, &reply.to_response()).await;
    }

    /// Answer an interaction through its callback.
    async fn respond(
        &self,
        interaction: &Value,
        response: &twilight_model::http::interaction::InteractionResponse,
    ) {
        let (Some(id), Some(token), Some(app)) = (
            interaction["id"].as_str().and_then(|i| i.parse::<Id<InteractionMarker>>().ok()),
            interaction["token"].as_str(),
            interaction["application_id"].as_str().and_then(|a| a.parse::<Id<ApplicationMarker>>().ok()),
        ) else {
            return tracing::warn!("interaction without id, token or application id");
        };
        if let Err(e) = self.rest.interaction(app).create_response(id, token, response).await {
            tracing::warn!(error = %e, "answering an interaction failed");
        }
    }

    /// A button click: an approval gate's Approve / Deny.
    async fn on_click(&self, interaction: &Value) {
        let answer = self.commands.click(interaction).await;
        match serde_json::from_value(answer) {
            Ok(response) => self.respond(interaction, &response).await,
            Err(e) => tracing::warn!(error = %e, "a click's answer does not fit Discord's model"),
        }
    }

    async fn on_message(&self, message: &Value) {
        let content = message["content"].as_str().unwrap_or_default();
        if message["author"]["bot"] == true {
            return;
        }
        // Only replies to Chorus's own question messages are answers; other
        // replies are conversation and cost nothing here.
        let answering = commands::question_of(message).is_some();
        if !answering && !content.trim_start().starts_with("!hook") {
            return;
        }
        let by = Invoker {
            user_id: message["author"]["id"].as_str().unwrap_or_default().to_owned(),
            user_name: message["author"]["username"].as_str().unwrap_or("unknown").to_owned(),
            channel_id: message["channel_id"].as_str().map(str::to_owned),
            can_manage: self.may_manage(message).await,
        };
        let reply = if answering {
            // A reply to a question Chorus posted: the answer goes back to
            // the question's source.
            commands::handle_answer(&self.commands, message, &by).await
        } else {
            commands::handle_text(&self.commands, content, &by).await
        };
        let Some(reply) = reply else { return };
        self.post(message["channel_id"].as_str(), &by.user_id, &reply).await;
    }

    /// Whether the author of a guild message may manage hooks: the manager
    /// role, or Manage Webhooks / Administrator in this channel, computed as
    /// Discord does (the guild owner holds every permission; the channel's
    /// overwrites apply) by twilight's `PermissionCalculator`.
    async fn may_manage(&self, message: &Value) -> bool {
        let roles: Vec<&str> = message["member"]["roles"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if self.manager_role.as_deref().is_some_and(|m| roles.contains(&m)) {
            return true;
        }
        let (Some(guild), Some(channel), Some(user)) = (
            message["guild_id"].as_str().and_then(|v| v.parse::<Id<GuildMarker>>().ok()),
            message["channel_id"].as_str().and_then(|v| v.parse::<Id<ChannelMarker>>().ok()),
            message["author"]["id"].as_str().and_then(|v| v.parse::<Id<UserMarker>>().ok()),
        ) else {
            // Direct messages name no guild, so no permissions.
            return false;
        };
        match self.channel_permissions(guild, channel, user, &roles).await {
            Ok(granted) => commands::may_manage(granted),
            Err(e) => {
                tracing::warn!(error = %e, "the author's permissions could not be read; refusing");
                false
            }
        }
    }

    async fn channel_permissions(
        &self,
        guild: Id<GuildMarker>,
        channel: Id<ChannelMarker>,
        user: Id<UserMarker>,
        member_roles: &[&str],
    ) -> Result<Permissions, Box<dyn std::error::Error + Send + Sync>> {
        let guild_roles = self.rest.roles(guild).await?.models().await?;
        let everyone = guild_roles
            .iter()
            .find(|r| r.id.get() == guild.get())
            .map_or(Permissions::empty(), |r| r.permissions);
        let mine: Vec<(Id<RoleMarker>, Permissions)> = guild_roles
            .iter()
            .filter(|r| member_roles.contains(&r.id.to_string().as_str()))
            .map(|r| (r.id, r.permissions))
            .collect();
        // Only the owner id and the overwrites are read from these answers,
        // so they are taken as JSON rather than whole models.
        let guild_json: Value = serde_json::from_slice(&self.rest.guild(guild).await?.bytes().await?)?;
        let channel_json: Value = serde_json::from_slice(&self.rest.channel(channel).await?.bytes().await?)?;
        let overwrites: Vec<PermissionOverwrite> =
            serde_json::from_value(channel_json["permission_overwrites"].clone()).unwrap_or_default();
        let kind = channel_json["type"]
            .as_u64()
            .and_then(|t| u8::try_from(t).ok())
            .map_or(ChannelType::GuildText, ChannelType::from);
        let mut calculator = PermissionCalculator::new(guild, user, everyone, &mine);
        if let Some(owner) = guild_json["owner_id"].as_str().and_then(|o| o.parse::<Id<UserMarker>>().ok()) {
            calculator = calculator.owner_id(owner);
        }
        Ok(calculator.in_channel(kind, &overwrites))
    }

    /// Post a text command's reply in the channel, and its private part
    /// (which may hold a secret) to the user by direct message.
    async fn post(&self, channel: Option<&str>, user: &str, reply: &Reply) {
        if let Some(channel) = channel.and_then(|c| c.parse::<Id<ChannelMarker>>().ok())
            && let Err(e) = self.rest.create_message(channel).content(&reply.content).await
        {
            tracing::warn!(error = %e, "posting a !hook reply failed");
        }
        let Some(dm) = &reply.dm else { return };
        let Ok(user) = user.parse::<Id<UserMarker>>() else { return };
        let opened = match self.rest.create_private_channel(user).await {
            Ok(r) => r.model().await.map(|c| c.id).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "opening a direct message failed");
                None
            }
        };
        if let Some(dm_channel) = opened
            && let Err(e) = self.rest.create_message(dm_channel).content(dm).await
        {
            tracing::warn!(error = %e, "sending a direct message failed");
        }
    }
}
