//! `/api/workflows` and `/api/runs`: workflow definitions, their runs, and
//! the decisions at approval gates.

use axum::{
    Json,
    body::Bytes,
    extract::Path,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use chorus_core::{RunId, RunQuery, RunStatus, Secret, SecretChange};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Routes};
use crate::{
    error::{ApiError, ApiQuery},
    service::views::{
        DecisionView, Page, ReloadedView, RunView, WorkflowTestView, WorkflowView, WorkflowsView,
    },
    state::AppState,
    workflows::{self, Origin, Trigger},
};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/workflows", get(list).post(create))
        .route("/api/workflows/reload", post(reload))
        .route("/api/workflows/{name}", get(show).put(replace).delete(remove))
        .route("/api/workflows/{name}/enable", post(enable))
        .route("/api/workflows/{name}/disable", post(disable))
        .route("/api/workflows/{name}/test", post(test))
        .route("/api/runs", get(runs))
        .route("/api/runs/{id}", get(run))
        .route("/api/runs/{id}/approve", post(approve))
        .route("/api/runs/{id}/deny", post(deny))
        .route("/api/runs/{id}/cancel", post(cancel))
}

async fn list(Api(state): Api) -> Result<Json<WorkflowsView>, ApiError> {
    let sys = workflows::manage(&state)?;
    let items = sys.store.workflows().await?.iter().map(|w| WorkflowView::of(&state, w)).collect();
    Ok(Json(WorkflowsView { items, errors: sys.files.errors() }))
}

/// The definition's `secret`, which the API takes as a value (at least 16
/// characters) and never shows again.
fn secret_of(body: &Value) -> Result<SecretChange, ApiError> {
    match body.get("secret") {
        None | Some(Value::Null) => Ok(SecretChange::Clear),
        Some(Value::String(s)) if (16..=256).contains(&s.len()) => {
            Ok(SecretChange::Set(Secret::new(s.clone())))
        }
        Some(_) => Err(ApiError::invalid("secret", "secret must be 16 to 256 characters of text")),
    }
}

async fn create(Api(state): Api, body: Bytes) -> Result<(StatusCode, Json<WorkflowView>), ApiError> {
    let value = definition(&body)?;
    let stored = workflows::put(&state, &value, secret_of(&value)?, Origin::Api, true).await?;
    Ok((StatusCode::CREATED, Json(WorkflowView::of(&state, &stored))))
}

fn definition(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("body: a workflow definition is a JSON object"));
    }
    Ok(value)
}

async fn show(Api(state): Api, Path(name): Path<String>) -> Result<Json<WorkflowView>, ApiError> {
    let sys = workflows::manage(&state)?;
    let w = sys.store.workflow(&name).await?.ok_or_else(|| workflows::not_found(&name))?;
    Ok(Json(WorkflowView::of(&state, &w)))
}

/// Replace a workflow; a definition without `secret` keeps the stored one
/// (`"secret": null` removes it).
async fn replace(
    Api(state): Api,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<WorkflowView>, ApiError> {
    let mut value = definition(&body)?;
    match value.get("name").and_then(Value::as_str) {
        Some(n) if n != name => {
            return Err(ApiError::invalid(
                "name",
                "the name is the URL path; create a new workflow to rename",
            ));
        }
        Some(_) => {}
        None => {
            value["name"] = json!(name);
        }
    }
    let secret = if value.get("secret").is_none() { SecretChange::Keep } else { secret_of(&value)? };
    let stored = workflows::put(&state, &value, secret, Origin::Api, false).await?;
    Ok(Json(WorkflowView::of(&state, &stored)))
}

async fn remove(Api(state): Api, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let sys = workflows::manage(&state)?;
    let w = sys.store.workflow(&name).await?.ok_or_else(|| workflows::not_found(&name))?;
    if let Some(file) = w.origin.strip_prefix("file:") {
        return Err(ApiError::conflict(format!(
            "workflow {name} is defined in {file}; remove the file instead"
        )));
    }
    sys.store.delete_workflow(&name, workflows::audit(&state, "workflows.delete", &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enable(Api(state): Api, Path(name): Path<String>) -> Result<Json<WorkflowView>, ApiError> {
    let w = workflows::set_enabled(&state, &name, true).await?;
    Ok(Json(WorkflowView::of(&state, &w)))
}

async fn disable(Api(state): Api, Path(name): Path<String>) -> Result<Json<WorkflowView>, ApiError> {
    let w = workflows::set_enabled(&state, &name, false).await?;
    Ok(Json(WorkflowView::of(&state, &w)))
}

/// Run a workflow as `POST /webhooks/{name}` would (the caller's token
/// stands in for the signature), with the body given or `{}`; answers
/// what the sender would have got.
async fn test(
    Api(state): Api,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<WorkflowTestView>, ApiError> {
    let sys = workflows::system(&state)?.clone();
    let (status, answer) =
        workflows::trigger(&state, &sys, &name, &HeaderMap::new(), &body, Trigger::Test).await?;
    Ok(Json(WorkflowTestView { status: status.as_u16(), body: answer }))
}

async fn reload(Api(state): Api) -> Result<Json<ReloadedView>, ApiError> {
    let sys = workflows::manage(&state)?;
    if sys.files.dir().is_none() {
        return Err(ApiError::conflict("this instance has no workflows directory"));
    }
    let errors = crate::workflow_files::scan(&state).await;
    let count = sys.store.workflows().await?.len();
    Ok(Json(ReloadedView { workflows: count, errors }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunParams {
    #[serde(default = "super::default_limit")]
    limit: usize,
    cursor: Option<String>,
    workflow: Option<String>,
    status: Option<String>,
}

async fn runs(Api(state): Api, ApiQuery(p): ApiQuery<RunParams>) -> Result<Json<Page<RunView>>, ApiError> {
    let sys = workflows::manage(&state)?;
    if !(1..=250).contains(&p.limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 250"));
    }
    let status = p
        .status
        .map(|s| {
            RunStatus::parse(&s).ok_or_else(|| {
                let names: Vec<&str> = RunStatus::ALL.iter().map(|x| x.as_str()).collect();
                ApiError::invalid("status", format!("status {s:?}: use {}", names.join(", ")))
            })
        })
        .transpose()?;
    let page =
        sys.store.runs(RunQuery { workflow: p.workflow, status, limit: p.limit, cursor: p.cursor }).await?;
    let items = page.items.iter().map(|r| RunView::of(r, false)).collect();
    Ok(Json(Page { items, next_cursor: page.next_cursor }))
}

fn run_id(id: &str) -> Result<RunId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found(format!("no run {id}")))
}

async fn run(Api(state): Api, Path(id): Path<String>) -> Result<Json<RunView>, ApiError> {
    let sys = workflows::manage(&state)?;
    let run =
        sys.store.run(&run_id(&id)?).await?.ok_or_else(|| ApiError::not_found(format!("no run {id}")))?;
    Ok(Json(RunView::of(&run, true)))
}

/// Who decides through the API: the token's holder.
fn decider(state: &AppState) -> String {
    state.actor.as_ref().map_or_else(|| "api".to_owned(), |a| format!("{} via {}", a.actor, a.via))
}

async fn decide(state: &AppState, id: &str, approve: bool) -> Result<Json<DecisionView>, ApiError> {
    let id = run_id(id)?;
    let gate = workflows::pending_gate(state, &id).await?;
    let decided = workflows::decide(state, &gate, approve, &decider(state), true).await?;
    Ok(Json(DecisionView {
        run_id: id,
        approval: decided.id,
        step: decided.step_name,
        status: decided.status,
        decided_by: decided.decided_by,
        decided_at: decided.decided_at,
    }))
}

async fn approve(Api(state): Api, Path(id): Path<String>) -> Result<Json<DecisionView>, ApiError> {
    decide(&state, &id, true).await
}

async fn deny(Api(state): Api, Path(id): Path<String>) -> Result<Json<DecisionView>, ApiError> {
    decide(&state, &id, false).await
}

async fn cancel(Api(state): Api, Path(id): Path<String>) -> Result<Json<RunView>, ApiError> {
    let run = workflows::cancel(&state, &run_id(&id)?).await?;
    Ok(Json(RunView::of(&run, false)))
}
