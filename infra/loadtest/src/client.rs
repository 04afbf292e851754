//! One load client: connects (TCP_NODELAY, small read buffer), subscribes, then a reader task
//! forwards every frame it gets, time-stamped on arrival, as an [`Event`] on the driver's channel.
//! Also the frames the driver sends: a counter's `increment` call or a `broadcast` "tick".

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
    /// What the run sends to everyone arrived: a `delta` (its `to`) or `snapshot` (its
    /// `version`) of the actor, or a `broadcast` [`TICK`] (its payload's `seq`).
    Delivered(u64),
    /// The sender's reply: a call's `result` (`value` = its version) or a broadcast's `sent`
    /// (`value` = its recipients).
    Reply { id: u64, value: u64 },
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
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    payload: Option<Tick>,
    recipients: Option<u64>,
}

/// The payload of the driver's broadcasts.
#[derive(Deserialize)]
struct Tick {
    seq: u64,
}

/// The event name of the driver's broadcasts.
pub const TICK: &str = "tick";

/// Reads one text frame of a run on `actor`.
pub fn classify(text: &str, actor: &str) -> EventKind {
    let unexpected = || EventKind::Unexpected(text.to_owned());
    let Ok(frame) = serde_json::from_str::<Frame>(text) else {
        return unexpected();
    };
    let ours = frame.actor.as_deref() == Some(actor);
    let id = frame.id.as_ref().and_then(Value::as_u64);
    match (frame.kind.as_deref(), frame.to, frame.version) {
        (Some("delta"), Some(to), _) if ours => EventKind::Delivered(to),
        (Some("snapshot"), _, Some(version)) if ours => EventKind::Delivered(version),
        (Some("broadcast"), ..) if ours && frame.event.as_deref() == Some(TICK) => match frame.payload {
            Some(tick) => EventKind::Delivered(tick.seq),
            None => unexpected(),
        },
        (Some("result"), _, Some(value)) => match id {
            Some(id) => EventKind::Reply { id, value },
            None => unexpected(),
        },
        (Some("sent"), ..) if ours => match (id, frame.recipients) {
            (Some(id), Some(value)) => EventKind::Reply { id, value },
            _ => unexpected(),
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

/// The `n`-th [`TICK`] broadcast to every subscriber, the sender included.
pub fn tick(actor: &str, n: u64) -> Message {
    let broadcast = json!({"action": "broadcast", "id": n, "actor": actor, "event": TICK, "payload": {"seq": n}});
    Message::Text(broadcast.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deltas count by `to`, snapshots by `version`, as a client applies them.
    #[test]
    fn deltas_and_snapshots_are_changes() {
        let delta = r#"{"type":"delta","actor":"counter/a","epoch":1,"from":4,"to":5,"patch":[]}"#;
        let snapshot = r#"{"type":"snapshot","actor":"counter/a","epoch":9,"version":6,"state":{"value":6}}"#;
        assert_eq!(classify(delta, "counter/a"), EventKind::Delivered(5));
        assert_eq!(classify(snapshot, "counter/a"), EventKind::Delivered(6));
    }

    /// A tick broadcast counts by its payload's `seq`, whoever sent it.
    #[test]
    fn ticks_are_deliveries_by_sequence_number() {
        let tick = r#"{"type":"broadcast","actor":"counter/a","event":"tick","payload":{"seq":7},"from":"c1"}"#;
        assert_eq!(classify(tick, "counter/a"), EventKind::Delivered(7));
    }

    /// A call's result carries its id and the version it produced; a broadcast's `sent` its
    /// id and recipients.
    #[test]
    fn replies_carry_id_and_value() {
        let result = r#"{"type":"result","id":3,"value":3,"version":3}"#;
        assert_eq!(classify(result, "counter/a"), EventKind::Reply { id: 3, value: 3 });
        let sent = r#"{"type":"sent","id":4,"actor":"counter/a","recipients":100}"#;
        assert_eq!(classify(sent, "counter/a"), EventKind::Reply { id: 4, value: 100 });
    }

    /// The frames sent are the documented `call` and `broadcast`.
    #[test]
    fn requests_have_the_wire_shape() {
        let text = |m: Message| serde_json::from_str::<Value>(m.to_text().expect("text")).expect("JSON");
        assert_eq!(
            text(tick("counter/a", 2)),
            json!({"action": "broadcast", "id": 2, "actor": "counter/a", "event": "tick", "payload": {"seq": 2}})
        );
        assert_eq!(text(increment("counter/a", 2))["method"], "increment");
    }

    /// Errors, other actors' changes, foreign broadcasts and non-JSON are unexpected in a run.
    #[test]
    fn anything_else_is_unexpected() {
        for text in [
            r#"{"type":"error","id":1,"code":"internal","message":"boom"}"#,
            r#"{"type":"delta","actor":"counter/b","epoch":1,"from":0,"to":1,"patch":[]}"#,
            r#"{"type":"broadcast","actor":"counter/a","event":"other","payload":{"seq":1},"from":"c1"}"#,
            r#"{"type":"broadcast","actor":"counter/a","event":"tick","payload":null,"from":"c1"}"#,
            r#"{"type":"error","id":5,"code":"rate_limited","message":"slow down","retryAfterMs":250}"#,
            r#"{"message":"Internal server error"}"#,
            "not json",
        ] {
            assert_eq!(classify(text, "counter/a"), EventKind::Unexpected(text.to_owned()));
        }
    }
}
