//! The one error type of every JSON endpoint, and the one table that maps each
//! stable error code to an HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use app::api::ErrorBody;
pub use app::api::ErrorCode;

/// Seconds a client should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "5";

/// An error answer: a stable code, a message for humans, and — for server-side
/// failures — the cause, which is logged and never sent.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
    cause: Option<anyhow::Error>,
}

/// The table. Every code has exactly one status.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MalformedJson => StatusCode::BAD_REQUEST,
        ErrorCode::InvalidBody => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::GameNotAllowed | ErrorCode::JackpotNotAllowed => StatusCode::FORBIDDEN,
        ErrorCode::MetricsTokenRequired => StatusCode::UNAUTHORIZED,
        ErrorCode::VolumeLimitReached => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ErrorCode::InvalidQuery => StatusCode::BAD_REQUEST,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::JackpotNotFound => StatusCode::NOT_FOUND,
        ErrorCode::JackpotPaused => StatusCode::CONFLICT,
        ErrorCode::MissingIdempotencyKey => StatusCode::BAD_REQUEST,
        ErrorCode::InvalidIdempotencyKey => StatusCode::BAD_REQUEST,
        ErrorCode::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::CurrencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::GameNotEligible => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::BetNotPositive => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::BelowMinimumBet => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::BetTooLarge => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::CycleAlreadyAwarded => StatusCode::CONFLICT,
        ErrorCode::CycleNotOpen => StatusCode::CONFLICT,
        ErrorCode::AwardNotAllowed => StatusCode::CONFLICT,
        ErrorCode::InvalidJackpotConfig => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::MissingSignature
        | ErrorCode::StaleTimestamp
        | ErrorCode::ReplayedNonce
        | ErrorCode::BadSignature => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::AwardNotFound => StatusCode::NOT_FOUND,
        ErrorCode::AwardAlreadyRolledBack | ErrorCode::InsufficientFunds => StatusCode::CONFLICT,
        ErrorCode::InitDataMalformed
        | ErrorCode::InitDataBadHash
        | ErrorCode::InitDataBadSignature
        | ErrorCode::InitDataStale
        | ErrorCode::InitDataUsed
        | ErrorCode::RefreshTokenInvalid => StatusCode::UNAUTHORIZED,
        ErrorCode::TelegramNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::TokenMissing | ErrorCode::TokenInvalid => StatusCode::UNAUTHORIZED,
        ErrorCode::BetStepMismatch | ErrorCode::InvalidLimit | ErrorCode::InvalidClientSeed => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::SpinTooSoon | ErrorCode::SpinInProgress | ErrorCode::RateLimited => {
            StatusCode::TOO_MANY_REQUESTS
        }
        ErrorCode::SelfExcluded | ErrorCode::LossLimitReached | ErrorCode::DepositLimitReached => {
            StatusCode::FORBIDDEN
        }
        ErrorCode::SpinNotFound => StatusCode::NOT_FOUND,
        ErrorCode::SeedNotRevealed | ErrorCode::DemoModeOff => StatusCode::CONFLICT,
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), details: None, cause: None }
    }

    /// Machine-readable context for the code, sent as `details`.
    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, what)
    }

    /// A failure on our side. The client sees only a generic message.
    pub fn internal(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError {
            code: ErrorCode::Internal,
            message: "internal error; the request id in `x-request-id` identifies it in our logs".into(),
            details: None,
            cause: Some(cause.into()),
        }
    }

    pub fn unavailable(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError {
            code: ErrorCode::ServiceUnavailable,
            message: "a dependency is unavailable; retry later".into(),
            details: None,
            cause: Some(cause.into()),
        }
    }

    /// `429 rate_limited`, with when to come back.
    pub fn rate_limited(what: &str, limited: crate::rates::Limited) -> ApiError {
        let retry_after_ms = limited.retry_after.as_millis().max(1) as u64;
        ApiError::new(
            ErrorCode::RateLimited,
            format!("too many requests from this {what}; retry in a moment"),
        )
        .with_details(serde_json::json!({ "retryAfterMs": retry_after_ms }))
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

/// Database errors: a lost or exhausted connection is a 503 the client may
/// retry; anything else is a defect on our side.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> ApiError {
        if crate::db::is_unreachable(&error) {
            ApiError::unavailable(error)
        } else {
            ApiError::internal(error)
        }
    }
}

/// A database error shared by several callers (a batch's, a cached read's).
impl From<std::sync::Arc<sqlx::Error>> for ApiError {
    fn from(error: std::sync::Arc<sqlx::Error>) -> ApiError {
        if crate::db::is_unreachable(&error) {
            ApiError::unavailable(anyhow::anyhow!("{error}"))
        } else {
            ApiError::internal(anyhow::anyhow!("{error}"))
        }
    }
}

impl From<crate::engine::EngineFailure> for ApiError {
    fn from(failure: crate::engine::EngineFailure) -> ApiError {
        use crate::engine::EngineFailure;
        match failure {
            EngineFailure::Overloaded => {
                ApiError::unavailable(anyhow::anyhow!("the contribution queue is full"))
            }
            EngineFailure::Expired => ApiError::new(
                ErrorCode::ServiceUnavailable,
                "the request waited too long for the database and was not applied; retry with the same Idempotency-Key",
            ),
            EngineFailure::Storage(error) => ApiError::from(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        if let Some(cause) = &self.cause {
            if status.is_server_error() {
                tracing::error!(code = self.code.as_str(), cause = format!("{cause:#}"), "request failed");
            }
        }
        // A refusal that says when to come back says so in `Retry-After` too.
        let retry_after_ms =
            self.details.as_ref().and_then(|d| d.get("retryAfterMs")).and_then(|v| v.as_i64());
        let mut body = serde_json::to_value(ErrorBody { code: self.code, message: self.message })
            .expect("an error body serialises");
        if let (Some(details), Some(object)) = (self.details, body.as_object_mut()) {
            object.insert("details".into(), details);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        if let Some(ms) = retry_after_ms {
            let seconds = ((ms + 999) / 1000).max(1);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_database_is_retryable_and_a_bad_query_is_not() {
        let unavailable = ApiError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(unavailable.code(), ErrorCode::ServiceUnavailable);
        let internal = ApiError::from(sqlx::Error::RowNotFound);
        assert_eq!(internal.code(), ErrorCode::Internal);
    }

    #[test]
    fn a_503_tells_the_client_when_to_retry() {
        let response = ApiError::unavailable(anyhow::anyhow!("db down")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
    }
}
