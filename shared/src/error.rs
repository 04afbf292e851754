//! The crate's error type: what callers branch on (retry, reply, clean up).

use crate::actor::ActorError;
use crate::ids::{ConnectionId, CrossTenant, IdError};
use crate::protocol::{ErrorCode, ProtocolError, RequestId, ServerMessage};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("invalid identifier: {0}")]
    Id(#[from] IdError),
    #[error(transparent)]
    CrossTenant(#[from] CrossTenant),
    #[error("{0}")]
    Unauthorized(String),
    #[error("connection is not registered (it never connected or has expired)")]
    UnknownConnection,
    #[error("no actor type {0:?} is registered")]
    UnknownActorType(String),
    #[error("no workflow {0:?} is registered")]
    UnknownWorkflow(String),
    #[error("workflow instance {0:?} not found")]
    WorkflowNotFound(String),
    #[error(transparent)]
    Actor(#[from] ActorError),
    /// The stored version moved on since it was read: load again and retry.
    #[error("version conflict on {0}: other writers won every attempt")]
    VersionConflict(String),
    /// An id someone else holds (e.g. a workflow id of another tenant or workflow); a retry
    /// cannot succeed.
    #[error("{0} is already taken")]
    AlreadyTaken(String),
    /// Another request recorded a result under this idempotency key first (read it).
    #[error("a call with idempotency key {0:?} was recorded by another request")]
    CallRecorded(String),
    /// An idempotency key repeated with another actor, method or arguments.
    #[error("idempotencyKey {key:?} was used for another call ({first}); use a new key for a new call")]
    KeyReused { key: String, first: String },
    #[error("{0}")]
    TooLarge(String),
    /// The connection sent more broadcasts and presence changes than its limit allows.
    #[error("this connection may send at most {max} broadcasts and presence changes per {window_ms} ms; retry in {retry_after_ms} ms")]
    TooFast {
        max: u32,
        window_ms: u64,
        retry_after_ms: u64,
    },
    /// A broadcast to an actor the sender has not subscribed to.
    #[error("subscribe to {0} before broadcasting to it")]
    NotSubscribed(String),
    /// A presence update in an actor whose presence the connection has not joined.
    #[error("join the presence of {0} first (subscribe with `presence`)")]
    NotMember(String),
    #[error("connection {0} is gone")]
    ConnectionGone(ConnectionId),
    /// A stored item or stream record that does not decode; retrying cannot help.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// DynamoDB or API Gateway throttled us beyond the SDK's own retries: the client should
    /// retry later (`rate_limited`).
    #[error("{operation} was throttled")]
    Throttled {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    /// A call to DynamoDB or the `@connections` API failed.
    #[error("{operation} failed")]
    Dependency {
        operation: &'static str,
        retryable: bool,
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether the same operation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Dependency { retryable, .. } => *retryable,
            Error::VersionConflict(_) | Error::Throttled { .. } => true,
            _ => false,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Protocol(_) | Error::Id(_) => ErrorCode::BadRequest,
            Error::CrossTenant(_) | Error::NotSubscribed(_) | Error::NotMember(_) => ErrorCode::Forbidden,
            Error::Unauthorized(_) | Error::UnknownConnection => ErrorCode::Unauthorized,
            Error::UnknownActorType(_) | Error::UnknownWorkflow(_) | Error::WorkflowNotFound(_) => ErrorCode::NotFound,
            Error::Actor(e) => e.code,
            Error::VersionConflict(_) | Error::AlreadyTaken(_) | Error::CallRecorded(_) | Error::KeyReused { .. } => {
                ErrorCode::Conflict
            }
            Error::Throttled { .. } | Error::TooFast { .. } => ErrorCode::RateLimited,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::ConnectionGone(_) | Error::Corrupt { .. } | Error::Dependency { .. } => ErrorCode::Internal,
        }
    }

    /// The `error` frame a client gets. Internal details stay in the logs; the client gets
    /// the Lambda request id to quote instead.
    pub fn to_reply(&self, id: Option<RequestId>, request_id: &str) -> ServerMessage {
        let message = match (self, self.code()) {
            (_, ErrorCode::Internal) => format!("internal error; request id {request_id}"),
            (Error::TooFast { .. }, _) => self.to_string(),
            (_, ErrorCode::RateLimited) => format!("the service is busy; retry later (request id {request_id})"),
            _ => self.to_string(),
        };
        let mut reply = ServerMessage::error(id, self.code(), message);
        if let (
            Error::TooFast { retry_after_ms, .. },
            ServerMessage::Error {
                retry_after_ms: hint, ..
            },
        ) = (self, &mut reply)
        {
            *hint = Some(*retry_after_ms);
        }
        reply
    }
}

/// `error: cause: cause…`, for logs.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let err = Error::Dependency {
            operation: "GetItem",
            retryable: true,
            source: "socket closed".into(),
        };
        assert!(err.is_retryable());
        let ServerMessage::Error { code, message, .. } = err.to_reply(None, "req-1") else {
            panic!("an error reply");
        };
        assert_eq!(code, ErrorCode::Internal);
        assert_eq!(message, "internal error; request id req-1");
    }
}
