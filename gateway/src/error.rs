//! The one error shape every endpoint answers with (docs/contract.md §6):
//! `{"error": {"code", "message", "request_id"}}`, with a stable code per failure.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use std::fmt;

tokio::task_local! {
    /// The id of the request being served, set by the request-id middleware.
    pub static REQUEST_ID: String;
}

/// The current request's id, or `-` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(|id| id.clone())
        .unwrap_or_else(|_| "-".into())
}

pub use qrgate_domain::error_code::ErrorCode;

/// The HTTP status of a code, as actix writes it.
fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).expect("the catalogue's statuses are valid")
}

/// An error answer. Unexpected failures keep their cause for the log, never the body.
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    cause: Option<anyhow::Error>,
    /// `Retry-After` in seconds, for `rate_limited`.
    retry_after_seconds: Option<u64>,
    /// The risk rule that declined a payment or transfer (`daily_amount`, …).
    rule: Option<String>,
    /// A header the answer carries (`Allow` on a 405).
    header: Option<(&'static str, String)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            cause: None,
            retry_after_seconds: None,
            rule: None,
            header: None,
        }
    }

    /// Adds a header to the answer.
    pub fn with_header(self, name: &'static str, value: String) -> Self {
        ApiError {
            header: Some((name, value)),
            ..self
        }
    }

    /// Names the risk rule that declined the call, in the body's `error.rule`.
    pub fn with_rule(self, rule: Option<String>) -> Self {
        ApiError { rule, ..self }
    }

    /// Too many requests: come back in `retry_after_seconds` (at least 1).
    pub fn rate_limited(message: impl Into<String>, retry_after_seconds: u64) -> Self {
        ApiError {
            retry_after_seconds: Some(retry_after_seconds.max(1)),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    pub fn invalid(field: &str, problem: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidRequest, format!("{field}: {problem}"))
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// A failure of ours: 500 to the caller, the whole chain to the log.
    pub fn internal(cause: anyhow::Error) -> Self {
        ApiError {
            code: ErrorCode::Internal,
            message: "internal error; the request id identifies it in our logs".into(),
            cause: Some(cause),
            retry_after_seconds: None,
            rule: None,
            header: None,
        }
    }

    /// A broken internal assumption (a stored value that does not parse).
    pub fn internal_from(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::internal(anyhow::Error::new(e))
    }

    /// The database or pool could not be reached in time: retry later.
    pub fn unavailable(cause: anyhow::Error) -> Self {
        ApiError {
            code: ErrorCode::Unavailable,
            message: "the service is temporarily unavailable; retry with backoff".into(),
            cause: Some(cause),
            retry_after_seconds: None,
            rule: None,
            header: None,
        }
    }

    /// Refused at admission: this replica is working on as many requests as it may.
    /// No cause: under overload there are thousands a second (admission logs a summary).
    pub fn at_capacity() -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "the service is at capacity; retry with backoff",
        )
    }

    pub fn body(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message,
            "request_id": current_request_id(),
        });
        if let Some(rule) = &self.rule {
            error["rule"] = rule.as_str().into();
        }
        serde_json::json!({ "error": error })
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        match (&self.cause, self.code) {
            // The database or pool busy or away: the client is told to retry, and under
            // overload there are thousands a second; /metrics counts them by status.
            (Some(cause), ErrorCode::Unavailable) => tracing::warn!(
                code = self.code.as_str(),
                error = format!("{cause:#}"),
                "request refused for now"
            ),
            (Some(cause), _) => tracing::error!(
                code = self.code.as_str(),
                error = format!("{cause:#}"),
                "request failed"
            ),
            (None, _) => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after_seconds {
            response.insert_header(("Retry-After", seconds.to_string()));
        } else if self.code == ErrorCode::Unavailable {
            response.insert_header(("Retry-After", "1"));
        }
        if let Some((name, value)) = &self.header {
            response.insert_header((*name, value.as_str()));
        }
        response.json(self.body())
    }
}

/// Database errors: pool exhaustion and timeouts are transient (503); the rest are ours.
impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::unavailable(anyhow::Error::new(e).context("acquiring a database connection"))
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        let transient = e.is_closed()
            || e.code().is_some_and(|c| {
                [
                    tokio_postgres::error::SqlState::QUERY_CANCELED,
                    tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE,
                    tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED,
                    tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE,
                    tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(c)
            });
        let cause = anyhow::Error::new(e).context("querying the database");
        if transient {
            ApiError::unavailable(cause)
        } else {
            ApiError::internal(cause)
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
