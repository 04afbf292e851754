//! One WebSocket connection: reads frames, routes them, writes route responses and
//! `@connections` posts, enforces the quotas, and runs `$disconnect` when it ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{sleep, Instant};
use tracing::{debug, warn};

use super::registry::{Connection, Outbound};
use super::{events, Gateway, WsHandler};

/// Close codes API Gateway uses.
const GOING_AWAY: u16 = 1001;
const ABNORMAL: u16 = 1006;
const MESSAGE_TOO_BIG: u16 = 1009;

pub async fn run(gateway: Arc<Gateway>, connection: Arc<Connection>, socket: WebSocket) {
    let Some(rx) = connection.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    connection.open.store(true, Ordering::Release);
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_frames(sink, rx));
    let (code, reason) = read_frames(&gateway, &connection, stream).await;
    connection.open.store(false, Ordering::Release);
    if code != ABNORMAL {
        let _ = connection.tx.send(Outbound::Close(code, reason.clone()));
    }
    disconnect(&gateway, &connection, code, &reason).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), writer).await;
}

/// Runs `$disconnect` and forgets the connection.
pub async fn disconnect(gateway: &Gateway, connection: &Connection, code: u16, reason: &str) {
    let event = events::disconnect(gateway, connection, code, reason);
    if let Err(e) = (gateway.routes.disconnect)(event).await {
        warn!(connection = %connection.id, error = %e, "$disconnect handler failed");
    }
    gateway.registry.remove(&connection.id);
}

async fn write_frames(mut sink: SplitSink<WebSocket, Message>, mut rx: mpsc::UnboundedReceiver<Outbound>) {
    while let Some(out) = rx.recv().await {
        let (message, last) = match out {
            Outbound::Text(text) => (Message::Text(text.into()), false),
            Outbound::Binary(bytes) => (Message::Binary(bytes.into()), false),
            Outbound::Close(code, reason) => (
                Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })),
                true,
            ),
        };
        if sink.send(message).await.is_err() || last {
            break;
        }
    }
    let _ = sink.close().await;
}

/// Reads until the connection ends; returns the close code and reason for `$disconnect`.
async fn read_frames(gateway: &Gateway, connection: &Connection, mut stream: SplitStream<WebSocket>) -> (u16, String) {
    let lifetime = sleep(gateway.limits.max_connection_duration);
    tokio::pin!(lifetime);
    let idle = sleep(gateway.limits.idle_timeout);
    tokio::pin!(idle);
    let mut shutdown = gateway.shutdown.clone();
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            frame = stream.next() => {
                idle.as_mut().reset(Instant::now() + gateway.limits.idle_timeout);
                connection.touch();
                match frame {
                    Some(Ok(Message::Text(text))) => route(gateway, connection, text.as_str().to_owned(), false).await,
                    Some(Ok(Message::Binary(bytes))) => route(gateway, connection, base64(&bytes), true).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        return frame.map(|f| (f.code, f.reason.as_str().to_owned())).unwrap_or((1005, String::new()));
                    }
                    Some(Err(e)) if is_too_big(&e) => return (MESSAGE_TOO_BIG, "Message too big".to_owned()),
                    Some(Err(e)) => {
                        debug!(connection = %connection.id, error = %e, "socket error");
                        return (ABNORMAL, String::new());
                    }
                    None => return (ABNORMAL, String::new()),
                }
            }
            _ = &mut idle => return (GOING_AWAY, "Idle timeout".to_owned()),
            _ = &mut lifetime => return (GOING_AWAY, "Maximum connection duration reached".to_owned()),
            _ = &mut stopping => return (GOING_AWAY, "Going away".to_owned()),
        }
    }
}

/// Selects the route on `$request.body.action` (anything else, or non-JSON, is `$default`),
/// invokes it and sends its response body back, as a route response does.
async fn route(gateway: &Gateway, connection: &Connection, body: String, is_base64: bool) {
    let action = (!is_base64)
        .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
    let (route_key, handler): (&str, &WsHandler) = match action
        .as_deref()
        .and_then(|a| gateway.routes.by_action.get_key_value(a))
    {
        Some((key, handler)) => (key.as_str(), handler),
        None => ("$default", &gateway.routes.default),
    };
    let event = events::message(gateway, connection, route_key, body, is_base64);
    let request_id = event.request_context.request_id.clone().unwrap_or_default();
    let result = handler(event).await;
    gateway.routed.send_replace(());
    match result {
        Ok(response) => {
            if let Some(body) = response.body {
                let text = match body {
                    aws_lambda_events::encodings::Body::Text(t) => t,
                    aws_lambda_events::encodings::Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                    _ => String::new(),
                };
                if !text.is_empty() {
                    let _ = connection.tx.send(Outbound::Text(text));
                }
            }
        }
        Err(e) => {
            warn!(connection = %connection.id, route_key, error = %e, "route handler failed");
            let message = serde_json::json!({
                "message": "Internal server error", "connectionId": connection.id, "requestId": request_id
            });
            let _ = connection.tx.send(Outbound::Text(message.to_string()));
        }
    }
}

fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(tungstenite) = e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            return matches!(tungstenite, tokio_tungstenite::tungstenite::Error::Capacity(_));
        }
        source = e.source();
    }
    let text = error.to_string();
    text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big")
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
