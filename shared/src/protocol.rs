//! The wire protocol: JSON text frames between WebSocket clients and the backend.
//!
//! Client frames are routed on `action`; server frames are tagged by `type`. Every
//! malformed client frame turns into a [`ProtocolError`], which becomes an `error` reply.

use std::fmt;

use json_patch::Patch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{Epoch, Version};
pub use crate::presence::{Member, PresenceEvent};

/// A client's correlation id, echoed in the reply: a string or an integer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    Text(String),
}

/// Longest request id string accepted.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The state a client already holds, for resuming a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Since {
    pub epoch: Epoch,
    pub version: Version,
}

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", deny_unknown_fields)]
pub enum ClientMessage {
    /// Start receiving changes of `actor`; answered with `subscribed`.
    #[serde(rename = "subscribe")]
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
        /// The state the client holds: the reply resumes from it when it can.
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "since_field")]
        since: Option<Since>,
        /// Follow only these JSON Pointers (at most 16): the client holds the projection of
        /// the state on them and gets only the changes under them.
        #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "paths_field")]
        paths: Option<Vec<String>>,
        /// Join the actor's presence with this metadata (an object of at most 1 KB): the
        /// other subscribers are told, and the reply lists the members.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "presence_field"
        )]
        presence: Option<Value>,
        /// List the members in the reply without joining.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        members: Option<bool>,
    },
    /// Replace this connection's presence metadata in `actor` (it must have joined);
    /// answered with `sent`.
    #[serde(rename = "presence.update")]
    PresenceUpdate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
        #[serde(deserialize_with = "presence_object")]
        presence: Value,
    },
    /// Post `payload` to every subscriber of `actor` (the sender must be one) without
    /// storing anything; answered with `sent`.
    #[serde(rename = "broadcast", rename_all = "camelCase")]
    Broadcast {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
        #[serde(deserialize_with = "event_name")]
        event: String,
        #[serde(default)]
        payload: Value,
        /// Leave the sender out.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        exclude_self: bool,
    },
    /// Stop receiving changes of `actor`; answered with `unsubscribed`.
    #[serde(rename = "unsubscribe")]
    Unsubscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
    },
    /// Run `method` of `actor` with `args`; answered with `result`.
    #[serde(rename = "call")]
    Call {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
        method: String,
        /// A JSON object, or absent (read as `{}` by the method).
        #[serde(default, deserialize_with = "object_or_null")]
        args: Value,
        /// Makes the call safe to repeat: a repeat within the retention window returns the
        /// first result without running the method again.
        #[serde(
            default,
            rename = "idempotencyKey",
            skip_serializing_if = "Option::is_none",
            deserialize_with = "idempotency_key"
        )]
        idempotency_key: Option<String>,
    },
    /// Liveness check; answered with `pong`.
    #[serde(rename = "ping")]
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// Start a registered workflow; answered with `result` whose value names the instance
    /// and its progress actor. A client-chosen `workflowId` makes the start idempotent.
    #[serde(rename = "workflow.start", rename_all = "camelCase")]
    WorkflowStart {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        workflow: String,
        #[serde(default)]
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workflow_id: Option<String>,
    },
    /// Cancel a running instance (its completed steps are compensated); answered with `result`.
    #[serde(rename = "workflow.cancel", rename_all = "camelCase")]
    WorkflowCancel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        workflow_id: String,
    },
    /// Read an instance's progress once; answered with `result` (value = progress state,
    /// version = the progress actor's version).
    #[serde(rename = "workflow.status", rename_all = "camelCase")]
    WorkflowStatus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        workflow_id: String,
    },
}

/// The actions a client may send, for error messages and route tables.
pub const ACTIONS: [&str; 9] = [
    "subscribe",
    "unsubscribe",
    "call",
    "ping",
    "workflow.start",
    "workflow.cancel",
    "workflow.status",
    "presence.update",
    "broadcast",
];

impl ClientMessage {
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Call { id, .. }
            | ClientMessage::Ping { id }
            | ClientMessage::WorkflowStart { id, .. }
            | ClientMessage::WorkflowCancel { id, .. }
            | ClientMessage::WorkflowStatus { id, .. }
            | ClientMessage::PresenceUpdate { id, .. }
            | ClientMessage::Broadcast { id, .. } => id.as_ref(),
        }
    }
}

/// `presence` of `subscribe`: an object, or absent.
fn presence_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        value @ Value::Object(_) => Ok(Some(value)),
        _ => Err(serde::de::Error::custom("`presence` must be a JSON object")),
    }
}

/// `presence` of `presence.update`: an object.
fn presence_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    presence_field(d)?.ok_or_else(|| serde::de::Error::custom("`presence` must be a JSON object"))
}

/// A broadcast's `event`: 1 to 64 characters.
fn event_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(event) if !event.is_empty() && event.chars().count() <= crate::presence::MAX_EVENT_LEN => {
            Ok(event)
        }
        _ => Err(serde::de::Error::custom(
            "`event` must be a string of 1 to 64 characters",
        )),
    }
}

/// `since`: `{"epoch": n, "version": n}` with non-negative integers, nothing else; every
/// other shape is refused naming the field.
fn since_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Since>, D::Error> {
    use serde::de::Error as _;
    let value = Value::deserialize(d)?;
    if value.is_null() {
        return Ok(None);
    }
    let Value::Object(fields) = &value else {
        return Err(D::Error::custom(
            "`since` must be an object {\"epoch\": n, \"version\": n}",
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !matches!(k.as_str(), "epoch" | "version")) {
        return Err(D::Error::custom(format!("`since` has an unknown field `{unknown}`")));
    }
    let number = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_u64)
            .ok_or_else(|| D::Error::custom(format!("`since.{name}` must be a non-negative integer")))
    };
    Ok(Some(Since {
        epoch: Epoch(number("epoch")?),
        version: Version(number("version")?),
    }))
}

/// Longest idempotency key accepted, in characters.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// `idempotencyKey`: a string of 1 to 128 characters.
fn idempotency_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(key) if !key.is_empty() && key.chars().count() <= MAX_IDEMPOTENCY_KEY_LEN => Ok(Some(key)),
        _ => Err(serde::de::Error::custom(
            "`idempotencyKey` must be a string of 1 to 128 characters",
        )),
    }
}

/// `paths`: 1 to 16 JSON Pointers to members; the error names the pointer that is not one.
fn paths_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    use serde::de::Error as _;
    let paths = match Value::deserialize(d)? {
        Value::Null => return Ok(None),
        Value::Array(items) => items
            .into_iter()
            .map(|p| match p {
                Value::String(p) => Ok(p),
                other => Err(D::Error::custom(format!(
                    "`paths`: {other} is not a JSON Pointer string"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(D::Error::custom("`paths` must be an array of JSON Pointers")),
    };
    crate::projection::check_paths(&paths).map_err(D::Error::custom)?;
    Ok(Some(paths))
}

/// `args` of a call: an object or nothing; anything else is refused naming the field.
fn object_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    match Value::deserialize(d)? {
        value @ (Value::Object(_) | Value::Null) => Ok(value),
        _ => Err(serde::de::Error::custom("`args` must be a JSON object (or absent)")),
    }
}

/// A frame sent by the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The subscription is stored. Either `state` is the actor at `version` (a fresh
    /// subscription, or `resumed: false`: the client's `since` could not be served), or
    /// (`resumed: true`) `patch` takes the client's state at `from` (its `since.version`) to
    /// `version`.
    Subscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
        epoch: Epoch,
        version: Version,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<Value>,
        /// Present when the client sent `since`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumed: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Version>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patch: Option<Patch>,
        /// The actor's presence members, when the client joined or asked for them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        members: Option<Vec<Member>>,
        /// This connection's member id, when it joined.
        #[serde(default, rename = "memberId", skip_serializing_if = "Option::is_none")]
        member_id: Option<String>,
    },
    Unsubscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
    },
    /// A call's return value and the actor version it produced (or read).
    Result {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        value: Value,
        version: Version,
    },
    /// JSON Patch taking the actor from version `from` to version `to`.
    Delta {
        actor: String,
        epoch: Epoch,
        from: Version,
        to: Version,
        patch: Patch,
    },
    /// The whole state, sent instead of a delta that would not be smaller.
    Snapshot {
        actor: String,
        epoch: Epoch,
        version: Version,
        state: Value,
    },
    /// The actor was deleted; subscribers fall back to the default state at version 0.
    Deleted {
        actor: String,
        epoch: Epoch,
        version: Version,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
    },
    /// A member of `actor`'s presence joined, changed its metadata or left.
    Presence {
        actor: String,
        event: PresenceEvent,
        member: Member,
    },
    /// An ephemeral message a subscriber of `actor` sent (connection `from`); never stored.
    Broadcast {
        actor: String,
        event: String,
        payload: Value,
        from: String,
    },
    /// A broadcast or presence update went out to `recipients` subscribers; `member` is the
    /// sender's membership after a presence update.
    Sent {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        actor: String,
        recipients: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<Member>,
    },
    /// One of `count` ordered parts of a frame over the message limit: the `data` of parts
    /// 0..count of one `message`, joined, is that frame's JSON text.
    Part {
        message: String,
        index: usize,
        count: usize,
        data: String,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
        /// For `rate_limited`: when a retry may succeed.
        #[serde(default, rename = "retryAfterMs", skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerMessage {
    pub fn error(id: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            id,
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"type":"error","code":"internal","message":"reply could not be encoded: {e}"}}"#)
        })
    }

    /// The frame to post, or [`Oversized`] when it is over [`MAX_MESSAGE_BYTES`]. Every
    /// frame the backend sends is made here, so none leaves over the limit.
    pub fn to_frame(&self) -> Result<String, Oversized> {
        let frame = self.to_json();
        if frame.len() > MAX_MESSAGE_BYTES {
            return Err(Oversized {
                kind: self.kind(),
                bytes: frame.len(),
            });
        }
        Ok(frame)
    }

    /// The frames to post: this one, or its ordered parts when it is over the limit.
    pub fn to_frames(&self) -> Vec<String> {
        let whole = self.to_json();
        if whole.len() <= MAX_MESSAGE_BYTES {
            return vec![whole];
        }
        let chunks = split_escaped(&whole, MAX_MESSAGE_BYTES - PART_ENVELOPE_BYTES);
        let message = format!("{:016x}", crate::backoff::random_u64());
        let count = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(index, data)| {
                ServerMessage::Part {
                    message: message.clone(),
                    index,
                    count,
                    data: data.to_owned(),
                }
                .to_json()
            })
            .collect()
    }

    /// The frame answering a request: this reply, or a `too_large` error for the same
    /// request when the reply is over the limit.
    pub fn to_reply_frame(&self) -> String {
        self.to_frame().unwrap_or_else(|oversized| {
            ServerMessage::error(self.request_id().cloned(), ErrorCode::TooLarge, oversized.to_string()).to_json()
        })
    }

    /// The client's request id this frame answers, if any.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            ServerMessage::Subscribed { id, .. }
            | ServerMessage::Unsubscribed { id, .. }
            | ServerMessage::Result { id, .. }
            | ServerMessage::Pong { id }
            | ServerMessage::Sent { id, .. }
            | ServerMessage::Error { id, .. } => id.as_ref(),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Subscribed { .. } => "subscribed",
            ServerMessage::Unsubscribed { .. } => "unsubscribed",
            ServerMessage::Result { .. } => "result",
            ServerMessage::Delta { .. } => "delta",
            ServerMessage::Snapshot { .. } => "snapshot",
            ServerMessage::Deleted { .. } => "deleted",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::Part { .. } => "part",
            ServerMessage::Presence { .. } => "presence",
            ServerMessage::Broadcast { .. } => "broadcast",
            ServerMessage::Sent { .. } => "sent",
            ServerMessage::Error { .. } => "error",
        }
    }
}

/// API Gateway's WebSocket message limit (128 KB): no frame larger than this leaves.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// Room in a part frame for everything but its data.
const PART_ENVELOPE_BYTES: usize = 256;

/// Splits `text` at character boundaries into pieces whose JSON-escaped form is at most
/// `limit` bytes.
fn split_escaped(text: &str, limit: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut escaped) = (0, 0);
    for (at, c) in text.char_indices() {
        let cost = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if escaped + cost > limit {
            pieces.push(&text[start..at]);
            (start, escaped) = (at, 0);
        }
        escaped += cost;
    }
    pieces.push(&text[start..]);
    pieces
}

/// A frame over [`MAX_MESSAGE_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {kind} frame would be {bytes} bytes; API Gateway's message limit is {MAX_MESSAGE_BYTES}")]
pub struct Oversized {
    pub kind: &'static str,
    pub bytes: usize,
}

/// Machine-readable error codes of `error` replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Internal,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
        };
        f.write_str(s)
    }
}

/// Why a client frame could not be read. All of these are `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("message is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("message must be a JSON object")]
    NotAnObject,
    #[error("message has no `action` field")]
    MissingAction,
    #[error("`action` must be a string")]
    ActionNotString,
    #[error(
        "unknown action {0:?}; expected one of: subscribe, unsubscribe, call, ping, workflow.start, \
         workflow.cancel, workflow.status, presence.update, broadcast"
    )]
    UnknownAction(String),
    #[error("`id` must be a string of at most 128 bytes or an integer")]
    BadRequestId,
    #[error("invalid `{action}` message: {detail}")]
    InvalidFields { action: String, detail: String },
}

/// A parsed frame, or the error to reply with and whatever request id could be recovered.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, (Option<RequestId>, ProtocolError)> {
    let value: Value = serde_json::from_str(text).map_err(|e| (None, ProtocolError::MalformedJson(e.to_string())))?;
    let Value::Object(fields) = &value else {
        return Err((None, ProtocolError::NotAnObject));
    };
    let id = match fields.get("id") {
        None | Some(Value::Null) => None,
        Some(raw) => match serde_json::from_value::<RequestId>(raw.clone()) {
            Ok(RequestId::Text(s)) if s.len() > MAX_REQUEST_ID_LEN => return Err((None, ProtocolError::BadRequestId)),
            Ok(id) => Some(id),
            Err(_) => return Err((None, ProtocolError::BadRequestId)),
        },
    };
    let action = match fields.get("action") {
        None => return Err((id, ProtocolError::MissingAction)),
        Some(Value::String(a)) => a.clone(),
        Some(_) => return Err((id, ProtocolError::ActionNotString)),
    };
    if !ACTIONS.contains(&action.as_str()) {
        return Err((id, ProtocolError::UnknownAction(action)));
    }
    serde_json::from_value(value).map_err(|e| {
        (
            id,
            ProtocolError::InvalidFields {
                action,
                detail: e.to_string(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_err(text: &str) -> (Option<RequestId>, ProtocolError) {
        parse_client_message(text).expect_err("must be refused")
    }

    #[test]
    fn parses_every_action() {
        let call = parse_client_message(r#"{"action":"call","id":7,"actor":"counter/a","method":"increment"}"#);
        assert_eq!(
            call,
            Ok(ClientMessage::Call {
                id: Some(RequestId::Number(7)),
                actor: "counter/a".into(),
                method: "increment".into(),
                args: Value::Null,
                idempotency_key: None,
            })
        );
        let sub = parse_client_message(r#"{"action":"subscribe","id":"s1","actor":"todo/x"}"#).expect("valid");
        assert_eq!(sub.id(), Some(&RequestId::Text("s1".into())));
        assert!(parse_client_message(r#"{"action":"unsubscribe","actor":"todo/x"}"#).is_ok());
        assert_eq!(
            parse_client_message(r#"{"action":"ping"}"#),
            Ok(ClientMessage::Ping { id: None })
        );
        assert_eq!(
            parse_client_message(r#"{"action":"workflow.start","id":1,"workflow":"order","input":{"a":1}}"#),
            Ok(ClientMessage::WorkflowStart {
                id: Some(RequestId::Number(1)),
                workflow: "order".into(),
                input: json!({"a": 1}),
                workflow_id: None,
            })
        );
        assert!(parse_client_message(r#"{"action":"workflow.cancel","workflowId":"w1"}"#).is_ok());
        assert!(parse_client_message(r#"{"action":"workflow.status","workflowId":"w1"}"#).is_ok());
        let (_, missing) = parse_err(r#"{"action":"workflow.cancel"}"#);
        assert!(matches!(missing, ProtocolError::InvalidFields { ref detail, .. } if detail.contains("workflowId")));
    }

    #[test]
    fn every_malformed_class_has_its_own_error_and_keeps_the_id() {
        assert!(matches!(parse_err("{nope"), (None, ProtocolError::MalformedJson(_))));
        assert_eq!(parse_err("[1,2]"), (None, ProtocolError::NotAnObject));
        assert_eq!(
            parse_err(r#"{"id":1}"#),
            (Some(RequestId::Number(1)), ProtocolError::MissingAction)
        );
        assert_eq!(
            parse_err(r#"{"id":"a","action":3}"#),
            (Some(RequestId::Text("a".into())), ProtocolError::ActionNotString)
        );
        assert_eq!(
            parse_err(r#"{"action":"explode"}"#),
            (None, ProtocolError::UnknownAction("explode".into()))
        );
        assert_eq!(
            parse_err(r#"{"action":"ping","id":{"x":1}}"#),
            (None, ProtocolError::BadRequestId)
        );
        let (id, missing) = parse_err(r#"{"action":"call","id":2,"actor":"counter/a"}"#);
        assert_eq!(id, Some(RequestId::Number(2)));
        assert!(matches!(missing, ProtocolError::InvalidFields { ref detail, .. } if detail.contains("method")));
        let (_, wrong_type) = parse_err(r#"{"action":"subscribe","actor":42}"#);
        assert!(
            matches!(wrong_type, ProtocolError::InvalidFields { ref detail, .. } if detail.contains("invalid type"))
        );
        for args in ["[5]", "[]", "7", "\"x\"", "true"] {
            let (_, bad_args) = parse_err(&format!(
                r#"{{"action":"call","actor":"counter/a","method":"get","args":{args}}}"#
            ));
            assert!(
                matches!(bad_args, ProtocolError::InvalidFields { ref detail, .. } if detail.contains("`args` must be a JSON object")),
                "{args}: {bad_args}"
            );
        }
        let (_, unknown_field) = parse_err(r#"{"action":"ping","bogus":true}"#);
        assert!(matches!(unknown_field, ProtocolError::InvalidFields { .. }));
    }

    #[test]
    fn presence_and_broadcast_frames_are_checked_when_parsed() {
        let join = parse_client_message(r#"{"action":"subscribe","actor":"todo/x","presence":{"name":"ann"}}"#);
        assert!(
            matches!(join, Ok(ClientMessage::Subscribe { presence: Some(_), .. })),
            "{join:?}"
        );
        let update = parse_client_message(r#"{"action":"presence.update","id":2,"actor":"todo/x","presence":{}}"#);
        assert!(matches!(update, Ok(ClientMessage::PresenceUpdate { .. })), "{update:?}");
        let broadcast =
            parse_client_message(r#"{"action":"broadcast","actor":"todo/x","event":"cursor","excludeSelf":true}"#);
        assert_eq!(
            broadcast,
            Ok(ClientMessage::Broadcast {
                id: None,
                actor: "todo/x".into(),
                event: "cursor".into(),
                payload: Value::Null,
                exclude_self: true,
            })
        );
        for (text, field) in [
            (
                r#"{"action":"subscribe","actor":"todo/x","presence":"ann"}"#,
                "`presence`",
            ),
            (r#"{"action":"presence.update","actor":"todo/x"}"#, "presence"),
            (
                r#"{"action":"presence.update","actor":"todo/x","presence":[1]}"#,
                "`presence`",
            ),
            (r#"{"action":"broadcast","actor":"todo/x","event":""}"#, "`event`"),
            (r#"{"action":"broadcast","actor":"todo/x"}"#, "event"),
            (
                r#"{"action":"broadcast","actor":"todo/x","event":"e","to":"all"}"#,
                "`to`",
            ),
        ] {
            let (_, error) = parse_err(text);
            assert!(error.to_string().contains(field), "{text}: {error}");
        }
        let error = ServerMessage::Error {
            id: None,
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            retry_after_ms: Some(250),
        };
        assert_eq!(serde_json::to_value(&error).expect("json")["retryAfterMs"], 250);
    }

    #[test]
    fn no_frame_over_the_message_limit_leaves() {
        let big = ServerMessage::Subscribed {
            id: Some(RequestId::Number(9)),
            actor: "todo/big".into(),
            epoch: Epoch(1),
            version: Version(3),
            state: Some(json!({"text": "x\"é".repeat(MAX_MESSAGE_BYTES / 2)})),
            resumed: None,
            from: None,
            patch: None,
            members: None,
            member_id: None,
        };
        let oversized = big.to_frame().expect_err("over the limit");
        assert_eq!(oversized.kind, "subscribed");
        let reply: Value = serde_json::from_str(&big.to_reply_frame()).expect("JSON");
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["code"], "too_large");
        assert_eq!(reply["id"], 9, "the reply still answers the request");
        let small = ServerMessage::Pong { id: None };
        assert_eq!(small.to_reply_frame(), small.to_json());
        assert_eq!(small.to_frames(), vec![small.to_json()]);

        // Parts: each under the limit, joined they are the frame, each names its message.
        let parts = big.to_frames();
        assert!(parts.len() > 1);
        let mut joined = String::new();
        for (i, part) in parts.iter().enumerate() {
            assert!(part.len() <= MAX_MESSAGE_BYTES, "part {i} is {} bytes", part.len());
            let ServerMessage::Part {
                message,
                index,
                count,
                data,
            } = serde_json::from_str(part).expect("a part")
            else {
                panic!("not a part");
            };
            assert_eq!((index, count), (i, parts.len()));
            assert_eq!(message.len(), 16);
            joined.push_str(&data);
        }
        assert_eq!(joined, big.to_json());
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let delta = ServerMessage::Delta {
            actor: "todo/x".into(),
            epoch: Epoch(5),
            from: Version(1),
            to: Version(2),
            patch: serde_json::from_value(json!([{"op":"add","path":"/a","value":1}])).expect("patch"),
        };
        assert_eq!(
            serde_json::to_value(&delta).expect("json"),
            json!({"type":"delta","actor":"todo/x","epoch":5,"from":1,"to":2,"patch":[{"op":"add","path":"/a","value":1}]})
        );
        let err = ServerMessage::error(Some(RequestId::Number(3)), ErrorCode::NotFound, "no such actor");
        assert_eq!(
            err.to_json(),
            r#"{"type":"error","id":3,"code":"not_found","message":"no such actor"}"#
        );
    }
}
