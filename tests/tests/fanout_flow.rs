//! End-to-end through the services and the fan-out handler: calls write the actors table,
//! the embedded engine's stream is read back as Lambda events, the handler fans them out.

use std::sync::Arc;

use serde_json::{json, Value};
use statecast::delta;
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ConnectionStore, SubscriberCursor, SubscriptionStore};
use statecast::protocol::ServerMessage;
use statecast::testing::RecordingSender;
use statecast_tests::fixtures::lambda_event;
use statecast_tests::subscribers::FailingReads;
use statecast_tests::Harness;

async fn connect(h: &Harness, id: &str) -> ConnectionId {
    h.connect(id, None).await
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
    let mut held = state.expect("a fresh subscription carries the state");
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
    // One record per batch: one frame per change (a batch's changes of one actor would go out
    // as one coalesced frame, see tests/resume.rs).
    for record in event.records {
        let mut single = aws_lambda_events::dynamodb::Event::default();
        single.records = vec![record];
        let response = statecast_fanout::handler(&fanout, lambda_event(single))
            .await
            .expect("handler");
        assert!(response.batch_item_failures.is_empty());
    }

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

async fn subscribe(h: &Harness, connection: &ConnectionId, actor: &str) {
    let reply = send(h, connection, json!({"action":"subscribe","actor":actor})).await;
    assert!(matches!(reply, ServerMessage::Subscribed { .. }), "{reply:?}");
}

async fn call(h: &Harness, connection: &ConnectionId, actor: &str, method: &str) {
    let reply = send(h, connection, json!({"action":"call","actor":actor,"method":method})).await;
    assert!(matches!(reply, ServerMessage::Result { .. }), "{reply:?}");
}

/// A 410 from one subscriber deletes exactly that connection and all its subscriptions,
/// and the change is still delivered to every other subscriber.
#[tokio::test]
async fn gone_subscriber_is_removed_and_the_others_still_receive() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let sender = Arc::new(RecordingSender::new());
    let fanout = h.fanout_service(sender.clone());
    let (a, b, gone) = (
        connect(&h, "a").await,
        connect(&h, "b").await,
        connect(&h, "gone").await,
    );
    for c in [&a, &b, &gone] {
        subscribe(&h, c, "counter/shared").await;
    }
    subscribe(&h, &gone, "counter/other").await;
    subscribe(&h, &b, "counter/other").await;
    sender.mark_gone(&gone);

    call(&h, &a, "counter/shared", "increment").await;
    let response = statecast_fanout::handler(&fanout, lambda_event(stream.next_event().await))
        .await
        .expect("handler");
    assert!(
        response.batch_item_failures.is_empty(),
        "a gone client is not a failure"
    );

    for c in [&a, &b] {
        let frames = sender.frames_to(c);
        assert_eq!(frames.len(), 1, "{c} got the change");
        assert_eq!(frames[0]["version"], json!(1));
    }
    assert!(sender.frames_to(&gone).is_empty());
    assert_eq!(
        h.store.get_connection(&gone).await.expect("get"),
        None,
        "gone connection deleted"
    );
    assert!(
        h.store.subscriptions_of(&gone).await.expect("query").is_empty(),
        "all its subscriptions deleted"
    );
    for c in [&a, &b] {
        assert!(h.store.get_connection(c).await.expect("get").is_some(), "{c} kept");
    }
    let other = ActorKey::parse("dev/counter/other").expect("key");
    assert_eq!(
        h.store.subscribers(&other, None).await.expect("query").connections,
        vec![b.clone()]
    );
}

/// A retryable store failure while fanning out one actor's change reports exactly that
/// record in `batch_item_failures`; other actors' records in the batch are delivered.
#[tokio::test]
async fn retryable_store_failure_reports_exactly_that_record() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let sender = Arc::new(RecordingSender::new());
    let failing = ActorKey::parse("dev/counter/flaky").expect("key");
    let store = Arc::new(FailingReads {
        inner: h.store.clone(),
        fails: move |actor: &ActorKey, _: Option<&SubscriberCursor>| actor == &failing,
    });
    let fanout = h.fanout_service_with(store, sender.clone());
    let c = connect(&h, "watcher").await;
    subscribe(&h, &c, "counter/fine").await;
    subscribe(&h, &c, "counter/flaky").await;

    call(&h, &c, "counter/fine", "increment").await;
    call(&h, &c, "counter/flaky", "increment").await;
    call(&h, &c, "counter/fine", "increment").await;
    let event = stream.next_event().await;
    let flaky_sequence = event.records[1]
        .change
        .sequence_number
        .clone()
        .expect("sequence number");

    let response = statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("handler");
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![Some(flaky_sequence)]);
    let versions: Vec<_> = sender
        .frames_to(&c)
        .iter()
        .map(|f| (f["actor"].clone(), f["version"].clone(), f["to"].clone()))
        .collect();
    // Both changes of the healthy actor delivered, coalesced into one frame up to version 2.
    assert_eq!(versions.len(), 1, "{versions:?}");
    let (actor, version, to) = &versions[0];
    assert_eq!(actor, "counter/fine");
    assert!(version == 2 || to == 2, "{versions:?}");
}

/// Subscribers are read page by page: with pages of 3, all 10 subscribers get the change
/// exactly once.
#[tokio::test]
async fn subscribers_are_read_page_by_page_and_each_gets_one_frame() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let sender = Arc::new(RecordingSender::new());
    let small_pages =
        Arc::new(statecast::dynamo::DynamoStore::new(h.dynamo.clone(), h.tables.clone()).with_page_size(3));
    let fanout = h.fanout_service_with(small_pages, sender.clone());
    let mut connections = Vec::new();
    for i in 0..10 {
        let c = connect(&h, &format!("sub-{i:02}")).await;
        subscribe(&h, &c, "counter/paged").await;
        connections.push(c);
    }
    call(&h, &connections[0], "counter/paged", "increment").await;
    let response = statecast_fanout::handler(&fanout, lambda_event(stream.next_event().await))
        .await
        .expect("handler");
    assert!(response.batch_item_failures.is_empty());
    for c in &connections {
        assert_eq!(sender.frames_to(c).len(), 1, "{c}");
    }
    assert_eq!(sender.sent().len(), 10);
}
