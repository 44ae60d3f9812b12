//! The management API under `/api`, behind a bearer token.

mod agents;
mod deliveries;
pub(crate) mod events;
mod outgoing;
mod webhooks;

use axum::{
    Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::Response,
};
use serde::{Deserialize, Deserializer};

use crate::{error::ApiError, state::AppState};

/// Every `/api` route.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(agents::router())
        .merge(webhooks::router())
        .merge(deliveries::router())
        .merge(events::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
}

async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if state.settings.api_token.matches(token.as_bytes()) => Ok(next.run(request).await),
        Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "invalid API token")),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing Authorization: Bearer <token>",
        )),
    }
}

/// For PATCH bodies: an absent field is `None`, `null` is `Some(None)`.
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    #[serde(default = "default_limit")]
    limit: usize,
    cursor: Option<String>,
    status: Option<String>,
}

fn default_limit() -> usize {
    50
}

impl PageParams {
    fn limit(&self) -> Result<usize, ApiError> {
        if (1..=250).contains(&self.limit) {
            Ok(self.limit)
        } else {
            Err(ApiError::bad_request("limit must be between 1 and 250"))
        }
    }
}
