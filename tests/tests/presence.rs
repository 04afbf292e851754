//! Presence through local mode, over real WebSockets: members see each other's metadata and
//! updates, and every way of leaving — an abrupt close, `unsubscribe`, a lost `$disconnect`
//! found by the next post's 410 — converges every remaining member's list to the truth.

use std::time::Duration;

use serde_json::{json, Value};
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ConnectionStore, SubscriptionStore};
use statecast_local::gateway::ConnectionsTransport;
use statecast_local::{LocalOptions, LocalStack};
use statecast_tests::local::{start_local, store};
use statecast_tests::presence_view::PresenceView;
use statecast_tests::ws_client::WsClient;

const ROOM: &str = "todo/room";

/// A client that joined `ROOM` as `name`, with its view of the members.
struct Member {
    name: &'static str,
    client: WsClient,
    view: PresenceView,
    member_id: String,
}

async fn join(stack: &LocalStack, name: &'static str) -> Member {
    let mut client = WsClient::connect(&stack.ws_url).await;
    let mut early = Vec::new();
    let reply = client
        .request(
            json!({"action":"subscribe","id":"join","actor":ROOM,"presence":{"name":name}}),
            &mut early,
        )
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let member_id = reply["memberId"]
        .as_str()
        .expect("a joiner gets its member id")
        .to_owned();
    let mut view = PresenceView::from_reply(&reply);
    for frame in &early {
        view.apply(frame);
    }
    let own = view.member_named(name).expect("the list includes the joiner");
    assert_eq!(
        (own["id"].as_str(), own["rev"].as_u64()),
        (Some(member_id.as_str()), Some(1))
    );
    Member {
        name,
        client,
        view,
        member_id,
    }
}

/// Waits until the gateway holds `count` connections (a closed socket leaves it once its
/// `$disconnect`, or the loss of it, is done).
async fn until_connections(stack: &LocalStack, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stack.connection_count() != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connections",
            stack.connection_count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_converge_whichever_way_the_others_leave() {
    members_converge_with(ConnectionsTransport::InProcess).await;
}

/// The same with every post made by the AWS SDK over HTTP, as deployed (a lost `$disconnect`
/// then surfaces as a `GoneException`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_converge_when_posting_over_http() {
    members_converge_with(ConnectionsTransport::Http).await;
}

async fn members_converge_with(transport: ConnectionsTransport) {
    let stack = start_local(LocalOptions {
        connections_transport: transport,
        ..LocalOptions::default()
    })
    .await;
    let all = ["ann", "bob", "cat", "dan", "eve"];
    let mut members = Vec::new();
    for name in all {
        members.push(join(&stack, name).await);
    }
    for member in &mut members {
        member.view.until_names(&mut member.client, &all).await;
        let bob = member.view.member_named("bob").expect("bob");
        assert_eq!(
            bob["presence"],
            json!({"name": "bob"}),
            "{} sees bob's metadata",
            member.name
        );
    }

    // An update reaches the others with the next rev; the updater gets it in its reply.
    let [ann, bob, cat, dan, eve] = <[Member; 5]>::try_from(members).ok().expect("five");
    let (mut ann, mut bob) = (ann, bob);
    let update = json!({"action":"presence.update","id":"u","actor":ROOM,"presence":{"name":"bob","typing":true}});
    let reply = bob.client.request(update, &mut Vec::new()).await;
    assert_eq!(
        (
            reply["type"].as_str(),
            reply["recipients"].as_u64(),
            reply["member"]["rev"].as_u64()
        ),
        (Some("sent"), Some(4), Some(2)),
        "{reply}"
    );
    loop {
        let frame = ann.client.frame().await;
        ann.view.apply(&frame);
        if frame["event"] == "update" {
            assert_eq!(frame["member"]["presence"], json!({"name":"bob","typing":true}));
            assert_eq!(frame["member"]["id"], json!(bob.member_id));
            break;
        }
    }

    // cat vanishes without a close frame: the gateway runs its `$disconnect`.
    drop(cat);
    // dan unsubscribes.
    let mut dan = dan;
    let reply = dan
        .client
        .request(json!({"action":"unsubscribe","id":"bye","actor":ROOM}), &mut Vec::new())
        .await;
    assert_eq!(reply["type"], "unsubscribed");
    // eve's `$disconnect` is lost: only the next post to her (a 410) tells the backend.
    let eve_connection = ann.view.member_named("eve").expect("eve")["connection"]
        .as_str()
        .expect("connection")
        .to_owned();
    stack.lose_disconnect_of(&eve_connection);
    drop(eve);
    until_connections(&stack, 3).await;
    ann.view.until_names(&mut ann.client, &["ann", "bob", "eve"]).await;

    // Any post finds her gone; ann's broadcast is one. (Eve's leave is posted while the
    // broadcast is handled, so it may come before the reply.)
    let mut early = Vec::new();
    let reply = ann
        .client
        .request(
            json!({"action":"broadcast","id":"b","actor":ROOM,"event":"wave","excludeSelf":true}),
            &mut early,
        )
        .await;
    assert_eq!(reply["type"], "sent", "{reply}");
    for frame in &early {
        ann.view.apply(frame);
    }
    ann.view.until_names(&mut ann.client, &["ann", "bob"]).await;
    bob.view.until_names(&mut bob.client, &["ann", "bob"]).await;

    // The store agrees: two subscribers left, eve's connection removed.
    let store = store(&stack);
    let room = ActorKey::parse(&format!("dev/{ROOM}")).expect("key");
    let page = store.subscribers(&room, None).await.expect("query");
    assert_eq!((page.connections.len(), page.members.len()), (2, 2), "{page:?}");
    let eve = ConnectionId::new(eve_connection).expect("id");
    assert_eq!(store.get_connection(&eve).await.expect("get"), None);
    drop((ann, bob, dan));
    stack.shutdown().await;
}

/// A subscriber that asks for the members gets the list without joining it, then follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_lists_members_without_joining() {
    let stack = start_local(LocalOptions::default()).await;
    let mut ann = join(&stack, "ann").await;
    let mut watcher = WsClient::connect(&stack.ws_url).await;
    let reply = watcher
        .request(
            json!({"action":"subscribe","id":1,"actor":ROOM,"members":true}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(reply.get("memberId"), None, "{reply}");
    let mut view = PresenceView::from_reply(&reply);
    assert_eq!(view.names(), ["ann".to_owned()].into());
    let bob = join(&stack, "bob").await;
    view.until_names(&mut watcher, &["ann", "bob"]).await;
    ann.view.until_names(&mut ann.client, &["ann", "bob"]).await;
    assert!(
        ann.view.member_named("watcher").is_none() && ann.view.names().len() == 2,
        "the watcher is not a member"
    );
    drop((ann, bob, watcher));
    stack.shutdown().await;
}

/// Broadcasts go to every subscriber once (the sender too unless it opts out), write nothing,
/// and are refused to a connection that is not subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_each_subscriber_once_and_store_nothing() {
    let stack = start_local(LocalOptions::default()).await;
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut client = WsClient::connect(&stack.ws_url).await;
        let reply = client
            .request(
                json!({"action":"subscribe","id":"s","actor":"counter/b"}),
                &mut Vec::new(),
            )
            .await;
        assert_eq!(reply["type"], "subscribed");
        subscribers.push(client);
    }
    let result = subscribers[0]
        .request(
            json!({"action":"call","id":"c","actor":"counter/b","method":"increment"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(result["version"], 1);
    for client in &mut subscribers {
        let change = next_change(client).await;
        assert!(change["to"] == 1 || change["version"] == 1, "{change}");
    }

    let broadcast = |n: u64, exclude: bool| json!({"action":"broadcast","id":n,"actor":"counter/b","event":"cursor","payload":{"n":n},"excludeSelf":exclude});
    let mut before_reply = Vec::new();
    let reply = subscribers[0].request(broadcast(1, false), &mut before_reply).await;
    assert_eq!(
        (reply["type"].as_str(), reply["recipients"].as_u64()),
        (Some("sent"), Some(3))
    );
    // The sender's own copy is posted before its reply.
    assert_eq!(before_reply.len(), 1, "{before_reply:?}");
    let reply = subscribers[0].request(broadcast(2, true), &mut before_reply).await;
    assert_eq!(reply["recipients"], 2);
    assert_eq!(
        before_reply.len(),
        1,
        "no copy of an excludeSelf broadcast: {before_reply:?}"
    );

    let mut outsider = WsClient::connect(&stack.ws_url).await;
    let refused = outsider.request(broadcast(3, false), &mut Vec::new()).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );

    // Each subscriber has exactly 1 and 2 (the sender: 1), then its pong: nothing from the outsider.
    for (i, client) in subscribers.iter_mut().enumerate() {
        let mut seen = if i == 0 { before_reply.clone() } else { Vec::new() };
        let pong = client.request(json!({"action":"ping","id":"p"}), &mut seen).await;
        assert_eq!(pong["type"], "pong");
        let got: Vec<&Value> = seen.iter().map(|f| &f["payload"]["n"]).collect();
        let expected: Vec<Value> = if i == 0 {
            vec![json!(1)]
        } else {
            vec![json!(1), json!(2)]
        };
        assert_eq!(got, expected.iter().collect::<Vec<_>>(), "subscriber {i}: {seen:?}");
        assert!(seen
            .iter()
            .all(|f| f["type"] == "broadcast" && f["actor"] == "counter/b" && f["event"] == "cursor"));
    }

    // Nothing was written: the actor is still at version 1 and the next call makes 2.
    let next = subscribers[1]
        .request(
            json!({"action":"call","id":"c2","actor":"counter/b","method":"increment"}),
            &mut Vec::new(),
        )
        .await;
    assert_eq!(next["version"], 2, "{next}");
    drop((subscribers, outsider));
    stack.shutdown().await;
}

/// The next delta or snapshot, skipping other frames.
async fn next_change(client: &mut WsClient) -> Value {
    loop {
        let frame = client.frame().await;
        if frame["type"] == "delta" || frame["type"] == "snapshot" {
            return frame;
        }
    }
}
