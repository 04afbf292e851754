//! Hostile input found by black-box tests, answered with typed errors before anything reaches
//! a key or leaves over a limit: unchecked workflow ids, replies over the 128 KB message
//! limit, and arguments that are not an object.

use serde_json::{json, Value};
use statecast::ids::{ActorKey, Version};
use statecast::ports::{ActorStore, ActorWrite};
use statecast::records::{now_millis, ActorRecord};
use statecast_tests::Harness;

async fn frame(h: &Harness, connection: &str, body: Value) -> Value {
    let connection = statecast_tests::connection(connection);
    let reply = h
        .message_service()
        .handle_frame(&connection, &body.to_string(), "req-7")
        .await;
    serde_json::from_str(&reply.expect("a route response")).expect("a JSON reply")
}

fn assert_bad_request_naming(reply: &Value, field: &str) {
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "bad_request", "{reply}");
    let message = reply["message"].as_str().expect("message");
    assert!(message.contains(field), "{message:?} names {field}");
}

/// An empty or 2,100-byte `workflowId` (or one with a slash) is `bad_request` naming the
/// field for every workflow message, never a DynamoDB ValidationException (`internal`).
#[tokio::test]
async fn workflow_ids_are_checked_before_they_reach_a_key() {
    let h = Harness::start().await;
    h.connect("c1", None).await;
    let long = "w".repeat(2_100);
    for id in ["", long.as_str(), "a/b", "sp ace"] {
        for action in ["workflow.status", "workflow.cancel"] {
            let reply = frame(&h, "c1", json!({"action": action, "id": 1, "workflowId": id})).await;
            assert_bad_request_naming(&reply, "`workflowId`");
            assert_eq!(reply["id"], 1);
        }
        let start = json!({"action":"workflow.start","id":2,"workflow":"order","workflowId":id,
                           "input":{"sku":"A-1","quantity":1,"amount":1}});
        assert_bad_request_naming(&frame(&h, "c1", start).await, "`workflowId`");
    }
    let scan = h
        .dynamo
        .scan()
        .table_name(&h.tables.workflows)
        .send()
        .await
        .expect("scan");
    assert_eq!(scan.count(), 0, "nothing was started");
}

/// A `subscribed` reply over 128 KB is never sent: the client gets `too_large` for its
/// request instead (until states over the limit are sent in parts).
#[tokio::test]
async fn a_reply_over_the_message_limit_becomes_too_large() {
    let h = Harness::start().await;
    h.connect("c1", None).await;
    let key = ActorKey::parse("dev/todo/big").expect("key");
    let items: serde_json::Map<String, Value> = (1..=300)
        .map(|i| (i.to_string(), json!({"title": "t".repeat(490), "done": false})))
        .collect();
    let record = ActorRecord {
        actor_key: key.clone(),
        state: json!({"items": items, "nextId": 300}),
        version: Version(1),
        epoch: statecast::ids::Epoch(1),
        updated_at: now_millis(),
        log: Vec::new(),
        trace: None,
    };
    let write = ActorWrite {
        key: key.clone(),
        expected: Version::NONE,
        record: Some(record),
        with: Vec::new(),
        call: None,
    };
    h.store.write(write).await.expect("a 150 KB state fits in an item");

    let reply = frame(&h, "c1", json!({"action":"subscribe","id":"s","actor":"todo/big"})).await;
    assert_eq!(reply["type"], "error", "{}", &reply.to_string()[..200]);
    assert_eq!(reply["code"], "too_large");
    assert_eq!(reply["id"], "s");
    let call = json!({"action":"call","id":"c","actor":"todo/big","method":"toggle","args":{"id":"1"}});
    assert_eq!(
        frame(&h, "c1", call).await["type"],
        "result",
        "small replies still work"
    );
}

/// `args` that are not an object are refused for every method of the shipped actors, and
/// nothing is written.
#[tokio::test]
async fn array_arguments_are_refused_and_nothing_is_written() {
    let h = Harness::start().await;
    h.connect("c1", None).await;
    for (method, args) in [("increment", json!([5])), ("get", json!([])), ("reset", json!([]))] {
        let reply = frame(
            &h,
            "c1",
            json!({"action":"call","id":3,"actor":"counter/a","method":method,"args":args}),
        )
        .await;
        assert_bad_request_naming(&reply, "`args`");
    }
    let todo = json!({"action":"call","id":4,"actor":"todo/t","method":"add","args":["milk"]});
    assert_bad_request_naming(&frame(&h, "c1", todo).await, "`args`");
    for actor in ["dev/counter/a", "dev/todo/t"] {
        let key = ActorKey::parse(actor).expect("key");
        assert_eq!(h.store.load(&key).await.expect("load"), None, "{actor} untouched");
    }
}
