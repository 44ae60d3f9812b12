//! `/api/tasks`: work rules hand to agents (`create_task`), and how agents
//! report it done.

use axum::{
    Json,
    body::Bytes,
    extract::Path,
    routing::{get, post},
};
use chorus_core::{AgentName, Task, TaskQuery, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Routes};
use crate::{
    error::ErrorCode,
    error::{ApiError, ApiJson, ApiQuery},
    service::{self, views::Page},
    state::AppState,
};

/// Longest title, body or result accepted.
const TITLE_MAX: usize = 200;
const TEXT_MAX: usize = 20_000;

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/tasks", get(list))
        .route("/api/tasks/{id}", get(show).patch(update))
        .route("/api/tasks/{id}/complete", post(complete))
        .route("/api/tasks/{id}/fail", post(fail))
        .route("/api/tasks/{id}/cancel", post(cancel))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default = "super::default_limit")]
    limit: usize,
    cursor: Option<String>,
    agent: Option<String>,
    status: Option<String>,
}

async fn list(Api(state): Api, ApiQuery(p): ApiQuery<ListParams>) -> Result<Json<Page<Task>>, ApiError> {
    if !(1..=250).contains(&p.limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 250"));
    }
    let agent = p
        .agent
        .map(|a| a.parse::<AgentName>().map_err(|e| ApiError::invalid("agent", e.to_string())))
        .transpose()?;
    let status = p.status.map(|s| parse_status(&s)).transpose()?;
    let page = state.store.tasks(TaskQuery { agent, status, limit: p.limit, cursor: p.cursor }).await?;
    Ok(Json(Page { items: page.items, next_cursor: page.next_cursor }))
}

fn parse_status(s: &str) -> Result<TaskStatus, ApiError> {
    TaskStatus::parse(s).ok_or_else(|| {
        let names: Vec<&str> = TaskStatus::ALL.iter().map(|x| x.as_str()).collect();
        ApiError::invalid("status", format!("status {s:?}: use {}", names.join(", ")))
    })
}

async fn find(state: &AppState, id: &str) -> Result<Task, ApiError> {
    state.store.task(id).await?.ok_or_else(|| ApiError::not_found(format!("task {id} not found")))
}

async fn show(Api(state): Api, Path(id): Path<String>) -> Result<Json<Task>, ApiError> {
    Ok(Json(find(&state, &id).await?))
}

/// Changes to an open task.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TaskPatch")]
pub(super) struct Patch {
    #[schemars(length(min = 1, max = TITLE_MAX), regex(pattern = r"\S"))]
    title: Option<String>,
    #[schemars(length(max = TEXT_MAX))]
    body: Option<String>,
}

async fn update(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<Patch>,
) -> Result<Json<Task>, ApiError> {
    if let Some(t) = &patch.title
        && (t.trim().is_empty() || t.chars().count() > TITLE_MAX)
    {
        return Err(ApiError::invalid("title", format!("title must be 1 to {TITLE_MAX} characters")));
    }
    check_text("body", patch.body.as_deref())?;
    find(&state, &id).await?;
    let task = state.store.update_task(&id, patch.title, patch.body, service::now(&state)).await?;
    Ok(Json(task))
}

fn check_text(field: &str, text: Option<&str>) -> Result<(), ApiError> {
    if text.is_some_and(|t| t.chars().count() > TEXT_MAX) {
        return Err(ApiError::invalid(field, format!("{field} is at most {TEXT_MAX} characters")));
    }
    Ok(())
}

/// How a task ended, in the agent's words.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TaskOutcome")]
pub(super) struct Outcome {
    #[schemars(length(max = TEXT_MAX))]
    result: Option<String>,
}

/// The optional body of complete, fail and cancel.
fn outcome(body: &[u8]) -> Result<Outcome, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Outcome::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))
}

async fn complete(Api(state): Api, Path(id): Path<String>, body: Bytes) -> Result<Json<Task>, ApiError> {
    finish(&state, &id, TaskStatus::Done, outcome(&body)?).await
}

async fn fail(Api(state): Api, Path(id): Path<String>, body: Bytes) -> Result<Json<Task>, ApiError> {
    finish(&state, &id, TaskStatus::Failed, outcome(&body)?).await
}

async fn cancel(Api(state): Api, Path(id): Path<String>, body: Bytes) -> Result<Json<Task>, ApiError> {
    finish(&state, &id, TaskStatus::Cancelled, outcome(&body)?).await
}

/// A task's result as a comment on the thread of the event that made it
/// (rules with `"reply": true`); `None` when that event has no thread.
async fn result_comment(
    state: &AppState,
    task: &Task,
    status: TaskStatus,
    result: Option<&str>,
) -> Result<Option<chorus_core::NewDelivery>, ApiError> {
    let Some(event_id) = &task.event_id else { return Ok(None) };
    let Some(event) = state.store.event(event_id).await? else { return Ok(None) };
    let Ok(payload) = serde_json::from_slice::<Value>(&event.body) else { return Ok(None) };
    let head = if status == TaskStatus::Done { "✅ Done" } else { "❌ Could not be done" };
    let text = match result {
        Some(r) => format!("{head}: {}\n\n{r}", task.title),
        None => format!("{head}: {}", task.title),
    };
    match chorus_deliver::reply::comment(event.source, &payload, &text) {
        Ok(c) => Ok(Some(chorus_deliver::reply_delivery(&state.clock, &event, &c))),
        Err(why) => {
            tracing::info!(task = %task.id, reason = %why, "task result not commented back");
            Ok(None)
        }
    }
}

/// Finish a task and emit what subscribers hear about it, in one
/// transaction: `agent.task_complete` and `task.executed` when done,
/// `task.failed` when failed; nothing on cancel.
async fn finish(
    state: &AppState,
    id: &str,
    status: TaskStatus,
    outcome: Outcome,
) -> Result<Json<Task>, ApiError> {
    check_text("result", outcome.result.as_deref())?;
    let task = find(state, id).await?;
    if task.status.is_final() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("task {id} is already {}", task.status.as_str()),
        ));
    }
    let data = json!({
        "task_id": task.id,
        "title": task.title,
        "status": status,
        "result": outcome.result,
        "hook_id": task.hook_id,
        "event_id": task.event_id,
        "url": task.url,
    });
    let names: &[&str] = match status {
        TaskStatus::Done => &["agent.task_complete", "task.executed"],
        TaskStatus::Failed => &["task.failed"],
        TaskStatus::Open | TaskStatus::Cancelled => &[],
    };
    let events = names
        .iter()
        .map(|name| state.emitter.prepare(name, Some(task.agent.clone()), data.clone(), Value::Null))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::from)?;
    let deliveries = match status {
        TaskStatus::Done | TaskStatus::Failed if task.reply => {
            result_comment(state, &task, status, outcome.result.as_deref()).await?.into_iter().collect()
        }
        _ => Vec::new(),
    };
    let wake = !events.is_empty() || !deliveries.is_empty();
    let task =
        state.store.finish_task(id, status, outcome.result, service::now(state), events, deliveries).await?;
    if wake {
        state.emitter.wake();
    }
    Ok(Json(task))
}
