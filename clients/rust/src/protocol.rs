//! The wire format as this client reads and writes it: the server frames (checked, anything
//! malformed or unknown is ignored) and the client frames it sends.

use json_patch::Patch;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// API Gateway's WebSocket message limit: a larger frame would close the socket.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// The state a client holds, sent to resume a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Since {
    pub epoch: u64,
    pub version: u64,
}

/// The reply to `subscribe`: a whole `state`, or (`resumed: true`) the `patch` from the
/// client's `since.version` (`from`) to `version`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Subscribed {
    #[serde(default)]
    pub id: Option<Value>,
    pub actor: String,
    pub epoch: u64,
    pub version: u64,
    #[serde(default)]
    pub state: Option<Value>,
    #[serde(default)]
    pub resumed: Option<bool>,
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub patch: Option<Patch>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Delta {
    pub actor: String,
    pub epoch: u64,
    pub from: u64,
    pub to: u64,
    pub patch: Patch,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Snapshot {
    pub actor: String,
    pub epoch: u64,
    pub version: u64,
    pub state: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Deleted {
    pub actor: String,
    pub epoch: u64,
    pub version: u64,
}

/// One of `count` parts of a frame over the message limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Part {
    pub message: String,
    pub index: usize,
    pub count: usize,
    pub data: String,
}

/// The frames that change one actor's state after its subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamFrame {
    Delta(Delta),
    Snapshot(Snapshot),
    Deleted(Deleted),
}

impl StreamFrame {
    pub fn actor(&self) -> &str {
        match self {
            StreamFrame::Delta(f) => &f.actor,
            StreamFrame::Snapshot(f) => &f.actor,
            StreamFrame::Deleted(f) => &f.actor,
        }
    }
}

/// A frame sent by the server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Subscribed(Subscribed),
    Unsubscribed {},
    Result {
        #[serde(default)]
        id: Option<Value>,
        value: Value,
    },
    Delta(Delta),
    Snapshot(Snapshot),
    Deleted(Deleted),
    Pong {},
    Part(Part),
    Error {
        #[serde(default)]
        id: Option<Value>,
        code: String,
        message: String,
    },
}

impl ServerFrame {
    /// `text` as a well-formed server frame, or `None`.
    pub fn parse(text: &str) -> Option<ServerFrame> {
        let frame: ServerFrame = serde_json::from_str(text).ok()?;
        frame.is_well_formed().then_some(frame)
    }

    fn is_well_formed(&self) -> bool {
        match self {
            ServerFrame::Subscribed(f) => match f.resumed {
                Some(true) => f.from.is_some_and(|from| from <= f.version) && f.patch.is_some(),
                _ => f.state.is_some(),
            },
            ServerFrame::Delta(f) => f.from < f.to,
            ServerFrame::Part(f) => f.count > 0 && f.index < f.count,
            _ => true,
        }
    }
}

/// The request id a reply echoes, when it is one of this client's (numeric) ids.
pub fn request_id(id: Option<&Value>) -> Option<u64> {
    id.and_then(Value::as_u64)
}

pub fn subscribe(id: u64, actor: &str, since: Option<Since>, paths: Option<&[String]>) -> String {
    let mut frame = json!({"action": "subscribe", "id": id, "actor": actor});
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    if let Some(paths) = paths {
        frame["paths"] = json!(paths);
    }
    frame.to_string()
}

pub fn unsubscribe(id: u64, actor: &str) -> String {
    json!({"action": "unsubscribe", "id": id, "actor": actor}).to_string()
}

pub fn call(id: u64, actor: &str, method: &str, args: Value, idempotency_key: &str) -> String {
    let mut frame =
        json!({"action": "call", "id": id, "actor": actor, "method": method, "idempotencyKey": idempotency_key});
    if !args.is_null() {
        frame["args"] = args;
    }
    frame.to_string()
}

pub fn ping(id: u64) -> String {
    json!({"action": "ping", "id": id}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_frames_and_ignores_malformed_ones() {
        let delta = ServerFrame::parse(
            r#"{"type":"delta","actor":"todo/x","epoch":5,"from":7,"to":8,"patch":[{"op":"replace","path":"/a","value":1}]}"#,
        );
        assert!(matches!(delta, Some(ServerFrame::Delta(Delta { from: 7, to: 8, .. }))));
        let error = ServerFrame::parse(r#"{"type":"error","id":2,"code":"not_found","message":"no todo item"}"#);
        assert!(matches!(error, Some(ServerFrame::Error { ref code, .. }) if code == "not_found"));
        assert!(ServerFrame::parse(r#"{"type":"pong","id":4}"#).is_some());
        assert!(ServerFrame::parse(r#"{"type":"unsubscribed","id":4,"actor":"a/b"}"#).is_some());
        for bad in [
            r#"{"type":"delta","actor":"x/y","epoch":5,"from":8,"to":8,"patch":[]}"#,
            r#"{"type":"subscribed","id":1,"actor":"x/y","epoch":0,"version":0}"#,
            r#"{"type":"subscribed","id":1,"actor":"x/y","epoch":0,"version":2,"resumed":true,"from":3,"patch":[]}"#,
            r#"{"type":"part","message":"m","index":2,"count":2,"data":""}"#,
            r#"{"type":"gossip"}"#,
            r#"{"message":"Internal server error"}"#,
            "not json",
        ] {
            assert_eq!(ServerFrame::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn client_frames_have_the_documented_shape() {
        let sub = subscribe(
            3,
            "todo/x",
            Some(Since { epoch: 9, version: 4 }),
            Some(&["/items".into()]),
        );
        let sub: Value = serde_json::from_str(&sub).unwrap_or_default();
        assert_eq!(
            sub,
            json!({"action":"subscribe","id":3,"actor":"todo/x","since":{"epoch":9,"version":4},"paths":["/items"]})
        );
        let call: Value = serde_json::from_str(&call(4, "counter/c", "get", Value::Null, "k")).unwrap_or_default();
        assert_eq!(
            call,
            json!({"action":"call","id":4,"actor":"counter/c","method":"get","idempotencyKey":"k"})
        );
    }
}
