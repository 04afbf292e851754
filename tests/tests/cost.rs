//! Cost per operation, counted: every DynamoDB request the SDK transmits is logged by an
//! interceptor on the client the services use, and every `@connections` post by the
//! `RecordingSender`. Each operation runs through its Lambda handler on the real event fixtures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use statecast::app::application;
use statecast::application::{Services, Stores};
use statecast::dynamo::DynamoStore;
use statecast::ids::ActorKey;
use statecast::ports::{ConnectionStore, SubscriptionStore};
use statecast::service::{ConnectService, DisconnectService, FanoutService, MessageService, RateLimit, Settings};
use statecast::testing::RecordingSender;
use statecast::workflow::WorkflowSettings;
use statecast_tests::connection;
use statecast_tests::fixtures::{lambda_event, route_reply, ws_event};
use statecast_tests::request_log::RequestLog;
use statecast_tests::Harness;

/// The services of the four Lambdas on a DynamoDB client that logs its requests.
struct Counted {
    log: RequestLog,
    sender: Arc<RecordingSender>,
    connect: ConnectService,
    messages: MessageService,
    disconnect: DisconnectService,
    fanout: FanoutService,
}

impl Counted {
    fn new(h: &Harness) -> Counted {
        let log = RequestLog::default();
        let client = log.client(&h.sdk);
        let store = Arc::new(DynamoStore::new(client, h.tables.clone()));
        let sender = Arc::new(RecordingSender::new());
        // One rate-limit window for the whole test (until 2070): a message opens a new window
        // (one more UpdateItem) only when it is its connection's first.
        let settings = Settings {
            broadcast_rate: RateLimit {
                max: 1000,
                window: Duration::from_secs(100 * 365 * 24 * 3600),
            },
            ..h.settings.clone()
        };
        let services = Services::new(
            application().expect("valid"),
            Stores::all(store),
            settings,
            WorkflowSettings::default(),
        )
        .with_sender(sender.clone());
        Counted {
            connect: services.connect(),
            messages: services.message(),
            fanout: services.fanout(sender.clone()),
            disconnect: services.disconnect(),
            log,
            sender,
        }
    }

    /// Runs `operation` and returns what it cost; its own assertions run inside.
    async fn cost<T>(&self, name: &str, operation: impl Future<Output = T>) -> (Row, T) {
        self.log.take();
        self.sender.clear();
        let output = operation.await;
        let row = Row {
            operation: name.to_owned(),
            dynamodb: self.log.take(),
            posts: self.sender.sent().len(),
        };
        (row, output)
    }
}

/// What one operation cost: its DynamoDB requests in order and its `@connections` posts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    operation: String,
    dynamodb: Vec<String>,
    posts: usize,
}

impl Row {
    /// The row with its requests sorted, for operations that make some of them at once.
    fn unordered(mut self) -> Row {
        self.dynamodb.sort();
        self
    }
}

fn promised(operation: &str, dynamodb: &[&str], posts: usize) -> Row {
    Row {
        operation: operation.to_owned(),
        dynamodb: dynamodb.iter().map(|s| (*s).to_owned()).collect(),
        posts,
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "| {:<44} | {:<36} | {:<41} | {:>12} |\n|{}|{}|{}|{}|\n",
        "operation",
        "DynamoDB requests, in order",
        "DynamoDB requests by name",
        "@connections",
        "-".repeat(46),
        "-".repeat(38),
        "-".repeat(43),
        "-".repeat(14),
    );
    for row in rows {
        let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
        for op in &row.dynamodb {
            *by_name.entry(op).or_default() += 1;
        }
        let by_name: Vec<String> = by_name.iter().map(|(op, n)| format!("{n} {op}")).collect();
        let _ = writeln!(
            out,
            "| {:<44} | {:<36} | {:<41} | {:>12} |",
            row.operation,
            row.dynamodb.join(" → "),
            by_name.join(" + "),
            row.posts
        );
    }
    out
}

async fn connect(service: &ConnectService, id: &str) {
    let response = statecast_connect::handler(service, ws_event("ws-connect", id, None, None))
        .await
        .expect("the connect handler never fails");
    assert_eq!(response.status_code, 200, "{id} is connected");
}

async fn message(service: &MessageService, id: &str, frame: Value) -> Value {
    let event = ws_event("ws-message", id, Some(&frame.to_string()), None);
    route_reply(statecast_default::handler(service, event).await)
}

async fn expect_reply(service: &MessageService, id: &str, frame: Value, kind: &str) -> Value {
    let reply = message(service, id, frame).await;
    assert_eq!(reply["type"], kind, "{reply}");
    reply
}

async fn disconnect(service: &DisconnectService, id: &str) {
    let response = statecast_disconnect::handler(service, ws_event("ws-disconnect", id, None, None))
        .await
        .expect("the disconnect handler never fails");
    assert_eq!(response.status_code, 200, "{id} is cleaned up");
}

/// The per-request operations: connect, subscribe, calls that do and do not change state,
/// unsubscribe, and disconnect with 0 and 3 subscriptions.
async fn request_rows(h: &Harness, c: &Counted) -> Vec<Row> {
    let mut rows = Vec::new();
    let (row, ()) = c.cost("connect", connect(&c.connect, "c-1")).await;
    rows.push(row);

    let subscribe = json!({"action":"subscribe","actor":"counter/hits"});
    let (row, _) = c
        .cost("subscribe", expect_reply(&c.messages, "c-1", subscribe, "subscribed"))
        .await;
    rows.push(row);

    let increment = json!({"action":"call","actor":"counter/hits","method":"increment"});
    for (name, version) in [
        ("call, state changes (creates the actor)", 1),
        ("call, state changes", 2),
    ] {
        let (row, result) = c
            .cost(name, expect_reply(&c.messages, "c-1", increment.clone(), "result"))
            .await;
        assert_eq!(result["version"], version, "{result}");
        rows.push(row);
    }
    let get = json!({"action":"call","actor":"counter/hits","method":"get"});
    let (row, result) = c
        .cost(
            "call, no change (counter.get)",
            expect_reply(&c.messages, "c-1", get, "result"),
        )
        .await;
    assert_eq!(
        (result["value"].clone(), result["version"].clone()),
        (json!(2), json!(2))
    );
    rows.push(row);

    let unsubscribe = json!({"action":"unsubscribe","actor":"counter/hits"});
    let (row, _) = c
        .cost(
            "unsubscribe",
            expect_reply(&c.messages, "c-1", unsubscribe, "unsubscribed"),
        )
        .await;
    rows.push(row);
    let hits = ActorKey::parse("acme/counter/hits").expect("key");
    assert!(h
        .store
        .subscribers(&hits, None)
        .await
        .expect("query")
        .connections
        .is_empty());

    for actor in ["counter/a", "counter/b", "todo/c"] {
        expect_reply(
            &c.messages,
            "c-1",
            json!({"action":"subscribe","actor":actor}),
            "subscribed",
        )
        .await;
    }
    assert_eq!(
        h.store.subscriptions_of(&connection("c-1")).await.expect("query").len(),
        3
    );
    let (row, ()) = c
        .cost("disconnect holding 3 subscriptions", disconnect(&c.disconnect, "c-1"))
        .await;
    rows.push(row);
    assert_eq!(h.store.get_connection(&connection("c-1")).await.expect("get"), None);
    assert!(h
        .store
        .subscriptions_of(&connection("c-1"))
        .await
        .expect("query")
        .is_empty());

    connect(&c.connect, "c-2").await;
    let (row, ()) = c
        .cost("disconnect holding 0 subscriptions", disconnect(&c.disconnect, "c-2"))
        .await;
    rows.push(row);
    rows
}

/// Presence and broadcast in a room of three members: a join, an update, a broadcast, a leave
/// by `unsubscribe` and one by `$disconnect`. A join reads the actor and the room at once, so
/// those rows are compared as sets of requests ([`Row::unordered`]).
async fn presence_rows(c: &Counted) -> Vec<Row> {
    let room = "todo/room";
    for id in ["p-1", "p-2", "p-3"] {
        connect(&c.connect, id).await;
    }
    for id in ["p-1", "p-2"] {
        let join = json!({"action":"subscribe","actor":room,"presence":{"name":id}});
        expect_reply(&c.messages, id, join, "subscribed").await;
    }
    let mut rows = Vec::new();
    let join = json!({"action":"subscribe","actor":room,"presence":{"name":"p-3"}});
    let (row, reply) = c
        .cost(
            "presence join (subscribe), 3rd member",
            expect_reply(&c.messages, "p-3", join, "subscribed"),
        )
        .await;
    assert_eq!(reply["members"].as_array().map(Vec::len), Some(3), "{reply}");
    rows.push(row.unordered());
    let update = json!({"action":"presence.update","actor":room,"presence":{"name":"p-3","away":true}});
    let (row, reply) = c
        .cost(
            "presence.update, room of 3",
            expect_reply(&c.messages, "p-3", update, "sent"),
        )
        .await;
    assert_eq!(reply["member"]["rev"], 2, "{reply}");
    rows.push(row);
    let broadcast = json!({"action":"broadcast","actor":room,"event":"cursor","payload":{"x":1}});
    let (row, reply) = c
        .cost(
            "broadcast, room of 3",
            expect_reply(&c.messages, "p-3", broadcast, "sent"),
        )
        .await;
    assert_eq!(reply["recipients"], 3, "{reply}");
    rows.push(row);
    let leave = json!({"action":"unsubscribe","actor":room});
    let (row, _) = c
        .cost(
            "presence leave (unsubscribe), room of 3",
            expect_reply(&c.messages, "p-2", leave, "unsubscribed"),
        )
        .await;
    rows.push(row);
    let (row, ()) = c
        .cost("disconnect of a member, room of 2", disconnect(&c.disconnect, "p-3"))
        .await;
    rows.push(row);
    let left: Vec<Value> = c.sender.frames_to(&connection("p-1"));
    assert_eq!(left.len(), 1, "p-1 is told p-3 left: {left:?}");
    assert_eq!(
        (
            left[0]["event"].as_str(),
            left[0]["member"]["presence"]["name"].as_str()
        ),
        (Some("leave"), Some("p-3"))
    );
    rows
}

/// One change of `counter/fan-{n}`, fanned out to its `n` subscribers.
async fn fan_out_row(h: &Harness, c: &Counted, stream: &mut statecast_tests::StreamReader, n: usize) -> Row {
    let actor = format!("counter/fan-{n}");
    let (connect_setup, messages_setup) = (h.connect_service(), h.message_service());
    let ids: Vec<String> = (0..n).map(|i| format!("fan-{n}-{i:03}")).collect();
    for id in &ids {
        connect(&connect_setup, id).await;
        expect_reply(
            &messages_setup,
            id,
            json!({"action":"subscribe","actor":actor}),
            "subscribed",
        )
        .await;
    }
    stream.read_new().await;
    let increment = json!({"action":"call","actor":actor,"method":"increment"});
    expect_reply(&messages_setup, &ids[0], increment, "result").await;
    let event = stream.next_event().await;
    assert_eq!(event.records.len(), 1, "one change");

    let (row, response) = c
        .cost(
            &format!("fan-out of one change to {n} subscriber(s)"),
            statecast_fanout::handler(&c.fanout, lambda_event(event)),
        )
        .await;
    assert!(response.expect("handler").batch_item_failures.is_empty());
    for id in &ids {
        let frames = c.sender.frames_to(&connection(id));
        assert_eq!(frames.len(), 1, "{id} gets the change once");
        assert_eq!(frames[0]["actor"], json!(actor));
    }
    row
}

/// Each operation makes exactly the DynamoDB requests and `@connections` posts the design
/// promises: connect 1 PutItem; subscribe GetItem + PutItem + GetItem; a changing call 2 GetItem
/// + 1 PutItem; a no-op call 2 GetItem; unsubscribe GetItem + DeleteItem; disconnect with 3
/// subscriptions Query + BatchWriteItem + DeleteItem; fan-out to N ≤ 1000 1 Query + N posts;
/// presence and broadcast: one rate-limit UpdateItem, the room's Query and a post per member.
#[tokio::test]
async fn every_operation_costs_exactly_what_the_design_promises() {
    let h = Harness::start().await;
    let c = Counted::new(&h);
    let mut stream = h.actor_stream().await;

    let mut rows = request_rows(&h, &c).await;
    rows.extend(presence_rows(&c).await);
    for n in [1, 10, 100] {
        rows.push(fan_out_row(&h, &c, &mut stream, n).await);
    }
    println!("{}", table(&rows));

    let mut expected = vec![
        promised("connect", &["PutItem"], 0),
        // Connection, the actor's shard directory (where the subscription goes), put, actor.
        promised("subscribe", &["GetItem", "GetItem", "PutItem", "GetItem"], 0),
        promised(
            "call, state changes (creates the actor)",
            &["GetItem", "GetItem", "PutItem"],
            0,
        ),
        promised("call, state changes", &["GetItem", "GetItem", "PutItem"], 0),
        promised("call, no change (counter.get)", &["GetItem", "GetItem"], 0),
        promised("unsubscribe", &["GetItem", "DeleteItem"], 0),
        promised(
            "disconnect holding 3 subscriptions",
            &["Query", "BatchWriteItem", "DeleteItem"],
            0,
        ),
        promised("disconnect holding 0 subscriptions", &["Query", "DeleteItem"], 0),
        // The connection's first rate-limited message opens its window: 2 UpdateItem.
        promised(
            "presence join (subscribe), 3rd member",
            &["UpdateItem", "UpdateItem", "GetItem", "PutItem", "GetItem", "Query"],
            2,
        )
        .unordered(),
        promised("presence.update, room of 3", &["UpdateItem", "UpdateItem", "Query"], 2),
        promised("broadcast, room of 3", &["UpdateItem", "Query"], 3),
        promised(
            "presence leave (unsubscribe), room of 3",
            &["GetItem", "DeleteItem", "Query"],
            2,
        ),
        promised(
            "disconnect of a member, room of 2",
            &["Query", "BatchWriteItem", "DeleteItem", "Query"],
            1,
        ),
    ];
    for n in [1, 10, 100] {
        expected.push(promised(
            &format!("fan-out of one change to {n} subscriber(s)"),
            &["Query"],
            n,
        ));
    }
    assert_eq!(
        rows,
        expected,
        "counted:\n{}\npromised:\n{}",
        table(&rows),
        table(&expected)
    );
}
