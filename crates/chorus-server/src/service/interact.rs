//! Writing back to an event's source (a comment on its issue or merge
//! request, or Slack's `response_url`), shared by the API's
//! `comment`/`ask`/`respond` and by answers to questions from Discord.

use chorus_core::{Event, IncomingHook, Message, NewDelivery, Question, Source};
use serde_json::{Value, json};

use crate::{
    error::{ApiError, ErrorCode},
    service,
    state::AppState,
};

pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::NoReplyChannel, message)
}

/// The delivery that carries `text` back to the event's source: Slack's
/// `response_url` where the event has one, else a comment on its thread
/// with the hook's reply credentials. 409 when there is no way back.
pub(crate) async fn back_to_source(
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
