//! `Idempotency-Key` on `POST`: a retried request gets the first answer
//! instead of making a second change. Keys are per caller (token), kept for
//! a day ([`IdempotentResponse::WINDOW`]); answers are sealed at rest, since
//! a create's answer holds the secret it shows once.

use std::{collections::HashSet, sync::Mutex};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chorus_core::IdempotentResponse;
use sha2::{Digest, Sha256};

use super::access::Principal;
use crate::{error::ApiError, error::ErrorCode, state::AppState};

const HEADER: &str = "idempotency-key";
/// Set on an answer that is a replay of the first one.
const REPLAYED: &str = "idempotent-replayed";
/// Largest request or answer body kept.
const MAX_BODY: usize = 2 << 20;

/// Keys whose first request is still running, so a concurrent retry waits
/// instead of making the change twice.
#[derive(Debug, Default)]
pub struct IdempotencyKeys(Mutex<HashSet<String>>);

struct Claim<'a> {
    set: &'a IdempotencyKeys,
    key: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set.0.lock().expect("idempotency keys").remove(&self.key);
    }
}

pub(super) async fn layer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(key) = request.headers().get(HEADER) else { return Ok(next.run(request).await) };
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid("Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?
        .to_owned();
    let actor = request.extensions().get::<Principal>().map(|p| p.actor.clone()).unwrap_or_default();
    let scoped = hex::encode(Sha256::digest(format!("{actor}\n{key}")));
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, "request body too large"))?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let request_hash: [u8; 32] = hasher.finalize().into();

    let now = state.clock.now();
    let window = jiff::SignedDuration::try_from(IdempotentResponse::WINDOW).unwrap_or_default();
    if let Some(saved) = state.store.idempotent(&scoped).await?
        && saved.created_at + window > now
    {
        if saved.request_hash != request_hash {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for a different request",
            ));
        }
        return Ok(replay(&saved));
    }
    if !state.in_flight.0.lock().expect("idempotency keys").insert(scoped.clone()) {
        return Err(ApiError::new(
            ErrorCode::IdempotencyKeyInUse,
            "a request with this Idempotency-Key is still being processed",
        )
        .retry_after(1));
    }
    let _claim = Claim { set: &state.in_flight, key: scoped.clone() };
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    // Only changes are kept: a refused request may be fixed and sent again
    // under the same key.
    if !response.status().is_success() {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Ok(ApiError::new(ErrorCode::Internal, "answer too large to keep").into_response());
    };
    let saved = IdempotentResponse {
        request_hash,
        status: parts.status.as_u16(),
        body: bytes.to_vec(),
        created_at: now,
    };
    if let Err(e) = state.store.save_idempotent(&scoped, saved).await {
        // The change is made; failing the answer now would invite a retry
        // that makes it twice.
        tracing::warn!(error = %e, "could not keep an answer for its Idempotency-Key");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn replay(saved: &IdempotentResponse) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut response = (status, saved.body.clone()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
