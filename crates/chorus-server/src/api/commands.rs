//! `/api/webhooks/{id}/commands`: the routing rules of an incoming hook.

use axum::{Json, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use chorus_core::{HookId, IncomingHook, Rule};

use super::{Api, Routes};
use crate::{
    error::{ApiError, ApiJson},
    service::{
        self, RuleSpec,
        views::{CommandView, List},
    },
    state::AppState,
};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/webhooks/{id}/commands", get(list).post(create).put(replace))
        .route("/api/webhooks/{id}/commands/{command_id}", get(show).put(update).delete(remove))
}

/// The incoming hook `id`; outgoing hooks have no routing rules.
async fn hook(state: &AppState, id: &str) -> Result<IncomingHook, ApiError> {
    let missing = || ApiError::not_found(format!("webhook {id} not found"));
    let hook_id: HookId = crate::service::hooks::resolve(state, id).await?;
    if let Some(hook) = state.store.hook(&hook_id).await? {
        return Ok(hook);
    }
    if state.store.outgoing(&hook_id).await?.is_some() {
        return Err(ApiError::bad_request("commands apply to incoming webhooks"));
    }
    Err(missing())
}

async fn find(state: &AppState, hook_id: &HookId, command_id: &str) -> Result<Rule, ApiError> {
    state
        .store
        .rules(hook_id)
        .await?
        .into_iter()
        .find(|c| c.id == command_id)
        .ok_or_else(|| ApiError::not_found(format!("command {command_id} not found")))
}

async fn list(Api(state): Api, Path(id): Path<String>) -> Result<Json<List<CommandView>>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    Ok(Json(List { items: state.store.rules(&hook_id).await?.iter().map(CommandView::of).collect() }))
}

async fn create(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    if state.store.rules(&hook_id).await?.len() >= service::COMMANDS_MAX {
        return Err(ApiError::bad_request(format!("at most {} commands a hook", service::COMMANDS_MAX)));
    }
    let can_reply = state.store.reply(&hook_id).await?.is_some();
    let command = service::rule(&state, &hook, can_reply, &spec, None, service::now(&state)).await?;
    state.store.put_rule(command.clone()).await?;
    Ok((StatusCode::CREATED, Json(CommandView::of(&command))))
}

async fn show(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
) -> Result<Json<CommandView>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    Ok(Json(CommandView::of(&find(&state, &hook_id, &command_id).await?)))
}

/// `PUT`: the rule is replaced whole; its id and creation time stay.
async fn update(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<Json<CommandView>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    let old = find(&state, &hook_id, &command_id).await?;
    let can_reply = state.store.reply(&hook_id).await?.is_some();
    let command = service::rule(&state, &hook, can_reply, &spec, Some(old.id), old.created_at).await?;
    state.store.put_rule(command.clone()).await?;
    Ok(Json(CommandView::of(&command)))
}

/// `PUT` on the collection: the body's list becomes the whole rule set.
async fn replace(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(specs): ApiJson<Vec<RuleSpec>>,
) -> Result<Json<List<CommandView>>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    let can_reply = state.store.reply(&hook_id).await?.is_some();
    let commands = service::rules(&state, &hook, can_reply, &specs, service::now(&state)).await?;
    state.store.replace_rules(&hook_id, commands).await?;
    Ok(Json(List { items: state.store.rules(&hook_id).await?.iter().map(CommandView::of).collect() }))
}

async fn remove(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    state.store.delete_rule(&hook_id, &command_id).await.map_err(|e| match e {
        chorus_core::StoreError::NotFound { .. } => {
            ApiError::not_found(format!("command {command_id} not found"))
        }
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}
