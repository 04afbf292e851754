//! What the platform stores: connections, subscriptions and actor records, and the
//! change an actor record went through (as read from a stream).

use std::fmt;

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

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
}

/// An actor's stored state at a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorRecord {
    pub actor_key: ActorKey,
    // #[serde(deserialize_with = "state_value")]
    pub state: Value,
    pub version: Version,
    pub epoch: Epoch,
    pub updated_at: i64,
}

/// Decodes `state` into the same [`Value`] `serde_json` would build, faster: a map's entries
/// are collected and the map built in one sorted pass, instead of one insert per entry in
/// the (random) order a DynamoDB map attribute yields them.
fn state_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    deserializer.deserialize_any(StateVisitor)
}

struct StateValue(Value);

impl<'de> Deserialize<'de> for StateValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        state_value(deserializer).map(StateValue)
    }
}

struct StateVisitor;

impl<'de> Visitor<'de> for StateVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        state_value(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(StateValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(String, Value)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((key, StateValue(value))) = map.next_entry()? {
            entries.push((key, value));
        }
        // Keys of one map are distinct, so an unstable sort is exact; the map is then built
        // from already sorted entries.
        entries.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        Ok(Value::Object(entries.into_iter().collect::<Map<String, Value>>()))
    }
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
