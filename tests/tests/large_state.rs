//! States up to DynamoDB's item limit reach every subscriber through local mode's real
//! 128 KB message limit: the `subscribed` reply and the fan-out's snapshot go out in ordered
//! parts that the client joins.

use serde_json::{json, Map, Value};
use statecast::ids::{ActorKey, Epoch, Version};
use statecast::ports::{ActorStore, ActorWrite};
use statecast::protocol::MAX_MESSAGE_BYTES;
use statecast::records::{now_millis, ActorRecord};
use statecast_local::LocalOptions;
use statecast_tests::local::{start_local, store};
use statecast_tests::parts::Reassembler;
use statecast_tests::ws_client::WsClient;

/// The next whole frame, joining parts.
async fn whole(client: &mut WsClient, parts: &mut Reassembler, sizes: &mut Vec<usize>) -> Value {
    loop {
        let frame = client.frame().await;
        sizes.push(frame.to_string().len());
        if let Some(whole) = parts.feed(frame) {
            return whole;
        }
    }
}

/// A ~340 KB todo state written at once reaches a subscriber that was there before (as a
/// snapshot in parts) and one that subscribes after (a `subscribed` reply in parts); after
/// one more change both hold exactly the stored state, and no message was over 128 KB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_340_kb_state_reaches_old_and_new_subscribers_in_parts() {
    let stack = start_local(LocalOptions::default()).await;
    let mut old = WsClient::connect(&stack.ws_url).await;
    let subscribed = old
        .request(
            json!({"action":"subscribe","id":"old","actor":"todo/huge"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(subscribed["version"], 0);

    let items: Map<String, Value> = (1..=660)
        .map(|i| {
            (
                i.to_string(),
                json!({"title": format!("{i:04} {}", "t".repeat(490)), "done": false}),
            )
        })
        .collect();
    let state = json!({"items": items, "nextId": 660});
    let size = state.to_string().len();
    assert!((300_000..350_000).contains(&size), "{size} bytes");
    let key = ActorKey::parse("dev/todo/huge").expect("key");
    let db = store(&stack);
    db.write(ActorWrite {
        key: key.clone(),
        expected: Version::NONE,
        record: Some(ActorRecord {
            actor_key: key.clone(),
            state,
            version: Version(1),
            epoch: Epoch(now_millis() as u64),
            updated_at: now_millis(),
            log: Vec::new(),
            trace: None,
        }),
        with: Vec::new(),
        call: None,
    })
    .await
    .expect("a 340 KB state fits in an item");

    let (mut old_parts, mut new_parts, mut sizes) = (Reassembler::default(), Reassembler::default(), Vec::new());
    let snapshot = whole(&mut old, &mut old_parts, &mut sizes).await;
    assert_eq!(snapshot["type"], "snapshot");
    let mut old_state = snapshot["state"].clone();
    assert!(sizes.len() >= 3, "sent in {} parts", sizes.len());

    let mut new = WsClient::connect(&stack.ws_url).await;
    new.send(json!({"action":"subscribe","id":"new","actor":"todo/huge"}))
        .await;
    let reply = whole(&mut new, &mut new_parts, &mut sizes).await;
    assert_eq!(
        (reply["type"].clone(), reply["id"].clone()),
        (json!("subscribed"), json!("new"))
    );
    let mut new_state = reply["state"].clone();

    let add = json!({"action":"call","id":"add","actor":"todo/huge","method":"add","args":{"title":"one more"}});
    let mut other = Vec::new();
    let result = new.request(add, &mut other).await;
    assert_eq!(result["version"], 2, "{result}");
    // `new` may have got its delta before the result; `old` reads its own.
    let new_change = match other.pop() {
        Some(change) => change,
        None => whole(&mut new, &mut new_parts, &mut sizes).await,
    };
    let old_change = whole(&mut old, &mut old_parts, &mut sizes).await;
    for (change, held) in [(new_change, &mut new_state), (old_change, &mut old_state)] {
        assert_eq!(
            (change["type"].clone(), change["from"].clone()),
            (json!("delta"), json!(1)),
            "{change}"
        );
        let patch = serde_json::from_value(change["patch"].clone()).expect("patch");
        statecast::delta::apply(held, &patch).expect("applies");
    }
    let stored = db.load(&key).await.expect("load").expect("stored");
    assert_eq!(old_state, stored.state, "the old subscriber holds the stored state");
    assert_eq!(new_state, stored.state, "the new subscriber holds the stored state");
    assert!(
        sizes.iter().all(|s| *s <= MAX_MESSAGE_BYTES),
        "no message over the limit: {sizes:?}"
    );
    stack.shutdown().await;
}
