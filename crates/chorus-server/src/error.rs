use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Request},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use chorus_core::StoreError;
use serde::de::DeserializeOwned;

/// The stable, machine-readable meaning of an error: one code per meaning,
/// documented in docs/api.md. Clients and tests match on these, never on
/// messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid (`field` says which).
    InvalidRequest,
    /// No token, or a wrong or revoked one.
    Unauthorized,
    /// The token may not do this (read-only, or not admin).
    Forbidden,
    /// The thing named does not exist.
    NotFound,
    /// The change conflicts with what is stored (a taken name, a finished task).
    Conflict,
    /// The body is over the limit.
    PayloadTooLarge,
    /// Ingress: the signature or token header is missing.
    SignatureMissing,
    /// A signature is wrong, or its timestamp is outside the tolerance.
    SignatureInvalid,
    /// Ingress: the sender's address is not in the hook's allow-list.
    IpNotAllowed,
    /// Ingress: the hook is disabled.
    HookDisabled,
    /// Ingress: the hook is fed by a watcher (Docker), not by requests.
    WatchedHook,
    /// Ingress: the hook's agent is disabled.
    AgentDisabled,
    /// Ingress: the hook's rate limit is used up (`Retry-After`).
    RateLimited,
    /// Ingress: the body is not what the hook's source sends.
    MalformedBody,
    /// An `Idempotency-Key` was used with a different request.
    IdempotencyKeyReused,
    /// An `Idempotency-Key`'s first request is still running (`Retry-After`).
    IdempotencyKeyInUse,
    /// An event's source cannot be written back to.
    NoReplyChannel,
    /// `POST /webhooks/{name}`: the workflow is disabled.
    WorkflowDisabled,
    /// The store is busy or shutting down (`Retry-After`).
    Unavailable,
    /// Something failed inside Chorus; the log has the cause.
    Internal,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::SignatureMissing,
        ErrorCode::SignatureInvalid,
        ErrorCode::IpNotAllowed,
        ErrorCode::HookDisabled,
        ErrorCode::WatchedHook,
        ErrorCode::AgentDisabled,
        ErrorCode::RateLimited,
        ErrorCode::MalformedBody,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInUse,
        ErrorCode::NoReplyChannel,
        ErrorCode::WorkflowDisabled,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The snake_case code in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::SignatureMissing => "signature_missing",
            ErrorCode::SignatureInvalid => "signature_invalid",
            ErrorCode::IpNotAllowed => "ip_not_allowed",
            ErrorCode::HookDisabled => "hook_disabled",
            ErrorCode::WatchedHook => "watched_hook",
            ErrorCode::AgentDisabled => "agent_disabled",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MalformedBody => "malformed_body",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::IdempotencyKeyInUse => "idempotency_key_in_use",
            ErrorCode::NoReplyChannel => "no_reply_channel",
            ErrorCode::WorkflowDisabled => "workflow_disabled",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::MalformedBody => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized | ErrorCode::SignatureMissing => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::SignatureInvalid | ErrorCode::IpNotAllowed => {
                StatusCode::FORBIDDEN
            }
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict
            | ErrorCode::HookDisabled
            | ErrorCode::WatchedHook
            | ErrorCode::IdempotencyKeyInUse
            | ErrorCode::NoReplyChannel
            | ErrorCode::WorkflowDisabled => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::AgentDisabled | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to an API or ingress client:
/// `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
    /// The request field at fault (`rate_limit_per_minute`, `commands[1].action`).
    pub field: Option<String>,
    /// For internal errors: the cause, logged once when the answer is made,
    /// never shown to the client.
    pub cause: Option<String>,
}

impl ApiError {
    /// An error with its code's status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_status(code.status(), code, message)
    }

    /// An error with a status other than its code's usual one (Discord
    /// wants 401 for a bad interaction signature).
    pub fn with_status(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, field: None, cause: None }
    }

    /// 400 `invalid_request` about one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::bad_request(message) }
    }

    /// The same error about a field inside `parent` (`commands[1]`).
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) => format!("{parent}.{f}"),
            None => parent.to_owned(),
        });
        self
    }

    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// Add `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl schemars::JsonSchema for ErrorCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        schemars::json_schema!({
            "type": "string",
            "enum": codes,
            "description": "What went wrong, stably: clients match on this, never on the message.",
        })
    }
}

/// Every error answer's body.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Error")]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
struct ErrorDetail {
    code: ErrorCode,
    /// For people; it may change between versions.
    message: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The one place errors are logged: where they become answers.
        if let Some(cause) = &self.cause {
            tracing::error!(code = self.code.as_str(), %cause, "internal error");
        }
        let body =
            ErrorBody { error: ErrorDetail { code: self.code, message: self.message, field: self.field } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// An event that could not be emitted: the store's trouble, or a bad event.
impl From<chorus_deliver::EmitError> for ApiError {
    fn from(e: chorus_deliver::EmitError) -> Self {
        match e {
            chorus_deliver::EmitError::Store(s) => s.into(),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => ApiError::not_found(format!("{kind} {id} not found")),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            StoreError::Unavailable(m) => ApiError {
                cause: Some(format!("store unavailable: {m}")),
                ..ApiError::new(ErrorCode::Unavailable, "the store is busy; retry shortly").retry_after(1)
            },
            other => {
                // The cause stays with the error (logged when answered); the
                // client gets no internals.
                let cause = match std::error::Error::source(&other) {
                    Some(source) => format!("{other}: {source}"),
                    None => other.to_string(),
                };
                ApiError { cause: Some(cause), ..ApiError::new(ErrorCode::Internal, "internal error") }
            }
        }
    }
}

/// `Json` whose rejections use the API's error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// `Query` whose rejections use the API's error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_once_with_its_status() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
            assert_eq!(doc.matches(&row).count(), 1, "docs/api.md should list {row} once");
        }
    }
}
