//! The narrow interfaces services depend on: one per stored aggregate, one for pushes.
//!
//! Adapters implement them on DynamoDB and `@connections`; tests may wrap or fake them.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{ActorKey, ConnectionId, Version};
use crate::records::{ActorRecord, CallRecord, ConnectionRecord, MemberRecord, SubscriptionRecord};
use crate::service::RateLimit;
use crate::workflow::model::WorkflowWrite;

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put_connection(&self, connection: &ConnectionRecord) -> Result<()>;
    /// A strongly consistent read.
    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionRecord>>;
    async fn delete_connection(&self, id: &ConnectionId) -> Result<()>;
    /// Counts one rate-limited message (broadcast, presence change) against `limit` and
    /// returns the connection, in one write. Fails with [`crate::Error::TooFast`] when the
    /// connection is over its limit (nothing counted) and
    /// [`crate::Error::UnknownConnection`] when it is not registered.
    async fn admit(&self, id: &ConnectionId, limit: &RateLimit, now_millis: i64) -> Result<ConnectionRecord>;
}

/// Where a read of an actor's subscribers goes on: shard `shard`, after `after`, and on up to
/// (not including) shard `end`. An actor's subscriptions live in one partition (shard 0)
/// until it is spread over several (see [`SubscriptionStore::spread`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberCursor {
    pub shard: u32,
    pub end: u32,
    pub after: Option<ConnectionId>,
}

impl SubscriberCursor {
    /// The start of shard `shard` alone.
    pub fn shard(shard: u32) -> Self {
        Self {
            shard,
            end: shard + 1,
            after: None,
        }
    }
}

/// One page of an actor's subscribers and where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberPage {
    pub connections: Vec<ConnectionId>,
    /// The next page: of the same shard, or the next shard's first (`None`: read them all).
    pub next: Option<SubscriberCursor>,
    /// How many shards the actor's subscriptions are spread over (1: not spread), as shard
    /// 0's first page found it; 0 on the other pages.
    pub shards: u32,
    /// The `paths` of the subscribers on this page that filter (the others get everything).
    pub filters: HashMap<ConnectionId, Vec<String>>,
    /// The subscribers on this page that joined the actor's presence.
    pub members: Vec<(ConnectionId, MemberRecord)>,
    /// Subscriptions past their TTL (their connection cannot be open: API Gateway closes
    /// every connection within 2 hours); not in `connections` or `members`, to be removed.
    pub expired: Vec<ConnectionId>,
}

/// A subscription one connection holds, as the by-connection index has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub actor: ActorKey,
    /// The shard of the actor's subscriptions it is stored in.
    pub shard: u32,
    /// Set when the connection is a member of the actor's presence.
    pub member: Option<MemberRecord>,
}

#[async_trait]
pub trait SubscriptionStore: Send + Sync {
    /// Stores (or replaces) a subscription; returns the presence membership it replaced.
    async fn put_subscription(&self, subscription: &SubscriptionRecord) -> Result<Option<MemberRecord>>;
    /// Deletes a subscription; returns the presence membership it ended.
    async fn delete_subscription(&self, actor: &ActorKey, connection: &ConnectionId) -> Result<Option<MemberRecord>>;
    /// Replaces a member's presence metadata (JSON text) and counts one more `rev`; `None`
    /// when `connection` is not a member of `actor`'s presence.
    async fn update_presence(
        &self,
        actor: &ActorKey,
        connection: &ConnectionId,
        presence: &str,
    ) -> Result<Option<MemberRecord>>;
    /// A strongly consistent page of `actor`'s subscribers, from `from` (`None`: the first
    /// page of shard 0, which also says how many shards there are, and walks them all).
    async fn subscribers(&self, actor: &ActorKey, from: Option<&SubscriberCursor>) -> Result<SubscriberPage>;
    /// Spreads `actor`'s future subscriptions over `shards` partitions (chosen by a hash of
    /// the connection id), so the reads of a large audience go to several partitions. Never
    /// undone or changed once set; the subscriptions already stored stay where they are.
    async fn spread(&self, actor: &ActorKey, shards: u32) -> Result<()>;
    /// Every actor `connection` is subscribed to (read from the by-connection index).
    async fn subscriptions_of(&self, connection: &ConnectionId) -> Result<Vec<Held>>;
    /// Deletes the subscriptions `held` of `connection` (as `subscriptions_of` found them), in batches.
    async fn delete_subscriptions(&self, connection: &ConnectionId, held: &[Held]) -> Result<()>;
}

/// A conditional write of one actor: the state a method produced, and what the method asked
/// for besides (workflow starts), all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorWrite {
    pub key: ActorKey,
    /// The version the method read ([`Version::NONE`]: the actor was not stored yet).
    pub expected: Version,
    /// The new record; `None` when the state did not change (only `expected` is checked).
    pub record: Option<ActorRecord>,
    /// Written in the same transaction.
    pub with: Vec<WorkflowWrite>,
    /// The call's result under its idempotency key, written in the same transaction if no
    /// (unexpired) record holds that key yet.
    pub call: Option<CallRecord>,
}

#[async_trait]
pub trait ActorStore: Send + Sync {
    /// A strongly consistent read.
    async fn load(&self, key: &ActorKey) -> Result<Option<ActorRecord>>;
    /// A strongly consistent read of a call's recorded result (`None` when absent or expired).
    async fn recorded_call(&self, call_key: &str) -> Result<Option<CallRecord>>;
    /// Commits `write` if the stored version is still `write.expected`; otherwise fails with
    /// [`crate::Error::VersionConflict`] (load again and retry). A write in `with` whose
    /// condition fails (an id already taken) fails with [`crate::Error::AlreadyTaken`]; a
    /// call key recorded meanwhile by another request, with [`crate::Error::CallRecorded`].
    async fn write(&self, write: ActorWrite) -> Result<()>;
}

/// Pushes a frame to a WebSocket client (`@connections` in production).
#[async_trait]
pub trait ConnectionSender: Send + Sync {
    /// Fails with [`crate::Error::ConnectionGone`] when the client is no longer connected.
    async fn send(&self, to: &ConnectionId, frame: &str) -> Result<()>;
}

/// One page of a spread fan-out for the page workers (see [`crate::service::pages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPage {
    /// Pages of one group are delivered in the order they were queued.
    pub group: String,
    /// A page queued again with the same id (within the queue's dedup window) is dropped.
    pub dedup: String,
    pub body: String,
}

/// Hands pages to the page workers (an SQS FIFO queue in production, a local one in local
/// mode).
#[async_trait]
pub trait PageQueue: Send + Sync {
    async fn enqueue(&self, pages: Vec<QueuedPage>) -> Result<()>;
}
