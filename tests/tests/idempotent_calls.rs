//! Calls with an idempotency key through local mode's real sockets: repeats on the same
//! connection, copies on two connections at once, a retry after a dropped socket, a call that
//! changes nothing, a key reused for another call, and keys that are not keys.

use futures::future::join_all;
use serde_json::{json, Value};
use statecast::ids::ActorKey;
use statecast::ports::ActorStore;
use statecast_local::LocalOptions;
use statecast_tests::local::{start_local, store};
use statecast_tests::ws_client::WsClient;

fn increment(id: String, key: &str) -> Value {
    json!({"action":"call","id":id,"actor":"counter/keys","method":"increment","idempotencyKey":key})
}

/// 16 connections each send 5 keyed increments twice (two copies of each, concurrently), half
/// of the second copies from another connection: the counter counts each key once and every
/// copy gets the first result (value and version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_counts_once_and_every_copy_gets_the_first_result() {
    let stack = start_local(LocalOptions::default()).await;
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(WsClient::connect(&stack.ws_url).await);
    }
    let keys_each = 5;
    // Client i sends its own keys and, for odd keys, a copy of client (i + 1)'s.
    let tasks = clients.into_iter().enumerate().map(|(i, mut client)| async move {
        let mut replies = Vec::new();
        for k in 0..keys_each {
            let own = format!("c{i}-k{k}");
            client.send(increment(format!("{own}-1"), &own)).await;
            client.send(increment(format!("{own}-2"), &own)).await;
            let mut expected = 2;
            if k % 2 == 1 {
                let theirs = format!("c{}-k{k}", (i + 1) % 16);
                client.send(increment(format!("{theirs}-x{i}"), &theirs)).await;
                expected += 1;
            }
            for _ in 0..expected {
                let reply = client.frame().await;
                assert_eq!(reply["type"], "result", "{reply}");
                let key = reply["id"]
                    .as_str()
                    .expect("id")
                    .rsplit_once('-')
                    .expect("key-copy")
                    .0
                    .to_owned();
                replies.push((key, reply["value"].clone(), reply["version"].clone()));
            }
        }
        replies
    });
    let replies: Vec<(String, Value, Value)> = join_all(tasks).await.into_iter().flatten().collect();

    let mut first: std::collections::BTreeMap<String, (Value, Value)> = Default::default();
    for (key, value, version) in &replies {
        let seen = first.entry(key.clone()).or_insert((value.clone(), version.clone()));
        assert_eq!(
            seen,
            &(value.clone(), version.clone()),
            "every copy of {key} got the first result"
        );
    }
    assert_eq!(first.len(), 16 * keys_each);
    let stored = store(&stack)
        .load(&ActorKey::parse("dev/counter/keys").expect("key"))
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(stored.state, json!({"value": 16 * keys_each}), "each key counted once");
    let values: std::collections::BTreeSet<i64> = first.values().map(|(v, _)| v.as_i64().expect("n")).collect();
    assert_eq!(values.len(), 16 * keys_each, "each key got its own increment's value");
    stack.shutdown().await;
}

/// A call whose reply was lost (the socket dropped before it arrived) is retried on a new
/// connection with the same key: the method does not run again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_dropped_socket_gets_the_first_result() {
    let stack = start_local(LocalOptions::default()).await;
    let mut watcher = WsClient::connect(&stack.ws_url).await;
    let subscribed = watcher
        .request(
            json!({"action":"subscribe","id":"s","actor":"counter/keys"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(subscribed["version"], 0);
    let mut lost = WsClient::connect(&stack.ws_url).await;
    lost.send(increment("1".into(), "lost-reply")).await;
    drop(lost);
    // The first copy ran: its change reaches the subscriber.
    let change = watcher.frame().await;
    assert_eq!(
        change["version"].as_u64().or(change["to"].as_u64()),
        Some(1),
        "{change}"
    );

    let mut again = WsClient::connect(&stack.ws_url).await;
    let reply = again
        .request(increment("2".into(), "lost-reply"), &mut Vec::new())
        .await;
    assert_eq!((reply["value"].clone(), reply["version"].clone()), (json!(1), json!(1)));
    let stored = store(&stack)
        .load(&ActorKey::parse("dev/counter/keys").expect("key"))
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(stored.version.0, 1, "the method ran once");
    stack.shutdown().await;
}

/// A keyed call that changes nothing still records its key (a repeat returns the first
/// result even after the state moved on); a key reused for another call is refused; keys
/// that are empty, too long or not strings are `bad_request` naming the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_record_their_key_and_a_reused_or_bad_key_is_refused() {
    let stack = start_local(LocalOptions::default()).await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let call = |id: &str, method: &str, key: Value| json!({"action":"call","id":id,"actor":"counter/r","method":method,"idempotencyKey":key});
    let first = client
        .request(call("1", "increment", json!("inc-1")), &mut Vec::new())
        .await;
    assert_eq!(first["value"], 1);
    let read = client.request(call("2", "get", json!("read-1")), &mut Vec::new()).await;
    assert_eq!((read["value"].clone(), read["version"].clone()), (json!(1), json!(1)));
    client
        .request(call("3", "increment", json!("inc-2")), &mut Vec::new())
        .await;
    let again = client.request(call("4", "get", json!("read-1")), &mut Vec::new()).await;
    assert_eq!(
        (again["value"].clone(), again["version"].clone()),
        (json!(1), json!(1)),
        "the first read's result"
    );

    let reused = client
        .request(call("5", "decrement", json!("inc-1")), &mut Vec::new())
        .await;
    assert_eq!(reused["code"], "conflict", "{reused}");
    assert!(
        reused["message"].as_str().expect("message").contains("inc-1"),
        "{reused}"
    );
    let other_args = client
        .request(
            json!({"action":"call","id":"6","actor":"counter/r","method":"increment","args":{"by":5},"idempotencyKey":"inc-1"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(other_args["code"], "conflict", "{other_args}");

    for key in [json!(""), json!("k".repeat(129)), json!(7), json!({"k": 1})] {
        let reply = client
            .request(call("7", "increment", key.clone()), &mut Vec::new())
            .await;
        assert_eq!(reply["code"], "bad_request", "{key}: {reply}");
        assert!(
            reply["message"].as_str().expect("message").contains("`idempotencyKey`"),
            "{reply}"
        );
    }
    let stored = store(&stack)
        .load(&ActorKey::parse("dev/counter/r").expect("key"))
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(stored.state, json!({"value": 2}), "refused calls changed nothing");
    stack.shutdown().await;
}
