//! Agents: checking a new one and how every surface shows one.

use chorus_core::{AgentName, NewAgent, Secret};
use serde::Deserialize;

use crate::error::ApiError;

/// A new agent: it needs a channel, a Discord webhook URL, or both.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAgent {
    #[schemars(regex(pattern = AgentName::PATTERN))]
    pub(crate) name: String,
    /// A Discord channel id: messages go there through the bot.
    #[schemars(regex(pattern = crate::api::SNOWFLAKE))]
    pub(crate) channel_id: Option<String>,
    /// `https://discord.com/api/webhooks/<id>/<token>`.
    pub(crate) discord_webhook_url: Option<String>,
    #[serde(default = "yes")]
    pub(crate) enabled: bool,
}

fn yes() -> bool {
    true
}

pub(crate) fn parse_name(name: &str) -> Result<AgentName, ApiError> {
    name.parse().map_err(|e: chorus_core::IdError| ApiError::bad_request(e.to_string()))
}

pub(crate) fn check_channel(id: &str) -> Result<(), ApiError> {
    // Discord snowflakes are positive 64-bit integers.
    match id.parse::<u64>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(ApiError::bad_request(format!("channel_id {id:?} is not a Discord channel id (a number)"))),
    }
}

pub(crate) fn check_webhook_url(url: &str) -> Result<Secret, ApiError> {
    chorus_discord::parse_webhook_url(url).map(|_| Secret::new(url)).ok_or_else(|| {
        ApiError::bad_request(
            "discord_webhook_url must look like https://discord.com/api/webhooks/<id>/<token>",
        )
    })
}

/// Check a new agent: the API's and the Discord commands' create.
pub(crate) fn new_agent(body: CreateAgent) -> Result<NewAgent, ApiError> {
    let name = parse_name(&body.name)?;
    if let Some(c) = &body.channel_id {
        check_channel(c)?;
    }
    let url = body.discord_webhook_url.as_deref().map(check_webhook_url).transpose()?;
    if body.channel_id.is_none() && url.is_none() {
        return Err(ApiError::bad_request("an agent needs a channel_id or a discord_webhook_url"));
    }
    Ok(NewAgent { name, channel_id: body.channel_id, discord_webhook_url: url, enabled: body.enabled })
}

/// Turn an agent on or off: a disabled agent's hooks answer 503.
pub(crate) async fn set_enabled(
    state: &crate::state::AppState,
    name: &str,
    enabled: bool,
) -> Result<chorus_core::Agent, ApiError> {
    let name = parse_name(name).map_err(|_| ApiError::not_found(format!("agent {name} not found")))?;
    let patch = chorus_core::AgentPatch { enabled: Some(enabled), ..chorus_core::AgentPatch::default() };
    Ok(state.store.update_agent(&name, patch).await?)
}
