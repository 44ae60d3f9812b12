use axum::{Json, extract::Path, routing::get};
use chorus_core::{DeliveryId, DeliveryQuery};

use super::{Api, Routes};
use super::{PageParams, webhooks::parse_delivery_status};
use crate::error::{ApiError, ApiQuery};
use crate::service::views::{DeliveryList, DeliveryView};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/deliveries", get(list))
        .route("/api/deliveries/{id}", get(show))
        .route("/api/deliveries/{id}/retry", axum::routing::post(retry))
}

async fn list(
    Api(state): Api,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    let status = parse_delivery_status(params.status.as_deref())?;
    let page = state
        .store
        .deliveries(DeliveryQuery {
            hook_id: None,
            event_id: None,
            status,
            limit: params.limit()?,
            cursor: params.cursor,
        })
        .await?;
    let counts = state.store.delivery_counts().await?;
    Ok(Json(DeliveryList {
        items: page.items.iter().map(DeliveryView::of).collect(),
        next_cursor: page.next_cursor,
        counts,
        discord_bot_configured: state.settings.discord_bot,
    }))
}

async fn show(Api(state): Api, Path(id): Path<String>) -> Result<Json<DeliveryView>, ApiError> {
    let not_found = || ApiError::not_found(format!("delivery {id} not found"));
    let delivery_id: DeliveryId = id.parse().map_err(|_| not_found())?;
    let delivery = state.store.delivery(&delivery_id).await?.ok_or_else(not_found)?;
    let attempts = state.store.attempts(&delivery_id).await?;
    let v = DeliveryView {
        payload: Some(delivery.payload.clone()),
        attempt_log: Some(attempts),
        ..DeliveryView::of(&delivery)
    };
    Ok(Json(v))
}

async fn retry(
    Api(state): Api,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<DeliveryView>), ApiError> {
    let delivery = crate::service::hooks::retry_delivery(&state, &id).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(DeliveryView::of(&delivery))))
}
