//! One trace through local mode: the request id of a `call` (which its own `Calls` metric
//! names) is stored with the change, and the fan-out's JSON log line that delivered that change
//! carries it; a workflow's steps log the request id that started the instance.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use statecast::ids::{ActorKey, TenantId};
use statecast::metrics::{CaptureWriter, Metric, Metrics};
use statecast::ports::ActorStore;
use statecast::service::Settings;
use statecast_local::LocalOptions;
use statecast_tests::local::{start_local, store};
use statecast_tests::ws_client::WsClient;

/// Every JSON log line of this test process.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (up to 10 s) for log lines matching `wanted`; returns them.
    async fn wait_for(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Value> = self.lines().into_iter().filter(|l| wanted(l)).collect();
            if !found.is_empty() {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "no log line {what} in time");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The process-wide JSON subscriber (the format Lambda's runtime prints), installed once.
fn logs() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .json()
            .with_env_filter("info")
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the test installs the only subscriber");
        logs
    })
    .clone()
}

/// A field of a log line: its own, or one of the spans it was logged in.
fn field<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["fields"].get(name).or_else(|| {
        line["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|span| span.get(name))
    })
}

fn metered() -> (LocalOptions, Arc<CaptureWriter>) {
    let capture = Arc::new(CaptureWriter::new());
    let options = LocalOptions {
        settings: Settings {
            metrics: Metrics::new("local", capture.clone()),
            ..Settings::default()
        },
        ..LocalOptions::default()
    };
    (options, capture)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_request_id_reaches_the_fanout_line_that_delivered_it() {
    let logs = logs();
    let (options, capture) = metered();
    let stack = start_local(options).await;
    let mut watcher = WsClient::connect(&stack.ws_url).await;
    let mut caller = WsClient::connect(&stack.ws_url).await;
    let subscribed = watcher
        .request(
            json!({"action": "subscribe", "id": "s", "actor": "counter/traced"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    capture.clear();
    let call = json!({"action": "call", "id": "c", "actor": "counter/traced", "method": "increment", "args": {}});
    let result = caller.request(call, &mut Vec::new()).await;
    assert_eq!(result["type"], "result", "{result}");
    let version = result["version"].as_u64().expect("version");
    // A first change small enough goes out as a snapshot, a later one as a delta.
    let change = watcher.frame().await;
    let reached = change.get("to").or(change.get("version")).and_then(Value::as_u64);
    assert_eq!(reached, Some(version), "{change}");

    // The call's own metric names its request id.
    let calls: Vec<Value> = capture
        .documents()
        .into_iter()
        .filter(|d| d.get(Metric::Calls.name()).is_some())
        .collect();
    let [call_metric] = calls.as_slice() else {
        panic!("one Calls document: {calls:?}")
    };
    let request_id = call_metric["requestId"].as_str().expect("requestId").to_owned();
    assert!(!request_id.is_empty());

    // The change carries it into the stream record.
    let key = ActorKey::new(TenantId::new("dev").expect("tenant"), "counter", "traced").expect("key");
    let stored = store(&stack).load(&key).await.expect("load").expect("stored");
    assert_eq!(stored.trace.map(|t| t.request_id), Some(request_id.clone()));

    // And the fan-out's line for that change names it.
    let delivered = logs
        .wait_for("`change delivered` for the call", |line| {
            line["fields"]["message"] == "change delivered"
                && field(line, "request_id").and_then(Value::as_str) == Some(request_id.as_str())
        })
        .await;
    let [line] = delivered.as_slice() else {
        panic!("one delivery line: {delivered:?}")
    };
    assert_eq!(field(line, "version").and_then(Value::as_u64), Some(version));
    assert_eq!(
        field(line, "actor").and_then(Value::as_str),
        Some(key.to_string().as_str())
    );
    assert_eq!(line["level"], "INFO");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflows_steps_log_the_request_that_started_it() {
    let logs = logs();
    let (options, _capture) = metered();
    let stack = start_local(options).await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let start = json!({"action": "workflow.start", "id": "w", "workflow": "order",
                       "input": {"sku": "A-1", "quantity": 1, "amount": 10}});
    let reply = client.request(start, &mut Vec::new()).await;
    assert_eq!(reply["type"], "result", "{reply}");
    let workflow_id = reply["value"]["workflowId"].as_str().expect("workflowId").to_owned();
    let progress = ActorKey::parse(&format!("dev/{}", reply["value"]["actor"].as_str().expect("actor"))).expect("key");
    let stored = store(&stack)
        .load(&progress)
        .await
        .expect("load")
        .expect("progress actor");
    let request_id = stored.trace.expect("the start stored its trace").request_id;
    assert!(!request_id.is_empty());

    let finished = logs
        .wait_for("`step finished` for the instance", |line| {
            line["fields"]["message"] == "step finished"
                && field(line, "workflow_id").and_then(Value::as_str) == Some(workflow_id.as_str())
                && field(line, "step").and_then(Value::as_str) == Some("ship")
        })
        .await;
    for line in finished {
        assert_eq!(
            field(&line, "request_id").and_then(Value::as_str),
            Some(request_id.as_str()),
            "{line}"
        );
    }
    stack.shutdown().await;
}
