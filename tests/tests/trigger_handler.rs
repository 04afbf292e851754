//! The `functions/trigger` handler fed real Lambda event JSON (an SQS batch, an HTTP API
//! request, a schedule input) against the DynamoDB-compatible engine (or DynamoDB Local with
//! `STATECAST_TEST_DYNAMODB_ENDPOINT`).

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use statecast::ids::{ActorKey, TenantId};
use statecast::ports::ActorStore;
use statecast::records::now_millis;
use statecast::trigger::signature::header_value;
use statecast::trigger::TriggerService;
use statecast_tests::fixtures::raw;
use statecast_tests::Harness;
use statecast_trigger::{handler, Deps, QueueNames, TriggerEvent, TriggerResponse};

const SECRET: &str = "handler-test-secret";
const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:statecast-TodoInboxQueue-1A2B3C4D";
const POISON: &str = "2e1424d4-f796-459a-8184-9c92662be6da";

fn deps(harness: &Harness) -> Deps {
    let service = TriggerService::new(&harness.app, &harness.services(), |_| Some(SECRET.to_owned())).expect("armed");
    let queues = QueueNames::parse(&format!("todo-inbox={QUEUE_ARN}")).expect("queue names");
    Deps::new(service, queues)
}

async fn invoke(deps: &Deps, event: Value) -> TriggerResponse {
    let event: TriggerEvent = serde_json::from_value(event).expect("a trigger event");
    handler(deps, LambdaEvent::new(event, Context::default()))
        .await
        .expect("handled")
}

async fn groceries(harness: &Harness) -> (u64, Value) {
    let key = ActorKey::new(TenantId::new("dev").expect("tenant"), "todo", "groceries").expect("key");
    let record = harness.store.load(&key).await.expect("load").expect("the list exists");
    (record.version.0, record.state)
}

fn failures(response: TriggerResponse) -> Vec<String> {
    match response {
        TriggerResponse::Batch(batch) => batch
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        other => panic!("a batch response, not {other:?}"),
    }
}

/// An SQS batch with one poison message (its body lacks the `title` the template needs): the
/// others are applied, the poison one alone is a batch item failure; the same batch delivered
/// again applies nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_batch_with_a_poison_message_applies_the_rest_and_reports_it() {
    let harness = Harness::start().await;
    let deps = deps(&harness);
    assert_eq!(failures(invoke(&deps, raw("sqs-batch")).await), vec![POISON.to_owned()]);
    let (version, state) = groceries(&harness).await;
    assert_eq!(version, 2);
    let mut titles: Vec<&str> = state["items"]
        .as_object()
        .expect("items")
        .values()
        .filter_map(|i| i["title"].as_str())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, vec!["eggs", "milk"]);
    // Redelivered (as SQS does when a batch's invocation fails): no second effect.
    assert_eq!(failures(invoke(&deps, raw("sqs-batch")).await), vec![POISON.to_owned()]);
    assert_eq!(groceries(&harness).await.0, 2, "each message applied once");
}

/// The API Gateway HTTP API event of a webhook (base64 body): a stale signature is refused
/// with 401 and writes nothing; signed now, the call runs and the response carries its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_api_event_is_verified_then_applied() {
    let harness = Harness::start().await;
    let deps = deps(&harness);
    let status = |response: &TriggerResponse| match response {
        TriggerResponse::Http(r) => r.status_code,
        other => panic!("an HTTP response, not {other:?}"),
    };
    let stale = invoke(&deps, raw("http-webhook")).await;
    assert_eq!(status(&stale), 401);
    let key = ActorKey::new(TenantId::new("dev").expect("tenant"), "todo", "groceries").expect("key");
    assert!(
        harness.store.load(&key).await.expect("load").is_none(),
        "nothing written"
    );

    let mut event = raw("http-webhook");
    let body = br#"{"list":"groceries","title":"milk"}"#;
    event["headers"]["statecast-signature"] = json!(header_value(SECRET.as_bytes(), now_millis() / 1000, body));
    let response = invoke(&deps, event).await;
    assert_eq!(status(&response), 200);
    let TriggerResponse::Http(response) = response else {
        unreachable!()
    };
    let Some(aws_lambda_events::encodings::Body::Text(text)) = &response.body else {
        panic!("a text body");
    };
    assert_eq!(
        serde_json::from_str::<Value>(text).expect("JSON"),
        json!({"value": {"id": "1"}, "version": 1})
    );
    assert_eq!(groceries(&harness).await.0, 1);
}

/// The schedule's input (`{"schedule": "nightly-clear"}`) runs `todo.clear_done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_tick_runs_its_method() {
    let harness = Harness::start().await;
    let deps = deps(&harness);
    failures(invoke(&deps, raw("sqs-batch")).await);
    let connection = harness.connect("c-1", None).await;
    let toggle = json!({"action":"call","id":1,"actor":"todo/groceries","method":"toggle","args":{"id":"1"}});
    harness
        .message_service()
        .handle(&connection, &toggle.to_string(), "r-1")
        .await;
    let TriggerResponse::Scheduled(fired) = invoke(&deps, json!({"schedule": "nightly-clear"})).await else {
        panic!("a schedule response");
    };
    assert_eq!(fired["value"], json!({"removed": 1}), "{fired}");
    let (_, state) = groceries(&harness).await;
    assert_eq!(state["items"].as_object().map(|i| i.len()), Some(1));
}

/// Every trigger secret missing at start-up is named in one error; events of no known shape
/// are refused.
#[tokio::test]
async fn missing_secrets_and_unknown_events_are_refused() {
    let harness = Harness::start().await;
    let error = TriggerService::new(&harness.app, &harness.services(), |_| None)
        .err()
        .expect("a secret is missing");
    assert_eq!(error.problems.len(), 1, "{error}");
    assert!(error.to_string().contains("TODO_HOOK_SECRET"), "{error}");
    let refused = serde_json::from_value::<TriggerEvent>(json!({"hello": "world"}));
    assert!(refused.is_err());
}
