//! `$disconnect` (and 410 cleanup): delete a connection and every subscription it holds.

use std::sync::Arc;

use crate::error::Result;
use crate::ids::ConnectionId;
use crate::ports::{ConnectionStore, SubscriptionStore};

#[derive(Clone)]
pub struct DisconnectService {
    connections: Arc<dyn ConnectionStore>,
    subscriptions: Arc<dyn SubscriptionStore>,
}

impl DisconnectService {
    pub fn new(connections: Arc<dyn ConnectionStore>, subscriptions: Arc<dyn SubscriptionStore>) -> Self {
        Self {
            connections,
            subscriptions,
        }
    }

    /// Deletes the subscriptions first and the connection last; returns how many
    /// subscriptions went. Subscriptions the index has not seen yet are left to their TTL.
    pub async fn disconnect(&self, connection: &ConnectionId) -> Result<usize> {
        let actors = self.subscriptions.subscriptions_of(connection).await?;
        self.subscriptions.delete_subscriptions(connection, &actors).await?;
        self.connections.delete_connection(connection).await?;
        Ok(actors.len())
    }
}
