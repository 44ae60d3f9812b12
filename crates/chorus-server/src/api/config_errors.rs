//! `GET /api/config/errors`: config files the loader could not apply.

use axum::{Json, routing::get};
use serde_json::{Value, json};

use super::{Api, Routes};

pub(super) fn router() -> Routes {
    Routes::default().route("/api/config/errors", get(errors))
}

async fn errors(Api(state): Api) -> Json<Value> {
    Json(json!({
        "directory": state.config.dir().map(|d| d.display().to_string()),
        "items": state.config.errors(),
    }))
}
