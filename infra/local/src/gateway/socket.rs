//! One WebSocket connection: reads frames, routes them, writes route responses and
//! `@connections` posts, enforces the quotas, and runs `$disconnect` when it ends.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{sleep, Instant};
use tracing::{debug, warn};

use super::registry::{Connection, Outbound};
use super::{events, Gateway, WsHandler};

/// Close codes API Gateway uses.
const GOING_AWAY: u16 = 1001;
const PROTOCOL_ERROR: u16 = 1002;
const ABNORMAL: u16 = 1006;
const INVALID_PAYLOAD: u16 = 1007;
const MESSAGE_TOO_BIG: u16 = 1009;

pub async fn run(gateway: Arc<Gateway>, connection: Arc<Connection>, socket: WebSocket) {
    let Some(rx) = connection.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    connection.open.store(true, Ordering::Release);
    let (sink, stream) = socket.split();
    let mut writer = tokio::spawn(write_frames(sink, rx, connection.clone()));
    let (code, reason) = read_frames(&gateway, &connection, stream).await;
    connection.open.store(false, Ordering::Release);
    if code != ABNORMAL {
        connection.close(code, reason.clone());
    }
    disconnect(&gateway, &connection, code, &reason).await;
    // A client that stopped reading cannot take its close frame: give up on it after a while
    // (dropping the socket), rather than keeping its writer and queue for ever.
    if tokio::time::timeout(gateway.limits.close_timeout, &mut writer)
        .await
        .is_err()
    {
        debug!(connection = %connection.id, "close frame not flushed in time; dropping the socket");
        writer.abort();
    }
}

/// Runs `$disconnect` and forgets the connection.
pub async fn disconnect(gateway: &Gateway, connection: &Connection, code: u16, reason: &str) {
    let lost = gateway
        .lost_disconnects
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&connection.id);
    if lost {
        debug!(connection = %connection.id, "losing this $disconnect, as asked");
        gateway.registry.remove(&connection.id);
        return;
    }
    let event = events::disconnect(gateway, connection, code, reason);
    if let Err(e) = (gateway.routes.disconnect)(event).await {
        warn!(connection = %connection.id, error = %e, "$disconnect handler failed");
    }
    gateway.registry.remove(&connection.id);
}

/// Writes queued frames in order until a close frame. Once the server has ended the connection
/// because its queue overflowed, frames still queued are dropped unsent.
async fn write_frames(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    connection: Arc<Connection>,
) {
    while let Some(out) = rx.recv().await {
        connection.dequeued(&out);
        let message = match out {
            Outbound::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
            _ if connection.drops_queued() => continue,
            Outbound::Text(text) => Message::Text(text.into()),
            Outbound::Binary(bytes) => Message::Binary(bytes.into()),
        };
        let last = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || last {
            break;
        }
    }
    let _ = sink.close().await;
}

/// Reads until the connection ends; returns the close code and reason for `$disconnect`.
async fn read_frames(
    gateway: &Arc<Gateway>,
    connection: &Arc<Connection>,
    mut stream: SplitStream<WebSocket>,
) -> (u16, String) {
    let lifetime = sleep(gateway.limits.max_connection_duration);
    tokio::pin!(lifetime);
    let idle = sleep(gateway.limits.idle_timeout);
    tokio::pin!(idle);
    let mut shutdown = gateway.shutdown.clone();
    let stopping = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    let closed_by_server = connection.closed_by_server();
    tokio::pin!(closed_by_server);
    let concurrent = gateway.limits.max_concurrent_frames > 1;
    let in_flight = Arc::new(Semaphore::new(gateway.limits.max_concurrent_frames.max(1)));
    loop {
        let (body, is_base64) = tokio::select! {
            frame = stream.next() => {
                idle.as_mut().reset(Instant::now() + gateway.limits.idle_timeout);
                connection.touch();
                match frame {
                    Some(Ok(Message::Text(text))) => (text.as_str().to_owned(), false),
                    Some(Ok(Message::Binary(bytes))) => (base64(&bytes), true),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(frame))) => {
                        return frame.map(|f| (f.code, f.reason.as_str().to_owned())).unwrap_or((1005, String::new()));
                    }
                    Some(Err(e)) => {
                        debug!(connection = %connection.id, error = %e, "socket error");
                        return close_for(&e);
                    }
                    None => return (ABNORMAL, String::new()),
                }
            }
            close = &mut closed_by_server => return (close.code, close.reason),
            _ = &mut idle => return (GOING_AWAY, "Idle timeout".to_owned()),
            _ = &mut lifetime => return (GOING_AWAY, "Maximum connection duration reached".to_owned()),
            _ = &mut stopping => return (GOING_AWAY, "Going away".to_owned()),
        };
        // One at a time unless the limits allow more: API Gateway may invoke a route
        // concurrently for frames of one connection, and replies then come in any order.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            continue;
        };
        let (gateway, connection) = (gateway.clone(), connection.clone());
        let routed = async move {
            route(&gateway, &connection, body, is_base64).await;
            drop(permit);
        };
        if concurrent {
            tokio::spawn(routed);
        } else {
            routed.await;
        }
    }
}

/// Invokes `$default` (the template declares no other message route, so every frame goes
/// there whatever its `action`) and sends its response body back, as a route response does.
async fn route(gateway: &Gateway, connection: &Connection, body: String, is_base64: bool) {
    let handler: &WsHandler = &gateway.routes.default;
    let event = events::message(gateway, connection, "$default", body, is_base64);
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
                    let _ = connection.enqueue(Outbound::Text(text));
                }
            }
        }
        Err(e) => {
            warn!(connection = %connection.id, error = %e, "$default handler failed");
            let message = serde_json::json!({
                "message": "Internal server error", "connectionId": connection.id, "requestId": request_id
            });
            let _ = connection.enqueue(Outbound::Text(message.to_string()));
        }
    }
}

/// The close code and reason for a read error (RFC 6455 §7.4.1): 1009 for a message or frame
/// over the limits, 1007 for a text message that is not UTF-8, 1002 for a frame that breaks
/// the framing rules; 1006 (no close frame) when the connection itself failed.
fn close_for(error: &axum::Error) -> (u16, String) {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match tungstenite_error(error) {
        Some(WsError::Capacity(_)) => (MESSAGE_TOO_BIG, "Message too big".to_owned()),
        Some(WsError::Utf8(_)) => (INVALID_PAYLOAD, "Invalid UTF-8 in text frame".to_owned()),
        Some(WsError::Protocol(e)) if !is_transport_failure(e) => (PROTOCOL_ERROR, "Protocol error".to_owned()),
        _ => (ABNORMAL, String::new()),
    }
}

/// The tungstenite error under axum's wrapper.
fn tungstenite_error(error: &axum::Error) -> Option<&tokio_tungstenite::tungstenite::Error> {
    use std::error::Error as _;
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(e) = source {
        if let Some(tungstenite) = e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            return Some(tungstenite);
        }
        source = e.source();
    }
    None
}

/// Protocol "errors" that mean the peer went away rather than sent a bad frame.
fn is_transport_failure(error: &tokio_tungstenite::tungstenite::error::ProtocolError) -> bool {
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    matches!(
        error,
        ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::SendAfterClosing
            | ProtocolError::ReceivedAfterClosing
    )
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
