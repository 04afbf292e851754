//! The public handle: [`Client::connect`] starts the connection task; `subscribe`, `call`,
//! `state` and `close` talk to it. Clones share one connection; dropping the last one closes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::connection::{Connection, ConnectionState};
use crate::error::ClientError;
use crate::options::{Options, SubscribeOptions};
use crate::protocol::{self, MAX_MESSAGE_BYTES};
use crate::random::idempotency_key;
use crate::router::Command;
use crate::subscription::Subscription;

/// A connection to a Statecast WebSocket API, reconnecting in the background.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<ConnectionState>,
    ids: Arc<AtomicU64>,
    listeners: AtomicU64,
    call_timeout: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Close);
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl Client {
    /// Starts connecting to `url` (`ws://` or `wss://`) in a background task; requests made
    /// before the socket opens are sent when it does. Must be called within a Tokio runtime.
    pub fn connect(url: &str, options: Options) -> Result<Client, ClientError> {
        let mut request = url
            .into_client_request()
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))?;
        if let Some(token) = &options.token {
            let protocols = HeaderValue::from_str(&format!("bearer, {token}"))
                .map_err(|_| ClientError::InvalidRequest("the token is not a valid header value".into()))?;
            request.headers_mut().insert("Sec-WebSocket-Protocol", protocols);
        }
        let connector = crate::tls::connector(request.uri().scheme_str())?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);
        let ids = Arc::new(AtomicU64::new(1));
        let connection = Connection {
            request,
            connector,
            backoff: options.backoff,
            commands: receiver,
            state: state_tx,
            ids: ids.clone(),
        };
        tokio::spawn(connection.run());
        Ok(Client {
            inner: Arc::new(Inner {
                commands,
                state,
                ids,
                listeners: AtomicU64::new(1),
                call_timeout: options.call_timeout,
            }),
        })
    }

    /// The connection state, to read or to wait on (`wait_for(|s| *s == ConnectionState::Open)`).
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.clone()
    }

    /// Follows `actor` (`type/id`): the subscription yields its state now and after every
    /// change, and resumes across reconnects. It ends if the server refuses it, or the client
    /// closes ([`Subscription::error`] says why). Dropping it unsubscribes.
    pub fn subscribe(&self, actor: impl Into<String>, options: SubscribeOptions) -> Subscription {
        let actor = actor.into();
        let listener = self.inner.listeners.fetch_add(1, Ordering::Relaxed);
        let (updates, receiver) = mpsc::unbounded_channel();
        let command = Command::Subscribe {
            actor: actor.clone(),
            paths: options.paths,
            listener,
            updates,
        };
        if let Err(mpsc::error::SendError(Command::Subscribe { updates, .. })) = self.inner.commands.send(command) {
            let _ = updates.send(Err(ClientError::Closed));
        }
        Subscription::new(actor, listener, receiver, self.inner.commands.clone())
    }

    /// Runs `method` of `actor` with `args` (an object, or `Null` for none) and returns its
    /// value. The call carries a random idempotency key and is re-sent with it after a
    /// reconnect, until answered or the call timeout passes.
    pub async fn call(&self, actor: &str, method: &str, args: Value) -> Result<Value, ClientError> {
        let id = self.inner.ids.fetch_add(1, Ordering::Relaxed);
        let frame = protocol::call(id, actor, method, args, &idempotency_key());
        if frame.len() > MAX_MESSAGE_BYTES {
            return Err(ClientError::TooLarge {
                bytes: frame.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Call { id, frame, reply })
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(self.inner.call_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => {
                let _ = self.inner.commands.send(Command::Cancel { id });
                Err(ClientError::Timeout)
            }
        }
    }

    /// Closes the connection for good: pending calls fail with `Closed`, subscriptions end.
    pub fn close(&self) {
        let _ = self.inner.commands.send(Command::Close);
    }
}
