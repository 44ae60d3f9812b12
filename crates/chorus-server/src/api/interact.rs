//! Seed 001's interactive actions on an incoming hook's events:
//! `POST /api/webhooks/{id}/comment`, `/ask` and `/respond`. Each goes back
//! to the event's source through the delivery engine (a comment on the
//! issue or merge request, or Slack's `response_url`).

use axum::{Json, extract::Path, http::StatusCode, routing::post};
use chorus_core::{Event, EventId, IncomingHook, Question, QuestionStatus};
use serde::Deserialize;

use super::{Api, Routes};
use crate::{
    error::{ApiError, ApiJson},
    service::{
        self,
        interact::{answer, back_to_source},
        views::{AskedView, WrittenView},
    },
    state::AppState,
};

/// Longest comment, question or answer.
const TEXT_MAX: usize = 65_536;

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/webhooks/{id}/comment", post(comment))
        .route("/api/webhooks/{id}/ask", post(ask))
        .route("/api/webhooks/{id}/respond", post(respond))
}

/// A comment on the thread of an event at its source.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "InteractComment")]
pub(super) struct CommentBody {
    event_id: String,
    #[schemars(length(min = 1, max = TEXT_MAX), regex(pattern = r"\S"))]
    message: String,
}

/// A question to the people at an event's source.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "InteractAsk")]
pub(super) struct AskBody {
    event_id: String,
    #[schemars(length(min = 1, max = TEXT_MAX), regex(pattern = r"\S"))]
    question: String,
}

/// An answer at an event's source; it closes the event's open question.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "InteractRespond")]
pub(super) struct RespondBody {
    event_id: String,
    #[schemars(length(min = 1, max = TEXT_MAX), regex(pattern = r"\S"))]
    response: String,
}

fn check_text(field: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > TEXT_MAX {
        return Err(ApiError::invalid(field, format!("{field} must be 1 to {TEXT_MAX} characters")));
    }
    Ok(text.to_owned())
}

/// The incoming hook `id` and its event `event_id` (404 for either unknown,
/// or for an event of another hook).
async fn hook_and_event(
    state: &AppState,
    id: &str,
    event_id: &str,
) -> Result<(IncomingHook, Event), ApiError> {
    let hook = match crate::service::hooks::find_any(state, id).await? {
        crate::service::hooks::Found::Incoming(h) => h,
        crate::service::hooks::Found::Outgoing(_) => {
            return Err(ApiError::bad_request("comment, ask and respond apply to incoming webhooks"));
        }
    };
    let missing = || ApiError::not_found(format!("event {event_id} not found on webhook {id}"));
    let event_id: EventId = event_id.parse().map_err(|_| missing())?;
    let event = state.store.event(&event_id).await?.filter(|e| e.hook_id == hook.id).ok_or_else(missing)?;
    Ok((hook, event))
}

async fn comment(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<(StatusCode, Json<WrittenView>), ApiError> {
    let text = check_text("message", &body.message)?;
    let (hook, event) = hook_and_event(&state, &id, &body.event_id).await?;
    let d = back_to_source(&state, &hook, &event, &text).await?;
    let delivery_id = d.id.clone();
    state.store.interact(vec![d], None, None).await?;
    state.emitter.wake();
    Ok((StatusCode::ACCEPTED, Json(WrittenView { event_id: event.id, delivery_id, question_id: None })))
}

async fn ask(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AskBody>,
) -> Result<(StatusCode, Json<AskedView>), ApiError> {
    let text = check_text("question", &body.question)?;
    let (hook, event) = hook_and_event(&state, &id, &body.event_id).await?;
    let d = back_to_source(&state, &hook, &event, &format!("❓ {text}")).await?;
    let q = Question {
        id: chorus_core::random_token("q_", 12),
        hook_id: hook.id.clone(),
        event_id: event.id.clone(),
        agent: hook.agent.clone(),
        question: text,
        status: QuestionStatus::Pending,
        answer: None,
        created_at: service::now(&state),
        answered_at: None,
    };
    let v = AskedView { question: q.clone(), delivery_id: d.id.clone() };
    state.store.interact(vec![d], Some(q), None).await?;
    state.emitter.wake();
    Ok((StatusCode::CREATED, Json(v)))
}

async fn respond(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RespondBody>,
) -> Result<(StatusCode, Json<WrittenView>), ApiError> {
    let text = check_text("response", &body.response)?;
    let (hook, event) = hook_and_event(&state, &id, &body.event_id).await?;
    // The latest question still open about this event is answered by this.
    let pending = state
        .store
        .questions(&event.id)
        .await?
        .into_iter()
        .rev()
        .find(|q| q.status == QuestionStatus::Pending);
    let delivery_id = answer(&state, &hook, &event, pending.as_ref(), &text).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(WrittenView { event_id: event.id, delivery_id, question_id: Some(pending.map(|q| q.id)) }),
    ))
}
