//! `GET /api/config/errors`: config files the loader could not apply.

use axum::{Json, routing::get};

use super::{Api, Routes};
use crate::service::views::ConfigErrorsView;

pub(super) fn router() -> Routes {
    Routes::default().route("/api/config/errors", get(errors))
}

async fn errors(Api(state): Api) -> Json<ConfigErrorsView> {
    Json(ConfigErrorsView {
        directory: state.config.dir().map(|d| d.display().to_string()),
        items: state.config.errors(),
    })
}
