//! The DynamoDB side of local mode: the embedded engine (dynoxide, in memory or in a SQLite
//! file) served on a loopback port, or an external DynamoDB-compatible endpoint; SDK
//! configuration for loopback; and the TTL sweeper the embedded engine needs.

use std::path::Path;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::tick::spawn_every;

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
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Engine {
    /// Serves dynoxide on `127.0.0.1:0`: in memory, or in the SQLite file at `data`.
    pub async fn embedded(data: Option<&Path>) -> Result<Engine, EngineError> {
        let db = match data {
            Some(path) => dynoxide::Database::new(&path.to_string_lossy()),
            None => dynoxide::Database::memory(),
        }
        .map_err(|e| EngineError::Open(e.to_string()))?;
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
            embedded: Some(Embedded { db, stop, server }),
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

    /// Stops the embedded server and closes the database (flushing a SQLite file).
    pub async fn stop(self) {
        if let Some(Embedded { db, stop, server }) = self.embedded {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
            drop(db);
        }
    }
}
