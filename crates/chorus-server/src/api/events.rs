//! `POST /api/events`: emit an outgoing event.

use axum::{Json, http::StatusCode, routing::post};
use chorus_core::AgentName;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, Routes};
use crate::error::{ApiError, ApiJson};

pub(super) fn router() -> Routes {
    Routes::default().route("/api/events", post(emit))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitBody {
    event: String,
    agent: Option<String>,
    #[serde(default = "empty")]
    data: Value,
    #[serde(default)]
    metadata: Value,
}

fn empty() -> Value {
    json!({})
}

async fn emit(
    Api(state): Api,
    ApiJson(body): ApiJson<EmitBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let agent = body
        .agent
        .map(|a| a.parse::<AgentName>().map_err(|e| ApiError::bad_request(e.to_string())))
        .transpose()?;
    let emitted =
        state.emitter.emit(&body.event, agent, body.data, body.metadata).await.map_err(ApiError::from)?;
    Ok((StatusCode::ACCEPTED, Json(json!({"event_id": emitted.event_id, "deliveries": emitted.deliveries}))))
}
