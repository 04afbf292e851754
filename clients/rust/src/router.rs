//! The client's bookkeeping, independent of the socket: pending calls, subscriptions and
//! their listeners, and the frames to send. Commands from the API and frames from the server
//! go in; frames to send and updates to listeners come out. Re-sends unanswered calls and
//! resubscribes (with `since`) when a socket opens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, ErrorCode};
use crate::parts::{LostReason, PartAssembler, PartEvent};
use crate::protocol::{self, ServerFrame, StreamFrame, Subscribed};
use crate::replica::{Outcome, Replica, Resync};
use crate::update::Update;

/// How long the parts of one large message may take.
const PART_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) type Listener = mpsc::UnboundedSender<Result<Update, ClientError>>;
pub(crate) type Reply = oneshot::Sender<Result<Value, ClientError>>;

/// What the API asks of the connection task.
pub(crate) enum Command {
    Subscribe {
        actor: String,
        paths: Option<Vec<String>>,
        listener: u64,
        updates: Listener,
    },
    Unsubscribe {
        actor: String,
        listener: u64,
    },
    /// `frame` is the whole `call` frame, with request id `id` and its idempotency key.
    Call {
        id: u64,
        frame: String,
        reply: Reply,
    },
    /// The caller stopped waiting for call `id`.
    Cancel {
        id: u64,
    },
    Close,
}

struct Subscription {
    paths: Option<Vec<String>>,
    replica: Replica,
    listeners: HashMap<u64, Listener>,
}

struct PendingCall {
    frame: String,
    reply: Reply,
}

pub(crate) struct Router {
    ids: Arc<AtomicU64>,
    open: bool,
    outbox: Vec<String>,
    calls: HashMap<u64, PendingCall>,
    subscriptions: HashMap<String, Subscription>,
    /// Subscribe request id → the actor as the client named it.
    subscribe_ids: HashMap<u64, String>,
    /// The actor as the server names it → as the client named it, when they differ.
    aliases: HashMap<String, String>,
    parts: PartAssembler,
}

impl Router {
    pub(crate) fn new(ids: Arc<AtomicU64>) -> Router {
        Router {
            ids,
            open: false,
            outbox: Vec::new(),
            calls: HashMap::new(),
            subscriptions: HashMap::new(),
            subscribe_ids: HashMap::new(),
            aliases: HashMap::new(),
            parts: PartAssembler::new(PART_TIMEOUT),
        }
    }

    /// Frames to write to the socket, in order.
    pub(crate) fn take_outbox(&mut self) -> Vec<String> {
        std::mem::take(&mut self.outbox)
    }

    /// Handles a command; `false` when it asks to close the client.
    pub(crate) fn command(&mut self, command: Command) -> bool {
        match command {
            Command::Subscribe {
                actor,
                paths,
                listener,
                updates,
            } => self.subscribe(actor, paths, listener, updates),
            Command::Unsubscribe { actor, listener } => self.unsubscribe(&actor, listener),
            Command::Call { id, frame, reply } => {
                self.send(frame.clone());
                self.calls.insert(id, PendingCall { frame, reply });
            }
            Command::Cancel { id } => {
                self.calls.remove(&id);
            }
            Command::Close => return false,
        }
        true
    }

    /// A socket opened: resubscribe every actor (with `since`) and re-send unanswered calls.
    pub(crate) fn opened(&mut self) {
        self.open = true;
        let actors: Vec<String> = self.subscriptions.keys().cloned().collect();
        for actor in actors {
            self.resubscribe(&actor, true);
        }
        self.calls.retain(|_, call| !call.reply.is_closed());
        let frames: Vec<String> = self.calls.values().map(|call| call.frame.clone()).collect();
        self.outbox.extend(frames);
    }

    /// The socket is gone: nothing is sent until the next one opens.
    pub(crate) fn socket_gone(&mut self) {
        self.open = false;
        self.outbox.clear();
        self.parts.reset();
        self.subscribe_ids.clear();
        for sub in self.subscriptions.values_mut() {
            sub.replica.await_reply(None);
        }
    }

    /// The client is closed for good: every call and subscription ends with `Closed`.
    pub(crate) fn shut_down(&mut self) {
        self.socket_gone();
        for (_, call) in self.calls.drain() {
            let _ = call.reply.send(Err(ClientError::Closed));
        }
        for (_, sub) in self.subscriptions.drain() {
            for listener in sub.listeners.values() {
                let _ = listener.send(Err(ClientError::Closed));
            }
        }
    }

    /// A keep-alive ping.
    pub(crate) fn ping(&mut self) {
        let id = self.next_id();
        self.send(protocol::ping(id));
    }

    /// When the next large message times out.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.parts.next_deadline()
    }

    pub(crate) fn expire(&mut self, now: Instant) {
        let events = self.parts.expire(now);
        self.part_events(events, now);
    }

    /// A text frame from the server.
    pub(crate) fn receive(&mut self, text: &str, now: Instant) {
        let Some(frame) = ServerFrame::parse(text) else {
            tracing::debug!(frame = text, "ignored a frame that is not a server frame");
            return;
        };
        match frame {
            ServerFrame::Part(part) => {
                let events = self.parts.receive(part, now);
                self.part_events(events, now);
            }
            ServerFrame::Subscribed(frame) => {
                let events = self.parts.superseded(&frame.actor, None);
                self.subscribed(frame);
                self.part_events(events, now);
            }
            ServerFrame::Snapshot(frame) => {
                let events = self.parts.superseded(&frame.actor, None);
                self.stream(StreamFrame::Snapshot(frame));
                self.part_events(events, now);
            }
            ServerFrame::Delta(frame) => self.stream(StreamFrame::Delta(frame)),
            ServerFrame::Deleted(frame) => self.stream(StreamFrame::Deleted(frame)),
            ServerFrame::Result { id, value } => {
                if let Some(call) = protocol::request_id(id.as_ref()).and_then(|id| self.calls.remove(&id)) {
                    let _ = call.reply.send(Ok(value));
                }
            }
            ServerFrame::Error { id, code, message } => self.error(protocol::request_id(id.as_ref()), &code, message),
            ServerFrame::Pong {} | ServerFrame::Unsubscribed {} => {}
        }
    }

    fn subscribe(&mut self, actor: String, paths: Option<Vec<String>>, listener: u64, updates: Listener) {
        if let Some(sub) = self.subscriptions.get_mut(&actor) {
            if sub.paths != paths {
                let _ = updates.send(Err(ClientError::PathsConflict { actor }));
                return;
            }
            // A late joiner gets the state held at once.
            if let Some(current) = sub.replica.current() {
                let _ = updates.send(Ok(current));
            }
            sub.listeners.insert(listener, updates);
            return;
        }
        let sub = Subscription {
            replica: Replica::new(paths.is_some()),
            paths,
            listeners: HashMap::from([(listener, updates)]),
        };
        self.subscriptions.insert(actor.clone(), sub);
        self.resubscribe(&actor, false);
    }

    fn unsubscribe(&mut self, actor: &str, listener: u64) {
        let Some(sub) = self.subscriptions.get_mut(actor) else {
            return;
        };
        if sub.listeners.remove(&listener).is_none() || !sub.listeners.is_empty() {
            return;
        }
        if let Some(sub) = self.subscriptions.remove(actor) {
            if let Some(awaiting) = sub.replica.awaiting() {
                self.subscribe_ids.remove(&awaiting);
            }
        }
        self.aliases.retain(|_, named| named != actor);
        let id = self.next_id();
        self.send(protocol::unsubscribe(id, actor));
    }

    fn subscribed(&mut self, frame: Subscribed) {
        let by_id = protocol::request_id(frame.id.as_ref()).and_then(|id| self.subscribe_ids.get(&id).cloned());
        let Some(actor) = by_id.or_else(|| self.named(&frame.actor)) else {
            return;
        };
        if actor != frame.actor {
            self.aliases.insert(frame.actor.clone(), actor.clone());
        }
        let Some(sub) = self.subscriptions.get_mut(&actor) else {
            return;
        };
        let Some(awaiting) = sub.replica.awaiting() else { return };
        if frame.id.is_some() && protocol::request_id(frame.id.as_ref()) != Some(awaiting) {
            return; // the reply to an earlier subscribe, superseded by the awaited one
        }
        self.subscribe_ids.remove(&awaiting);
        let outcome = sub.replica.subscribed(frame);
        self.deliver(&actor, outcome);
    }

    fn stream(&mut self, frame: StreamFrame) {
        let Some(actor) = self.named(frame.actor()) else { return };
        let Some(sub) = self.subscriptions.get_mut(&actor) else {
            return;
        };
        let outcome = sub.replica.receive(frame);
        self.deliver(&actor, outcome);
    }

    /// The subscription an actor name from the server belongs to.
    fn named(&self, actor: &str) -> Option<String> {
        if self.subscriptions.contains_key(actor) {
            return Some(actor.to_owned());
        }
        self.aliases.get(actor).cloned()
    }

    fn error(&mut self, id: Option<u64>, code: &str, message: String) {
        let error = ClientError::Server {
            code: ErrorCode::from_wire(code),
            message,
        };
        let Some(id) = id else {
            tracing::warn!(%error, "server error not tied to a request");
            return;
        };
        if let Some(call) = self.calls.remove(&id) {
            let _ = call.reply.send(Err(error));
            return;
        }
        // A refused subscribe: the server stored nothing; its subscription ends with the error.
        let Some(actor) = self.subscribe_ids.remove(&id) else {
            return;
        };
        if let Some(sub) = self.subscriptions.remove(&actor) {
            for listener in sub.listeners.values() {
                let _ = listener.send(Err(error.clone()));
            }
        }
        self.aliases.retain(|_, named| *named != actor);
    }

    fn part_events(&mut self, events: Vec<PartEvent>, now: Instant) {
        for event in events {
            match event {
                PartEvent::Complete(text) => {
                    // Parts never nest: a reassembled part is not a frame.
                    if !matches!(ServerFrame::parse(&text), Some(ServerFrame::Part(_)) | None) {
                        self.receive(&text, now);
                    }
                }
                PartEvent::Lost { actor, reason } => self.part_lost(actor.as_deref(), reason),
            }
        }
    }

    /// Parts of a message were lost: resubscribe its actor (every actor when unknown). Not
    /// when a newer state message superseded it, unless that actor still awaits a reply (the
    /// lost message may have been the reply).
    fn part_lost(&mut self, actor: Option<&str>, reason: LostReason) {
        let named = actor.and_then(|a| self.named(a));
        let actors: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(key, _)| actor.is_none() || named.as_ref() == Some(*key))
            .filter(|(_, sub)| reason != LostReason::Superseded || sub.replica.awaiting().is_some())
            .map(|(key, _)| key.clone())
            .collect();
        for actor in actors {
            self.resubscribe(&actor, true);
        }
    }

    fn deliver(&mut self, actor: &str, outcome: Outcome) {
        let Some(sub) = self.subscriptions.get_mut(actor) else {
            return;
        };
        for update in outcome.updates {
            // A listener that is gone has its `Unsubscribe` on the way.
            for listener in sub.listeners.values() {
                let _ = listener.send(Ok(update.clone()));
            }
        }
        match outcome.resync {
            Resync::None => {}
            Resync::Since => self.resubscribe(actor, true),
            Resync::Fresh => self.resubscribe(actor, false),
        }
    }

    /// Sends `subscribe` for `actor` (with `since` when asked and something is held); frames
    /// are kept until the reply.
    fn resubscribe(&mut self, actor: &str, with_since: bool) {
        if !self.open {
            return; // every subscription is sent when the socket opens
        }
        let id = self.next_id();
        let Some(sub) = self.subscriptions.get_mut(actor) else {
            return;
        };
        if let Some(old) = sub.replica.awaiting() {
            self.subscribe_ids.remove(&old);
        }
        sub.replica.await_reply(Some(id));
        self.subscribe_ids.insert(id, actor.to_owned());
        let since = if with_since { sub.replica.since() } else { None };
        let frame = protocol::subscribe(id, actor, since, sub.paths.as_deref());
        self.send(frame);
    }

    fn send(&mut self, frame: String) {
        if self.open {
            self.outbox.push(frame);
        }
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }
}
