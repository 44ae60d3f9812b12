//! `GET /api/config/errors`: config files the loader could not apply.

use axum::{Json, Router, extract::State, routing::get};
use serde_json::{Value, json};

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/api/config/errors", get(errors))
}

async fn errors(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "directory": state.config.dir().map(|d| d.display().to_string()),
        "items": state.config.errors(),
    }))
}
