//! The client against local mode in-process: subscriptions converge, errors are typed,
//! filtered subscriptions follow only their paths, and large states arrive in parts.

mod support;

use futures::StreamExt;
use serde_json::{json, Map, Value};
use statecast::dynamo::DynamoStore;
use statecast::ids::{ActorKey, Epoch, Version};
use statecast::ports::{ActorStore, ActorWrite};
use statecast::records::{now_millis, ActorRecord};
use statecast_client::{ClientError, ConnectionState, ErrorCode, SubscribeOptions, UpdateKind};
use support::{at_version, connect, start_local, state_becomes, until, PATIENCE};

/// Two clients subscribed to one actor, both calling it, end up holding the same state: the
/// one the last call produced, reached through snapshots and deltas in version order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscriptions_converge_with_calls() {
    let stack = start_local("converge").await;
    let (alice, bob) = (connect(&stack.ws_url), connect(&stack.ws_url));
    let mut alice_sub = alice.subscribe("todo/shared", SubscribeOptions::default());
    let mut bob_sub = bob.subscribe("todo/shared", SubscribeOptions::default());
    let first = alice_sub.next().await.expect("the first state");
    assert_eq!((first.version, first.kind), (0, UpdateKind::Snapshot));
    assert_eq!(*first.state, json!({"items": {}, "nextId": 0}));
    at_version(&mut bob_sub, 0).await;

    for (i, title) in ["milk", "eggs", "bread", "tea"].iter().enumerate() {
        let caller = if i % 2 == 0 { &alice } else { &bob };
        let added = caller.call("todo/shared", "add", json!({"title": title})).await;
        assert_eq!(added, Ok(json!({"id": (i + 1).to_string()})));
    }
    assert_eq!(
        bob.call("todo/shared", "toggle", json!({"id": "1"})).await,
        Ok(json!({"done": true}))
    );
    assert_eq!(
        alice
            .call("todo/shared", "rename", json!({"id": "2", "title": "oat milk"}))
            .await
            .map(|_| ()),
        Ok(())
    );

    let (mut alice_seen, mut bob_seen) = (Vec::new(), Vec::new());
    let a = until(&mut alice_sub, &mut alice_seen, |u| u.version == 6).await;
    let b = until(&mut bob_sub, &mut bob_seen, |u| u.version == 6).await;
    assert_eq!(a.state, b.state);
    assert_eq!(a.state["items"]["1"], json!({"title": "milk", "done": true}));
    assert_eq!(a.state["items"]["2"]["title"], "oat milk");
    assert_eq!(a.state["nextId"], 4);
    for seen in [&alice_seen, &bob_seen] {
        let versions: Vec<u64> = seen.iter().map(|u| u.version).collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "in order, no duplicates: {versions:?}"
        );
        assert!(
            seen.iter().any(|u| u.kind == UpdateKind::Delta),
            "some changes arrive as deltas"
        );
    }

    // A late second subscription on the same client gets the state held at once.
    let mut late = alice.subscribe("todo/shared", SubscribeOptions::default());
    let now = late.next().await.expect("the held state");
    assert_eq!((now.version, now.state), (6, a.state.clone()));
    stack.shutdown().await;
}

/// The server's error codes come back typed; a refused subscription ends with its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_error_is_typed() {
    let stack = start_local("errors").await;
    let client = connect(&stack.ws_url);
    let code = |result: Result<Value, ClientError>| result.err().and_then(|e| e.code());
    let missing = client.call("todo/errors", "toggle", json!({"id": "9"})).await;
    assert!(
        matches!(&missing, Err(ClientError::Server { code: ErrorCode::NotFound, message }) if message.contains('9')),
        "{missing:?}"
    );
    let unknown = client.call("counter/errors", "explode", Value::Null).await;
    assert_eq!(code(unknown), Some(ErrorCode::NotFound));
    let bad_args = client.call("counter/errors", "increment", json!({"by": "two"})).await;
    assert_eq!(code(bad_args), Some(ErrorCode::BadRequest));
    let foreign = client.call("globex/counter/errors", "get", Value::Null).await;
    assert_eq!(code(foreign), Some(ErrorCode::Forbidden));
    assert_eq!(
        client.call("counter/errors", "increment", json!({"by": 2})).await,
        Ok(json!(2))
    );

    let mut refused = client.subscribe("globex/todo/x", SubscribeOptions::default());
    let ended = tokio::time::timeout(PATIENCE, refused.next()).await.expect("an answer");
    assert_eq!(ended, None);
    assert_eq!(refused.error().and_then(ClientError::code), Some(ErrorCode::Forbidden));

    client.close();
    state_becomes(&client, ConnectionState::Closed).await;
    assert_eq!(
        client.call("counter/errors", "get", Value::Null).await,
        Err(ClientError::Closed)
    );
    stack.shutdown().await;
}

/// A subscription with `paths` holds the projection, and applies a delta whose `from` is the
/// last version that touched its paths while it holds a later one (`from <= v < to`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_subscription_follows_only_its_paths() {
    let stack = start_local("filtered").await;
    let client = connect(&stack.ws_url);
    for title in ["milk", "eggs", "bread"] {
        client
            .call("todo/f", "add", json!({"title": title}))
            .await
            .expect("added");
    }
    let paths = SubscribeOptions {
        paths: Some(vec!["/items/1".into()]),
    };
    let mut filtered = client.subscribe("todo/f", paths);
    let first = at_version(&mut filtered, 3).await;
    assert_eq!(*first.state, json!({"items": {"1": {"title": "milk", "done": false}}}));

    client
        .call("todo/f", "toggle", json!({"id": "2"}))
        .await
        .expect("toggled");
    client
        .call("todo/f", "toggle", json!({"id": "1"}))
        .await
        .expect("toggled");
    let mut seen = Vec::new();
    let last = until(&mut filtered, &mut seen, |u| u.version == 5).await;
    assert_eq!(*last.state, json!({"items": {"1": {"title": "milk", "done": true}}}));
    assert!(
        seen.iter().all(|u| u.version != 4),
        "version 4 does not touch the paths: {seen:?}"
    );
    assert_eq!(last.kind, UpdateKind::Delta);
    stack.shutdown().await;
}

/// A state over the 128 KB message limit, written straight to the store, reaches a
/// subscriber that was there (a snapshot in `part` frames) and one that subscribes after (a
/// `subscribed` reply in parts); after one more change both hold the stored state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_state_arrives_in_parts() {
    let stack = start_local("parts").await;
    let client = connect(&stack.ws_url);
    let mut old = client.subscribe("todo/big", SubscribeOptions::default());
    at_version(&mut old, 0).await;

    let items: Map<String, Value> = (1..=300)
        .map(|i| {
            (
                i.to_string(),
                json!({"title": format!("{i:04} {}", "t".repeat(480)), "done": false}),
            )
        })
        .collect();
    let state = json!({"items": items, "nextId": 300});
    assert!(state.to_string().len() > 140_000);
    let key = ActorKey::parse("dev/todo/big").expect("key");
    let db = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.sdk), stack.tables.clone());
    let write = ActorWrite {
        key: key.clone(),
        expected: Version::NONE,
        record: Some(ActorRecord {
            actor_key: key.clone(),
            state: state.clone(),
            version: Version(1),
            epoch: Epoch(now_millis() as u64),
            updated_at: now_millis(),
            log: Vec::new(),
            trace: None,
        }),
        with: Vec::new(),
        call: None,
    };
    db.write(write).await.expect("written");
    let snapshot = at_version(&mut old, 1).await;
    assert_eq!((&*snapshot.state, snapshot.kind), (&state, UpdateKind::Snapshot));

    let other = connect(&stack.ws_url);
    let mut new = other.subscribe("todo/big", SubscribeOptions::default());
    assert_eq!(*at_version(&mut new, 1).await.state, state);

    other
        .call("todo/big", "toggle", json!({"id": "7"}))
        .await
        .expect("toggled");
    let (old_now, new_now) = (at_version(&mut old, 2).await, at_version(&mut new, 2).await);
    let stored = db.load(&key).await.expect("load").expect("stored");
    assert_eq!(*old_now.state, stored.state);
    assert_eq!(*new_now.state, stored.state);
    assert_eq!(stored.state["items"]["7"]["done"], true);
    stack.shutdown().await;
}
