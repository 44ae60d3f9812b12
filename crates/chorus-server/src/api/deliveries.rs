use axum::{Json, extract::Path, routing::get};
use chorus_core::{Delivery, DeliveryId, DeliveryQuery};
use serde_json::{Value, json};

use super::{Api, Routes};
use super::{PageParams, webhooks::parse_delivery_status};
use crate::error::{ApiError, ApiQuery};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/deliveries", get(list))
        .route("/api/deliveries/{id}", get(show))
        .route("/api/deliveries/{id}/retry", axum::routing::post(retry))
}

pub(crate) fn delivery_view(d: &Delivery) -> Value {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "hook_id": d.hook_id,
        "target": d.target,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
    })
}

async fn list(Api(state): Api, ApiQuery(params): ApiQuery<PageParams>) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "items": page.items.iter().map(delivery_view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
        "counts": counts,
        "discord_bot_configured": state.settings.discord_bot,
    })))
}

async fn show(Api(state): Api, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::not_found(format!("delivery {id} not found"));
    let delivery_id: DeliveryId = id.parse().map_err(|_| not_found())?;
    let delivery = state.store.delivery(&delivery_id).await?.ok_or_else(not_found)?;
    let attempts = state.store.attempts(&delivery_id).await?;
    let mut v = delivery_view(&delivery);
    v["payload"] = delivery.payload.clone();
    v["attempt_log"] = json!(attempts);
    Ok(Json(v))
}

async fn retry(
    Api(state): Api,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let delivery_id: DeliveryId =
        id.parse().map_err(|_| ApiError::not_found(format!("delivery {id} not found")))?;
    let delivery = state.store.retry_delivery(&delivery_id, state.clock.now()).await?;
    state.emitter.wake();
    Ok((axum::http::StatusCode::ACCEPTED, Json(delivery_view(&delivery))))
}
