//! The one error shape of the API (spec 06): `{"error": code, "message": text, "details"?}`.
//! Use-case errors map to codes with exhaustive matches; framework errors are mapped by the
//! middleware in `middleware.rs`.

use poem_openapi::{ApiResponse, Object, payload::Json};

use super::dto::runs::ActiveSession;
use crate::core::{
    execution::{AttachError, ControlError, QueryError, RunError},
    preset_validation,
    presets::PresetError,
};

/// Codes of the HTTP edge, answered before a request reaches an operation (so they are in
/// no operation's documented responses).
/// 400: the request line or headers are not HTTP.
pub const MALFORMED_REQUEST: &str = "malformed_request";
/// 408: the headers or the body did not arrive within their timeout.
pub const REQUEST_TIMEOUT: &str = "request_timeout";
/// 414: the request target is over the cap.
pub const URI_TOO_LONG: &str = "uri_too_long";
/// 431: the headers are over the cap.
pub const HEADERS_TOO_LARGE: &str = "headers_too_large";

/// One broken rule of a `validation_failed` error.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Path of the field, e.g. `toolsets[0].toolset_name`.
    pub field: String,
    pub message: String,
}

/// Extra, code-specific information.
#[derive(Object, Debug, Clone, PartialEq, Default)]
#[oai(skip_serializing_if_is_none)]
pub struct ErrorDetails {
    /// `validation_failed`: every broken rule.
    pub fields: Option<Vec<FieldError>>,
    pub active_session: Option<ActiveSession>,
}

/// Every non-2xx body.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiError {
    /// A stable snake_case code, e.g. `not_found`, `validation_failed`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
    pub details: Option<ErrorDetails>,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            error: code.to_owned(),
            message: message.into(),
            details: None,
        }
    }
}

/// The error statuses every operation may return.
#[derive(ApiResponse, Debug)]
pub enum ErrorResponse {
    /// `invalid_body` or `invalid_parameter`.
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    /// `unauthorized`: missing or wrong bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<ApiError>),
    /// `not_found`.
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    /// `conflict`, `preset_in_use`, `conversation_busy` (with `details.active_session`
    /// when a run was refused), `conversation_archived` (archived conversations take no
    /// runs), `idempotency_conflict` (an `Idempotency-Key` used with another request).
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    /// `gone`: the run's event stream has expired; read the session's display_messages.
    #[oai(status = 410)]
    Gone(Json<ApiError>),
    /// `payload_too_large`.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ApiError>),
    /// `unsupported_media_type`: a write without a JSON content type.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ApiError>),
    /// `validation_failed`: a well-formed body breaking a rule.
    #[oai(status = 422)]
    Unprocessable(Json<ApiError>),
    /// `internal`: logged with a request id.
    #[oai(status = 500)]
    Internal(Json<ApiError>),
    /// `unavailable`: a backend is down.
    #[oai(status = 503)]
    Unavailable(Json<ApiError>),
}

impl ErrorResponse {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(Json(ApiError::new(
            "not_found",
            format!("{what} not found"),
        )))
    }

    /// A 500 that tells the caller only a request id; the cause goes to the log.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        let request_id = super::middleware::request_id();
        tracing::error!(%request_id, error = %cause, "request failed");
        Self::Internal(Json(ApiError::new(
            "internal",
            format!("internal error (request id {request_id})"),
        )))
    }

    pub fn unavailable(cause: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %cause, "backend unavailable");
        Self::Unavailable(Json(ApiError::new(
            "unavailable",
            "a backend is unavailable; retry later",
        )))
    }

    fn validation(fields: Vec<preset_validation::FieldError>) -> Self {
        let summary = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self::Unprocessable(Json(ApiError {
            error: "validation_failed".to_owned(),
            message: summary,
            details: Some(ErrorDetails {
                active_session: None,
                fields: Some(
                    fields
                        .into_iter()
                        .map(|f| FieldError {
                            field: f.field,
                            message: f.message,
                        })
                        .collect(),
                ),
            }),
        }))
    }
}

impl From<ports::StorageError> for ErrorResponse {
    fn from(e: ports::StorageError) -> Self {
        use ports::StorageError as E;
        match e {
            E::NotFound => Self::not_found("resource"),
            E::AlreadyExists => Self::Conflict(Json(ApiError::new("conflict", "already exists"))),
            E::PresetInUse => Self::Conflict(Json(ApiError::new("preset_in_use", e.to_string()))),
            E::ConversationBusy { .. } => {
                Self::Conflict(Json(ApiError::new("conversation_busy", e.to_string())))
            }
            E::ConversationArchived => {
                Self::Conflict(Json(ApiError::new("conversation_archived", e.to_string())))
            }
            E::Conflict(_) => Self::Conflict(Json(ApiError::new("conflict", e.to_string()))),
            E::Unavailable(_) => Self::unavailable(&e),
            E::Other(_) => Self::internal(&e),
        }
    }
}

impl From<PresetError> for ErrorResponse {
    fn from(e: PresetError) -> Self {
        match e {
            PresetError::NotFound => Self::not_found("preset"),
            PresetError::AlreadyExists => Self::Conflict(Json(ApiError::new(
                "conflict",
                "a preset with this id already exists",
            ))),
            PresetError::InUse => {
                Self::Conflict(Json(ApiError::new("preset_in_use", e.to_string())))
            }
            PresetError::Invalid(fields) => Self::validation(fields),
            PresetError::Storage(inner) => inner.into(),
        }
    }
}

impl From<RunError> for ErrorResponse {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NotFound(what) => Self::not_found(what),
            RunError::Busy(active) => Self::Conflict(Json(ApiError {
                error: "conversation_busy".to_owned(),
                message: format!(
                    "the conversation is running session {}; attach to its events or interrupt it",
                    active.session_id
                ),
                details: Some(ErrorDetails {
                    fields: None,
                    active_session: Some(active.into()),
                }),
            })),
            RunError::Invalid(fields) => Self::validation(fields),
            RunError::MailboxEmpty => Self::Unprocessable(Json(ApiError::new(
                "mailbox_empty",
                "nothing to fire: the mailbox has no undelivered messages",
            ))),
            RunError::Unavailable(message) => {
                tracing::warn!(%message, "run refused");
                Self::Unavailable(Json(ApiError::new("unavailable", message)))
            }
            RunError::IdempotencyConflict(message) => {
                Self::Conflict(Json(ApiError::new("idempotency_conflict", message)))
            }
            // The run operations answer it as their own 429 (`runs::refused`); anywhere
            // else it is a momentary unavailability.
            RunError::TooManyRuns { .. } => {
                Self::Unavailable(Json(ApiError::new("too_many_runs", e.to_string())))
            }
            RunError::Internal(message) => Self::internal(&RunError::Internal(message)),
            RunError::Storage(inner) => inner.into(),
        }
    }
}

impl From<ControlError> for ErrorResponse {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(what) => Self::not_found(what),
            ControlError::NotRunning(message) => {
                Self::NotFound(Json(ApiError::new("not_found", message)))
            }
            ControlError::Invalid(fields) => Self::validation(fields),
            ControlError::Storage(inner) => inner.into(),
        }
    }
}

impl From<AttachError> for ErrorResponse {
    fn from(e: AttachError) -> Self {
        match e {
            AttachError::NotFound(what) => Self::not_found(what),
            AttachError::Gone(_) => Self::Gone(Json(ApiError::new("gone", e.to_string()))),
            AttachError::Unavailable(_) => Self::unavailable(&e),
            AttachError::Storage(inner) => inner.into(),
        }
    }
}

impl From<crate::core::execution::RetentionError> for ErrorResponse {
    fn from(e: crate::core::execution::RetentionError) -> Self {
        use crate::core::execution::RetentionError as E;
        match e {
            E::NotFound => Self::not_found("conversation"),
            E::Busy(_) => Self::Conflict(Json(ApiError::new("conversation_busy", e.to_string()))),
            E::Query(inner) => inner.into(),
        }
    }
}

impl From<QueryError> for ErrorResponse {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::NotFound(what) => Self::not_found(what),
            QueryError::Invalid(fields) => Self::validation(fields),
            QueryError::Storage(inner) => inner.into(),
            QueryError::StateStore(ports::StateStoreError::Unavailable(_)) => Self::unavailable(&e),
            QueryError::StateStore(_) => Self::internal(&e),
        }
    }
}
