//! API tokens, their scopes, and the audit log of every change made
//! through the API.

use axum::{
    Extension, Json,
    extract::{FromRequestParts, MatchedPath, Path, RawPathParams, Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use chorus_core::{ApiToken, AuditEntry, NewApiToken, TokenScope};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::PageParams;
use super::{Api, Routes};
use crate::{
    error::ErrorCode,
    error::{ApiError, ApiJson, ApiQuery},
    service::views::{List, Page, TokenView},
    state::AppState,
};

pub(super) fn router() -> Routes {
    Routes::default()
        .route("/api/tokens", post(create).get(list))
        .route("/api/tokens/{id}", delete(revoke))
        .route("/api/audit", get(audit))
}

/// Who is calling, as the auth layer established it.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// How the audit log names them.
    pub(crate) actor: String,
    /// What they may do.
    pub(crate) scope: TokenScope,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// `state` for one change by `entry`'s actor: its first write puts the
/// change on record in the same transaction.
pub(crate) fn acting(state: &AppState, entry: AuditEntry) -> AppState {
    let store = state.store.audited(entry.clone());
    let emitter = state.emitter.with_store(store.clone());
    AppState { store, emitter, actor: Some(entry), ..state.clone() }
}

/// Who holds `presented`: the configured admin token, or a token made
/// through `/api/tokens` that is not revoked. `None`: nobody.
pub(crate) async fn principal_for(state: &AppState, presented: &str) -> Result<Option<Principal>, ApiError> {
    if state.settings.api_token.matches(presented.as_bytes()) {
        return Ok(Some(Principal {
            actor: "admin token (CHORUS_API_TOKEN)".into(),
            scope: TokenScope::Admin,
        }));
    }
    // Looked up by digest: the store never holds a usable token.
    let found = state.store.token_by_hash(Sha256::digest(presented.as_bytes()).into()).await?;
    Ok(found.map(|t| Principal { actor: format!("token {} ({})", t.id, t.name), scope: t.scope }))
}

/// Authenticate the bearer token (the configured admin token, or one made
/// through `/api/tokens`), refuse changes from read-only tokens, and put
/// every successful change on record.
pub(super) async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("missing Authorization: Bearer <token>"))?;
    let principal =
        principal_for(&state, presented).await?.ok_or_else(|| unauthorized("invalid API token"))?;
    let method = request.method().clone();
    let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes && principal.scope == TokenScope::Read {
        return Err(ApiError::new(ErrorCode::Forbidden, "this token is read-only"));
    }
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    // The route's last parameter (decoded) names what a change is about.
    let (mut parts, body) = request.into_parts();
    let target = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .and_then(|p| p.iter().last().map(|(_, v)| v.to_owned()));
    let mut request = Request::from_parts(parts, body);
    let via = match request.headers().get("x-chorus-client").and_then(|v| v.to_str().ok()) {
        Some("cli") => "cli",
        _ => "api",
    };
    // Emitting events is traffic, not a change to Chorus itself.
    if changes && let Some(template) = template.filter(|t| t != "/api/events") {
        // The change's first write puts it on record in the same
        // transaction; a create's target is the id it makes.
        let entry = AuditEntry {
            at: state.clock.now(),
            actor: principal.actor.clone(),
            via: via.into(),
            action: describe(&method, &template),
            target,
        };
        request.extensions_mut().insert(super::Acting(acting(&state, entry)));
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// `webhooks.rotate-secret`, `agents.create`, … from the route template.
fn describe(method: &Method, template: &str) -> String {
    let segments: Vec<&str> = template.trim_start_matches("/api/").split('/').collect();
    let resource = segments.first().copied().unwrap_or("api");
    // Routing rules are a collection inside a hook: `webhooks.commands.create`.
    if segments.get(2) == Some(&"commands") {
        let verb = match (method, segments.len()) {
            (&Method::POST, _) => "create",
            (&Method::DELETE, _) => "delete",
            (&Method::PUT, 3) => "replace",
            _ => "update",
        };
        return format!("{resource}.commands.{verb}");
    }
    let verb = match segments.last() {
        Some(last) if segments.len() > 1 && !last.starts_with('{') => last,
        _ if *method == Method::POST => "create",
        _ if *method == Method::DELETE && resource == "tokens" => "revoke",
        _ if *method == Method::DELETE => "delete",
        _ => "update",
    };
    format!("{resource}.{verb}")
}

pub(super) fn admin_only(principal: &Principal) -> Result<(), ApiError> {
    if principal.scope == TokenScope::Admin {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "tokens are managed with an admin token"))
    }
}

/// A new API token: `admin` may change anything, `read` only reads.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    #[schemars(length(min = 1, max = 100))]
    name: String,
    #[schemars(with = "TokenScope")]
    scope: String,
}

async fn create(
    Api(state): Api,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<impl IntoResponse, ApiError> {
    admin_only(&principal)?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request("name must be 1 to 100 characters"));
    }
    let scope = TokenScope::parse(&body.scope)
        .ok_or_else(|| ApiError::bad_request(format!("scope must be admin or read, not {:?}", body.scope)))?;
    let value = chorus_core::random_token("chr_", 32);
    let now = crate::service::now(&state);
    let token = ApiToken {
        id: chorus_core::random_token("tok_", 9),
        name: name.to_owned(),
        scope,
        created_at: now,
        revoked_at: None,
    };
    state
        .store
        .create_token(NewApiToken { token: token.clone(), hash: Sha256::digest(value.as_bytes()).into() })
        .await?;
    tracing::info!(token = %token.id, scope = scope.as_str(), "API token created");
    // Shown once, here; the store keeps only its digest.
    Ok((StatusCode::CREATED, Json(TokenView { token, value: Some(value) })))
}

async fn list(
    Api(state): Api,
    Extension(principal): Extension<Principal>,
) -> Result<Json<List<TokenView>>, ApiError> {
    admin_only(&principal)?;
    let items =
        state.store.tokens().await?.into_iter().map(|token| TokenView { token, value: None }).collect();
    Ok(Json(List { items }))
}

async fn revoke(
    Api(state): Api,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    admin_only(&principal)?;
    let token = state.store.revoke_token(&id).await?;
    tracing::info!(token = %token.id, "API token revoked");
    Ok(Json(TokenView { token, value: None }))
}

async fn audit(
    Api(state): Api,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    if params.status.is_some() {
        return Err(ApiError::bad_request("the audit log has no status filter"));
    }
    let page = state.store.audit(params.limit()?, params.cursor.clone()).await?;
    Ok(Json(Page { items: page.items, next_cursor: page.next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_named_by_resource_and_verb() {
        for (method, template, action) in [
            (Method::POST, "/api/webhooks", "webhooks.create"),
            (Method::POST, "/api/webhooks/{id}/rotate-secret", "webhooks.rotate-secret"),
            (Method::PATCH, "/api/agents/{name}", "agents.update"),
            (Method::DELETE, "/api/tokens/{id}", "tokens.revoke"),
            (Method::DELETE, "/api/agents/{name}", "agents.delete"),
            (Method::POST, "/api/webhooks/{id}/commands", "webhooks.commands.create"),
            (Method::PUT, "/api/webhooks/{id}/commands", "webhooks.commands.replace"),
            (Method::PUT, "/api/webhooks/{id}/commands/{command_id}", "webhooks.commands.update"),
            (Method::DELETE, "/api/webhooks/{id}/commands/{command_id}", "webhooks.commands.delete"),
        ] {
            assert_eq!(describe(&method, template), action, "{method} {template}");
        }
    }
}
