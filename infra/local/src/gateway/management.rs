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

use super::registry::Outbound;
use super::Gateway;

pub async fn handle(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    manage(&gateway, &id, method, body)
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
    manage(&gateway, &id, method, body)
}

fn manage(gateway: &Gateway, id: &str, method: Method, body: Bytes) -> Response {
    let Some(connection) = gateway.registry.get(id).filter(|c| c.is_open()) else {
        return error(StatusCode::GONE, "GoneException", &format!("connection {id} is gone"));
    };
    match method {
        Method::POST => {
            if body.len() > gateway.limits.max_message_bytes {
                let message = format!(
                    "{} bytes exceed the {} byte message limit",
                    body.len(),
                    gateway.limits.max_message_bytes
                );
                return error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", &message);
            }
            let frame = match String::from_utf8(body.to_vec()) {
                Ok(text) => Outbound::Text(text),
                Err(e) => Outbound::Binary(e.into_bytes()),
            };
            if connection.tx.send(frame).is_err() {
                return error(StatusCode::GONE, "GoneException", &format!("connection {id} is gone"));
            }
            StatusCode::OK.into_response()
        }
        Method::GET => Json(json!({
            "ConnectedAt": iso8601(connection.connected_at),
            "LastActiveAt": iso8601(connection.last_active_at.load(Ordering::Relaxed)),
            "Identity": { "SourceIp": connection.source_ip, "UserAgent": connection.user_agent },
        }))
        .into_response(),
        Method::DELETE => {
            let _ = connection.tx.send(Outbound::Close(1000, String::new()));
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "use POST, GET or DELETE",
        ),
    }
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
