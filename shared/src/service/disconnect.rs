//! `$disconnect` (and 410 cleanup): delete a connection and every subscription it holds,
//! telling the rooms it was a presence member of that it left.

use std::sync::Arc;

use tracing::warn;

use crate::error::{chain, Result};
use crate::ids::{ActorKey, ConnectionId};
use crate::metrics::{Document, Metric, Metrics};
use crate::ports::{ConnectionSender, ConnectionStore, SubscriptionStore};
use crate::service::rooms::Rooms;

#[derive(Clone)]
pub struct DisconnectService {
    rooms: Rooms,
    metrics: Metrics,
}

impl DisconnectService {
    /// Built by [`crate::application::Services::disconnect`]. Without a `sender`, the rooms
    /// a connection was a presence member of are not told it left.
    pub fn new(
        connections: Arc<dyn ConnectionStore>,
        subscriptions: Arc<dyn SubscriptionStore>,
        sender: Option<Arc<dyn ConnectionSender>>,
        concurrency: usize,
    ) -> Self {
        Self {
            rooms: Rooms::new(subscriptions, connections, sender, concurrency),
            metrics: Metrics::off(),
        }
    }

    /// Counts the connections removed in `metrics` (`ConnectionsClosed`).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Deletes the subscriptions first (announcing member leaves) and the connection last;
    /// returns how many subscriptions went. Subscriptions the index has not seen yet are
    /// left to their TTL (or to the next post's 410).
    pub async fn disconnect(&self, connection: &ConnectionId) -> Result<usize> {
        let held = self.rooms.remove(vec![connection.clone()], None).await?;
        self.metrics.emit(Document::new().count(Metric::ConnectionsClosed, 1));
        Ok(held)
    }

    /// A post to `connection` for `actor` answered 410: the client left without a
    /// `$disconnect` we saw. Failures are logged; TTL catches what is missed.
    pub async fn remove_gone(&self, connection: &ConnectionId, actor: &ActorKey) {
        match self.rooms.remove(vec![connection.clone()], Some(actor)).await {
            Ok(_) => self.metrics.emit(Document::new().count(Metric::ConnectionsClosed, 1)),
            Err(e) => warn!(%connection, error = %chain(&e), "could not clean up a gone connection; TTL will"),
        }
    }
}
