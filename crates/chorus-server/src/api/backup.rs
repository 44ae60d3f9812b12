//! `GET /api/backup` and `POST /api/backup/import`: the team's
//! configuration as config files, and back.

use axum::{
    Extension, Json,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use serde::Deserialize;

use super::{Api, Routes, access::Principal};
use crate::{
    error::{ApiError, ApiJson, ApiQuery},
    service::backup::{self, Backup, ExportView, ImportedView},
};

/// Largest import body: 64 MiB, room for tens of thousands of files.
const IMPORT_LIMIT: usize = 64 << 20;

pub(super) fn router() -> Routes {
    // A team's files outgrow the API's usual 2 MiB body limit long before
    // they strain anything else.
    Routes::default()
        .route("/api/backup", get(export))
        .route("/api/backup/import", post(import).layer(DefaultBodyLimit::max(IMPORT_LIMIT)))
}

/// `?secrets=true`: secrets sealed under the master key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportParams {
    #[serde(default)]
    secrets: bool,
}

async fn export(
    Api(state): Api,
    Extension(principal): Extension<Principal>,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Json<ExportView>, ApiError> {
    // Sealed secrets open only with the master key, but a read-only
    // token is not meant to carry them away at all.
    if params.secrets {
        super::access::admin_only(&principal)?;
    }
    Ok(Json(backup::export(&state, params.secrets).await?))
}

async fn import(Api(state): Api, ApiJson(body): ApiJson<Backup>) -> Result<Json<ImportedView>, ApiError> {
    Ok(Json(backup::import(&state, body).await?))
}
