//! Loads the real Lambda event JSON under `tests/fixtures/` and adapts it per test.

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

/// The raw JSON of `tests/fixtures/{name}.json`. A WebSocket event's `connectedAt` and
/// `requestTimeEpoch` are moved to this test process' start, so the connection's TTL lies in
/// the future (DynamoDB Local deletes expired items on its own).
pub fn raw(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
    let mut event: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {path} is not JSON: {e}"));
    if let Some(context) = event.get_mut("requestContext").and_then(Value::as_object_mut) {
        if context.contains_key("connectedAt") {
            let now = *PROCESS_START.get_or_init(statecast::records::now_millis);
            context.insert("connectedAt".into(), Value::from(now));
            context.insert("requestTimeEpoch".into(), Value::from(now + 120));
        }
    }
    event
}

static PROCESS_START: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// A WebSocket event fixture (`ws-connect`, `ws-message`, `ws-disconnect`) for
/// `connection_id`, with `body` when given and the authorizer context replaced by `authorizer`
/// (`Value::Null` removes it).
pub fn ws_event(
    name: &str,
    connection_id: &str,
    body: Option<&str>,
    authorizer: Option<Value>,
) -> LambdaEvent<ApiGatewayWebsocketProxyRequest> {
    let mut event = raw(name);
    event["requestContext"]["connectionId"] = Value::from(connection_id);
    if let Some(body) = body {
        event["body"] = Value::from(body);
    }
    if let Some(authorizer) = authorizer {
        match authorizer {
            Value::Null => {
                if let Some(context) = event["requestContext"].as_object_mut() {
                    context.remove("authorizer");
                }
            }
            other => event["requestContext"]["authorizer"] = other,
        }
    }
    let payload = serde_json::from_value(event).unwrap_or_else(|e| panic!("fixture {name} does not decode: {e}"));
    LambdaEvent::new(payload, Context::default())
}

/// A DynamoDB stream event fixture (`stream-insert`, `stream-modify`, `stream-remove`), decoded
/// from the fixture's JSON text as the Lambda runtime decodes the fan-out handler's payload.
pub fn stream_event(name: &str) -> LambdaEvent<StreamEvent> {
    let path = format!("{}/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
    let payload = serde_json::from_slice(&text).unwrap_or_else(|e| panic!("fixture {name} does not decode: {e}"));
    LambdaEvent::new(payload, Context::default())
}

/// Wraps an event built by a test for a handler call, converting it to the handler's payload
/// type when they differ (e.g. an `aws_lambda_events` stream event for the fan-out handler).
pub fn lambda_event<T, U: From<T>>(payload: T) -> LambdaEvent<U> {
    LambdaEvent::new(U::from(payload), Context::default())
}

/// The reply frame of a `$default` route response: a 200 with a JSON text body.
pub fn route_reply(
    response: Result<aws_lambda_events::apigw::ApiGatewayProxyResponse, lambda_runtime::Error>,
) -> Value {
    let response = response.expect("the default handler never fails");
    assert_eq!(response.status_code, 200);
    match response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("reply {text:?}: {e}"))
        }
        other => panic!("expected a text reply, got {other:?}"),
    }
}
