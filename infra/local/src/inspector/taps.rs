//! Taps that show the inspector what goes by, without changing it: the `$default` route (frames
//! in, replies out, calls), the fan-out's `@connections` posts, and the stream mappings'
//! batches (actor images, lag, failures).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::encodings::Body;
use serde_json::{json, Value};
use statecast::ids::ConnectionId;
use statecast::ports::ConnectionSender;
use statecast::records::{now_millis, ActorRecord};

use super::journal::{ActorEntry, BatchEntry, CallEntry, Direction, Journal};
use crate::esm::StreamHandler;
use crate::gateway::WsHandler;
use crate::stream_records::created_at;

/// The `$default` route, recording each frame, its reply and, for a `call`, the call.
pub fn default_route(journal: Arc<Journal>, inner: WsHandler) -> WsHandler {
    Arc::new(move |event| {
        let (inner, journal) = (inner.clone(), journal.clone());
        Box::pin(async move {
            let connection = event.request_context.connection_id.clone().unwrap_or_default();
            let request_id = event.request_context.request_id.clone().unwrap_or_default();
            let body = event.body.clone().unwrap_or_default();
            journal.frame(&connection, Direction::In, &body, true);
            let started = Instant::now();
            let response = inner(event).await;
            let reply = match &response {
                Ok(r) => match &r.body {
                    Some(Body::Text(text)) => Some(text.clone()),
                    _ => None,
                },
                Err(_) => None,
            };
            if let Some(text) = &reply {
                journal.frame(&connection, Direction::Reply, text, true);
            }
            if let Some(call) = call_entry(&body, reply.as_deref(), started) {
                journal.call(CallEntry {
                    connection,
                    request_id,
                    ..call
                });
            }
            response
        })
    })
}

/// The call a frame made, if it was one, with its reply.
fn call_entry(body: &str, reply: Option<&str>, started: Instant) -> Option<CallEntry> {
    let request: Value = serde_json::from_str(body).ok()?;
    if request["action"] != "call" {
        return None;
    }
    let reply: Value = reply.and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
    let (outcome, shown) = match reply["type"].as_str() {
        Some("result") => ("result", json!({"value": reply["value"], "version": reply["version"]})),
        Some("error") => ("error", json!({"code": reply["code"], "message": reply["message"]})),
        _ => ("parts", Value::Null),
    };
    Some(CallEntry {
        at: now_millis(),
        connection: String::new(),
        request_id: String::new(),
        actor: request["actor"].clone(),
        method: request["method"].clone(),
        args: request["args"].clone(),
        outcome: outcome.to_owned(),
        reply: shown,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// The fan-out's `@connections` sender, recording each post and whether it got through.
pub struct RecordedPosts {
    inner: Arc<dyn ConnectionSender>,
    journal: Arc<Journal>,
}

impl RecordedPosts {
    pub fn new(journal: Arc<Journal>, inner: Arc<dyn ConnectionSender>) -> Self {
        Self { inner, journal }
    }
}

#[async_trait]
impl ConnectionSender for RecordedPosts {
    async fn send(&self, to: &ConnectionId, frame: &str) -> statecast::Result<()> {
        let result = self.inner.send(to, frame).await;
        self.journal.frame(to.as_str(), Direction::Push, frame, result.is_ok());
        result
    }
}

/// A stream mapping's function, recording each batch (and, for the actors stream, the actors'
/// latest images).
pub fn stream(journal: Arc<Journal>, mapping: &'static str, actors: bool, inner: StreamHandler) -> StreamHandler {
    Arc::new(move |event| {
        let (inner, journal) = (inner.clone(), journal.clone());
        Box::pin(async move {
            let records = event.records.len();
            let newest = event.records.iter().filter_map(created_at).max();
            if actors {
                for record in &event.records {
                    if let Some(entry) = actor_entry(record) {
                        journal.actor(entry);
                    }
                }
            }
            let response = inner(event).await;
            let lag_ms = newest
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map(|d| d.as_millis() as i64);
            let (failed_records, error) = match &response {
                Ok(r) => (r.batch_item_failures.len(), None),
                Err(e) => (records, Some(e.to_string())),
            };
            journal.batch(
                mapping,
                BatchEntry {
                    at: now_millis(),
                    records,
                    lag_ms,
                    failed_records,
                    error,
                },
            );
            response
        })
    })
}

/// The actor a stream record shows: its new image, or its old one marked deleted.
fn actor_entry(record: &EventRecord) -> Option<ActorEntry> {
    let change = &record.change;
    let (image, deleted) = match change.new_image.is_empty() {
        false => (change.new_image.clone(), false),
        true => (change.old_image.clone(), true),
    };
    let actor: ActorRecord = serde_dynamo::from_item(image).ok()?;
    Some(ActorEntry {
        key: actor.actor_key.to_string(),
        actor_type: actor.actor_key.actor_type().to_owned(),
        state: actor.state,
        version: actor.version.0,
        epoch: actor.epoch.0,
        updated_at: actor.updated_at,
        request_id: actor.trace.map(|t| t.request_id),
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_calls_are_calls_and_their_outcome_is_read_from_the_reply() {
        let started = Instant::now();
        let call = r#"{"action":"call","id":1,"actor":"counter/a","method":"increment","args":{"by":2}}"#;
        let ok = call_entry(call, Some(r#"{"type":"result","id":1,"value":3,"version":3}"#), started).expect("a call");
        assert_eq!((ok.outcome.as_str(), ok.reply["version"].as_u64()), ("result", Some(3)));
        assert_eq!(ok.args, json!({"by": 2}));
        let refused = call_entry(
            call,
            Some(r#"{"type":"error","code":"conflict","message":"m"}"#),
            started,
        )
        .expect("a call");
        assert_eq!(
            (refused.outcome.as_str(), &refused.reply["code"]),
            ("error", &json!("conflict"))
        );
        assert!(call_entry(r#"{"action":"ping","id":1}"#, None, started).is_none());
        assert!(call_entry("not json", None, started).is_none());
    }
}
