//! The local inspector's JSON API, read over HTTP from a running local stack: what a client did
//! (its connection, subscription, call, frames), the actor it changed, the mappings' progress and
//! a workflow's step graph; and nothing at all unless local mode serves the inspector.

use std::time::Duration;

use serde_json::{json, Value};
use statecast_local::LocalOptions;
use statecast_tests::local::start_local;
use statecast_tests::ws_client::WsClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` on the stack's port: the status and the body.
async fn get(base: &str, path: &str) -> (u16, String) {
    let authority = base.trim_start_matches("http://").split('/').next().expect("authority");
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("response");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_owned())
}

/// Polls the state until `ready` accepts it (10 s at most).
async fn state_when(base: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(base, "/_inspector/api/state").await;
        assert_eq!(status, 200, "{body}");
        let state: Value = serde_json::from_str(&body).expect("JSON state");
        if ready(&state) {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not shown in time: {state:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|item| item[key] == value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_shows_connections_actors_calls_frames_mappings_and_workflows() {
    let stack = start_local(LocalOptions {
        inspector: true,
        ..LocalOptions::default()
    })
    .await;
    let base = stack.inspector_url.clone().expect("the inspector is served");
    let (status, page) = get(&base, "/_inspector").await;
    assert_eq!(status, 200);
    assert!(page.contains("Statecast inspector") && page.contains("/_inspector/api/state"));

    let mut client = WsClient::connect(&stack.ws_url).await;
    let subscribed = client
        .request(
            json!({"action": "subscribe", "id": 1, "actor": "counter/inspected"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(subscribed["type"], "subscribed");
    let result = client
        .request(
            json!({"action": "call", "id": 2, "actor": "counter/inspected", "method": "increment", "args": {}}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(result["type"], "result", "{result}");
    let started = client
        .request(
            json!({"action": "workflow.start", "id": 3, "workflow": "order",
                   "input": {"sku": "A-1", "quantity": 1, "amount": 10}}),
            &mut Vec::new(),
        )
        .await;
    let workflow_id = started["value"]["workflowId"].as_str().expect("workflowId").to_owned();

    let state = state_when(&base, "the call's change and the finished workflow", |s| {
        find(&s["actors"], "key", "dev/counter/inspected").is_some()
            && find(&s["workflows"], "workflowId", &workflow_id).is_some_and(|w| w["status"] == "succeeded")
            && find(&s["frames"], "direction", "push").is_some()
    })
    .await;

    let connections = state["connections"].as_array().expect("connections");
    let [connection] = connections.as_slice() else {
        panic!("one connection: {connections:?}")
    };
    assert_eq!(connection["tenant"], "dev");
    assert_eq!(connection["subscriptions"], json!(["counter/inspected"]));

    let actor = find(&state["actors"], "key", "dev/counter/inspected").expect("actor");
    assert_eq!(
        (actor["version"].clone(), actor["state"].clone()),
        (json!(1), json!({"value": 1}))
    );
    let call = find(&state["calls"], "method", "increment").expect("the call");
    assert_eq!(call["outcome"], "result");
    assert_eq!(call["reply"]["version"], 1);
    assert_eq!(
        actor["requestId"], call["requestId"],
        "the actor names the call that wrote it"
    );
    assert!(state["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .any(|f| f["direction"] == "in" && f["text"].as_str().is_some_and(|t| t.contains("increment"))));

    let actors_mapping = find(&state["mappings"], "name", "actors").expect("actors mapping");
    assert_eq!(actors_mapping["function"], "statecast-fanout");
    assert!(actors_mapping["stats"]["invocations"].as_u64() >= Some(1));
    assert!(actors_mapping["positions"].as_object().is_some_and(|p| !p.is_empty()));
    assert_eq!(actors_mapping["onFailure"], json!([]));
    assert!(actors_mapping["lastBatch"]["lagMs"].as_i64().is_some());
    assert!(find(&state["mappings"], "name", "workflows").is_some());

    let workflow = find(&state["workflows"], "workflowId", &workflow_id).expect("workflow");
    let steps: Vec<(String, u64, String, u64)> = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["layer"].as_u64().unwrap_or(99),
                s["status"].as_str().unwrap_or_default().to_owned(),
                s["attempts"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let succeeded = |name: &str, layer: u64| (name.to_owned(), layer, "succeeded".to_owned(), 1);
    assert_eq!(
        steps,
        [succeeded("reserve", 0), succeeded("charge", 1), succeeded("ship", 2)]
    );
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_inspector_nothing_is_served() {
    let stack = start_local(LocalOptions::default()).await;
    assert_eq!(stack.inspector_url, None);
    let base = stack.page_url.clone();
    let (status, _) = get(&base, "/_inspector/api/state").await;
    assert_ne!(status, 200, "the API is off unless local mode serves the inspector");
    stack.shutdown().await;
}
