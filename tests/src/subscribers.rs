//! Many subscribers at once, stored directly (no `$connect` or `subscribe` round trips): the
//! connection and subscription records of each id, for benchmarks at thousands of subscribers;
//! and a store whose subscriber reads fail on demand.

use futures::{stream, StreamExt};
use statecast::dynamo::DynamoStore;
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ConnectionStore, Held, SubscriberCursor, SubscriberPage, SubscriptionStore};
use statecast::records::{now_millis, ConnectionRecord, MemberRecord, SubscriptionRecord};

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

/// A subscription store whose subscriber reads `fails` may refuse (with a retryable
/// throttle, as DynamoDB's), delegating everything else to `inner`.
pub struct FailingReads<F> {
    pub inner: std::sync::Arc<dyn SubscriptionStore>,
    /// Called before each read of `actor` from `cursor`; `true` fails that read.
    pub fails: F,
}

#[async_trait::async_trait]
impl<F> SubscriptionStore for FailingReads<F>
where
    F: Fn(&ActorKey, Option<&SubscriberCursor>) -> bool + Send + Sync,
{
    async fn put_subscription(&self, s: &SubscriptionRecord) -> statecast::Result<Option<MemberRecord>> {
        self.inner.put_subscription(s).await
    }
    async fn delete_subscription(&self, a: &ActorKey, c: &ConnectionId) -> statecast::Result<Option<MemberRecord>> {
        self.inner.delete_subscription(a, c).await
    }
    async fn update_presence(
        &self,
        a: &ActorKey,
        c: &ConnectionId,
        p: &str,
    ) -> statecast::Result<Option<MemberRecord>> {
        self.inner.update_presence(a, c, p).await
    }
    async fn subscribers(&self, a: &ActorKey, from: Option<&SubscriberCursor>) -> statecast::Result<SubscriberPage> {
        if (self.fails)(a, from) {
            return Err(statecast::Error::Dependency {
                operation: "Query subscribers",
                retryable: true,
                source: "ProvisionedThroughputExceededException".into(),
            });
        }
        self.inner.subscribers(a, from).await
    }
    async fn subscriptions_of(&self, c: &ConnectionId) -> statecast::Result<Vec<Held>> {
        self.inner.subscriptions_of(c).await
    }
    async fn delete_subscriptions(&self, c: &ConnectionId, held: &[Held]) -> statecast::Result<()> {
        self.inner.delete_subscriptions(c, held).await
    }
    async fn spread(&self, a: &ActorKey, shards: u32) -> statecast::Result<()> {
        self.inner.spread(a, shards).await
    }
}
