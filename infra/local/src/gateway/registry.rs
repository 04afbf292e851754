//! Live connections by id: what `@connections` posts to and what shutdown closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::sync::{mpsc, Notify};

use statecast::records::now_millis;

/// What a socket's writer sends.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
}

pub struct Connection {
    pub id: String,
    pub connected_at: i64,
    pub last_active_at: AtomicI64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// False while `$connect` runs: API Gateway answers 410 to posts then.
    pub open: AtomicBool,
    pub tx: mpsc::UnboundedSender<Outbound>,
    /// The authorizer's context (plus `principalId`), passed with every event of this connection.
    pub authorizer: OnceLock<serde_json::Map<String, serde_json::Value>>,
    pub(crate) rx: Mutex<Option<mpsc::UnboundedReceiver<Outbound>>>,
}

impl Connection {
    pub fn touch(&self) {
        self.last_active_at.store(now_millis(), Ordering::Relaxed);
    }
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }
}

#[derive(Default)]
pub struct Registry {
    connections: Mutex<HashMap<String, Arc<Connection>>>,
    next: AtomicU64,
    emptied: Notify,
}

impl Registry {
    /// Registers a connection that is still in `$connect`.
    pub fn open(&self, peer: SocketAddr, headers: &HeaderMap) -> Arc<Connection> {
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
            authorizer: OnceLock::new(),
            rx: Mutex::new(Some(rx)),
        });
        self.lock().insert(connection.id.clone(), connection.clone());
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
