//! End-to-end through local mode: real WebSocket clients against the gateway, the embedded
//! engine's stream driving the fan-out handler, `@connections` in-process (the default) and,
//! where the test says so, over HTTP with the SDK client as deployed.

use std::time::Duration;

use serde_json::{json, Value};
use statecast::ids::{ActorKey, ConnectionId, TenantId};
use statecast::ports::{ActorStore, ConnectionStore, SubscriptionStore};
use statecast::records::{ConnectionRecord, SubscriptionRecord};
use statecast_local::gateway::ConnectionsTransport;
use statecast_local::{LocalOptions, LocalStack};
use statecast_tests::replica::{Applied, Replica};
use statecast_tests::ws_client::{Received, WsClient};

async fn start() -> LocalStack {
    start_with(LocalOptions::default()).await
}

/// The fan-out posts with `transport`.
async fn start_posting(transport: ConnectionsTransport) -> LocalStack {
    start_with(LocalOptions {
        connections_transport: transport,
        ..LocalOptions::default()
    })
    .await
}

use statecast_tests::local::{start_local as start_with, store};

fn todo_default() -> Value {
    json!({"items": {}, "nextId": 0})
}

async fn subscribe(client: &mut WsClient, actor: &str) -> Replica {
    let reply = client
        .request(json!({"action":"subscribe","id":"sub","actor":actor}), &mut Vec::new())
        .await;
    Replica::from_subscribed(&reply)
}

/// Reads change frames until the replica reaches `version`; every frame must apply in order.
async fn follow_until(client: &mut WsClient, replica: &mut Replica, version: u64) {
    while replica.version < version {
        let frame = client.frame().await;
        if frame["type"] == "result" {
            continue;
        }
        assert_eq!(replica.apply(&frame, &todo_default()), Applied::Applied, "{frame}");
    }
}

/// Two clients subscribe to one todo list, one calls `add`: both receive the change, and
/// snapshot + deltas rebuild exactly the stored state with `from`/`to` chained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_converge_on_the_stored_state() {
    two_subscribers_converge(ConnectionsTransport::InProcess).await;
}

/// The same through the `@connections` HTTP API: the SDK's PostToConnection, SigV4 and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_converge_through_the_http_connections_api() {
    two_subscribers_converge(ConnectionsTransport::Http).await;
}

async fn two_subscribers_converge(transport: ConnectionsTransport) {
    let stack = start_posting(transport).await;
    let (mut alice, mut bob) = (
        WsClient::connect(&stack.ws_url).await,
        WsClient::connect(&stack.ws_url).await,
    );
    let mut alice_view = subscribe(&mut alice, "todo/groceries").await;
    let mut bob_view = subscribe(&mut bob, "todo/groceries").await;
    let mut version = 0;
    let mut early = Vec::new();
    let mut calls: Vec<Value> = ["milk", "eggs", "bread", "tea", "jam", "rice"]
        .iter()
        .map(|title| json!({"action":"call","actor":"todo/groceries","method":"add","args":{"title":title}}))
        .collect();
    calls.push(json!({"action":"call","actor":"todo/groceries","method":"toggle","args":{"id":"3"}}));
    for (i, mut call) in calls.into_iter().enumerate() {
        call["id"] = json!(i);
        let reply = alice.request(call, &mut early).await;
        assert_eq!(reply["type"], "result", "{reply}");
        version = version.max(reply["version"].as_u64().expect("version"));
    }
    for frame in early {
        assert_eq!(alice_view.apply(&frame, &todo_default()), Applied::Applied, "{frame}");
    }
    follow_until(&mut alice, &mut alice_view, version).await;
    follow_until(&mut bob, &mut bob_view, version).await;

    let key = ActorKey::parse("dev/todo/groceries").expect("key");
    let stored = store(&stack).load(&key).await.expect("load").expect("stored");
    assert_eq!(stored.version.0, version);
    assert_eq!(alice_view.state, stored.state);
    assert_eq!(bob_view.state, stored.state);
    assert_eq!(stored.state["items"]["3"]["done"], json!(true));
    stack.shutdown().await;
}

/// A client that vanishes without a close frame gets its `$disconnect`; a connection whose
/// `$disconnect` was lost is removed on the first post that answers 410.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_clients_are_cleaned_up() {
    vanished_clients_are_cleaned_up_with(ConnectionsTransport::InProcess).await;
}

/// The same when the 410 comes from the `@connections` HTTP API as a `GoneException`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_clients_are_cleaned_up_over_http() {
    vanished_clients_are_cleaned_up_with(ConnectionsTransport::Http).await;
}

async fn vanished_clients_are_cleaned_up_with(transport: ConnectionsTransport) {
    let stack = start_posting(transport).await;
    let store = store(&stack);
    let mut watcher = WsClient::connect(&stack.ws_url).await;
    subscribe(&mut watcher, "counter/c").await;
    let mut leaver = WsClient::connect(&stack.ws_url).await;
    subscribe(&mut leaver, "counter/c").await;
    drop(leaver);

    let key = ActorKey::parse("dev/counter/c").expect("key");
    let ghost = ConnectionId::new("GhostConnId0000=").expect("id");
    let record = ConnectionRecord {
        connection_id: ghost.clone(),
        tenant: TenantId::new("dev").expect("tenant"),
        principal: None,
        connected_at: 0,
        expires_at: i64::MAX / 2,
    };
    store.put_connection(&record).await.expect("ghost connection");
    let sub = SubscriptionRecord {
        actor_key: key.clone(),
        connection_id: ghost.clone(),
        created_at: 0,
        expires_at: i64::MAX / 2,
        paths: None,
        member: None,
    };
    store.put_subscription(&sub).await.expect("ghost subscription");

    let reply = watcher
        .request(
            json!({"action":"call","id":1,"actor":"counter/c","method":"increment"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(reply["version"], json!(1));
    let frame = watcher.frame().await;
    assert_eq!(frame["version"], json!(1), "{frame}");

    // The fan-out drops the ghost's subscription, then its connection record: wait for both.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let subscribers = store.subscribers(&key, None).await.expect("query").connections;
        let ghost_record = store.get_connection(&ghost).await.expect("get");
        if subscribers.len() == 1 && ghost_record.is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left-over subscribers: {subscribers:?}; the 410 left the ghost: {ghost_record:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.shutdown().await;
}

/// Malformed frames get typed `error` replies and the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_error_replies() {
    let stack = start().await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    for (text, code) in [
        ("not json", "bad_request"),
        ("[1,2,3]", "bad_request"),
        (r#"{"id":1}"#, "bad_request"),
        (r#"{"action":"dance","id":2}"#, "bad_request"),
        (r#"{"action":"call","id":3,"actor":"counter/x"}"#, "bad_request"),
        (r#"{"action":"call","id":4,"actor":"nope/x","method":"m"}"#, "not_found"),
        (
            r#"{"action":"call","id":5,"actor":"counter/x","method":"explode"}"#,
            "not_found",
        ),
        (r#"{"action":"subscribe","id":6,"actor":"other/todo/x"}"#, "forbidden"),
    ] {
        client.send_text(text.to_owned()).await;
        let reply = client.frame().await;
        assert_eq!(reply["type"], "error", "{text} → {reply}");
        assert_eq!(reply["code"], code, "{text} → {reply}");
    }
    let pong = client
        .request(json!({"action":"ping","id":"still-here"}), &mut Vec::new())
        .await;
    assert_eq!(pong, json!({"type":"pong","id":"still-here"}));
    stack.shutdown().await;
}

/// A 200 KB message is over API Gateway's 128 KB limit: the socket is closed with 1009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_closes_with_1009() {
    let stack = start().await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let title = "x".repeat(200 * 1024);
    client
        .send(json!({"action":"call","id":1,"actor":"todo/big","method":"add","args":{"title":title}}))
        .await;
    assert_eq!(client.next().await, Received::Closed(Some(1009)));
    stack.shutdown().await;
}

/// When `$connect` refuses (here: no tenant can be established) the upgrade is refused with
/// its status and no connection exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connect_refuses_the_upgrade() {
    let stack = start_with(LocalOptions {
        dev_tenant: None,
        ..LocalOptions::default()
    })
    .await;
    let error = tokio_tungstenite::connect_async(stack.ws_url.as_str())
        .await
        .expect_err("upgrade refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    assert_eq!(stack.connection_count(), 0);
    stack.shutdown().await;
}

/// 200 subscribers, 20 changes: every client receives every change exactly once, in
/// version order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_to_200_subscribers_is_exactly_once_and_in_order() {
    let stack = start().await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        let mut client = WsClient::connect(&stack.ws_url).await;
        subscribe(&mut client, "counter/popular").await;
        clients.push(client);
    }
    let calls = 20;
    let caller = &mut clients[0];
    let mut stray = Vec::new();
    for i in 0..calls {
        let reply = caller
            .request(
                json!({"action":"call","id":i,"actor":"counter/popular","method":"increment"}),
                &mut stray,
            )
            .await;
        assert_eq!(reply["type"], "result");
    }
    // Every subscriber gets every change once and in order: frames chain (`from` is the last
    // `to`) up to the last version; a batch's changes may come as one coalesced frame.
    for (n, client) in clients.iter_mut().enumerate() {
        let mut frames: Vec<Value> = if n == 0 { stray.clone() } else { Vec::new() };
        let mut held = 0;
        let mut next = 0;
        while held < calls as u64 {
            let frame = match frames.get(next) {
                Some(frame) => frame.clone(),
                None => {
                    let frame = client.frame().await;
                    frames.push(frame.clone());
                    frame
                }
            };
            next += 1;
            if frame["type"] == "result" {
                continue;
            }
            let from = frame.get("from").and_then(Value::as_u64).unwrap_or(held);
            assert_eq!(from, held, "client {n}: frames chain, none twice: {frame}");
            held = version_of(&frame);
        }
        assert_eq!(held, calls as u64, "client {n}");
        assert!(
            client
                .is_quiet_for(Duration::from_millis(if n == 0 { 300 } else { 5 }))
                .await,
            "client {n}: no duplicates"
        );
    }
    stack.shutdown().await;
}

fn version_of(frame: &Value) -> u64 {
    frame
        .get("to")
        .or_else(|| frame.get("version"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{frame}"))
}
