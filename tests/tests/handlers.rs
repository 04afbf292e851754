//! The four Lambda handlers fed the real event JSON under `tests/fixtures/`, against the
//! embedded DynamoDB engine: what API Gateway and the stream would hand them in production.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use statecast::ids::{ActorKey, ConnectionId, TenantId};
use statecast::ports::{ActorStore, ConnectionStore, SubscriptionStore};
use statecast::records::ConnectionRecord;
use statecast::service::{ConnectService, FanoutService, Settings};
use statecast::testing::RecordingSender;
use statecast_tests::connection;
use statecast_tests::fixtures::{lambda_event, raw, route_reply, stream_event, ws_event};
use statecast_tests::{Harness, DEV_TENANT};

/// `connectedAt` of the `ws-connect` fixture, in milliseconds.
fn fixture_connected_at() -> i64 {
    raw("ws-connect")["requestContext"]["connectedAt"]
        .as_i64()
        .expect("ws-connect has connectedAt")
}

/// An authorizer context like the fixture's, vouching for `tenant`.
fn authorizer(tenant: &str) -> Value {
    json!({ "principalId": "user-1", "tenant": tenant, "sub": "user-1", "integrationLatency": 14 })
}

fn key(stored: &str) -> ActorKey {
    ActorKey::parse(stored).expect("actor key")
}

/// Runs the `$connect` handler on the fixture for `id`; returns the status code.
async fn connect_status(service: &ConnectService, id: &str, authorizer: Option<Value>) -> i64 {
    let response = statecast_connect::handler(service, ws_event("ws-connect", id, None, authorizer))
        .await
        .expect("the connect handler never fails");
    assert_eq!(response.body, None, "a $connect response has no body");
    response.status_code
}

/// Connects `id` through the fixture as it is (tenant acme, sub user-1).
async fn connect_acme(h: &Harness, id: &str) -> ConnectionId {
    assert_eq!(connect_status(&h.connect_service(), id, None).await, 200);
    connection(id)
}

async fn stored_connection(h: &Harness, id: &str) -> Option<ConnectionRecord> {
    h.store.get_connection(&connection(id)).await.expect("get connection")
}

async fn handle_message(h: &Harness, event: LambdaEvent<ApiGatewayWebsocketProxyRequest>) -> Value {
    route_reply(statecast_default::handler(&h.message_service(), event).await)
}

/// Sends `body` from `id` through the `$default` fixture; returns the reply frame.
async fn message(h: &Harness, id: &str, body: &str) -> Value {
    handle_message(h, ws_event("ws-message", id, Some(body), None)).await
}

/// Subscribes `id` to `actor` through the `$default` fixture.
async fn subscribe(h: &Harness, id: &str, actor: &str) {
    let reply = message(h, id, &json!({"action":"subscribe","actor":actor}).to_string()).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
}

/// Asserts `reply` is an `error` frame with `code` and exactly the request id `id`.
fn assert_error(reply: &Value, code: &str, id: Option<&Value>, case: &str) {
    assert_eq!(reply["type"], "error", "{case}: {reply}");
    assert_eq!(reply["code"], code, "{case}: {reply}");
    assert_eq!(reply.get("id"), id, "{case}: the request id is echoed when usable");
    assert!(
        reply["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{case}: the error explains itself"
    );
}

/// Sends each `(case, body, code, id)` from `from` and checks the typed error reply.
async fn assert_refusals(h: &Harness, from: &str, cases: &[(&str, &str, &str, Option<Value>)]) {
    for (case, body, code, id) in cases {
        let reply = message(h, from, body).await;
        assert_error(&reply, code, id.as_ref(), case);
    }
}

/// Asserts nothing was written to the actors table: none of `actors` exists and the table's
/// stream (which records every write) is empty.
async fn assert_no_actor_written(h: &Harness, actors: &[&str]) {
    for actor in actors {
        let stored = h.store.load(&key(actor)).await.expect("load actor");
        assert_eq!(stored, None, "{actor} was written");
    }
    let records = h.actor_stream().await.read_new().await;
    assert!(
        records.is_empty(),
        "the actors stream holds {} record(s)",
        records.len()
    );
}

// ---------------------------------------------------------------------------------------
// $connect
// ---------------------------------------------------------------------------------------

/// The `$connect` fixture stores the connection with the authorizer's tenant and principal,
/// the fixture's `connectedAt`, and a TTL of `connectedAt` (in seconds) plus the connection TTL.
#[tokio::test]
async fn connect_stores_tenant_principal_and_ttl_from_the_authorizer() {
    let h = Harness::start().await;

    assert_eq!(connect_status(&h.connect_service(), "c1", None).await, 200);

    let connected_at = fixture_connected_at();
    let expected = ConnectionRecord {
        connection_id: connection("c1"),
        tenant: TenantId::new("acme").expect("tenant"),
        principal: Some("user-1".to_owned()),
        connected_at,
        expires_at: connected_at / 1000 + h.settings.connection_ttl.as_secs() as i64,
    };
    assert_eq!(stored_connection(&h, "c1").await, Some(expected));
}

/// A browser that carried its token as `Sec-WebSocket-Protocol: bearer, <jwt>` gets `bearer`
/// back, or it would drop the connection; without that offer no subprotocol is chosen.
#[tokio::test]
async fn connect_accepts_the_bearer_subprotocol_only_when_offered() {
    let h = Harness::start().await;
    let mut offered = raw("ws-connect");
    offered["headers"]["Sec-WebSocket-Protocol"] = json!("bearer, eyJhbGciOiJIUzI1NiJ9.e30.c2ln");
    offered["multiValueHeaders"]["Sec-WebSocket-Protocol"] = json!(["bearer, eyJhbGciOiJIUzI1NiJ9.e30.c2ln"]);
    let event: ApiGatewayWebsocketProxyRequest = serde_json::from_value(offered).expect("event");
    let response = statecast_connect::handler(&h.connect_service(), lambda_event(event))
        .await
        .expect("handler");
    assert_eq!(response.status_code, 200);
    assert_eq!(
        response.headers.get("sec-websocket-protocol").map(|v| v.as_bytes()),
        Some(&b"bearer"[..])
    );

    let plain = statecast_connect::handler(&h.connect_service(), ws_event("ws-connect", "c2", None, None))
        .await
        .expect("handler");
    assert_eq!(plain.headers.get("sec-websocket-protocol"), None);
}

/// Without an authorizer context a connection is refused (401, nothing stored) when no
/// default tenant is configured, and gets the default tenant when one is.
#[tokio::test]
async fn connect_without_authorizer_needs_a_default_tenant() {
    let h = Harness::start().await;
    let strict = ConnectService::new(
        h.store.clone(),
        Settings {
            default_tenant: None,
            ..h.settings.clone()
        },
    );

    assert_eq!(connect_status(&strict, "anonymous", Some(Value::Null)).await, 401);
    assert_eq!(stored_connection(&h, "anonymous").await, None);

    assert_eq!(
        connect_status(&h.connect_service(), "anonymous", Some(Value::Null)).await,
        200
    );
    let stored = stored_connection(&h, "anonymous").await.expect("stored");
    assert_eq!(stored.tenant.as_str(), DEV_TENANT);
    assert_eq!(stored.principal, None);
}

/// A tenant that could break out of the `tenant/type/id` key layout is refused with 400
/// and nothing is stored.
#[tokio::test]
async fn connect_refuses_a_tenant_containing_a_slash() {
    let h = Harness::start().await;

    let status = connect_status(&h.connect_service(), "evil", Some(authorizer("acme/evil"))).await;

    assert_eq!(status, 400);
    assert_eq!(stored_connection(&h, "evil").await, None);
}

// ---------------------------------------------------------------------------------------
// $default
// ---------------------------------------------------------------------------------------

/// The `$default` fixture's own body, a ping with id 1, is answered with a pong echoing it.
#[tokio::test]
async fn ping_fixture_is_answered_with_pong() {
    let h = Harness::start().await;

    let reply = handle_message(&h, ws_event("ws-message", "c1", None, None)).await;

    assert_eq!(reply, json!({"type":"pong","id":1}));
}

/// A subscribe from a connected client stores the subscription and replies with the
/// actor's default state at version 0, named relative to the client's tenant.
#[tokio::test]
async fn subscribe_after_connect_replies_subscribed_at_version_zero() {
    let h = Harness::start().await;
    let c1 = connect_acme(&h, "c1").await;

    let reply = message(&h, "c1", r#"{"action":"subscribe","id":"s1","actor":"todo/groceries"}"#).await;

    assert_eq!(
        reply,
        json!({"type":"subscribed","id":"s1","actor":"todo/groceries","epoch":0,"version":0,
               "state":{"items":{},"nextId":0}})
    );
    assert_eq!(held_actors(&h, &c1).await, vec![key("acme/todo/groceries")]);
}

/// A binary (base64-encoded) frame is refused with `bad_request`, even when it decodes to a
/// valid ping.
#[tokio::test]
async fn base64_frame_is_refused_with_bad_request() {
    let h = Harness::start().await;
    let mut event = raw("ws-message");
    event["requestContext"]["connectionId"] = json!("c1");
    event["body"] = json!("eyJhY3Rpb24iOiJwaW5nIiwiaWQiOjF9"); // {"action":"ping","id":1}
    event["isBase64Encoded"] = json!(true);
    let payload: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event).expect("event decodes");

    let reply = handle_message(&h, lambda_event(payload)).await;

    assert_error(&reply, "bad_request", None, "base64 frame");
}

/// A frame from a connection that never connected is refused with `unauthorized`.
#[tokio::test]
async fn message_from_an_unknown_connection_is_unauthorized() {
    let h = Harness::start().await;

    let reply = message(
        &h,
        "stranger",
        r#"{"action":"subscribe","id":9,"actor":"todo/groceries"}"#,
    )
    .await;

    assert_error(&reply, "unauthorized", Some(&json!(9)), "never connected");
    assert!(h
        .store
        .subscriptions_of(&connection("stranger"))
        .await
        .expect("query")
        .is_empty());
}

/// Every class of malformed frame gets a typed `bad_request` error (never a panic), echoing
/// the request id whenever the frame carried a usable one, and writes nothing.
#[tokio::test]
async fn malformed_frames_get_bad_request_echoing_any_usable_id() {
    let h = Harness::start().await;
    connect_acme(&h, "c1").await;

    assert_refusals(
        &h,
        "c1",
        &[
            ("empty frame", "", "bad_request", None),
            ("invalid JSON", r#"{"action":"ping","id":1"#, "bad_request", None),
            ("JSON array", r#"[{"action":"ping","id":1}]"#, "bad_request", None),
            ("missing action", r#"{"id":1}"#, "bad_request", Some(json!(1))),
            ("non-string action", r#"{"id":"a","action":3}"#, "bad_request", Some(json!("a"))),
            ("unknown action", r#"{"id":5,"action":"explode"}"#, "bad_request", Some(json!(5))),
            ("object id", r#"{"action":"ping","id":{"x":1}}"#, "bad_request", None),
            ("fractional id", r#"{"action":"ping","id":1.5}"#, "bad_request", None),
            (
                "call without method",
                r#"{"action":"call","id":2,"actor":"todo/groceries"}"#,
                "bad_request",
                Some(json!(2)),
            ),
            (
                "numeric actor",
                r#"{"action":"subscribe","id":3,"actor":42}"#,
                "bad_request",
                Some(json!(3)),
            ),
            (
                "unknown field on a valid call",
                r#"{"action":"call","id":4,"actor":"todo/groceries","method":"add","args":{"title":"milk"},"bogus":true}"#,
                "bad_request",
                Some(json!(4)),
            ),
        ],
    )
    .await;

    assert_no_actor_written(&h, &["acme/todo/groceries"]).await;
}

/// Well-formed calls that cannot run are refused with their own codes: an unknown actor type
/// or method is `not_found`, bad args are `bad_request`; none writes the actors table.
#[tokio::test]
async fn calls_to_unknown_actors_or_methods_or_with_bad_args_write_nothing() {
    let h = Harness::start().await;
    connect_acme(&h, "c1").await;

    assert_refusals(
        &h,
        "c1",
        &[
            (
                "unknown actor type",
                r#"{"action":"call","id":6,"actor":"nope/x","method":"add","args":{"title":"milk"}}"#,
                "not_found",
                Some(json!(6)),
            ),
            (
                "unknown method",
                r#"{"action":"call","id":7,"actor":"todo/groceries","method":"explode"}"#,
                "not_found",
                Some(json!(7)),
            ),
            (
                "bad args",
                r#"{"action":"call","id":"b","actor":"todo/groceries","method":"add","args":{"title":42}}"#,
                "bad_request",
                Some(json!("b")),
            ),
        ],
    )
    .await;

    assert_no_actor_written(&h, &["acme/nope/x", "acme/todo/groceries"]).await;
}

// ---------------------------------------------------------------------------------------
// $disconnect
// ---------------------------------------------------------------------------------------

/// `$disconnect` deletes the connection and all 30 of its subscriptions (more than one
/// BatchWriteItem of 25); another connection's subscriptions, even to the same actors, stay.
#[tokio::test]
async fn disconnect_deletes_the_connection_and_every_subscription_past_one_batch() {
    let h = Harness::start().await;
    let leaver = connect_acme(&h, "leaver").await;
    let stayer = connect_acme(&h, "stayer").await;
    for i in 0..30 {
        subscribe(&h, "leaver", &format!("counter/c{i:02}")).await;
    }
    subscribe(&h, "stayer", "counter/c00").await;
    subscribe(&h, "stayer", "counter/mine").await;
    assert_eq!(h.store.subscriptions_of(&leaver).await.expect("query").len(), 30);

    let response =
        statecast_disconnect::handler(&h.disconnect_service(), ws_event("ws-disconnect", "leaver", None, None))
            .await
            .expect("the disconnect handler never fails");

    assert_eq!(response.status_code, 200);
    assert_eq!(stored_connection(&h, "leaver").await, None);
    assert!(h.store.subscriptions_of(&leaver).await.expect("query").is_empty());
    assert!(stored_connection(&h, "stayer").await.is_some());
    let mut kept = held_actors(&h, &stayer).await;
    kept.sort();
    assert_eq!(kept, vec![key("acme/counter/c00"), key("acme/counter/mine")]);
    let c00 = h
        .store
        .subscribers(&key("acme/counter/c00"), None)
        .await
        .expect("query");
    assert_eq!(c00.connections, vec![stayer]);
}

// ---------------------------------------------------------------------------------------
// Actors stream
// ---------------------------------------------------------------------------------------

/// A fan-out handler with a recording sender, an acme connection subscribed to
/// `todo/groceries` (the fixtures' actor) and a dev connection subscribed to its namesake.
struct Watching {
    _h: Harness,
    sender: Arc<RecordingSender>,
    fanout: FanoutService,
    acme: ConnectionId,
    dev: ConnectionId,
}

async fn watch_groceries() -> Watching {
    let h = Harness::start().await;
    let sender = Arc::new(RecordingSender::new());
    let fanout = h.fanout_service(sender.clone());
    let acme = connect_acme(&h, "acme-watcher").await;
    assert_eq!(
        connect_status(&h.connect_service(), "dev-watcher", Some(Value::Null)).await,
        200
    );
    subscribe(&h, "acme-watcher", "todo/groceries").await;
    subscribe(&h, "dev-watcher", "todo/groceries").await;
    Watching {
        _h: h,
        sender,
        fanout,
        acme,
        dev: connection("dev-watcher"),
    }
}

impl Watching {
    /// Runs the fan-out handler on `event`; asserts no record is reported for retry and only
    /// the acme subscriber was posted to; returns the frames it got.
    async fn fan_out(&self, event: LambdaEvent<StreamEvent>) -> Vec<Value> {
        let response = statecast_fanout::handler(&self.fanout, event)
            .await
            .expect("the fan-out handler never fails");
        assert!(
            response.batch_item_failures.is_empty(),
            "{:?}",
            response.batch_item_failures
        );
        assert!(
            self.sender.frames_to(&self.dev).is_empty(),
            "another tenant's namesake actor"
        );
        self.sender.frames_to(&self.acme)
    }
}

const FIXTURE_EPOCH: u64 = 1_795_435_210_000;

/// The `stream-insert` fixture reaches the subscriber as a snapshot at version 1: against the
/// default state the patch (add item, replace nextId) is larger than the new state.
#[tokio::test]
async fn stream_insert_fixture_is_fanned_out_as_a_snapshot_at_version_one() {
    let w = watch_groceries().await;

    let frames = w.fan_out(stream_event("stream-insert")).await;

    assert_eq!(
        frames,
        vec![
            json!({"type":"snapshot","actor":"todo/groceries","epoch":FIXTURE_EPOCH,"version":1,
                    "state":{"items":{"1":{"title":"milk","done":false}},"nextId":1}})
        ]
    );
}

/// The `stream-modify` fixture reaches the subscriber as a one-operation delta from 1 to 2.
#[tokio::test]
async fn stream_modify_fixture_is_fanned_out_as_a_delta_from_one_to_two() {
    let w = watch_groceries().await;

    let frames = w.fan_out(stream_event("stream-modify")).await;

    assert_eq!(
        frames,
        vec![
            json!({"type":"delta","actor":"todo/groceries","epoch":FIXTURE_EPOCH,"from":1,"to":2,
                    "patch":[{"op":"replace","path":"/items/1/done","value":true}]})
        ]
    );
}

/// The `stream-remove` fixture reaches the subscriber as `deleted` with the old epoch and version.
#[tokio::test]
async fn stream_remove_fixture_is_fanned_out_as_deleted() {
    let w = watch_groceries().await;

    let frames = w.fan_out(stream_event("stream-remove")).await;

    assert_eq!(
        frames,
        vec![json!({"type":"deleted","actor":"todo/groceries","epoch":FIXTURE_EPOCH,"version":2})]
    );
}

/// A record whose image does not decode (version is a string) is skipped, not reported for
/// retry, and the valid record after it in the same batch is still delivered.
#[tokio::test]
async fn undecodable_stream_record_is_skipped_and_the_rest_of_the_batch_delivered() {
    let w = watch_groceries().await;
    let mut corrupt = raw("stream-insert")["Records"][0].clone();
    corrupt["dynamodb"]["NewImage"]["version"] = json!({"S": "one"});
    let valid = raw("stream-modify")["Records"][0].clone();
    let payload = serde_json::to_vec(&json!({ "Records": [corrupt, valid] })).expect("JSON");
    let event: StreamEvent = serde_json::from_slice(&payload).expect("a corrupt image does not fail the batch");

    let frames = w.fan_out(lambda_event(event)).await;

    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "delta");
    assert_eq!(frames[0]["to"], 2);
}

/// The actors `connection` is subscribed to, as the by-connection index has them.
async fn held_actors(h: &Harness, connection: &ConnectionId) -> Vec<ActorKey> {
    let held = h.store.subscriptions_of(connection).await.expect("query");
    held.into_iter().map(|h| h.actor).collect()
}
