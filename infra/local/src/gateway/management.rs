//! The `@connections` management API: POST sends a frame, GET describes the connection,
//! DELETE closes it; unknown, closed or still-connecting ids answer 410 `GoneException`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::registry::{Connection, Outbound};
use super::{Gateway, Injected};

pub async fn handle(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    if let Some(refused) = injected(&gateway, &id, &method).await {
        return refused;
    }
    manage(&gateway, &id, method, body)
}

/// A post answered with an injected fault, as API Gateway answers it.
async fn injected(gateway: &Gateway, id: &str, method: &Method) -> Option<Response> {
    if method != Method::POST {
        return None;
    }
    Some(match gateway.inject(id).await? {
        Injected::Throttled => error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            "Rate exceeded (injected)",
        ),
        Injected::Error => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerErrorException",
            "Internal server error (injected)",
        ),
        Injected::Gone => error(StatusCode::GONE, "GoneException", &PostError::Gone.message(id)),
    })
}

pub async fn handle_staged(
    State(gateway): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
    method: Method,
    body: Bytes,
) -> Response {
    if stage != gateway.stage {
        return error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            &format!("no stage {stage:?}"),
        );
    }
    if let Some(refused) = injected(&gateway, &id, &method).await {
        return refused;
    }
    manage(&gateway, &id, method, body)
}

fn manage(gateway: &Gateway, id: &str, method: Method, body: Bytes) -> Response {
    match method {
        Method::POST => match post(gateway, id, body) {
            Ok(()) => StatusCode::OK.into_response(),
            Err(e @ PostError::Gone) => error(StatusCode::GONE, "GoneException", &e.message(id)),
            Err(e @ PostError::TooLarge { .. }) => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeException",
                &e.message(id),
            ),
        },
        Method::GET | Method::DELETE => {
            let Some(connection) = open_connection(gateway, id) else {
                return error(StatusCode::GONE, "GoneException", &PostError::Gone.message(id));
            };
            if method == Method::GET {
                return Json(json!({
                    "ConnectedAt": iso8601(connection.connected_at),
                    "LastActiveAt": iso8601(connection.last_active_at.load(Ordering::Relaxed)),
                    "Identity": { "SourceIp": connection.source_ip, "UserAgent": connection.user_agent },
                }))
                .into_response();
            }
            // Queued frames are written first, then the close frame; posts answer 410 at once.
            connection.end(1000, String::new(), false);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "use POST, GET or DELETE",
        ),
    }
}

/// Why a post was refused: 410 `GoneException` or 413 `PayloadTooLargeException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostError {
    /// Unknown, closed or still in `$connect`.
    Gone,
    TooLarge {
        len: usize,
        limit: usize,
    },
}

impl PostError {
    pub(crate) fn message(self, id: &str) -> String {
        match self {
            PostError::Gone => format!("connection {id} is gone"),
            PostError::TooLarge { len, limit } => format!("{len} bytes exceed the {limit} byte message limit"),
        }
    }
}

/// `POST @connections/{id}`: queues `data` on the connection's socket, as the management API
/// does, whether it arrives over HTTP or from the in-process sender. It never waits for the
/// socket: a post that would take the connection's queue over `Limits::max_queued_bytes`
/// closes that connection (1008) and answers 410, like every later post to it.
pub(crate) fn post(gateway: &Gateway, id: &str, data: impl Into<Vec<u8>>) -> Result<(), PostError> {
    let connection = open_connection(gateway, id).ok_or(PostError::Gone)?;
    let data = data.into();
    let limit = gateway.limits.max_message_bytes;
    if data.len() > limit {
        return Err(PostError::TooLarge { len: data.len(), limit });
    }
    let frame = match String::from_utf8(data) {
        Ok(text) => Outbound::Text(text),
        Err(e) => Outbound::Binary(e.into_bytes()),
    };
    connection.enqueue(frame).map_err(|_| PostError::Gone)
}

fn open_connection(gateway: &Gateway, id: &str) -> Option<Arc<Connection>> {
    gateway.registry.get(id).filter(|c| c.is_open())
}

fn error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    (
        status,
        [("x-amzn-errortype", kind)],
        Json(json!({ "message": message })),
    )
        .into_response()
}

fn iso8601(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
