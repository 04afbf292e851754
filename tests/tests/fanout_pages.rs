//! A spread actor's fan-out in pages: one page per shard of its subscriptions, handed to the
//! page workers through a FIFO queue. A page that cannot read its shard posts nothing, so its
//! retry re-sends to nobody; throttled posts are retried for those subscribers alone; a 410
//! removes that connection only; and each subscriber gets an actor's changes in order while
//! the pages of consecutive changes run in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use statecast::dynamo::DynamoStore;
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ConnectionStore, QueuedPage, SubscriberCursor, SubscriptionStore};
use statecast::protocol::ServerMessage;
use statecast::records::now_millis;
use statecast::service::{PageTask, Settings};
use statecast::testing::RecordingSender;
use statecast_local::gateway::{FaultPlan, LatencyRange};
use statecast_local::LocalOptions;
use statecast_tests::fixtures::lambda_event;
use statecast_tests::local::{start_local, store};
use statecast_tests::pages::CapturedPages;
use statecast_tests::subscribers::{store_subscribers, FailingReads};
use statecast_tests::ws_client::WsClient;
use statecast_tests::Harness;

/// Every subscriber of `key`, over all its shards.
async fn all_subscribers(store: &DynamoStore, key: &ActorKey) -> Vec<ConnectionId> {
    let mut all = Vec::new();
    let mut from = None;
    loop {
        let page = store.subscribers(key, from.as_ref()).await.expect("query");
        all.extend(page.connections);
        from = page.next;
        if from.is_none() {
            return all;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spread_actor_goes_out_in_pages_and_a_page_retry_sends_nobody_the_frame_twice() {
    let h = Harness::start().await;
    let key = ActorKey::parse("dev/counter/wide").expect("key");
    h.store.spread(&key, 4).await.expect("spread");
    let mut stream = h.actor_stream().await;
    let messages = h.message_service();
    let mut subscribers = Vec::new();
    for i in 0..60 {
        let id = h.connect(&format!("wide-{i:03}"), None).await;
        let reply = messages
            .handle(&id, r#"{"action":"subscribe","actor":"counter/wide"}"#, "r")
            .await;
        assert!(matches!(reply, ServerMessage::Subscribed { .. }), "{reply:?}");
        subscribers.push(id);
    }
    // The subscriptions went to the shards their connection ids hash to.
    let mut shards = BTreeSet::new();
    for id in &subscribers {
        let held = h.store.subscriptions_of(id).await.expect("query");
        assert_eq!(held.len(), 1);
        shards.insert(held[0].shard);
    }
    assert_eq!(shards, BTreeSet::from([0, 1, 2, 3]), "all four shards in use");
    assert_eq!(all_subscribers(&h.store, &key).await.len(), 60);

    stream.read_new().await;
    messages
        .handle(
            &subscribers[0],
            r#"{"action":"call","actor":"counter/wide","method":"increment"}"#,
            "r",
        )
        .await;
    let event = stream.next_event().await;

    // The fan-out posts nothing itself: one page per shard, each its own FIFO group.
    let queue = Arc::new(CapturedPages::default());
    let fanout_sender = Arc::new(RecordingSender::new());
    let fanout = h
        .fanout_service_with(h.store.clone(), fanout_sender.clone())
        .with_pages(queue.clone());
    let response = statecast_fanout::handler(&fanout, lambda_event(event.clone()))
        .await
        .expect("handler");
    assert!(response.batch_item_failures.is_empty());
    assert!(fanout_sender.sent().is_empty(), "the workers post, not the fan-out");
    let pages = queue.take();
    let groups: BTreeSet<&str> = pages.iter().map(|p| p.group.as_str()).collect();
    let expected: BTreeSet<String> = (0..4).map(|s| format!("dev/counter/wide#{s}")).collect();
    assert_eq!(groups, expected.iter().map(String::as_str).collect());
    // A retried stream batch queues the same pages under the same deduplication ids.
    statecast_fanout::handler(&fanout, lambda_event(event))
        .await
        .expect("handler");
    let again = queue.take();
    let dedups = |pages: &[QueuedPage]| pages.iter().map(|p| p.dedup.clone()).collect::<Vec<_>>();
    assert_eq!(dedups(&again), dedups(&pages));

    // The workers: pages of 5 subscribers, the second read of shard 2 fails once, every post
    // waits 1 ms and at most 4 are in flight (429 beyond), one connection is gone.
    let gone = subscribers[7].clone();
    let failed = AtomicBool::new(false);
    let failing = Arc::new(FailingReads {
        inner: Arc::new(DynamoStore::new(h.dynamo.clone(), h.tables.clone()).with_page_size(5)),
        // The first read of a later page (after the first) of shard 2, once.
        fails: move |_: &ActorKey, from: Option<&SubscriberCursor>| {
            from.is_some_and(|c| c.shard == 2 && c.after.is_some()) && !failed.swap(true, Ordering::SeqCst)
        },
    });
    let sender = Arc::new(RecordingSender::throttling(Duration::from_millis(1), 4));
    sender.mark_gone(&gone);
    let worker = h.fanout_service_with(failing.clone(), sender.clone());
    let tasks: Vec<PageTask> = pages
        .iter()
        .map(|p| serde_json::from_str(&p.body).expect("a page decodes"))
        .collect();
    let shard_two = tasks.iter().find(|t| t.shard == 2).expect("shard 2").clone();
    let error = worker
        .deliver_page(shard_two.clone())
        .await
        .expect_err("the read fails");
    assert!(error.is_retryable());
    assert!(sender.sent().is_empty(), "a page that fails posts nothing");
    let mut throttled = 0;
    for task in tasks {
        let outcome = worker.deliver_page(task).await.expect("delivered");
        throttled += outcome.throttled;
    }
    assert!(throttled > 0, "the throttle was reached");

    let mut frames: BTreeMap<ConnectionId, Vec<u64>> = BTreeMap::new();
    for (to, frame) in sender.sent() {
        let frame: serde_json::Value = serde_json::from_str(&frame).expect("json");
        assert_eq!(frame["actor"], json!("counter/wide"));
        let version = frame.get("to").or(frame.get("version")).and_then(|v| v.as_u64());
        frames
            .entry(to)
            .or_default()
            .push(version.expect("a delta or a snapshot"));
    }
    assert_eq!(frames.len(), 59, "every live subscriber: {frames:?}");
    assert!(frames.values().all(|v| v == &[1]), "exactly once each: {frames:?}");
    assert!(!frames.contains_key(&gone));
    let left = all_subscribers(&h.store, &key).await;
    assert_eq!(left.len(), 59, "only the gone connection's subscription went");
    assert!(!left.contains(&gone));
    assert_eq!(h.store.get_connection(&gone).await.expect("get"), None);
    assert!(h.store.get_connection(&subscribers[8]).await.expect("get").is_some());

    // Unsubscribing from a spread actor finds the subscription in its shard.
    let leaver = &subscribers[9];
    let reply = messages
        .handle(leaver, r#"{"action":"unsubscribe","actor":"counter/wide"}"#, "r")
        .await;
    assert!(matches!(reply, ServerMessage::Unsubscribed { .. }), "{reply:?}");
    assert!(h.store.subscriptions_of(leaver).await.expect("query").is_empty());
    assert_eq!(all_subscribers(&h.store, &key).await.len(), 58);
}

/// Local mode: an actor past `spread_at` subscribers is spread; from then on its changes go
/// out as pages through the local FIFO queue to the page worker, pages of consecutive changes
/// in parallel across shards. With 1–15 ms per post (so pages finish in any order), every
/// subscriber still sees every change once and in order: no frame arrives ahead of the one
/// before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_pages_keep_each_subscribers_order() {
    let stack = start_local(LocalOptions {
        settings: Settings {
            spread_at: 20,
            spread_shards: 8,
            ..Settings::default()
        },
        connection_faults: FaultPlan {
            latency: Some("1ms..60ms".parse::<LatencyRange>().expect("range")),
            seed: 7,
            ..FaultPlan::default()
        },
        ..LocalOptions::default()
    })
    .await;
    let db = store(&stack);
    let actor = "counter/ordered";
    let key = ActorKey::parse(&format!("dev/{actor}")).expect("key");
    let expires_at = now_millis() / 1000 + 3600;
    let early = stack.open_virtual(30);
    store_subscribers(&db, &key, &early.ids, expires_at).await;

    let mut caller = WsClient::connect(&stack.ws_url).await;
    let call = |n: u64| json!({"action":"call","id":n,"actor":actor,"method":"increment"});
    let reply = caller.request(call(1), &mut Vec::new()).await;
    assert_eq!(reply["version"], 1, "{reply}");
    assert_eq!(early.tally.wait_for(1, 30, Duration::from_secs(60)).await, 30);
    // 30 > 20 read in one partition: the fan-out spread the actor.
    let first = db.subscribers(&key, None).await.expect("query");
    assert_eq!(first.shards, 8);

    let late = stack.open_virtual(150);
    store_subscribers(&db, &key, &late.ids, expires_at).await;
    let changes = 40;
    for n in 2..=changes {
        let reply = caller.request(call(n), &mut Vec::new()).await;
        assert_eq!(reply["version"], n, "{reply}");
    }
    assert_eq!(late.tally.wait_for(changes, 150, Duration::from_secs(120)).await, 150);
    assert_eq!(early.tally.wait_for(changes, 30, Duration::from_secs(120)).await, 30);
    for (who, tally) in [("early", &early.tally), ("late", &late.tally)] {
        assert_eq!(
            tally.gaps.load(Ordering::Relaxed),
            0,
            "{who}: a frame came ahead of its predecessor"
        );
        assert_eq!(tally.duplicates.load(Ordering::Relaxed), 0, "{who}: a frame came twice");
    }
    let counts = stack.pages.counts().borrow().clone();
    assert!(counts.sent >= 8, "the changes went out as pages: {counts:?}");
    assert_eq!(counts.dead, 0, "{counts:?}");
    stack.shutdown().await;
}
