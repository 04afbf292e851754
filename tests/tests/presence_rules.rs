//! The rules around presence and broadcast, through the `$default` service on the DynamoDB
//! engine: the per-connection rate limit holds across Lambda instances, payload limits,
//! tenants never see each other's rooms, and refused requests store nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::SubscriptionStore;
use statecast::service::{MessageService, RateLimit};
use statecast::testing::RecordingSender;
use statecast_tests::Harness;

/// A `$default` service posting through `sender` (one per simulated Lambda instance).
fn instance(h: &Harness, sender: &Arc<RecordingSender>) -> MessageService {
    h.services().with_sender(sender.clone()).message()
}

async fn send(service: &MessageService, connection: &ConnectionId, frame: Value) -> Value {
    let reply = service.handle(connection, &frame.to_string(), "req-1").await;
    serde_json::to_value(reply).expect("json")
}

async fn subscribe(service: &MessageService, connection: &ConnectionId, actor: &str, presence: Option<Value>) -> Value {
    let mut frame = json!({"action":"subscribe","id":"s","actor":actor});
    if let Some(presence) = presence {
        frame["presence"] = presence;
    }
    let reply = send(service, connection, frame).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    reply
}

/// A burst of broadcasts from one connection, spread over two Lambda instances and sent
/// concurrently, is admitted up to the limit and no further; the rest get `rate_limited`
/// with a retry hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_under_a_concurrent_burst_across_instances() {
    let mut h = Harness::start().await;
    let limit = RateLimit {
        max: 5,
        window: Duration::from_secs(3600),
    };
    h.settings.broadcast_rate = limit;
    let sender = Arc::new(RecordingSender::new());
    let (a, b) = (instance(&h, &sender), instance(&h, &sender));
    let me = h.connect("burster", None).await;
    subscribe(&a, &me, "counter/r", None).await;

    let window_before = limit.window_at(statecast::records::now_millis()).0;
    let burst = (0..30).map(|n| {
        let service = if n % 2 == 0 { &a } else { &b };
        let frame = json!({"action":"broadcast","id":n,"actor":"counter/r","event":"tick","payload":n});
        send(service, &me, frame)
    });
    let replies = join_all(burst).await;
    let window_after = limit.window_at(statecast::records::now_millis()).0;

    let accepted = replies.iter().filter(|r| r["type"] == "sent").count();
    let refused: Vec<&Value> = replies.iter().filter(|r| r["code"] == "rate_limited").collect();
    assert_eq!(
        accepted + refused.len(),
        30,
        "every reply is one or the other: {replies:?}"
    );
    // An hour's window: the burst falls in one (or, once an hour, straddles two).
    let windows = (window_after - window_before + 1) as usize;
    assert!(
        accepted >= limit.max as usize && accepted <= limit.max as usize * windows,
        "{accepted} admitted over {windows} window(s)"
    );
    for r in &refused {
        let hint = r["retryAfterMs"].as_u64().expect("a retry hint");
        assert!(hint > 0 && hint <= 3_600_000, "{r}");
    }
    assert_eq!(
        sender.frames_to(&me).len(),
        accepted,
        "each admitted broadcast posted once"
    );
}

/// Oversized presence or payloads are `too_large`, an update without a join is `forbidden`,
/// and none of them stores or posts anything.
#[tokio::test]
async fn limits_and_refusals_store_and_post_nothing() {
    let h = Harness::start().await;
    let sender = Arc::new(RecordingSender::new());
    let service = instance(&h, &sender);
    let (me, other) = (h.connect("me", None).await, h.connect("other", None).await);
    subscribe(&service, &other, "todo/l", Some(json!({"name":"other"}))).await;
    sender.clear();
    let room = ActorKey::parse("dev/todo/l").expect("key");

    let too_big = json!({"name": "x".repeat(1100)});
    for frame in [
        json!({"action":"subscribe","id":1,"actor":"todo/l","presence":too_big}),
        json!({"action":"broadcast","id":2,"actor":"todo/l","event":"e","payload":"y".repeat(33 * 1024)}),
    ] {
        let reply = send(&service, &me, frame.clone()).await;
        assert_eq!(reply["code"], "too_large", "{frame}: {reply}");
    }
    let reply = send(
        &service,
        &me,
        json!({"action":"presence.update","id":3,"actor":"todo/l","presence":{}}),
    )
    .await;
    assert_eq!(reply["code"], "forbidden", "{reply}");
    let page = h.store.subscribers(&room, None).await.expect("query");
    assert_eq!(page.connections, vec![other.clone()], "only `other` is subscribed");
    assert!(sender.sent().is_empty(), "nothing posted: {:?}", sender.sent());

    // Subscribed without presence, `me` still cannot update (it never joined).
    subscribe(&service, &me, "todo/l", None).await;
    let reply = send(
        &service,
        &me,
        json!({"action":"presence.update","id":4,"actor":"todo/l","presence":{"a":1}}),
    )
    .await;
    assert_eq!(reply["code"], "forbidden", "{reply}");
    let page = h.store.subscribers(&room, None).await.expect("query");
    assert_eq!(page.members.len(), 1, "{page:?}");
}

/// Two tenants in rooms of the same name: each sees only its own members and broadcasts.
#[tokio::test]
async fn tenants_never_see_each_others_rooms() {
    let h = Harness::start().await;
    let sender = Arc::new(RecordingSender::new());
    let service = instance(&h, &sender);
    let acme = h.connect("acme-1", Some("acme")).await;
    let globex = h.connect("globex-1", Some("globex")).await;
    subscribe(&service, &acme, "todo/room", Some(json!({"name":"a"}))).await;
    let reply = subscribe(&service, &globex, "todo/room", Some(json!({"name":"g"}))).await;
    let members = reply["members"].as_array().expect("members");
    assert_eq!(members.len(), 1, "{reply}");
    assert_eq!(members[0]["presence"]["name"], "g");
    assert!(sender.frames_to(&acme).is_empty(), "acme is not told of globex's join");

    let reply = send(
        &service,
        &acme,
        json!({"action":"broadcast","id":1,"actor":"todo/room","event":"hi"}),
    )
    .await;
    assert_eq!(reply["recipients"], 1, "{reply}");
    assert!(sender.frames_to(&globex).is_empty());
}

/// The by-connection index carries the membership, so `$disconnect` knows whom to tell.
#[tokio::test]
async fn the_index_knows_which_subscriptions_are_memberships() {
    let h = Harness::start().await;
    let sender = Arc::new(RecordingSender::new());
    let service = instance(&h, &sender);
    let me = h.connect("me", None).await;
    let reply = subscribe(&service, &me, "todo/a", Some(json!({"name":"me"}))).await;
    subscribe(&service, &me, "todo/b", None).await;
    let mut held = h.store.subscriptions_of(&me).await.expect("query");
    held.sort_by_key(|h| h.actor.to_string());
    let ids: Vec<Option<&str>> = held.iter().map(|h| h.member.as_ref().map(|m| m.id.as_str())).collect();
    assert_eq!(ids, vec![reply["memberId"].as_str(), None]);
}

/// A member whose `$disconnect` was lost and who is never posted to again is still bounded:
/// once its subscription is past its TTL (2 h 10 min), the next room read — any join, update
/// or broadcast, and every live member re-joins within API Gateway's 2 h connection limit —
/// leaves it out of the list, removes it and tells the room it left.
#[tokio::test]
async fn a_member_past_its_ttl_is_removed_at_the_next_room_read() {
    use statecast::records::{MemberRecord, SubscriptionRecord};
    let h = Harness::start().await;
    let sender = Arc::new(RecordingSender::new());
    let service = instance(&h, &sender);
    let stayer = h.connect("stayer", None).await;
    subscribe(&service, &stayer, "todo/ttl", Some(json!({"name":"stayer"}))).await;
    let ghost = h.connect("ghost", None).await;
    let room = ActorKey::parse("dev/todo/ttl").expect("key");
    let past = statecast::records::now_millis() / 1000 - 60;
    let member = MemberRecord::new(None, &json!({"name":"ghost"}), 0);
    h.store
        .put_subscription(&SubscriptionRecord {
            actor_key: room.clone(),
            connection_id: ghost.clone(),
            created_at: 0,
            expires_at: past,
            paths: None,
            member: Some(member.clone()),
        })
        .await
        .expect("ghost subscription");
    sender.clear();

    let joiner = h.connect("joiner", None).await;
    let reply = subscribe(&service, &joiner, "todo/ttl", Some(json!({"name":"joiner"}))).await;
    let names: Vec<&str> = reply["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["presence"]["name"].as_str())
        .collect();
    assert!(!names.contains(&"ghost") && names.len() == 2, "{names:?}");
    let told: Vec<(String, String)> = sender
        .frames_to(&stayer)
        .iter()
        .map(|f| {
            (
                f["event"].as_str().unwrap_or("").to_owned(),
                f["member"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(told.contains(&("leave".to_owned(), member.id.clone())), "{told:?}");
    let page = h.store.subscribers(&room, None).await.expect("query");
    assert!(
        page.expired.is_empty() && !page.connections.contains(&ghost),
        "{page:?}"
    );
}
