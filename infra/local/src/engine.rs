//! The DynamoDB side of local mode: the embedded engine (dynoxide, in memory or in a SQLite
//! file) served on a loopback port, or an external DynamoDB-compatible endpoint; SDK
//! configuration for loopback; and the TTL sweeper and stream trimmer the embedded engine needs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::tick::spawn_every;

mod trim;

pub use trim::{StreamReader, StreamRetention, TrimError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot open the embedded DynamoDB engine: {0}")]
    Open(String),
    #[error("cannot bind a loopback port for the embedded DynamoDB engine: {0}")]
    Bind(#[from] std::io::Error),
}

/// SDK configuration for a loopback endpoint: explicit region, endpoint and static
/// credentials, so the default chain never probes the instance metadata service.
pub async fn loopback_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "statecast-local"))
        .load()
        .await
}

/// A running DynamoDB-compatible endpoint.
pub struct Engine {
    pub endpoint: String,
    embedded: Option<Embedded>,
}

struct Embedded {
    db: dynoxide::Database,
    /// What SQLite opened: the file, or the shared in-memory database's URI.
    location: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

/// Names in-memory databases apart within the process.
static MEMORY_DATABASES: AtomicU64 = AtomicU64::new(0);

impl Engine {
    /// Serves dynoxide on `127.0.0.1:0`: in memory, or in the SQLite file at `data`.
    pub async fn embedded(data: Option<&Path>) -> Result<Engine, EngineError> {
        let location = match data {
            Some(path) => path.to_string_lossy().into_owned(),
            // In memory under a name, so the stream trimmer can open a second connection:
            // SQLite's memdb VFS shares such a database among the connections of a process.
            None => format!(
                "file:/statecast-{}-{}?vfs=memdb",
                std::process::id(),
                MEMORY_DATABASES.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let db = dynoxide::Database::new(&location).map_err(|e| EngineError::Open(e.to_string()))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let served = db.clone();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = dynoxide::server::serve_with_shutdown(listener, served, shutdown).await {
                warn!(error = %e, "embedded DynamoDB server stopped");
            }
        });
        Ok(Engine {
            endpoint,
            embedded: Some(Embedded {
                db,
                location,
                stop,
                server,
            }),
        })
    }

    /// Uses an external endpoint (e.g. DynamoDB Local) as it is.
    pub fn external(endpoint: String) -> Engine {
        Engine {
            endpoint,
            embedded: None,
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Deletes expired TTL items every `interval` (the embedded engine only does it when asked),
    /// on a blocking thread so the async workers never wait on SQLite.
    pub fn spawn_ttl_sweeper(&self, interval: Duration, shutdown: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
        let db = self.embedded.as_ref()?.db.clone();
        Some(spawn_every(interval, shutdown, move || {
            let db = db.clone();
            async move {
                match tokio::task::spawn_blocking(move || db.sweep_ttl()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => info!(deleted = n, "TTL sweep"),
                    Ok(Err(e)) => warn!(error = %e, "TTL sweep failed"),
                    Err(e) => warn!(error = %e, "TTL sweep task failed"),
                }
            }
        }))
    }

    /// Every `retention.interval`, deletes the embedded engine's stream records older than
    /// `retention.max_age` and (with `trim_processed`) those every reader of their table has
    /// processed; the newest record of each table stays, so sequence numbers keep growing.
    /// Runs on a blocking thread through its own connection to the database.
    pub fn spawn_stream_trimmer(
        &self,
        retention: StreamRetention,
        readers: Vec<StreamReader>,
        shutdown: watch::Receiver<bool>,
    ) -> Option<JoinHandle<()>> {
        let location = self.embedded.as_ref()?.location.clone();
        let connection: Arc<Mutex<Option<dynoxide::storage::Storage>>> = Arc::default();
        Some(spawn_every(retention.interval, shutdown, move || {
            let (location, connection, retention) = (location.clone(), connection.clone(), retention.clone());
            let processed = if retention.trim_processed {
                trim::processed_up_to(&readers)
            } else {
                Vec::new()
            };
            async move {
                let trim = move || {
                    let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                    trim::trim_stream(&mut connection, &location, retention.max_age, &processed)
                };
                match tokio::task::spawn_blocking(trim).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => debug!(deleted = n, "stream records trimmed"),
                    Ok(Err(e)) => warn!(error = %e, "stream trim failed"),
                    Err(e) => warn!(error = %e, "stream trim task failed"),
                }
            }
        }))
    }

    /// Stops the embedded server and closes the database (flushing a SQLite file).
    pub async fn stop(self) {
        if let Some(Embedded { db, stop, server, .. }) = self.embedded {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
            drop(db);
        }
    }
}
