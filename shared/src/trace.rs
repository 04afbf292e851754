//! One trace from a request to every delivery: the request id of the Lambda invocation that
//! made a change (and the X-Ray trace id, when Lambda gives one) is written with the change —
//! the actor item's `trace` attribute, a workflow instance's — so the stream carries it to the
//! fan-out and the workflow function, which log it on the lines about that change.
//!
//! A handler runs its service call inside [`scope`]; the writes made within read
//! [`current`] (a task-local, like the tracing span the same code logs in).

use std::future::Future;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::records::ActorChange;

/// Who caused a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// The Lambda (or API Gateway) request id of the invocation that wrote the change.
    pub request_id: String,
    /// The X-Ray trace header's `Root=…` id, when the invocation was traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xray_trace_id: Option<String>,
}

impl Trace {
    /// A trace for `request_id`; `xray` is the raw trace header (`Root=1-…;Parent=…;Sampled=…`)
    /// or just the root id, or empty.
    pub fn new(request_id: impl Into<String>, xray: Option<&str>) -> Self {
        Self {
            request_id: request_id.into(),
            xray_trace_id: xray.and_then(root_id),
        }
    }

    /// The X-Ray header of this invocation: the Lambda context's, else `_X_AMZN_TRACE_ID`.
    pub fn xray_header(context: Option<&str>) -> Option<String> {
        context
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .or_else(|| std::env::var("_X_AMZN_TRACE_ID").ok().filter(|h| !h.is_empty()))
    }
}

/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=…` → `1-5759e988-bd862e3fe1be46a994272793`.
fn root_id(header: &str) -> Option<String> {
    let root = header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .unwrap_or(header.trim());
    (!root.is_empty() && !root.contains('=')).then(|| root.to_owned())
}

tokio::task_local! {
    static CURRENT: Trace;
}

/// Runs `future` with `trace` as the [`current`] one.
pub async fn scope<F: Future>(trace: Trace, future: F) -> F::Output {
    CURRENT.scope(trace, future).await
}

/// The trace of the request being handled, if a handler set one.
pub fn current() -> Option<Trace> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Logs each change of a run the fan-out posted (or failed to post, to be retried), with the
/// request that made it: the line that ends the trace of a call.
pub fn log_delivered<'a>(changes: impl Iterator<Item = &'a ActorChange>, delivered: bool) {
    for change in changes {
        let (version, trace) = match change {
            ActorChange::Created { new } | ActorChange::Updated { new, .. } => (new.version.0, new.trace.as_ref()),
            ActorChange::Deleted { old } => (old.version.0, None),
        };
        let (request_id, xray_trace_id) = (request_id(trace), xray_trace_id(trace));
        match delivered {
            true => info!(actor = %change.key(), version, request_id, xray_trace_id, "change delivered"),
            false => warn!(actor = %change.key(), version, request_id, xray_trace_id, "change not delivered"),
        }
    }
}

/// For log fields: the request id, or empty.
pub fn request_id(trace: Option<&Trace>) -> &str {
    trace.map_or("", |t| t.request_id.as_str())
}

/// For log fields: the X-Ray trace id, or empty.
pub fn xray_trace_id(trace: Option<&Trace>) -> &str {
    trace.and_then(|t| t.xray_trace_id.as_deref()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_id_is_taken_from_a_trace_header() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let trace = Trace::new("r-1", Some(header));
        assert_eq!(
            trace.xray_trace_id.as_deref(),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(Trace::new("r", Some("1-abc")).xray_trace_id.as_deref(), Some("1-abc"));
        assert_eq!(Trace::new("r", Some("")).xray_trace_id, None);
        assert_eq!(Trace::new("r", Some("Parent=x")).xray_trace_id, None);
        assert_eq!(Trace::new("r", None).xray_trace_id, None);
    }

    #[tokio::test]
    async fn current_is_the_scopes_trace_and_none_outside() {
        assert_eq!(current(), None);
        let inside = scope(Trace::new("r-2", None), async { current() }).await;
        assert_eq!(inside.map(|t| t.request_id), Some("r-2".to_owned()));
        assert_eq!(current(), None);
    }

    #[test]
    fn a_trace_is_stored_in_camel_case_without_an_absent_xray_id() {
        let stored = serde_json::to_value(Trace::new("r-3", None)).expect("json");
        assert_eq!(stored, serde_json::json!({"requestId": "r-3"}));
    }
}
