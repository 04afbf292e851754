//! The error every failed request returns: the server's error codes, and the client's own
//! reasons (timeout, closed, a frame too large to send).

use std::fmt;

/// Codes the server sends in `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Internal,
}

impl ErrorCode {
    /// The code named on the wire; a code this client does not know reads as `Internal`.
    pub fn from_wire(code: &str) -> ErrorCode {
        match code {
            "bad_request" => ErrorCode::BadRequest,
            "unauthorized" => ErrorCode::Unauthorized,
            "forbidden" => ErrorCode::Forbidden,
            "not_found" => ErrorCode::NotFound,
            "conflict" => ErrorCode::Conflict,
            "too_large" => ErrorCode::TooLarge,
            "rate_limited" => ErrorCode::RateLimited,
            _ => ErrorCode::Internal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        }
    }

    /// Worth retrying later with back-off (the request itself was fine).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorCode::RateLimited | ErrorCode::Internal | ErrorCode::Conflict)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request (or a subscription) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an `error` frame.
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// No answer within the call timeout (the call may still have run; its idempotency key
    /// makes repeating it safe).
    #[error("no reply within the call timeout")]
    Timeout,
    /// The client was closed, or gave up reconnecting after `max_attempts`.
    #[error("the client is closed")]
    Closed,
    /// The request frame is over API Gateway's 128 KB message limit: it was not sent.
    #[error("the request frame is {bytes} bytes; the message limit is {limit}")]
    TooLarge { bytes: usize, limit: usize },
    /// The actor is already subscribed on this client with other `paths` (one connection holds
    /// one subscription per actor).
    #[error("already subscribed to {actor} with other paths")]
    PathsConflict { actor: String },
    /// The URL or the token cannot make a WebSocket handshake request.
    #[error("invalid connection request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// The server's error code, when the server refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}
