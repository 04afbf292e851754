//! Triggers through local mode, as a sender meets them: real HTTP requests to the trigger
//! endpoint (HTTP API events into the `functions/trigger` handler), the embedded engine, and a
//! real WebSocket subscriber. Every refused request is checked to have written nothing.

use serde_json::json;
use statecast::app::application;
use statecast::application::Application;
use statecast::ids::{ActorKey, TenantId};
use statecast::ports::ActorStore;
use statecast::records::now_millis;
use statecast::trigger::signature::header_value;
use statecast::trigger::{Secret, Trigger, Verification};
use statecast_local::{LocalOptions, LocalStack};
use statecast_tests::http::{post, HttpResponse};
use statecast_tests::local::{start_local, store};
use statecast_tests::replica::{Applied, Replica};
use statecast_tests::ws_client::WsClient;

const SECRET: &str = "whsec-test-3f9a";
const TOKEN: &str = "bearer-test-77c1";

/// The shipped application plus one trigger per verification, and one that starts `order`.
fn app() -> Application {
    let add = || json!({"title": {"$ref": "body.title"}});
    application()
        .expect("valid")
        .triggers([
            Trigger::webhook("signed", Verification::hmac(Secret::value(SECRET)))
                .tenant("dev")
                .delivery_header("X-Delivery")
                .max_body_bytes(1024)
                .call("todo/inbox", "add", add()),
            Trigger::webhook("bearer", Verification::bearer(Secret::value(TOKEN)))
                .tenant("dev")
                .call("todo/bearer", "add", add()),
            Trigger::webhook("open", Verification::None)
                .tenant("dev")
                .call("todo/open", "add", add()),
            Trigger::webhook("order", Verification::None)
                .tenant("dev")
                .delivery_header("X-Delivery")
                .start_workflow(
                    "order",
                    json!({"sku": {"$ref": "body.sku"}, "quantity": 1, "amount": {"$ref": "body.amount"}}),
                ),
        ])
        .expect("valid triggers")
}

async fn start() -> LocalStack {
    start_local(LocalOptions {
        application: app(),
        ..LocalOptions::default()
    })
    .await
}

fn now() -> i64 {
    now_millis() / 1000
}

fn signature(secret: &str, at: i64, body: &[u8]) -> (&'static str, String) {
    ("Statecast-Signature", header_value(secret.as_bytes(), at, body))
}

async fn hook(stack: &LocalStack, trigger: &str, headers: &[(&str, String)], body: &[u8]) -> HttpResponse {
    post(&format!("{}/hooks/{trigger}", stack.triggers_url), headers, body).await
}

/// The stored version of `todo/<id>` in tenant `dev` (0: never written).
async fn version(stack: &LocalStack, id: &str) -> u64 {
    let key = ActorKey::new(TenantId::new("dev").expect("tenant"), "todo", id).expect("key");
    store(stack).load(&key).await.expect("load").map_or(0, |r| r.version.0)
}

async fn recorded(stack: &LocalStack, trigger: &str, delivery: &str) -> bool {
    let key = format!("dev/trigger:{trigger}:{delivery}");
    store(stack).recorded_call(&key).await.expect("read").is_some()
}

struct Case {
    name: &'static str,
    trigger: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    /// Whether the call runs (the todo list's version moves by one).
    applied: bool,
}

fn signed(
    name: &'static str,
    delivery: &str,
    body: &[u8],
    sig: (&'static str, String),
    status: u16,
    applied: bool,
) -> Case {
    Case {
        name,
        trigger: "signed",
        headers: vec![sig, ("X-Delivery", delivery.to_owned())],
        body: body.to_vec(),
        status,
        applied,
    }
}

/// The verification matrix of an HMAC webhook: each request gets its status, and a refused
/// one writes nothing (no state change, no recorded delivery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_verification_matrix() {
    let stack = start().await;
    let t = now();
    let milk = br#"{"title":"milk"}"#.to_vec();
    let eggs = br#"{"title":"eggs"}"#.to_vec();
    let valid = |body: &[u8]| signature(SECRET, t, body);
    let other_v1 = "0".repeat(64);
    let good_v1 = valid(&eggs)
        .1
        .split_once(",v1=")
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    let big = format!(r#"{{"title":"{}"}}"#, "x".repeat(2000)).into_bytes();
    let cases = vec![
        signed("valid", "d-1", &milk, valid(&milk), 200, true),
        signed("replay of a valid delivery", "d-1", &milk, valid(&milk), 200, false),
        signed("redelivery with other content", "d-1", &eggs, valid(&eggs), 409, false),
        signed(
            "wrong secret",
            "d-2",
            &eggs,
            signature("not-the-secret", t, &eggs),
            401,
            false,
        ),
        signed("body changed", "d-3", &eggs, valid(&milk), 401, false),
        signed(
            "timestamp too old",
            "d-4",
            &eggs,
            signature(SECRET, t - 600, &eggs),
            401,
            false,
        ),
        signed(
            "timestamp in the future",
            "d-5",
            &eggs,
            signature(SECRET, t + 600, &eggs),
            401,
            false,
        ),
        signed(
            "header malformed",
            "d-6",
            &eggs,
            ("Statecast-Signature", "t=abc,v1=zz".into()),
            401,
            false,
        ),
        signed(
            "several v1, none valid",
            "d-7",
            &eggs,
            ("Statecast-Signature", format!("t={t},v1={other_v1},v1={other_v1}")),
            401,
            false,
        ),
        signed(
            "several v1, one valid",
            "d-8",
            &eggs,
            ("Statecast-Signature", format!("t={t},v1={other_v1},v1={good_v1}")),
            200,
            true,
        ),
        Case {
            name: "header missing",
            trigger: "signed",
            headers: vec![("X-Delivery", "d-9".into())],
            body: eggs.clone(),
            status: 401,
            applied: false,
        },
        Case {
            name: "unknown trigger",
            trigger: "nope",
            headers: vec![valid(&eggs), ("X-Delivery", "d-10".into())],
            body: eggs.clone(),
            status: 404,
            applied: false,
        },
        signed("body over the limit", "d-11", &big, valid(&big), 413, false),
        signed("body not JSON", "d-12", b"milk", valid(b"milk"), 400, false),
        signed(
            "template names nothing",
            "d-13",
            br#"{"name":"x"}"#,
            valid(br#"{"name":"x"}"#),
            400,
            false,
        ),
        Case {
            name: "delivery id missing",
            trigger: "signed",
            headers: vec![valid(&eggs)],
            body: eggs.clone(),
            status: 400,
            applied: false,
        },
    ];
    let mut expected_version = 0;
    let mut first_reply = None;
    for case in cases {
        let reply = hook(&stack, case.trigger, &case.headers, &case.body).await;
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.body);
        expected_version += u64::from(case.applied);
        assert_eq!(version(&stack, "inbox").await, expected_version, "{}: state", case.name);
        let delivery = case
            .headers
            .iter()
            .find(|(n, _)| *n == "X-Delivery")
            .map(|(_, v)| v.clone());
        if let (Some(delivery), false) = (delivery, case.status == 200 || case.name.starts_with("redelivery")) {
            assert!(
                !recorded(&stack, "signed", &delivery).await,
                "{}: nothing recorded",
                case.name
            );
        }
        match case.name {
            "valid" => first_reply = Some(reply.json()),
            "replay of a valid delivery" => assert_eq!(Some(reply.json()), first_reply, "the first result"),
            "template names nothing" => assert!(reply.body.contains("body.title"), "{}", reply.body),
            _ => {}
        }
    }
    assert_eq!(first_reply, Some(json!({"value": {"id": "1"}, "version": 1})));
    stack.shutdown().await;
}

/// Bearer tokens are compared exactly, and `Verification::None` takes any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_and_explicitly_open_hooks() {
    let stack = start().await;
    let body = br#"{"title":"tea"}"#;
    for (auth, status) in [
        (None, 401),
        (Some(format!("Bearer {TOKEN}x")), 401),
        (Some(format!("Basic {TOKEN}")), 401),
        (Some(format!("Bearer {TOKEN}")), 200),
        (Some(format!("bearer {TOKEN}")), 200),
    ] {
        let headers: Vec<(&str, String)> = auth.iter().map(|a| ("Authorization", a.clone())).collect();
        let reply = hook(&stack, "bearer", &headers, body).await;
        assert_eq!(reply.status, status, "{auth:?}: {}", reply.body);
    }
    assert_eq!(version(&stack, "bearer").await, 2, "only the two accepted requests ran");
    assert_eq!(hook(&stack, "open", &[], body).await.status, 200);
    assert_eq!(version(&stack, "open").await, 1);
    stack.shutdown().await;
}

/// A webhook that starts a workflow answers 202 with its id; a redelivery is the same start,
/// and a redelivery with other input is a conflict that starts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_starts_a_workflow_once_per_delivery() {
    let stack = start().await;
    let body = br#"{"sku":"A-1","amount":40}"#;
    let delivery = || ("X-Delivery", "o-1".to_owned());
    let first = hook(&stack, "order", &[delivery()], body).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.json()["created"], true);
    let again = hook(&stack, "order", &[delivery()], body).await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.json()["workflowId"], first.json()["workflowId"]);
    assert_eq!(again.json()["created"], false);
    let other = hook(&stack, "order", &[delivery()], br#"{"sku":"B-2","amount":40}"#).await;
    assert_eq!(other.status, 409, "{}", other.body);
    let missing = hook(&stack, "order", &[("X-Delivery", "o-2".into())], br#"{"amount":40}"#).await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(missing.body.contains("body.sku"), "{}", missing.body);
    stack.shutdown().await;
}

/// End to end: a signed webhook calling `todo.add` (the shipped `todo-add` trigger) reaches a
/// WebSocket subscriber of the list as an ordinary delta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_call_reaches_a_websocket_subscriber_as_a_delta() {
    let secret = "e2e-secret";
    let stack = start_local(LocalOptions {
        trigger_secrets: [("TODO_HOOK_SECRET".to_owned(), secret.to_owned())].into(),
        ..LocalOptions::default()
    })
    .await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let reply = client
        .request(
            json!({"action":"subscribe","id":"s","actor":"todo/groceries"}),
            &mut Vec::new(),
        )
        .await;
    let mut replica = Replica::from_subscribed(&reply);
    let default = json!({"items": {}, "nextId": 0});
    // A few items first, so one more is a delta smaller than the state.
    for (n, item) in ["bread", "jam", "rice", "oats"].iter().enumerate() {
        let call = json!({"action":"call","id":n,"actor":"todo/groceries","method":"add","args":{"title":item}});
        let mut early = Vec::new();
        client.request(call, &mut early).await;
        for frame in early {
            assert_ne!(replica.apply(&frame, &default), Applied::Gap, "{frame}");
        }
    }
    while replica.version < 4 {
        let frame = client.frame().await;
        assert_ne!(replica.apply(&frame, &default), Applied::Gap, "{frame}");
    }
    let body = br#"{"list":"groceries","title":"from the webhook"}"#;
    let headers = [
        signature(secret, now(), body),
        ("Statecast-Delivery", "evt-1".to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ];
    let reply = hook(&stack, "todo-add", &headers, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), json!({"value": {"id": "5"}, "version": 5}));
    let mut frame = client.frame().await;
    while frame["to"].as_u64() < Some(5) {
        frame = client.frame().await; // a late copy of an earlier change
    }
    assert_eq!(frame["type"], "delta", "{frame}");
    assert_eq!(
        (frame["from"].as_u64(), frame["to"].as_u64()),
        (Some(4), Some(5)),
        "{frame}"
    );
    assert_eq!(replica.apply(&frame, &default), Applied::Applied);
    assert_eq!(
        replica.state["items"]["5"],
        json!({"title": "from the webhook", "done": false})
    );
    stack.shutdown().await;
}

/// Local mode's queue endpoint: messages reach the handler as `SqsEvent` batches; the poison
/// one is retried, then lands in the dead-letter list after its receives, and the others are
/// applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_queue_messages_are_applied_and_a_poison_one_is_dead_lettered() {
    let stack = start().await;
    let queue = format!("{}/queues/todo-inbox", stack.triggers_url);
    for body in [
        r#"{"list":"inbox","title":"a"}"#,
        "not json",
        r#"{"list":"inbox","title":"b"}"#,
    ] {
        let sent = post(&queue, &[], body.as_bytes()).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    let counts = stack
        .queues
        .wait_for("todo-inbox", |c| c.succeeded + c.dead.len() == 3)
        .await;
    assert_eq!(counts.succeeded, 2);
    assert_eq!(counts.dead.len(), 1);
    assert_eq!(
        (counts.dead[0].body.as_str(), counts.dead[0].receive_count),
        ("not json", 3)
    );
    assert_eq!(version(&stack, "inbox").await, 2, "each good message applied once");
    let listed = statecast_tests::http::request("GET", &format!("{queue}/dead-letters"), &[], b"").await;
    assert_eq!(listed.json()[0]["body"], "not json", "{}", listed.body);
    stack.shutdown().await;
}

/// A schedule trigger fired by hand in local mode (`POST /schedules/{name}`) runs its method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fired_by_hand_runs_its_method() {
    let stack = start().await;
    assert_eq!(
        stack.manual_schedules,
        vec!["nightly-clear".to_owned()],
        "cron schedules run by hand"
    );
    assert_eq!(hook(&stack, "open", &[], br#"{"title":"x"}"#).await.status, 200);
    let fired = post(&format!("{}/schedules/nightly-clear", stack.triggers_url), &[], b"").await;
    assert_eq!(fired.status, 200, "{}", fired.body);
    assert_eq!(fired.json()["value"], json!({"removed": 0}));
    let unknown = post(&format!("{}/schedules/nope", stack.triggers_url), &[], b"").await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    stack.shutdown().await;
}

/// A `rate(..)` schedule runs on local mode's timer (here 600 times faster: every 100 ms) and
/// its calls reach a subscriber like any other change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_schedule_ticks_on_the_local_timer() {
    let app = app()
        .triggers([Trigger::schedule("tick", "rate(1 minute)").tenant("dev").call(
            "counter/ticks",
            "increment",
            json!({}),
        )])
        .expect("valid");
    let stack = start_local(LocalOptions {
        application: app,
        schedule_speedup: 600,
        ..LocalOptions::default()
    })
    .await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let reply = client
        .request(
            json!({"action":"subscribe","id":"s","actor":"counter/ticks"}),
            &mut Vec::new(),
        )
        .await;
    let mut replica = Replica::from_subscribed(&reply);
    while replica.version < 2 {
        let frame = client.frame().await;
        assert_ne!(replica.apply(&frame, &json!({"value": 0})), Applied::Gap, "{frame}");
    }
    assert!(replica.state["value"].as_i64() >= Some(2), "{}", replica.state);
    stack.shutdown().await;
}
