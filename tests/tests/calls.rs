//! Actor calls under contention and across tenants, against the embedded engine.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::{json, Value};
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ActorStore, SubscriptionStore};
use statecast::protocol::{ErrorCode, ServerMessage};
use statecast_tests::Harness;

async fn connect(h: &Harness, id: &str, tenant: &str) -> ConnectionId {
    h.connect(id, Some(tenant)).await
}

fn increment() -> String {
    json!({"action":"call","actor":"counter/hits","method":"increment"}).to_string()
}

/// 16 concurrent callers × 50 increments on one counter through one `$default` service (one
/// process, as local mode): calls to one actor take turns, so no caller ever sees `conflict`;
/// exactly 800, no lost update, one stream record per version 1..=800 with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_in_one_process_never_conflict_nor_get_lost() {
    let conflicts = concurrent_increments_are_never_lost(1).await;
    assert_eq!(conflicts, 0, "no caller saw `conflict`");
}

/// The same over 4 services, as over 4 Lambda containers: only the version check orders the
/// writers (a caller that gets `conflict` after the retry budget retries, as a client does);
/// still exactly 800 with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_across_containers_are_never_lost_and_versions_have_no_gaps() {
    concurrent_increments_are_never_lost(4).await;
}

/// Runs the increments over `containers` services; returns how many calls answered `conflict`.
async fn concurrent_increments_are_never_lost(containers: usize) -> u32 {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let callers = 16;
    let calls_each = 50;
    let mut connections = Vec::new();
    for i in 0..callers {
        connections.push(connect(&h, &format!("caller-{i}"), "acme").await);
    }
    let containers: Vec<_> = (0..containers)
        .map(|_| std::sync::Arc::new(h.message_service()))
        .collect();
    let tasks = connections.into_iter().enumerate().map(|(i, connection)| {
        let service = containers[i % containers.len()].clone();
        tokio::spawn(async move {
            let mut versions = Vec::new();
            let mut conflicts = 0;
            while versions.len() < calls_each {
                match service.handle(&connection, &increment(), "req").await {
                    ServerMessage::Result { version, .. } => versions.push(version.0),
                    // A client retries a call that lost every attempt at the version check.
                    ServerMessage::Error {
                        code: ErrorCode::Conflict,
                        ..
                    } => conflicts += 1,
                    other => panic!("unexpected reply {other:?}"),
                }
            }
            (versions, conflicts)
        })
    });
    let results: Vec<(Vec<u64>, u32)> = join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();

    let versions: BTreeSet<u64> = results.iter().flat_map(|(v, _)| v.iter().copied()).collect();
    assert_eq!(versions.len(), 800, "every successful call produced its own version");
    let key = ActorKey::parse("acme/counter/hits").expect("key");
    let stored = h.store.load(&key).await.expect("load").expect("stored");
    assert_eq!(stored.state, json!({"value": 800}));
    assert_eq!(stored.version.0, 800);

    let records = stream.read_new().await;
    let chain: Vec<(u64, u64)> = records
        .iter()
        .map(|r| {
            let version = |image: &serde_dynamo::Item| -> u64 {
                let v: Value = serde_dynamo::from_item(image.clone()).expect("image");
                v["version"].as_u64().unwrap_or(0)
            };
            (version(&r.change.old_image), version(&r.change.new_image))
        })
        .collect();
    assert_eq!(chain.len(), 800);
    for (i, (from, to)) in chain.iter().enumerate() {
        assert_eq!((*from, *to), (i as u64, i as u64 + 1), "record {i} continues the chain");
    }
    results.iter().map(|(_, c)| c).sum()
}

/// A connection of tenant A can neither subscribe to nor call an actor of tenant B, and the
/// refused requests store nothing.
#[tokio::test]
async fn cross_tenant_actor_keys_are_refused_and_store_nothing() {
    let h = Harness::start().await;
    let mallory = connect(&h, "mallory", "tenant-a").await;
    let service = h.message_service();
    for frame in [
        json!({"action":"subscribe","id":1,"actor":"tenant-b/todo/secret"}),
        json!({"action":"call","id":2,"actor":"tenant-b/todo/secret","method":"add","args":{"title":"pwned"}}),
        json!({"action":"unsubscribe","id":3,"actor":"tenant-b/todo/secret"}),
    ] {
        let reply = service.handle(&mallory, &frame.to_string(), "req").await;
        let ServerMessage::Error { code, id, message, .. } = reply else {
            panic!("expected an error, got {reply:?}")
        };
        assert_eq!(code, ErrorCode::Forbidden, "{message}");
        assert_eq!(id, serde_json::from_value(frame["id"].clone()).expect("id"));
    }
    let victim = ActorKey::parse("tenant-b/todo/secret").expect("key");
    assert_eq!(h.store.load(&victim).await.expect("load"), None);
    assert!(h
        .store
        .subscribers(&victim, None)
        .await
        .expect("query")
        .connections
        .is_empty());
    assert!(h.store.subscriptions_of(&mallory).await.expect("query").is_empty());

    // Naming its own tenant explicitly is allowed and lands in its own namespace.
    let own = json!({"action":"call","actor":"tenant-a/todo/mine","method":"add","args":{"title":"ok"}});
    assert!(matches!(
        service.handle(&mallory, &own.to_string(), "req").await,
        ServerMessage::Result { .. }
    ));
    let mine = ActorKey::parse("tenant-a/todo/mine").expect("key");
    assert!(h.store.load(&mine).await.expect("load").is_some());
}

/// A method that changes nothing writes nothing: no version bump, no stream record.
#[tokio::test]
async fn read_only_calls_do_not_write() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let c = connect(&h, "reader", "acme").await;
    let service = h.message_service();
    let get = json!({"action":"call","id":"g","actor":"counter/x","method":"get"}).to_string();
    let ServerMessage::Result { value, version, .. } = service.handle(&c, &get, "req").await else {
        panic!("result")
    };
    assert_eq!((value, version.0), (json!(0), 0));
    assert!(stream.read_new().await.is_empty());
    let key = ActorKey::parse("acme/counter/x").expect("key");
    assert_eq!(h.store.load(&key).await.expect("load"), None);
}

/// A state over the size limit is refused with `too_large` and the stored state is unchanged.
#[tokio::test]
async fn oversized_state_is_refused_without_touching_the_stored_state() {
    let mut h = Harness::start().await;
    h.settings.max_state_bytes = 2_000;
    let c = connect(&h, "writer", "acme").await;
    let service = h.message_service();
    let add =
        |title: String| json!({"action":"call","actor":"todo/big","method":"add","args":{"title":title}}).to_string();
    let mut last_ok = None;
    let mut refused = None;
    for _ in 0..20 {
        match service.handle(&c, &add("x".repeat(400)), "req").await {
            ServerMessage::Result { version, .. } => last_ok = Some(version),
            ServerMessage::Error { code, .. } => {
                refused = Some(code);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused, Some(ErrorCode::TooLarge));
    let stored = h
        .store
        .load(&ActorKey::parse("acme/todo/big").expect("key"))
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(Some(stored.version), last_ok);
}
