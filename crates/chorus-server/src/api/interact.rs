//! Seed 001's interactive actions on an incoming hook's events:
//! `POST /api/webhooks/{id}/comment`, `/ask` and `/respond`. Each goes back
//! to the event's source through the delivery engine (a comment on the
//! issue or merge request, or Slack's `response_url`).

use axum::{Json, extract::Path, http::StatusCode, routing::post};
use chorus_core::{Event, EventId, IncomingHook, Message, NewDelivery, Question, QuestionStatus, Source};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Routes};
use crate::{
    error::ErrorCode,
    error::{ApiError, ApiJson},
    service,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    event_id: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    event_id: String,
    question: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RespondBody {
    event_id: String,
    response: String,
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::NoReplyChannel, message)
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
    let hook = match super::webhooks::find_any(state, id).await? {
        super::webhooks::Found::Incoming(h) => h,
        super::webhooks::Found::Outgoing(_) => {
            return Err(ApiError::bad_request("comment, ask and respond apply to incoming webhooks"));
        }
    };
    let missing = || ApiError::not_found(format!("event {event_id} not found on webhook {id}"));
    let event_id: EventId = event_id.parse().map_err(|_| missing())?;
    let event = state.store.event(&event_id).await?.filter(|e| e.hook_id == hook.id).ok_or_else(missing)?;
    Ok((hook, event))
}

/// The delivery that carries `text` back to the event's source: Slack's
/// `response_url` where the event has one, else a comment on its thread
/// with the hook's reply credentials. 409 when there is no way back.
async fn back_to_source(
    state: &AppState,
    hook: &IncomingHook,
    event: &Event,
    text: &str,
) -> Result<NewDelivery, ApiError> {
    if hook.source == Source::Slack {
        let url = slack_response_url(&event.body).ok_or_else(|| {
            conflict("this Slack event carries no response_url (Events API messages have none)")
        })?;
        let body = serde_json::to_vec(&json!({"text": text})).expect("JSON serializes");
        return Ok(chorus_deliver::forward(
            &state.clock,
            event,
            Some(hook),
            &url,
            Some((body, "application/json".to_owned())),
        ));
    }
    if !chorus_deliver::reply::can_comment(hook.source) {
        return Err(conflict(format!("Chorus cannot write back to {} senders", hook.source)));
    }
    if state.store.reply(&hook.id).await?.is_none() {
        return Err(conflict("the hook has no reply credentials; set reply on the hook first"));
    }
    let payload: Value =
        serde_json::from_slice(&event.body).map_err(|_| conflict("the event's body is not JSON"))?;
    let comment = chorus_deliver::reply::comment(hook.source, &payload, text).map_err(conflict)?;
    Ok(chorus_deliver::reply_delivery(&state.clock, event, &comment))
}

/// Slack's `response_url` (slash commands and interactivity, form-encoded
/// or JSON), only on Slack's own host.
fn slack_response_url(body: &[u8]) -> Option<String> {
    let from_json = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["response_url"].as_str().map(str::to_owned));
    let url = from_json.or_else(|| {
        url::form_urlencoded::parse(body).find(|(k, _)| k == "response_url").map(|(_, v)| v.into_owned())
    })?;
    let parsed = url::Url::parse(&url).ok()?;
    (parsed.scheme() == "https" && parsed.host_str() == Some("hooks.slack.com")).then_some(url)
}

async fn comment(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let text = check_text("message", &body.message)?;
    let (hook, event) = hook_and_event(&state, &id, &body.event_id).await?;
    let d = back_to_source(&state, &hook, &event, &text).await?;
    let delivery_id = d.id.clone();
    state.store.interact(vec![d], None, None).await?;
    state.emitter.wake();
    Ok((StatusCode::ACCEPTED, Json(json!({"event_id": event.id, "delivery_id": delivery_id}))))
}

fn question_view(q: &Question) -> Value {
    json!(q)
}

async fn ask(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AskBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let mut v = question_view(&q);
    v["delivery_id"] = json!(d.id);
    state.store.interact(vec![d], Some(q), None).await?;
    state.emitter.wake();
    Ok((StatusCode::CREATED, Json(v)))
}

async fn respond(
    Api(state): Api,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RespondBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        Json(json!({"event_id": event.id, "delivery_id": delivery_id, "question_id": pending.map(|q| q.id)})),
    ))
}

/// Send `text` back to the event's source as the answer to `question` (if
/// any), show the question answered in its agent's channel, and commit all
/// of it together. Returns the delivery to the source.
pub(crate) async fn answer(
    state: &AppState,
    hook: &IncomingHook,
    event: &Event,
    question: Option<&Question>,
    text: &str,
) -> Result<chorus_core::DeliveryId, ApiError> {
    let d = back_to_source(state, hook, event, text).await?;
    let delivery_id = d.id.clone();
    let mut deliveries = vec![d];
    if let Some(q) = question
        && let Some(target) = chorus_deliver::target_for(state.store.as_ref(), &q.agent).await?
    {
        let mut message = Message::titled(format!("✅ Answered {}", q.id));
        message.description = format!("**Q:** {}\n**A:** {text}", q.question);
        message.footer = Some(event.event_type.clone());
        chorus_deliver::stamp(&mut message, event);
        deliveries.push(chorus_deliver::delivery(event, target, &message, &state.clock));
    }
    let answered = question.map(|q| (q.id.clone(), text.to_owned(), service::now(state)));
    state.store.interact(deliveries, None, answered).await?;
    state.emitter.wake();
    Ok(delivery_id)
}
