//! Clients that lose their socket: resuming with `since` from the change log kept with each
//! actor (k = 1, 50, past the per-actor bound, past the retention), a resume reply racing the
//! fan-out of the same and later changes, and coalesced frames under random operations.

use std::sync::Arc;

use serde_json::{json, Value};
use statecast::ids::{ActorKey, ConnectionId};
use statecast::ports::{ActorStore, ActorWrite};
use statecast::records::now_millis;
use statecast::testing::RecordingSender;
use statecast_tests::fixtures::lambda_event;
use statecast_tests::replica::{Applied, Replica};
use statecast_tests::{Harness, StreamReader};

async fn send(h: &Harness, connection: &ConnectionId, frame: Value) -> Value {
    let reply = h
        .message_service()
        .handle_frame(connection, &frame.to_string(), "req")
        .await;
    serde_json::from_str(&reply.expect("a route response")).expect("JSON")
}

async fn add(h: &Harness, connection: &ConnectionId, actor: &str, title: &str) {
    let reply = send(
        h,
        connection,
        json!({"action":"call","actor":actor,"method":"add","args":{"title":title}}),
    )
    .await;
    assert_eq!(reply["type"], "result", "{reply}");
}

async fn toggle(h: &Harness, connection: &ConnectionId, actor: &str, id: u64) {
    let call = json!({"action":"call","actor":actor,"method":"toggle","args":{"id":id.to_string()}});
    let reply = send(h, connection, call).await;
    assert_eq!(reply["type"], "result", "{reply}");
}

async fn stored(h: &Harness, actor: &str) -> statecast::records::ActorRecord {
    h.store
        .load(&ActorKey::parse(actor).expect("key"))
        .await
        .expect("load")
        .expect("stored")
}

/// A todo list of `items` items (~85 bytes each).
async fn big_list(h: &Harness, connection: &ConnectionId, actor: &str, items: usize) {
    for i in 0..items {
        add(
            h,
            connection,
            actor,
            &format!("item {i}: something to remember for the house"),
        )
        .await;
    }
}

/// k missed changes: 1 and 50 come back as exactly the missed patch; past the per-actor bound
/// (the log's share of the state) a snapshot. Either way the replica ends equal to the stored state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_missed_k_changes_resumes_with_exactly_them_or_a_snapshot() {
    let h = Harness::start().await;
    let c = h.connect("c", None).await;
    // ~50 KB: the log keeps ~70 toggles (12 % of the state).
    big_list(&h, &c, "todo/list", 600).await;
    let mut version = 600;
    for (k, expect_resume) in [(1, true), (50, true), (120, false)] {
        let held = send(&h, &c, json!({"action":"subscribe","id":"s","actor":"todo/list"})).await;
        let mut replica = Replica::from_subscribed(&held);
        assert_eq!(replica.version, version);
        for i in 0..k {
            toggle(&h, &c, "todo/list", 1 + i % 600).await;
        }
        version += k;
        let reply = send(
            &h,
            &c,
            json!({"action":"subscribe","id":"r","actor":"todo/list","since":replica.since()}),
        )
        .await;
        assert_eq!(
            reply["resumed"],
            json!(expect_resume),
            "k = {k}: {}",
            &reply.to_string()[..120]
        );
        if expect_resume {
            assert!(reply.get("state").is_none(), "no state when resuming");
            assert_eq!(
                reply["patch"].as_array().map(Vec::len),
                Some(k as usize),
                "exactly the {k} missed"
            );
        }
        assert_eq!(replica.resubscribed(&reply), expect_resume);
        let record = stored(&h, "dev/todo/list").await;
        assert_eq!(replica.version, record.version.0);
        assert_eq!(replica.state, record.state, "k = {k}: the replica is the stored state");
    }
}

/// Changes older than the retention window are never served: the client gets a snapshot.
/// (The clock is controlled through the log's own timestamps: the changes were made 25 h ago.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_past_the_retention_get_a_snapshot() {
    let h = Harness::start().await;
    let c = h.connect("c", None).await;
    big_list(&h, &c, "todo/old", 300).await;
    let mut record = stored(&h, "dev/todo/old").await;
    let day_ago = now_millis() - 25 * 3_600_000;
    for entry in &mut record.log {
        entry.at = day_ago;
    }
    let expected = record.version;
    record.version = expected.next();
    h.store
        .write(ActorWrite {
            key: record.actor_key.clone(),
            expected,
            record: Some(record.clone()),
            with: Vec::new(),
            call: None,
        })
        .await
        .expect("rewritten");
    // The rewrite skipped a patch for its own version: only versions before it are asked.
    let since = json!({"epoch": record.epoch.0, "version": record.version.0 - 5});
    let reply = send(
        &h,
        &c,
        json!({"action":"subscribe","id":1,"actor":"todo/old","since":since}),
    )
    .await;
    assert_eq!(reply["resumed"], false);
    assert_eq!(reply["state"], record.state);

    // Within the window the same shape resumes.
    toggle(&h, &c, "todo/old", 3).await;
    let now = stored(&h, "dev/todo/old").await;
    let since = json!({"epoch": now.epoch.0, "version": now.version.0 - 1});
    let reply = send(
        &h,
        &c,
        json!({"action":"subscribe","id":2,"actor":"todo/old","since":since}),
    )
    .await;
    assert_eq!(reply["resumed"], true, "{reply}");
}

/// An epoch the actor no longer has always gets a snapshot; a `since` ahead of the actor, or
/// of another shape, is a `bad_request` naming the field and stores no subscription.
#[tokio::test]
async fn a_foreign_epoch_gets_a_snapshot_and_a_bad_since_an_error() {
    let h = Harness::start().await;
    let c = h.connect("c", None).await;
    add(&h, &c, "todo/e", "milk").await;
    let record = stored(&h, "dev/todo/e").await;
    let reply = send(
        &h,
        &c,
        json!({"action":"subscribe","id":1,"actor":"todo/e","since":{"epoch":record.epoch.0 + 1,"version":1}}),
    )
    .await;
    assert_eq!(reply["resumed"], false);
    assert_eq!(reply["state"], record.state);
    h.message_service()
        .handle_frame(&c, &json!({"action":"unsubscribe","actor":"todo/e"}).to_string(), "req")
        .await;

    for (since, field) in [
        (json!({"epoch": record.epoch.0, "version": 9}), "`since.version`"),
        (json!({"epoch": record.epoch.0, "version": -1}), "`since.version`"),
        (json!({"epoch": "x", "version": 1}), "`since.epoch`"),
        (json!([1, 2]), "`since`"),
        (json!({"epoch": 1, "version": 1, "at": 3}), "`since`"),
    ] {
        let reply = send(
            &h,
            &c,
            json!({"action":"subscribe","id":7,"actor":"todo/e","since":since}),
        )
        .await;
        assert_eq!(reply["code"], "bad_request", "{since}: {reply}");
        assert!(reply["message"].as_str().expect("message").contains(field), "{reply}");
        let key = ActorKey::parse("dev/todo/e").expect("key");
        let page = statecast::ports::SubscriptionStore::subscribers(h.store.as_ref(), &key, None)
            .await
            .expect("query");
        assert!(page.connections.is_empty(), "{since}: nothing stored");
    }
}

/// A client following the documented rule (apply a delta only at `from`, keep frames that are
/// ahead, drop duplicates) while the resume reply and the fan-out of the same and later
/// changes arrive in every order: it never loses or doubles a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_reply_racing_the_fan_out_is_neither_lost_nor_applied_twice() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let sender = Arc::new(RecordingSender::new());
    let fanout = h.fanout_service(sender.clone());
    let c = h.connect("c", None).await;
    big_list(&h, &c, "todo/race", 300).await;
    let _ = stream.read_new().await;
    let held = Replica::from_subscribed(&send(&h, &c, json!({"action":"subscribe","actor":"todo/race"})).await);

    // Missed while away: versions 301..=303, fanned out (to a socket that is gone meanwhile,
    // or still on its way). Then the resubscribe reads the actor at 303.
    for id in [1, 2, 3] {
        toggle(&h, &c, "todo/race", id).await;
    }
    let first = fan_out_all(&fanout, &mut stream, &sender, std::slice::from_ref(&c))
        .await
        .remove(0);
    let reply = send(
        &h,
        &c,
        json!({"action":"subscribe","id":"r","actor":"todo/race","since":held.since()}),
    )
    .await;
    assert_eq!(reply["resumed"], true);
    // Written after that read (304, 305): fanned out to the new subscription too.
    toggle(&h, &c, "todo/race", 4).await;
    toggle(&h, &c, "todo/race", 5).await;
    let second = fan_out_all(&fanout, &mut stream, &sender, std::slice::from_ref(&c))
        .await
        .remove(0);
    assert_eq!((first.len(), second.len()), (1, 1), "one coalesced frame per batch");
    let record = stored(&h, "dev/todo/race").await;

    let (a, b, r) = (&first[0], &second[0], &reply);
    let orders = [[r, a, b], [r, b, a], [a, r, b], [a, b, r], [b, r, a], [b, a, r]];
    for order in orders {
        let mut client = Follower::new(held.clone());
        for frame in order {
            client.receive(frame);
        }
        assert!(client.ahead.is_empty(), "nothing left waiting: {order:?}");
        assert_eq!(client.replica.version, record.version.0, "{order:?}");
        assert_eq!(client.replica.state, record.state);
    }
}

/// Seeded random adds/toggles/renames/removes over three actors, fanned out in random-size
/// batches: each subscriber's replica, built only from coalesced frames, ends equal to the
/// stored state, and fewer frames than changes were sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_frames_rebuild_the_stored_state_under_random_operations() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let sender = Arc::new(RecordingSender::new());
    let fanout = h.fanout_service(sender.clone());
    let actors = ["todo/a", "todo/b", "todo/c"];
    let mut replicas = Vec::new();
    for (i, actor) in actors.iter().enumerate() {
        let c = h.connect(&format!("w{i}"), None).await;
        let reply = send(&h, &c, json!({"action":"subscribe","actor":actor})).await;
        replicas.push((c, Follower::new(Replica::from_subscribed(&reply))));
    }
    let writer = h.connect("writer", None).await;
    // Items 9 and 10 stay, whatever the random operations (on ids 1 to 8) do: DynamoDB Local's
    // stream cannot encode an empty map, which an emptied list would be.
    for actor in actors {
        for i in 0..10 {
            send(
                &h,
                &writer,
                json!({"action":"call","actor":actor,"method":"add","args":{"title":format!("seed {i}")}}),
            )
            .await;
        }
    }
    let mut rng = Lcg(0x5eed);
    let (mut operations, mut changes, mut frames) = (0, 0, 0);
    let connections: Vec<ConnectionId> = replicas.iter().map(|(c, _)| c.clone()).collect();
    for round in 0..60 {
        for _ in 0..(1 + rng.next() % 20) {
            let actor = actors[(rng.next() % 3) as usize];
            let id = (1 + rng.next() % 8).to_string();
            let call = match rng.next() % 4 {
                0 => json!({"method":"add","args":{"title":format!("t{round}")}}),
                1 => json!({"method":"toggle","args":{"id":id}}),
                2 => json!({"method":"rename","args":{"id":id,"title":format!("r{round}")}}),
                _ => json!({"method":"remove","args":{"id":id}}),
            };
            let frame = json!({"action":"call","actor":actor,"method":call["method"],"args":call["args"]});
            let reply = send(&h, &writer, frame).await;
            operations += 1;
            if reply["type"] == "result" {
                changes += 1;
            }
        }
        // The round's records in batches of random sizes, as the mapping may cut them.
        fan_out_in_batches(&fanout, stream.read_new().await, &mut rng, 10).await;
        for (i, (_, follower)) in replicas.iter_mut().enumerate() {
            let got = sender.frames_to(&connections[i]);
            frames += got.len();
            for frame in &got {
                follower.receive(frame);
            }
        }
        sender.clear();
    }
    for ((_, follower), actor) in replicas.iter().zip(actors) {
        let record = stored(&h, &format!("dev/{actor}")).await;
        assert_eq!(follower.replica.version, record.version.0, "{actor}");
        assert_eq!(follower.replica.state, record.state, "{actor}");
    }
    assert!(operations >= 500, "{operations} operations");
    assert!(frames < changes, "{frames} frames for {changes} changes: coalesced");
}

/// Runs the fan-out over every new stream record (one batch) and returns the frames each of
/// `to` received.
async fn fan_out_all(
    fanout: &statecast::service::FanoutService,
    stream: &mut StreamReader,
    sender: &RecordingSender,
    to: &[ConnectionId],
) -> Vec<Vec<Value>> {
    let records = stream.read_new().await;
    if !records.is_empty() {
        let mut event = aws_lambda_events::dynamodb::Event::default();
        event.records = records;
        let response = statecast_fanout::handler(fanout, lambda_event(event))
            .await
            .expect("handler");
        assert!(response.batch_item_failures.is_empty());
    }
    let frames = to.iter().map(|c| sender.frames_to(c)).collect();
    sender.clear();
    frames
}

/// Runs the fan-out over `records` in batches of 1 to `max` records, as the mapping may cut them.
async fn fan_out_in_batches(
    fanout: &statecast::service::FanoutService,
    records: Vec<aws_lambda_events::dynamodb::EventRecord>,
    rng: &mut Lcg,
    max: usize,
) {
    let mut rest = records.as_slice();
    while !rest.is_empty() {
        let size = (1 + rng.next() as usize % max).min(rest.len());
        let (batch, after) = rest.split_at(size);
        rest = after;
        let mut event = aws_lambda_events::dynamodb::Event::default();
        event.records = batch.to_vec();
        let response = statecast_fanout::handler(fanout, lambda_event(event))
            .await
            .expect("handler");
        assert!(response.batch_item_failures.is_empty());
    }
}

/// A client following the protocol's rule for one actor.
struct Follower {
    replica: Replica,
    ahead: Vec<Value>,
    default: Value,
}

impl Follower {
    fn new(replica: Replica) -> Self {
        Self {
            replica,
            ahead: Vec::new(),
            default: json!({"items": {}, "nextId": 0}),
        }
    }

    fn receive(&mut self, frame: &Value) {
        if frame["type"] == "subscribed" {
            self.replica.resubscribed(frame);
        } else if self.replica.apply(frame, &self.default) == Applied::Gap {
            self.ahead.push(frame.clone());
            return;
        }
        // Frames kept because they were ahead may apply now; older ones are duplicates.
        loop {
            let before = self.ahead.len();
            let mut still = Vec::new();
            for frame in std::mem::take(&mut self.ahead) {
                if self.replica.apply(&frame, &self.default) == Applied::Gap {
                    still.push(frame);
                }
            }
            self.ahead = still;
            if self.ahead.len() == before {
                break;
            }
        }
    }
}

/// A small seeded generator (reproducible operations).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Filtered subscriptions under seeded random operations: each subscriber holds exactly the
/// projection of the stored state on its paths, built only from the frames it got (the
/// operations under its paths, or projected snapshots), and gets nothing for changes that
/// touch none of them; subscribers with the same filter get the same frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_subscribers_hold_the_projection_under_random_operations() {
    let h = Harness::start().await;
    let mut stream = h.actor_stream().await;
    let sender = Arc::new(RecordingSender::new());
    let fanout = h.fanout_service(sender.clone());
    let filters: [&[&str]; 4] = [
        &["/items/1", "/items/2/done"],
        &["/nextId"],
        &["/items/3/title", "/items/5"],
        &["/items/3/title", "/items/5"],
    ];
    let mut followers = Vec::new();
    for (i, paths) in filters.iter().enumerate() {
        let c = h.connect(&format!("f{i}"), None).await;
        let reply = send(&h, &c, json!({"action":"subscribe","actor":"todo/f","paths":paths})).await;
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        let default = json!({"items": {}, "nextId": 0});
        assert_eq!(
            reply["state"],
            statecast::projection::project(&default, &paths),
            "{reply}"
        );
        followers.push((c, paths, FilteredFollower::from_subscribed(&reply)));
    }
    let writer = h.connect("writer", None).await;
    // Items 7 to 10 stay (random operations touch ids 1 to 6): DynamoDB Local's stream cannot
    // encode an empty map.
    for i in 0..10 {
        send(
            &h,
            &writer,
            json!({"action":"call","actor":"todo/f","method":"add","args":{"title":format!("seed {i}")}}),
        )
        .await;
    }
    let mut rng = Lcg(0xf11e);
    let mut operations = 0;
    let mut quiet = 0;
    for round in 0..100 {
        for _ in 0..(1 + rng.next() % 10) {
            let id = (1 + rng.next() % 6).to_string();
            let (method, args) = match rng.next() % 4 {
                0 => ("add", json!({"title": format!("t{round}")})),
                1 => ("toggle", json!({"id": id})),
                2 => ("rename", json!({"id": id, "title": format!("r{round}")})),
                _ => ("remove", json!({"id": id})),
            };
            send(
                &h,
                &writer,
                json!({"action":"call","actor":"todo/f","method":method,"args":args}),
            )
            .await;
            operations += 1;
        }
        fan_out_in_batches(&fanout, stream.read_new().await, &mut rng, 6).await;
        let got: Vec<Vec<Value>> = followers.iter().map(|(c, _, _)| sender.frames_to(c)).collect();
        assert_eq!(got[2], got[3], "the same filter gets the same frames");
        quiet += got.iter().filter(|frames| frames.is_empty()).count();
        for ((_, _, follower), frames) in followers.iter_mut().zip(&got) {
            for frame in frames {
                follower.receive(frame);
            }
        }
        sender.clear();
    }
    let stored = stored(&h, "dev/todo/f").await;
    for (_, paths, follower) in &followers {
        assert!(follower.ahead.is_empty(), "{paths:?}: nothing left waiting");
        assert_eq!(
            follower.state,
            statecast::projection::project(&stored.state, paths),
            "{paths:?}"
        );
    }
    assert!(operations >= 500, "{operations} operations");
    assert!(quiet > 0, "some rounds sent a filter nothing");

    // Bad pointers are refused naming the pointer, and nothing is stored.
    let c = h.connect("bad", None).await;
    for (paths, named) in [
        (json!(["items/1"]), "\"items/1\""),
        (json!(["/a~2"]), "\"/a~2\""),
        (json!([7]), "7"),
        (json!("/x"), "`paths`"),
        (json!([]), "`paths`"),
    ] {
        let reply = send(
            &h,
            &c,
            json!({"action":"subscribe","id":1,"actor":"todo/f","paths":paths}),
        )
        .await;
        assert_eq!(reply["code"], "bad_request", "{paths}: {reply}");
        assert!(reply["message"].as_str().expect("message").contains(named), "{reply}");
    }
}

/// A client of a filtered subscription: a delta applies when it holds a version in
/// [`from`, `to`) (the projection did not change in between).
struct FilteredFollower {
    epoch: u64,
    version: u64,
    state: Value,
    ahead: Vec<Value>,
}

impl FilteredFollower {
    fn from_subscribed(frame: &Value) -> Self {
        Self {
            epoch: frame["epoch"].as_u64().expect("epoch"),
            version: frame["version"].as_u64().expect("version"),
            state: frame["state"].clone(),
            ahead: Vec::new(),
        }
    }

    /// Applies `frame`; false when it is ahead (kept for later).
    fn apply(&mut self, frame: &Value) -> bool {
        let epoch = frame["epoch"].as_u64().unwrap_or(0);
        match frame["type"].as_str() {
            Some("delta") => {
                let (from, to) = (frame["from"].as_u64().unwrap_or(0), frame["to"].as_u64().unwrap_or(0));
                let same = epoch == self.epoch || self.version == 0;
                if same && to <= self.version {
                    return true;
                }
                if !same || from > self.version {
                    return false;
                }
                let patch = serde_json::from_value(frame["patch"].clone()).expect("patch");
                statecast::delta::apply(&mut self.state, &patch).expect("the filtered patch applies");
                (self.epoch, self.version) = (epoch, to);
            }
            Some("snapshot") => {
                let version = frame["version"].as_u64().unwrap_or(0);
                if epoch != self.epoch || version > self.version {
                    (self.epoch, self.version, self.state) = (epoch, version, frame["state"].clone());
                }
            }
            Some("deleted") => (self.epoch, self.version, self.state) = (0, 0, json!({})),
            other => panic!("not a change frame: {other:?}"),
        }
        true
    }

    fn receive(&mut self, frame: &Value) {
        if !self.apply(frame) {
            self.ahead.push(frame.clone());
            return;
        }
        loop {
            let waiting = std::mem::take(&mut self.ahead);
            let before = waiting.len();
            for frame in waiting {
                if !self.apply(&frame) {
                    self.ahead.push(frame);
                }
            }
            if self.ahead.len() == before {
                break;
            }
        }
    }
}
