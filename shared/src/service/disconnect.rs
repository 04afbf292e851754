//! `$disconnect` (and 410 cleanup): delete a connection and every subscription it holds.

use std::sync::Arc;

use crate::error::Result;
use crate::ids::ConnectionId;
use crate::metrics::{Document, Metric, Metrics};
use crate::ports::{ConnectionStore, SubscriptionStore};

#[derive(Clone)]
pub struct DisconnectService {
    connections: Arc<dyn ConnectionStore>,
    subscriptions: Arc<dyn SubscriptionStore>,
    metrics: Metrics,
}

impl DisconnectService {
    pub fn new(connections: Arc<dyn ConnectionStore>, subscriptions: Arc<dyn SubscriptionStore>) -> Self {
        Self {
            connections,
            subscriptions,
            metrics: Metrics::off(),
        }
    }

    /// Counts the connections removed in `metrics` (`ConnectionsClosed`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Deletes the subscriptions first and the connection last; returns how many
    /// subscriptions went. Subscriptions the index has not seen yet are left to their TTL.
    pub async fn disconnect(&self, connection: &ConnectionId) -> Result<usize> {
        let actors = self.subscriptions.subscriptions_of(connection).await?;
        self.subscriptions.delete_subscriptions(connection, &actors).await?;
        self.connections.delete_connection(connection).await?;
        self.metrics.emit(Document::new().count(Metric::ConnectionsClosed, 1));
        Ok(actors.len())
    }
}
