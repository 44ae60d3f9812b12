use axum::{
    Json,
    extract::Path,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use chorus_core::AgentPatch;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Routes};
use super::{PageParams, double_option};
use crate::{
    error::{ApiError, ApiJson, ApiQuery},
    service::agents::{CreateAgent, check_channel, check_webhook_url, new_agent, parse_name},
    service::views::{AgentView, Page},
    state::AppState,
};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/agents", post(create).get(list))
        .route("/api/agents/{name}", get(show).patch(update).delete(remove))
        .route("/api/agents/{name}/enable", post(enable))
        .route("/api/agents/{name}/disable", post(disable))
}

/// Changes to an agent; `null` removes a channel or webhook URL.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateAgent {
    /// A Discord channel id.
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(regex(pattern = super::SNOWFLAKE))]
    channel_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    discord_webhook_url: Option<Option<String>>,
    enabled: Option<bool>,
}

async fn create(Api(state): Api, ApiJson(body): ApiJson<CreateAgent>) -> Result<impl IntoResponse, ApiError> {
    let agent = state.store.create_agent(new_agent(body)?).await?;
    tracing::info!(agent = %agent.name, "agent created");
    Ok((StatusCode::CREATED, Json(AgentView::of(&agent))))
}

async fn list(
    Api(state): Api,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Page<AgentView>>, ApiError> {
    if params.status.is_some() {
        return Err(ApiError::invalid("status", "agents have no status filter"));
    }
    let agents = state.store.agents().await?;
    let keyed = agents.iter().map(|a| (a.name.to_string(), AgentView::of(a))).collect();
    Ok(Json(super::keyed_page(keyed, params.limit()?, params.cursor.as_deref())))
}

async fn show(Api(state): Api, Path(name): Path<String>) -> Result<Json<AgentView>, ApiError> {
    let name = parse_name(&name).map_err(|_| ApiError::not_found(format!("agent {name} not found")))?;
    let agent = state
        .store
        .agent(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent {name} not found")))?;
    Ok(Json(AgentView::of(&agent)))
}

async fn update(
    Api(state): Api,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateAgent>,
) -> Result<Json<AgentView>, ApiError> {
    let name = parse_name(&name).map_err(|_| ApiError::not_found(format!("agent {name} not found")))?;
    if let Some(Some(c)) = &body.channel_id {
        check_channel(c)?;
    }
    let url = match body.discord_webhook_url {
        Some(Some(u)) => Some(Some(check_webhook_url(&u)?)),
        Some(None) => Some(None),
        None => None,
    };
    let current = state
        .store
        .agent(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent {name} not found")))?;
    let was_degraded = current.degraded.clone();
    let channel_after = body.channel_id.clone().unwrap_or(current.channel_id);
    let url_after = url.clone().unwrap_or(current.discord_webhook_url);
    if channel_after.is_none() && url_after.is_none() {
        return Err(ApiError::bad_request("an agent needs a channel_id or a discord_webhook_url"));
    }
    let agent = state
        .store
        .update_agent(
            &name,
            AgentPatch { channel_id: body.channel_id, discord_webhook_url: url, enabled: body.enabled },
        )
        .await?;
    if let (Some(reason), None) = (was_degraded, &agent.degraded) {
        // The messages that waited for a new URL go out now.
        state.emitter.wake();
        let data = json!({"agent": agent.name, "component": "discord_webhook", "was": reason});
        state.emitter.emit("system.health.restored", Some(agent.name.clone()), data, Value::Null).await?;
    }
    Ok(Json(AgentView::of(&agent)))
}

async fn set_enabled(state: &AppState, name: &str, enabled: bool) -> Result<Json<AgentView>, ApiError> {
    Ok(Json(AgentView::of(&crate::service::agents::set_enabled(state, name, enabled).await?)))
}

async fn enable(Api(state): Api, Path(name): Path<String>) -> Result<Json<AgentView>, ApiError> {
    set_enabled(&state, &name, true).await
}

async fn disable(Api(state): Api, Path(name): Path<String>) -> Result<Json<AgentView>, ApiError> {
    set_enabled(&state, &name, false).await
}

async fn remove(Api(state): Api, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let name = parse_name(&name).map_err(|_| ApiError::not_found(format!("agent {name} not found")))?;
    state.store.delete_agent(&name).await?;
    tracing::info!(agent = %name, "agent deleted");
    Ok(StatusCode::NO_CONTENT)
}
