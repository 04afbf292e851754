//! One load client: connects (TCP_NODELAY, small read buffer), subscribes, then a reader task
//! forwards every frame it gets, time-stamped on arrival, as an [`Event`] on the driver's channel.

use std::borrow::Cow;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::LoadError;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Sink = SplitSink<Socket, Message>;

/// A connected client holding a subscription.
pub struct Subscribed {
    pub sink: Sink,
    pub stream: SplitStream<Socket>,
    /// The actor version the `subscribed` reply carried.
    pub version: u64,
    /// From starting the handshake to reading the `subscribed` reply.
    pub connect_time: Duration,
}

/// What a reader saw, and when.
#[derive(Debug)]
pub struct Event {
    pub client: usize,
    pub at: Instant,
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A `delta` (its `to`) or `snapshot` (its `version`) of the actor.
    Change(u64),
    /// A call's `result`.
    Result { id: u64, version: u64 },
    /// An `error` reply or a frame this run cannot explain (the raw text).
    Unexpected(String),
    /// The socket ended.
    Closed(String),
}

/// The fields of a server frame the driver looks at.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    actor: Option<Cow<'a, str>>,
    id: Option<Value>,
    to: Option<u64>,
    version: Option<u64>,
}

/// Reads one text frame of a run on `actor`.
pub fn classify(text: &str, actor: &str) -> EventKind {
    let unexpected = || EventKind::Unexpected(text.to_owned());
    let Ok(frame) = serde_json::from_str::<Frame>(text) else {
        return unexpected();
    };
    let ours = frame.actor.as_deref() == Some(actor);
    match (frame.kind.as_deref(), frame.to, frame.version) {
        (Some("delta"), Some(to), _) if ours => EventKind::Change(to),
        (Some("snapshot"), _, Some(version)) if ours => EventKind::Change(version),
        (Some("result"), _, Some(version)) => match frame.id.as_ref().and_then(Value::as_u64) {
            Some(id) => EventKind::Result { id, version },
            None => unexpected(),
        },
        _ => unexpected(),
    }
}

/// Connects client `client` to `url` and subscribes it to `actor`, within `timeout`.
pub async fn connect(client: usize, url: &str, actor: &str, timeout: Duration) -> Result<Subscribed, LoadError> {
    let started = Instant::now();
    let subscribing = async {
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config()), true)
            .await
            .map_err(|e| LoadError::Connect {
                client,
                source: Box::new(e),
            })?;
        let (mut sink, mut stream) = socket.split();
        let subscribe = json!({"action": "subscribe", "id": 0, "actor": actor});
        sink.send(Message::Text(subscribe.to_string().into()))
            .await
            .map_err(|e| LoadError::Socket {
                client,
                source: Box::new(e),
            })?;
        let version = subscribed_version(client, &mut stream).await?;
        Ok(Subscribed {
            sink,
            stream,
            version,
            connect_time: started.elapsed(),
        })
    };
    tokio::time::timeout(timeout, subscribing)
        .await
        .map_err(|_| LoadError::SubscribeTimeout { client, timeout })?
}

/// The clients' socket settings: tungstenite zero-fills its whole read buffer (128 KiB by
/// default) on every read, which at 1000 clients costs the driver more than the frames do;
/// our frames are ~100 bytes, so 4 KiB is plenty.
fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// Waits for the `subscribed` reply and returns its version.
async fn subscribed_version(client: usize, stream: &mut SplitStream<Socket>) -> Result<u64, LoadError> {
    while let Some(message) = stream.next().await {
        let message = message.map_err(|e| LoadError::Socket {
            client,
            source: Box::new(e),
        })?;
        let Message::Text(text) = message else { continue };
        let reply: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
        match (reply["type"].as_str(), reply["version"].as_u64()) {
            (Some("subscribed"), Some(version)) => return Ok(version),
            _ => {
                return Err(LoadError::Refused {
                    client,
                    reply: text.as_str().to_owned(),
                })
            }
        }
    }
    Err(LoadError::Closed { client })
}

/// Forwards every frame of `stream` to `events` until the socket ends.
pub fn spawn_reader(
    client: usize,
    mut stream: SplitStream<Socket>,
    actor: String,
    events: mpsc::UnboundedSender<Event>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let reason = loop {
            let kind = match stream.next().await {
                Some(Ok(Message::Text(text))) => classify(text.as_str(), &actor),
                Some(Ok(Message::Close(frame))) => break format!("closed by the server ({frame:?})"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => break format!("socket error: {e}"),
                None => break "socket ended".to_owned(),
            };
            let event = Event {
                client,
                at: Instant::now(),
                kind,
            };
            if events.send(event).is_err() {
                return;
            }
        };
        let _ = events.send(Event {
            client,
            at: Instant::now(),
            kind: EventKind::Closed(reason),
        });
    })
}

/// The `call` frame for the `n`-th increment.
pub fn increment(actor: &str, id: u64) -> Message {
    let call = json!({"action": "call", "id": id, "actor": actor, "method": "increment"});
    Message::Text(call.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deltas count by `to`, snapshots by `version`, as a client applies them.
    #[test]
    fn deltas_and_snapshots_are_changes() {
        let delta = r#"{"type":"delta","actor":"counter/a","epoch":1,"from":4,"to":5,"patch":[]}"#;
        let snapshot = r#"{"type":"snapshot","actor":"counter/a","epoch":9,"version":6,"state":{"value":6}}"#;
        assert_eq!(classify(delta, "counter/a"), EventKind::Change(5));
        assert_eq!(classify(snapshot, "counter/a"), EventKind::Change(6));
    }

    /// A call's result carries its id and the version it produced.
    #[test]
    fn results_carry_id_and_version() {
        let result = r#"{"type":"result","id":3,"value":3,"version":3}"#;
        assert_eq!(classify(result, "counter/a"), EventKind::Result { id: 3, version: 3 });
    }

    /// Errors, other actors' changes and non-JSON are unexpected in a run.
    #[test]
    fn anything_else_is_unexpected() {
        for text in [
            r#"{"type":"error","id":1,"code":"internal","message":"boom"}"#,
            r#"{"type":"delta","actor":"counter/b","epoch":1,"from":0,"to":1,"patch":[]}"#,
            r#"{"message":"Internal server error"}"#,
            "not json",
        ] {
            assert_eq!(classify(text, "counter/a"), EventKind::Unexpected(text.to_owned()));
        }
    }
}
