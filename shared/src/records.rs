//! What the platform stores: connections, subscriptions and actor records, and the
//! change an actor record went through (as read from a stream).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::changelog::LogEntry;
use crate::ids::{ActorKey, ConnectionId, Epoch, TenantId, Version};

/// A live WebSocket connection. `expires_at` (epoch seconds) is the table's TTL attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRecord {
    pub connection_id: ConnectionId,
    pub tenant: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Milliseconds since the epoch, as API Gateway reports it.
    pub connected_at: i64,
    pub expires_at: i64,
}

/// `connection_id` receives the changes of `actor_key` until it unsubscribes or goes away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRecord {
    pub actor_key: ActorKey,
    pub connection_id: ConnectionId,
    pub created_at: i64,
    pub expires_at: i64,
    /// JSON Pointers the subscriber follows; `None`: the whole state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Set when the subscriber joined the actor's presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberRecord>,
}

/// One presence membership, stored on its subscription (the `member` attribute, also
/// projected into the by-connection index so `$disconnect` knows which rooms to tell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRecord {
    /// New for every join, so a client can tell a re-join from a late copy of an old one.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The member's metadata as JSON text (at most [`crate::protocol::MAX_PRESENCE_BYTES`]).
    pub presence: String,
    pub joined_at: i64,
    /// 1 at the join, one more for each update.
    pub rev: u64,
}

/// DynamoDB's item size limit (attribute names and values): what one actor can hold.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// An actor's stored state at a version, with its recent changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorRecord {
    pub actor_key: ActorKey,
    pub state: Value,
    pub version: Version,
    pub epoch: Epoch,
    pub updated_at: i64,
    /// The patches of the latest versions (see [`crate::changelog`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<LogEntry>,
    /// The request that wrote this version (see [`crate::trace`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::trace::Trace>,
}

/// The result of a call made with an idempotency key, recorded in the same write as the
/// state change it made (or the version check it passed), so a repeat returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// `tenant/idempotencyKey`.
    pub call_key: String,
    pub actor_key: ActorKey,
    pub method: String,
    /// A digest of the arguments, to refuse a repeat with other arguments.
    pub args_digest: String,
    /// The method's return value, as JSON text.
    pub value: String,
    pub version: Version,
    /// Epoch seconds; the table's TTL attribute.
    pub expires_at: i64,
}

/// One change of an actor record, as a stream reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum ActorChange {
    Created { new: ActorRecord },
    Updated { old: ActorRecord, new: ActorRecord },
    Deleted { old: ActorRecord },
}

impl ActorChange {
    pub fn key(&self) -> &ActorKey {
        match self {
            ActorChange::Created { new } | ActorChange::Updated { new, .. } => &new.actor_key,
            ActorChange::Deleted { old } => &old.actor_key,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
