//! `GET /api/config/errors`: config files the loader could not apply.

use axum::{Json, extract::State, routing::get};
use serde_json::{Value, json};

use super::Routes;
use crate::state::AppState;

pub(super) fn router() -> Routes {
    Routes::default().route("/api/config/errors", get(errors))
}

async fn errors(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "directory": state.config.dir().map(|d| d.display().to_string()),
        "items": state.config.errors(),
    }))
}
