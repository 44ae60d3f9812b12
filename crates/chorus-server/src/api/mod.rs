//! The management API under `/api`, behind a bearer token.

pub(crate) mod access;
pub(crate) mod agents;
mod backup;
mod commands;
mod config_errors;
mod deliveries;
pub(crate) mod events;
mod idempotency;
pub(crate) mod interact;
mod openapi;
mod tasks;
mod workflows;

pub use idempotency::IdempotencyKeys;
pub use openapi::document as openapi_document;
pub(crate) mod webhooks;

use axum::{
    Router, middleware,
    routing::{MethodRouter, get},
};
use serde::{Deserialize, Deserializer};

use crate::{error::ApiError, state::AppState};

/// Every `/api` route, with the paths it serves.
fn routes() -> Routes {
    Routes::default()
        .merge(agents::router())
        .merge(webhooks::router())
        .merge(commands::router())
        .merge(config_errors::router())
        .merge(backup::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(access::router())
        .merge(tasks::router())
        .merge(interact::router())
        .merge(workflows::router())
        .merge(Routes::default().route("/metrics", get(crate::metrics::serve)))
}

/// The `/api` router: every route behind the token check, and the OpenAPI
/// document, which is public like any API reference.
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    // The last layer added runs first: the caller is known before their
    // Idempotency-Key is looked up.
    routes()
        .router
        .route_layer(middleware::from_fn_with_state(state.clone(), idempotency::layer))
        .route_layer(middleware::from_fn_with_state(state.clone(), access::authorize))
        .route(openapi::PATH, get(openapi::serve))
}

/// The path templates the router serves under `/api`, the OpenAPI
/// document's own included; for checking the document against the router.
pub fn paths() -> Vec<&'static str> {
    let mut paths = routes().paths;
    paths.push(openapi::PATH);
    paths
}

/// The state a management handler works with: for a change, the state whose
/// store puts the change on the audit log in the change's own transaction
/// (set up by `access::authorize`); otherwise the router's state.
pub(crate) struct Api(pub(crate) AppState);

/// The audited state `access::authorize` prepared for a change.
#[derive(Clone)]
pub(crate) struct Acting(pub(crate) AppState);

impl axum::extract::FromRequestParts<AppState> for Api {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Api(parts.extensions.get::<Acting>().map_or_else(|| state.clone(), |a| a.0.clone())))
    }
}

/// A router that remembers its paths, since axum's cannot list them.
#[derive(Default)]
pub(crate) struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    fn route(mut self, path: &'static str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }
}

/// A Discord id as the API accepts it: a positive 64-bit integer in decimal.
pub(crate) const SNOWFLAKE: &str = "^[1-9][0-9]{0,18}$";

/// For PATCH bodies: an absent field is `None`, `null` is `Some(None)`.
pub(crate) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
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

/// One page of a list kept whole in memory (agents, hooks): `keyed` holds
/// each item with a key that orders the list; the cursor is the last key
/// given, so a page stays right when items before it come or go.
fn keyed_page<T>(
    mut keyed: Vec<(String, T)>,
    limit: usize,
    cursor: Option<&str>,
) -> crate::service::views::Page<T> {
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let rest: Vec<(String, T)> =
        keyed.into_iter().filter(|(k, _)| cursor.is_none_or(|c| k.as_str() > c)).collect();
    let next = (rest.len() > limit).then(|| rest[limit - 1].0.clone());
    let items = rest.into_iter().take(limit).map(|(_, v)| v).collect();
    crate::service::views::Page { items, next_cursor: next }
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
