//! End-to-end through the services and the fan-out handler: calls write the actors table,
//! the embedded engine's stream is read back as Lambda events, the handler fans them out.

use std::sync::Arc;

use serde_json::{json, Value};
use statecast::delta;
use statecast::ids::ConnectionId;
use statecast::protocol::ServerMessage;
use statecast::service::ConnectRequest;
use statecast::testing::RecordingSender;
use statecast_tests::fixtures::lambda_event;
use statecast_tests::Harness;

async fn connect(h: &Harness, id: &str) -> ConnectionId {
    let connection_id = ConnectionId::new(id).expect("id");
    let request = ConnectRequest {
        connection_id: connection_id.clone(),
        tenant: None,
        principal: None,
        connected_at: 1_795_435_200_000,
    };
    h.connect_service().connect(request).await.expect("connect");
    connection_id
}

async fn send(h: &Harness, connection: &ConnectionId, frame: Value) -> ServerMessage {
    h.message_service()
        .handle(connection, &frame.to_string(), "req-test")
        .await
}

/// Subscribe, call, read the stream, fan out: the delta applied to the subscribed snapshot
/// equals the stored state, and `from`/`to` chain.
#[tokio::test]
async fn subscriber_rebuilds_the_stored_state_from_snapshot_plus_deltas() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let sender = Arc::new(RecordingSender::new());
    let fanout = h.fanout_service(sender.clone());
    let alice = connect(&h, "alice").await;

    let ServerMessage::Subscribed { state, version, .. } = send(
        &h,
        &alice,
        json!({"action":"subscribe","id":1,"actor":"todo/groceries"}),
    )
    .await
    else {
        panic!("expected subscribed");
    };
    assert_eq!(version.0, 0);
    let mut held = state;
    let mut held_version = version;

    let mut frames: Vec<Value> = ["milk", "eggs", "bread", "butter", "tea", "rice"]
        .iter()
        .map(|title| json!({"action":"call","actor":"todo/groceries","method":"add","args":{"title":title}}))
        .collect();
    frames.push(json!({"action":"call","actor":"todo/groceries","method":"toggle","args":{"id":"1"}}));
    frames.push(
        json!({"action":"call","actor":"todo/groceries","method":"rename","args":{"id":"2","title":"brown eggs"}}),
    );
    for frame in frames {
        let reply = send(&h, &alice, frame).await;
        assert!(matches!(reply, ServerMessage::Result { .. }), "{reply:?}");
    }

    let event = stream.next_event().await;
    assert_eq!(event.records.len(), 8);
    let response = statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("handler");
    assert!(response.batch_item_failures.is_empty());

    let frames = sender.frames_to(&alice);
    assert_eq!(frames.len(), 8, "one frame per change");
    let mut deltas = 0;
    for frame in frames {
        match frame["type"].as_str() {
            Some("delta") => {
                assert_eq!(frame["from"], json!(held_version.0), "deltas chain");
                let patch = serde_json::from_value(frame["patch"].clone()).expect("patch");
                delta::apply(&mut held, &patch).expect("patch applies");
                held_version.0 = frame["to"].as_u64().expect("to");
                deltas += 1;
            }
            // While the list is tiny a patch is no smaller than the state: a snapshot replaces it.
            Some("snapshot") => {
                held = frame["state"].clone();
                held_version.0 = frame["version"].as_u64().expect("version");
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert!(deltas >= 2, "edits of a larger list travel as deltas");
    let key = statecast::ids::ActorKey::parse("dev/todo/groceries").expect("key");
    let stored = statecast::ports::ActorStore::load(h.store.as_ref(), &key)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(held_version, stored.version);
    assert_eq!(held, stored.state);
    assert_eq!(held["items"]["1"], json!({"title":"milk","done":true}));
}
