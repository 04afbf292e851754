//! Live connections by id, each with its outgoing queue (bounded in bytes): what `@connections`
//! posts to and what shutdown closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::sync::{mpsc, watch, Notify};

use statecast::records::now_millis;

/// What a socket's writer sends.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
}

impl Outbound {
    /// Payload bytes counted against the connection's queue limit (a close frame counts nothing).
    pub fn len(&self) -> usize {
        match self {
            Outbound::Text(text) => text.len(),
            Outbound::Binary(bytes) => bytes.len(),
            Outbound::Close(..) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Close code of a connection whose client reads too slowly (RFC 6455: policy violation).
pub const SLOW_CONSUMER: u16 = 1008;

/// A frame could not be queued: the connection is closed or closing (answer 410).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// A close the server decided on: the socket's reader stops, `$disconnect` runs and the
/// writer sends this close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub code: u16,
    pub reason: String,
    /// Drop the frames still queued instead of writing them first.
    pub drop_queued: bool,
}

pub struct Connection {
    pub id: String,
    pub connected_at: i64,
    pub last_active_at: AtomicI64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// False while `$connect` runs: API Gateway answers 410 to posts then.
    pub open: AtomicBool,
    tx: mpsc::UnboundedSender<Outbound>,
    /// Payload bytes queued and not yet written to the socket.
    queued: AtomicUsize,
    max_queued_bytes: usize,
    /// Set when the server ends the connection on its own (queue overflow, `DELETE`).
    closing: watch::Sender<Option<Closing>>,
    /// The authorizer's context (plus `principalId`), passed with every event of this connection.
    pub authorizer: OnceLock<serde_json::Map<String, serde_json::Value>>,
    pub(crate) rx: Mutex<Option<mpsc::UnboundedReceiver<Outbound>>>,
}

impl Connection {
    pub fn touch(&self) {
        self.last_active_at.store(now_millis(), Ordering::Relaxed);
    }
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire) && self.closing.borrow().is_none()
    }

    /// Queues a data frame for the socket's writer without ever waiting for it. A frame that
    /// would take the queue over its byte limit is refused, and the connection is closed with
    /// [`SLOW_CONSUMER`]: one client that stops reading cannot grow the process without bound.
    pub fn enqueue(&self, frame: Outbound) -> Result<(), Gone> {
        let len = frame.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.max_queued_bytes {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            let reason = format!("Client too slow: over {} bytes waiting", self.max_queued_bytes);
            self.end(SLOW_CONSUMER, reason, true);
            return Err(Gone);
        }
        self.tx.send(frame).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            Gone
        })
    }

    /// Queues a close frame behind the frames already queued.
    pub fn close(&self, code: u16, reason: String) {
        let _ = self.tx.send(Outbound::Close(code, reason));
    }

    /// Ends the connection from the server's side (the first call decides how): posts answer
    /// 410 from now on, the socket's reader stops and `$disconnect` runs.
    pub fn end(&self, code: u16, reason: String, drop_queued: bool) {
        self.closing.send_if_modified(|closing| {
            let first = closing.is_none();
            if first {
                *closing = Some(Closing {
                    code,
                    reason,
                    drop_queued,
                });
            }
            first
        });
    }

    /// The writer has written (or dropped) `frame`.
    pub(crate) fn dequeued(&self, frame: &Outbound) {
        self.queued.fetch_sub(frame.len(), Ordering::AcqRel);
    }

    /// Whether the server ended the connection and dropped the frames still queued.
    pub(crate) fn drops_queued(&self) -> bool {
        self.closing.borrow().as_ref().is_some_and(|c| c.drop_queued)
    }

    /// Waits until the server ends the connection ([`Connection::end`]).
    pub(crate) async fn closed_by_server(&self) -> Closing {
        let mut closing = self.closing.subscribe();
        let close = match closing.wait_for(Option::is_some).await {
            Ok(close) => close.clone(),
            Err(_) => None,
        };
        match close {
            Some(close) => close,
            // The sender lives as long as `self`, so the wait cannot fail while it is borrowed.
            None => std::future::pending().await,
        }
    }
}

#[derive(Default)]
pub struct Registry {
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    next: AtomicU64,
    emptied: Notify,
}

impl Registry {
    /// Registers a connection that is still in `$connect`; at most `max_queued_bytes` may wait
    /// for its socket.
    pub fn open(&self, peer: SocketAddr, headers: &HeaderMap, max_queued_bytes: usize) -> Arc<Connection> {
        let (tx, rx) = mpsc::unbounded_channel();
        let now = now_millis();
        let connection = Arc::new(Connection {
            id: self.new_id(),
            connected_at: now,
            last_active_at: AtomicI64::new(now),
            source_ip: peer.ip().to_string(),
            user_agent: headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            open: AtomicBool::new(false),
            tx,
            queued: AtomicUsize::new(0),
            max_queued_bytes,
            closing: watch::Sender::new(None),
            authorizer: OnceLock::new(),
            rx: Mutex::new(Some(rx)),
        });
        self.lock().insert(connection.id.clone(), connection.clone());
        connection
    }

    /// Every connection, oldest first.
    pub fn list(&self) -> Vec<Arc<Connection>> {
        let mut all: Vec<Arc<Connection>> = self.lock().values().cloned().collect();
        all.sort_by(|a, b| (a.connected_at, &a.id).cmp(&(b.connected_at, &b.id)));
        all
    }

    /// Registers an open connection with no socket (see `virtual_subscribers`).
    pub fn open_virtual(&self, max_queued_bytes: usize) -> Arc<Connection> {
        let peer = SocketAddr::from(([127, 0, 0, 1], 0));
        let connection = self.open(peer, &HeaderMap::new(), max_queued_bytes);
        connection.open.store(true, Ordering::Release);
        connection
    }

    pub fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.lock().get(id).cloned()
    }

    pub fn remove(&self, id: &str) {
        let mut map = self.lock();
        map.remove(id);
        if map.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub async fn wait_empty(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.emptied.notified();
                if self.is_empty() {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// API Gateway style ids: 16 characters ending in `=`.
    fn new_id(&self) -> String {
        use std::hash::{BuildHasher, Hasher};
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(self.next.fetch_add(1, Ordering::Relaxed));
        hasher.write_i64(now_millis());
        let mut bits = u128::from(hasher.finish()) << 64 | u128::from(hasher.finish().rotate_left(17));
        let mut id = String::with_capacity(16);
        for _ in 0..15 {
            id.push(ALPHABET[(bits % ALPHABET.len() as u128) as usize] as char);
            bits /= ALPHABET.len() as u128;
        }
        id.push('=');
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Connection>>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}
