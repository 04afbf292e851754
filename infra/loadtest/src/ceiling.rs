//! The raw ceiling: an in-memory topic → sockets broadcast server speaking just enough of the
//! wire protocol (`subscribe`, `call` `increment` and `broadcast` on `counter/...`) for the
//! same driver to run.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type Outbox = mpsc::UnboundedSender<Utf8Bytes>;

/// The running ceiling server.
pub struct Ceiling {
    /// `ws://127.0.0.1:{port}/`.
    pub ws_url: String,
    server: JoinHandle<()>,
}

impl Ceiling {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start() -> std::io::Result<Ceiling> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let ws_url = format!("ws://{}/", listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = Router::new()
            .route("/", get(upgrade))
            .with_state(Arc::new(Topics::default()));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Ceiling { ws_url, server })
    }

    /// Stops accepting connections; open sockets end when their clients close them.
    pub fn shutdown(self) {
        self.server.abort();
    }
}

/// Every topic's version and subscribers.
#[derive(Default)]
struct Topics {
    topics: Mutex<HashMap<String, Topic>>,
    next_socket: AtomicU64,
}

#[derive(Default)]
struct Topic {
    version: u64,
    subscribers: Vec<(u64, Outbox)>,
}

impl Topics {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Topic>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `socket` to `actor`'s subscribers; returns the version it starts from.
    fn subscribe(&self, actor: &str, socket: u64, outbox: &Outbox) -> u64 {
        let mut topics = self.lock();
        let topic = topics.entry(actor.to_owned()).or_default();
        if !topic.subscribers.iter().any(|(id, _)| *id == socket) {
            topic.subscribers.push((socket, outbox.clone()));
        }
        topic.version
    }

    fn unsubscribe(&self, actor: &str, socket: u64) {
        if let Some(topic) = self.lock().get_mut(actor) {
            topic.subscribers.retain(|(id, _)| *id != socket);
        }
    }

    /// Bumps `actor`'s version, queues the `result` for the caller and then the delta for every
    /// subscriber (the order our gateway sends them in), all under the lock so versions stay in order.
    fn increment(&self, actor: &str, id: &Value, caller: &Outbox) {
        let mut topics = self.lock();
        let topic = topics.entry(actor.to_owned()).or_default();
        topic.version += 1;
        let v = topic.version;
        let result = format!(r#"{{"type":"result","id":{id},"value":{v},"version":{v}}}"#);
        let _ = caller.send(Utf8Bytes::from(result));
        let actor = Value::from(actor);
        let from = v - 1;
        let delta = format!(
            r#"{{"type":"delta","actor":{actor},"epoch":1,"from":{from},"to":{v},"patch":[{{"op":"replace","path":"/value","value":{v}}}]}}"#
        );
        let frame = Utf8Bytes::from(delta);
        for (_, outbox) in &topic.subscribers {
            let _ = outbox.send(frame.clone());
        }
    }

    /// Queues a `broadcast` frame for every subscriber of `actor`, then the `sent` reply for
    /// the sender (the order our service sends them in); `None` if the sender is not subscribed.
    fn broadcast(&self, actor: &str, socket: u64, request: &Request, caller: &Outbox) -> Option<()> {
        let topics = self.lock();
        let topic = topics.get(actor)?;
        if !topic.subscribers.iter().any(|(id, _)| *id == socket) {
            return None;
        }
        let frame = json!({"type": "broadcast", "actor": actor, "event": request.event,
                           "payload": request.payload, "from": socket.to_string()});
        let frame = Utf8Bytes::from(frame.to_string());
        for (_, outbox) in &topic.subscribers {
            let _ = outbox.send(frame.clone());
        }
        let sent = json!({"type": "sent", "id": request.id, "actor": actor, "recipients": topic.subscribers.len()});
        let _ = caller.send(Utf8Bytes::from(sent.to_string()));
        Some(())
    }
}

async fn upgrade(State(topics): State<Arc<Topics>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| run(topics, socket))
}

/// A client frame; anything else is answered with `bad_request`.
#[derive(Deserialize)]
struct Request {
    action: String,
    #[serde(default)]
    id: Value,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    payload: Value,
}

async fn run(topics: Arc<Topics>, socket: WebSocket) {
    let id = topics.next_socket.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    let (outbox, mut rx) = mpsc::unbounded_channel::<Utf8Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut subscribed: Vec<String> = Vec::new();
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                break;
            }
            continue;
        };
        if let Some(reply) = answer(&topics, id, &outbox, &mut subscribed, text.as_str()) {
            let _ = outbox.send(Utf8Bytes::from(reply.to_string()));
        }
    }
    for actor in &subscribed {
        topics.unsubscribe(actor, id);
    }
    drop(outbox);
    let _ = writer.await;
}

/// The reply to one client frame; `None` when it is already queued (a call's `result`, a
/// broadcast's `sent`).
fn answer(topics: &Topics, socket: u64, outbox: &Outbox, subscribed: &mut Vec<String>, text: &str) -> Option<Value> {
    let request = match serde_json::from_str::<Request>(text) {
        Ok(request) => request,
        Err(e) => return Some(error(Value::Null, &format!("invalid message: {e}"))),
    };
    if request.action == "broadcast" {
        return match topics.broadcast(&request.actor, socket, &request, outbox) {
            Some(()) => None,
            None => Some(error(
                request.id,
                "broadcast to an actor this socket is not subscribed to",
            )),
        };
    }
    let Request {
        action,
        id,
        actor,
        method,
        ..
    } = request;
    let reply = match action.as_str() {
        "subscribe" if actor.starts_with("counter/") => {
            let version = topics.subscribe(&actor, socket, outbox);
            subscribed.push(actor.clone());
            json!({"type": "subscribed", "id": id, "actor": actor, "epoch": 0, "version": version,
                   "state": {"value": version}})
        }
        "unsubscribe" => {
            topics.unsubscribe(&actor, socket);
            subscribed.retain(|a| *a != actor);
            json!({"type": "unsubscribed", "id": id, "actor": actor})
        }
        "call" if actor.starts_with("counter/") && method == "increment" => {
            topics.increment(&actor, &id, outbox);
            return None;
        }
        "ping" => json!({"type": "pong", "id": id}),
        _ => error(
            id,
            "the ceiling only knows subscribe, call increment and broadcast on counter/...",
        ),
    };
    Some(reply)
}

fn error(id: Value, message: &str) -> Value {
    json!({"type": "error", "id": id, "code": "bad_request", "message": message})
}
