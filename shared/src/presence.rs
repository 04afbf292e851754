//! Presence and broadcast on the wire: who is in an actor's room (members), the frames that
//! tell subscribers about joins, updates and leaves, and the limits on what clients send.
//!
//! Presence frames may reach a client in any order (they are posted by whichever function saw
//! the change). Each member has an `id` new for every join and a `rev` that grows with each
//! update, so a client converges by one rule: keep the highest `rev` per member id, and once
//! a member id has left, ignore anything later about it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::ConnectionId;
use crate::records::MemberRecord;

/// Largest presence metadata accepted (its JSON text, in bytes).
pub const MAX_PRESENCE_BYTES: usize = 1024;

/// Largest broadcast payload accepted (its JSON text, in bytes).
pub const MAX_BROADCAST_BYTES: usize = 32 * 1024;

/// Longest broadcast event name, in characters.
pub const MAX_EVENT_LEN: usize = 64;

/// One member of an actor's presence, as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// New for every join (a re-join of the same connection is a new member).
    pub id: String,
    /// The member's connection: what `from` of its broadcasts names.
    pub connection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The metadata the member set (an object).
    pub presence: Value,
    /// Milliseconds since the epoch.
    pub joined_at: i64,
    /// 1 at the join, one more for each update.
    pub rev: u64,
}

impl Member {
    /// The member as stored on `connection`'s subscription.
    pub fn from_record(connection: &ConnectionId, record: &MemberRecord) -> Self {
        Self {
            id: record.id.clone(),
            connection: connection.as_str().to_owned(),
            principal: record.principal.clone(),
            // Written by `MemberRecord::new` from a serialized object; a corrupt one reads as {}.
            presence: serde_json::from_str(&record.presence).unwrap_or_else(|_| Value::Object(Default::default())),
            joined_at: record.joined_at,
            rev: record.rev,
        }
    }
}

impl MemberRecord {
    /// A new membership (rev 1) with `presence` (already checked by [`check_presence`]).
    pub fn new(principal: Option<String>, presence: &Value, joined_at: i64) -> Self {
        Self {
            id: format!("{:016x}", crate::backoff::random_u64()),
            principal,
            presence: presence.to_string(),
            joined_at,
            rev: 1,
        }
    }
}

/// What happened to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceEvent {
    Join,
    Update,
    Leave,
}

/// Why presence metadata or a broadcast was refused (`too_large`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("`presence` is {0} bytes of JSON; at most {MAX_PRESENCE_BYTES} are accepted")]
    Presence(usize),
    #[error("`payload` is {0} bytes of JSON; at most {MAX_BROADCAST_BYTES} are accepted")]
    Payload(usize),
}

/// Checks presence metadata's size (its shape, an object, is checked when parsing).
pub fn check_presence(presence: &Value) -> Result<(), LimitError> {
    let bytes = crate::delta::serialized_len(presence);
    (bytes <= MAX_PRESENCE_BYTES)
        .then_some(())
        .ok_or(LimitError::Presence(bytes))
}

/// Checks a broadcast payload's size.
pub fn check_payload(payload: &Value) -> Result<(), LimitError> {
    let bytes = crate::delta::serialized_len(payload);
    (bytes <= MAX_BROADCAST_BYTES)
        .then_some(())
        .ok_or(LimitError::Payload(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_checked_on_the_json_text() {
        assert!(check_presence(&json!({"name": "a".repeat(1000)})).is_ok());
        assert_eq!(
            check_presence(&json!({"name": "a".repeat(1020)})),
            Err(LimitError::Presence(1031))
        );
        assert!(check_payload(&json!("x".repeat(MAX_BROADCAST_BYTES - 2))).is_ok());
        assert!(check_payload(&json!("x".repeat(MAX_BROADCAST_BYTES - 1))).is_err());
    }

    #[test]
    fn a_member_reads_back_from_its_record() {
        let record = MemberRecord::new(Some("ann".into()), &json!({"colour": "red"}), 5);
        let other = MemberRecord::new(None, &json!({}), 5);
        assert_ne!(record.id, other.id, "every join gets its own id");
        let member = Member::from_record(&ConnectionId::new("c1").expect("id"), &record);
        assert_eq!(member.presence, json!({"colour": "red"}));
        assert_eq!((member.connection.as_str(), member.rev, member.joined_at), ("c1", 1, 5));
        assert_eq!(
            serde_json::to_value(&member).expect("json")["joinedAt"],
            json!(5),
            "camelCase on the wire"
        );
    }
}
