//! The connection task: opens the WebSocket (token as the subprotocols `bearer, <token>`),
//! pumps frames between the socket and the [`Router`], keeps the socket alive with pings, and
//! reconnects with back-off until the client is closed or `max_attempts` fail in a row.

use std::future::pending;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async_tls_with_config, Connector, MaybeTlsStream, WebSocketStream};

use crate::options::Backoff;
use crate::random::unit_fraction;
use crate::router::{Command, Router};

/// API Gateway drops sockets idle for 10 minutes: ping well before.
const KEEP_ALIVE: Duration = Duration::from_secs(300);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client is: the state of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first attempt is under way.
    Connecting,
    Open,
    /// The socket was lost (or an attempt failed): waiting to try again, or trying.
    Reconnecting,
    /// For good: closed by the client, or `max_attempts` failed in a row.
    Closed,
}

/// Why a session ended.
enum End {
    /// The socket was lost: reconnect.
    Lost,
    /// The client asked to close.
    Closed,
}

pub(crate) struct Connection {
    pub(crate) request: Request,
    /// rustls for `wss://`, `None` for plain `ws://`.
    pub(crate) connector: Option<Connector>,
    pub(crate) backoff: Backoff,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) state: watch::Sender<ConnectionState>,
    pub(crate) ids: Arc<AtomicU64>,
}

impl Connection {
    /// Runs until the client is closed (or gives up), then ends every call and subscription.
    pub(crate) async fn run(mut self) {
        let mut router = Router::new(self.ids.clone());
        let mut failures = 0u32;
        loop {
            let Some(socket) = self.connect(&mut router).await else {
                break; // closed while connecting
            };
            if let Some(socket) = socket {
                failures = 0;
                self.state.send_replace(ConnectionState::Open);
                router.opened();
                let end = self.session(socket, &mut router).await;
                router.socket_gone();
                if matches!(end, End::Closed) {
                    break;
                }
            }
            if self.backoff.exhausted(failures) {
                tracing::warn!(failures, "giving up reconnecting");
                break;
            }
            self.state.send_replace(ConnectionState::Reconnecting);
            let delay = self.backoff.delay(failures, unit_fraction());
            failures = failures.saturating_add(1);
            if !self.wait(delay, &mut router).await {
                break;
            }
        }
        router.shut_down();
        self.state.send_replace(ConnectionState::Closed);
    }

    /// One connection attempt, handling commands meanwhile: `None` when the client closed,
    /// `Some(None)` when the attempt failed.
    async fn connect(&mut self, router: &mut Router) -> Option<Option<Socket>> {
        // Small frames go out at once (no Nagle), as API Gateway pushes them.
        let attempt = connect_async_tls_with_config(self.request.clone(), None, true, self.connector.clone());
        tokio::pin!(attempt);
        loop {
            tokio::select! {
                result = &mut attempt => {
                    return Some(match result {
                        Ok((socket, _)) => Some(socket),
                        Err(error) => {
                            tracing::debug!(%error, "connection attempt failed");
                            None
                        }
                    });
                }
                command = self.commands.recv() => {
                    if !command.is_some_and(|c| router.command(c)) {
                        return None;
                    }
                }
            }
        }
    }

    /// Waits `delay` before the next attempt, handling commands; `false` when the client closed.
    async fn wait(&mut self, delay: Duration, router: &mut Router) -> bool {
        let timer = sleep(delay);
        tokio::pin!(timer);
        loop {
            tokio::select! {
                () = &mut timer => return true,
                command = self.commands.recv() => {
                    if !command.is_some_and(|c| router.command(c)) {
                        return false;
                    }
                }
            }
        }
    }

    async fn session(&mut self, socket: Socket, router: &mut Router) -> End {
        let (mut sink, mut stream) = socket.split();
        let mut keep_alive = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        loop {
            for frame in router.take_outbox() {
                if let Err(error) = sink.send(Message::text(frame)).await {
                    tracing::debug!(%error, "send failed");
                    return End::Lost;
                }
            }
            let deadline = router.next_deadline();
            let parts_due = async {
                match deadline {
                    Some(at) => sleep_until(Instant::from_std(at)).await,
                    None => pending().await,
                }
            };
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => router.receive(text.as_str(), std::time::Instant::now()),
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Ok(text) = std::str::from_utf8(&bytes) {
                            router.receive(text, std::time::Instant::now());
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        tracing::debug!(?frame, "server closed the socket");
                        return End::Lost;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::debug!(%error, "socket error");
                        return End::Lost;
                    }
                    None => return End::Lost,
                },
                command = self.commands.recv() => {
                    if !command.is_some_and(|c| router.command(c)) {
                        let _ = sink.send(Message::Close(None)).await;
                        return End::Closed;
                    }
                }
                () = parts_due => router.expire(std::time::Instant::now()),
                _ = keep_alive.tick() => router.ping(),
            }
        }
    }
}
