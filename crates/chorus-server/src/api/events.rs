//! `POST /api/events`: emit an outgoing event.

use axum::{Json, http::StatusCode, routing::post};
use chorus_core::AgentName;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Routes};
use crate::error::{ApiError, ApiJson};
use crate::service::views::EmittedView;

pub(super) fn router() -> Routes {
    Routes::default().route("/api/events", post(emit))
}

/// An outgoing event to send to its subscribers.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Emit")]
pub(super) struct EmitBody {
    /// A name from the event catalogue, or `custom.<name>`.
    #[schemars(schema_with = "event_name_schema")]
    event: String,
    /// The agent it is about: subscriptions of that agent get it too.
    #[schemars(regex(pattern = AgentName::PATTERN))]
    agent: Option<String>,
    /// The event's data.
    #[serde(default = "empty")]
    data: Value,
    /// Anything else the subscribers should see.
    #[serde(default)]
    metadata: Value,
}

fn event_name_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"anyOf": [
        {"type": "string", "enum": chorus_core::EVENT_CATALOGUE},
        {"type": "string", "pattern": "^custom\\.[a-z0-9_-]{1,40}$", "description": "custom.*"},
    ]})
}

fn empty() -> Value {
    json!({})
}

async fn emit(
    Api(state): Api,
    ApiJson(body): ApiJson<EmitBody>,
) -> Result<(StatusCode, Json<EmittedView>), ApiError> {
    let agent = body
        .agent
        .map(|a| a.parse::<AgentName>().map_err(|e| ApiError::bad_request(e.to_string())))
        .transpose()?;
    let emitted =
        state.emitter.emit(&body.event, agent, body.data, body.metadata).await.map_err(ApiError::from)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(EmittedView { event_id: emitted.event_id, deliveries: emitted.deliveries }),
    ))
}
