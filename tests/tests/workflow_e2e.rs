//! Workflows end to end through local mode: a WebSocket client starts the example `order`
//! workflow, subscribes to its progress actor and follows the deltas (pushed by the ordinary
//! fan-out) until the run ends; errors come back typed with the request id.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use statecast_local::{LocalOptions, LocalStack};
use statecast_tests::local::start_local;
use statecast_tests::replica::{Applied, Replica};
use statecast_tests::ws_client::WsClient;

async fn start() -> LocalStack {
    start_local(LocalOptions::default()).await
}

/// Starts `order` with `input`, subscribes to its progress and follows it to a final status.
async fn follow_order(client: &mut WsClient, input: Value) -> (String, Replica, Vec<String>) {
    let mut early = Vec::new();
    let reply = client
        .request(
            json!({"action": "workflow.start", "id": "start", "workflow": "order", "input": input}),
            &mut early,
        )
        .await;
    assert_eq!(reply["type"], "result", "{reply}");
    let workflow_id = reply["value"]["workflowId"].as_str().expect("workflowId").to_owned();
    let actor = reply["value"]["actor"].as_str().expect("actor").to_owned();
    assert_eq!(actor, format!("workflow/{workflow_id}"));
    let subscribed = client
        .request(json!({"action": "subscribe", "id": "sub", "actor": actor}), &mut early)
        .await;
    let mut replica = Replica::from_subscribed(&subscribed);
    // Changes pushed while the subscribe reply was on its way apply first.
    for frame in early.iter().filter(|f| f["type"] == "delta" || f["type"] == "snapshot") {
        assert_ne!(replica.apply(frame, &Value::Null), Applied::Gap, "{frame}");
    }
    let mut statuses = vec![replica.state["status"].as_str().unwrap_or_default().to_owned()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !["succeeded", "failed", "cancelled"].contains(&replica.state["status"].as_str().unwrap_or_default()) {
        assert!(Instant::now() < deadline, "still {}", replica.state);
        let frame = client.frame().await;
        if frame["type"] == "result" {
            continue;
        }
        let applied = replica.apply(&frame, &Value::Null);
        assert_ne!(applied, Applied::Gap, "{frame}");
        let status = replica.state["status"].as_str().unwrap_or_default().to_owned();
        if statuses.last() != Some(&status) {
            statuses.push(status);
        }
    }
    (workflow_id, replica, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_follows_an_order_to_succeeded() {
    let stack = start().await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let (workflow_id, replica, _) = follow_order(&mut client, json!({"sku": "A-1", "quantity": 2, "amount": 40})).await;
    assert_eq!(replica.state["status"], "succeeded");
    for step in ["reserve", "charge", "ship"] {
        assert_eq!(replica.state["steps"][step]["status"], "succeeded", "{}", replica.state);
    }
    assert_eq!(replica.state["steps"]["charge"]["output"]["amount"], 40.0);
    let status = client
        .request(
            json!({"action": "workflow.status", "id": 9, "workflowId": workflow_id}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(status["id"], 9);
    assert_eq!(status["value"], replica.state, "the replica equals the stored progress");
    assert_eq!(status["version"].as_u64(), Some(replica.version));
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_charge_compensates_and_the_subscriber_sees_failed() {
    let stack = start().await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let (_, replica, statuses) = follow_order(&mut client, json!({"sku": "A-1", "quantity": 1, "amount": 5000})).await;
    let state = &replica.state;
    assert_eq!(state["status"], "failed", "{state}");
    assert!(
        statuses.contains(&"compensating".to_owned()) || statuses.first().is_some_and(|s| s == "failed"),
        "{statuses:?}"
    );
    assert!(
        state["cause"].as_str().unwrap_or_default().contains("card declined"),
        "{state}"
    );
    assert_eq!(state["steps"]["charge"]["status"], "failed");
    assert_eq!(state["steps"]["reserve"]["compensation"]["status"], "succeeded");
    assert_ne!(state["steps"]["ship"]["status"], "succeeded");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_requests_with_bad_input_get_typed_errors() {
    let stack = start().await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let cases = [
        (
            json!({"action": "workflow.start", "id": 1, "workflow": "nope"}),
            "not_found",
        ),
        (
            json!({"action": "workflow.start", "id": 2, "workflow": "order", "workflowId": "a/b"}),
            "bad_request",
        ),
        (
            json!({"action": "workflow.status", "id": 3, "workflowId": "missing"}),
            "not_found",
        ),
        (json!({"action": "workflow.cancel", "id": 4}), "bad_request"),
        (
            json!({"action": "call", "id": 5, "actor": "workflow/x", "method": "set"}),
            "forbidden",
        ),
    ];
    for (request, code) in cases {
        let id = request["id"].clone();
        let reply = client.request(request, &mut Vec::new()).await;
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], code, "{reply}");
        assert_eq!(reply["id"], id, "{reply}");
    }
    stack.shutdown().await;
}
