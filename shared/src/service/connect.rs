//! `$connect`: register a connection with the tenant the authorizer vouched for.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids::{ConnectionId, TenantId};
use crate::metrics::Metrics;
use crate::ports::ConnectionStore;
use crate::records::ConnectionRecord;
use crate::service::Settings;

/// What `$connect` knows about a new connection.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub connection_id: ConnectionId,
    /// From the authorizer context; `None` when no authorizer ran.
    pub tenant: Option<String>,
    pub principal: Option<String>,
    /// Milliseconds since the epoch.
    pub connected_at: i64,
}

pub struct ConnectService {
    connections: Arc<dyn ConnectionStore>,
    settings: Settings,
}

impl ConnectService {
    pub fn new(connections: Arc<dyn ConnectionStore>, settings: Settings) -> Self {
        Self { connections, settings }
    }

    /// Where the handler records its metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.settings.metrics
    }

    /// Stores the connection (one `PutItem`); refuses it when no tenant can be established.
    pub async fn connect(&self, request: ConnectRequest) -> Result<ConnectionRecord> {
        let tenant = match (request.tenant, &self.settings.default_tenant) {
            (Some(t), _) => TenantId::new(t)?,
            (None, Some(default)) => default.clone(),
            (None, None) => return Err(Error::Unauthorized("no tenant in the authorizer context".into())),
        };
        let record = ConnectionRecord {
            connection_id: request.connection_id,
            tenant,
            principal: request.principal,
            connected_at: request.connected_at,
            expires_at: request.connected_at / 1000 + self.settings.connection_ttl.as_secs() as i64,
        };
        self.connections.put_connection(&record).await?;
        Ok(record)
    }
}
