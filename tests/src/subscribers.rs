//! Many subscribers at once, stored directly (no `$connect` or `subscribe` round trips): the
//! connection and subscription records of each id, for benchmarks at thousands of subscribers.

use futures::{stream, StreamExt};
use statecast::dynamo::DynamoStore;
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ConnectionStore, SubscriptionStore};
use statecast::records::{now_millis, ConnectionRecord, SubscriptionRecord};

/// `id`'s plain subscription (no paths, no presence) to `key`.
pub fn subscription(key: &ActorKey, id: &str, expires_at: i64) -> SubscriptionRecord {
    SubscriptionRecord {
        actor_key: key.clone(),
        connection_id: ConnectionId::new(id).expect("id"),
        created_at: now_millis(),
        expires_at,
        paths: None,
        member: None,
    }
}

/// Stores a connection (in `key`'s tenant) and its subscription to `key` for each of `ids`,
/// 64 at a time; both expire at `expires_at` (epoch seconds).
pub async fn store_subscribers(store: &DynamoStore, key: &ActorKey, ids: &[String], expires_at: i64) {
    stream::iter(ids)
        .for_each_concurrent(64, |id| async move {
            let connection = ConnectionRecord {
                connection_id: ConnectionId::new(id.clone()).expect("id"),
                tenant: key.tenant().clone(),
                principal: None,
                connected_at: now_millis(),
                expires_at,
            };
            store.put_connection(&connection).await.expect("connection");
            let subscription = subscription(key, id, expires_at);
            store.put_subscription(&subscription).await.expect("subscription");
        })
        .await;
}
