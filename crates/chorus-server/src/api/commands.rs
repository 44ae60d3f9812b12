//! `/api/webhooks/{id}/commands`: the routing rules of an incoming hook.

use axum::{Json, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use chorus_core::{HookId, IncomingHook, Rule};
use serde_json::{Value, json};

use super::{Api, Routes};
use crate::{
    error::{ApiError, ApiJson},
    service::{self, RuleSpec},
    state::AppState,
};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/webhooks/{id}/commands", get(list).post(create).put(replace))
        .route("/api/webhooks/{id}/commands/{command_id}", get(show).put(update).delete(remove))
}

/// A rule as the API shows it.
pub(crate) fn view(c: &Rule) -> Value {
    json!({
        "id": c.id,
        "hook_id": c.hook_id,
        "trigger": c.trigger,
        "action": c.action,
        "agent": c.agent,
        "template": c.template,
        "conditions": c.conditions,
        "url": c.url,
        "priority": c.priority,
        "stop": c.stop,
        "reply": c.reply,
        "signature": (c.action == chorus_core::Action::Forward).then_some(c.signature),
        "created_at": c.created_at,
    })
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

async fn list(Api(state): Api, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    let items: Vec<Value> = state.store.rules(&hook_id).await?.iter().map(view).collect();
    Ok(Json(json!({"items": items})))
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
    Ok((StatusCode::CREATED, Json(view(&command))))
}

async fn show(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    Ok(Json(view(&find(&state, &hook_id, &command_id).await?)))
}

/// `PUT`: the rule is replaced whole; its id and creation time stay.
async fn update(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<Json<Value>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    let old = find(&state, &hook_id, &command_id).await?;
    let can_reply = state.store.reply(&hook_id).await?.is_some();
    let command = service::rule(&state, &hook, can_reply, &spec, Some(old.id), old.created_at).await?;
    state.store.put_rule(command.clone()).await?;
    Ok(Json(view(&command)))
}

/// `PUT` on the collection: the body's list becomes the whole rule set.
async fn replace(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(specs): ApiJson<Vec<RuleSpec>>,
) -> Result<Json<Value>, ApiError> {
    let hook = hook(&state, &id).await?;
    let hook_id = hook.id.clone();
    let can_reply = state.store.reply(&hook_id).await?.is_some();
    let commands = service::rules(&state, &hook, can_reply, &specs, service::now(&state)).await?;
    state.store.replace_rules(&hook_id, commands).await?;
    let items: Vec<Value> = state.store.rules(&hook_id).await?.iter().map(view).collect();
    Ok(Json(json!({"items": items})))
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
