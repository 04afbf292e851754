//! The fan-out against a throttling `@connections`: posts answered 429 are tried again at a
//! lower concurrency for those subscribers alone, so the batch never fails, every live
//! subscriber gets the change exactly once, and a 410 removes that connection only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use statecast::dynamo::DynamoStore;
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ConnectionStore, SubscriptionStore};
use statecast::testing::RecordingSender;
use statecast_tests::fixtures::lambda_event;
use statecast_tests::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_fan_out_reaches_everyone_once_and_a_410_removes_only_that_connection() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let messages = h.message_service();
    let mut subscribers = Vec::new();
    for i in 0..240 {
        let id = h.connect(&format!("hot-{i:03}"), None).await;
        let reply = messages
            .handle(&id, r#"{"action":"subscribe","actor":"counter/hot"}"#, "r")
            .await;
        assert!(matches!(reply, statecast::protocol::ServerMessage::Subscribed { .. }));
        subscribers.push(id);
    }
    let gone = subscribers[17].clone();
    stream.read_new().await;
    messages
        .handle(
            &subscribers[0],
            r#"{"action":"call","actor":"counter/hot","method":"increment"}"#,
            "r",
        )
        .await;
    let event = stream.next_event().await;

    // 1 ms per post and at most 8 in flight: the fan-out starts at 32 and must come down.
    let sender = Arc::new(RecordingSender::throttling(Duration::from_millis(1), 8));
    sender.mark_gone(&gone);
    // Pages of 50, so the 240 subscribers take five reads.
    let paged = Arc::new(DynamoStore::new(h.dynamo.clone(), h.tables.clone()).with_page_size(50));
    let fanout = h.fanout_service_with(paged, sender.clone());
    let response = statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("handler");
    assert!(response.batch_item_failures.is_empty(), "the batch never fails on 429s");
    assert!(sender.throttled() > 0, "the throttle was reached");

    let mut frames: BTreeMap<ConnectionId, usize> = BTreeMap::new();
    for (to, frame) in sender.sent() {
        let frame: serde_json::Value = serde_json::from_str(&frame).expect("json");
        assert_eq!(frame["actor"], json!("counter/hot"));
        *frames.entry(to).or_default() += 1;
    }
    assert_eq!(frames.len(), 239, "every live subscriber");
    assert!(frames.values().all(|n| *n == 1), "exactly once each");
    assert!(!frames.contains_key(&gone));

    let key = ActorKey::parse("dev/counter/hot").expect("key");
    let mut left = Vec::new();
    let mut after = None;
    loop {
        let page = h.store.subscribers(&key, after.as_ref()).await.expect("query");
        left.extend(page.connections);
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(left.len(), 239, "only the gone connection's subscription went");
    assert!(!left.contains(&gone));
    assert_eq!(h.store.get_connection(&gone).await.expect("get"), None);
    assert!(h.store.get_connection(&subscribers[18]).await.expect("get").is_some());
}
