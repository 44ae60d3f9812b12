//! `/api/webhooks/{id}/commands`: the routing rules of an incoming hook.

use axum::{Json, extract::Path, http::StatusCode, response::IntoResponse, routing::get};
use chorus_core::{HookId, IncomingHook};

use super::{Api, Routes};
use crate::{
    error::{ApiError, ApiJson},
    service::{
        RuleSpec, rules,
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

async fn list(Api(state): Api, Path(id): Path<String>) -> Result<Json<List<CommandView>>, ApiError> {
    let hook = hook(&state, &id).await?;
    Ok(Json(List { items: state.store.rules(&hook.id).await?.iter().map(CommandView::of).collect() }))
}

async fn create(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<impl IntoResponse, ApiError> {
    let hook = hook(&state, &id).await?;
    let made = rules::add(&state, &hook, &spec).await?;
    Ok((StatusCode::CREATED, Json(CommandView::of(&made))))
}

async fn show(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
) -> Result<Json<CommandView>, ApiError> {
    let hook = hook(&state, &id).await?;
    Ok(Json(CommandView::of(&rules::find(&state, &hook, &command_id).await?)))
}

/// `PUT`: the rule is replaced whole; its id and creation time stay.
async fn update(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
    ApiJson(spec): ApiJson<RuleSpec>,
) -> Result<Json<CommandView>, ApiError> {
    let hook = hook(&state, &id).await?;
    Ok(Json(CommandView::of(&rules::replace(&state, &hook, &command_id, &spec).await?)))
}

/// `PUT` on the collection: the body's list becomes the whole rule set.
async fn replace(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(specs): ApiJson<Vec<RuleSpec>>,
) -> Result<Json<List<CommandView>>, ApiError> {
    let hook = hook(&state, &id).await?;
    let set = rules::replace_all(&state, &hook, &specs).await?;
    Ok(Json(List { items: set.iter().map(CommandView::of).collect() }))
}

async fn remove(
    Api(state): Api,
    Path((id, command_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let hook = hook(&state, &id).await?;
    rules::remove(&state, &hook, &command_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
