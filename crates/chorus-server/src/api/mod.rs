//! The management API under `/api`, behind a bearer token.

mod access;
mod agents;
mod commands;
mod config_errors;
mod deliveries;
pub(crate) mod events;
mod outgoing;
mod webhooks;

use axum::{Router, middleware};
use serde::{Deserialize, Deserializer};

use crate::{error::ApiError, state::AppState};

/// Every `/api` route.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(agents::router())
        .merge(webhooks::router())
        .merge(commands::router())
        .merge(config_errors::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(access::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), access::authorize))
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

pub(super) fn default_limit() -> usize {
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
