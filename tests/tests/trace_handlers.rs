//! The `$default` handler writes who made a change with the change: API Gateway's request id
//! and, when the Lambda context carries an X-Ray trace header, its root trace id; a frame that
//! changes nothing writes nothing.

use lambda_runtime::Context;
use serde_json::json;
use statecast::ids::{ActorKey, TenantId};
use statecast::ports::ActorStore;
use statecast_tests::fixtures::{raw, route_reply, ws_event};
use statecast_tests::Harness;

#[tokio::test]
async fn a_call_stores_its_request_id_and_x_ray_trace_id_with_the_new_version() {
    let h = Harness::start().await;
    h.connect("tracer", Some("acme")).await;
    let body = json!({"action": "call", "id": 1, "actor": "counter/traced", "method": "increment", "args": {}});
    let mut event = ws_event("ws-message", "tracer", Some(&body.to_string()), None);
    let mut context = Context::default();
    context.xray_trace_id = Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
    event.context = context;
    let reply = route_reply(statecast_default::handler(&h.message_service(), event).await);
    assert_eq!(reply["type"], "result", "{reply}");

    let key = ActorKey::new(TenantId::new("acme").expect("tenant"), "counter", "traced").expect("key");
    let stored = h.store.load(&key).await.expect("load").expect("stored");
    let trace = stored.trace.expect("the change carries its trace");
    assert_eq!(
        json!(trace.request_id),
        raw("ws-message")["requestContext"]["requestId"],
        "API Gateway's request id (the access log's requestId)"
    );
    assert_eq!(
        trace.xray_trace_id.as_deref(),
        Some("1-5759e988-bd862e3fe1be46a994272793")
    );

    // A read changes nothing, so the stored trace stays the writer's.
    let get = json!({"action": "call", "id": 2, "actor": "counter/traced", "method": "get", "args": {}});
    let reply = route_reply(
        statecast_default::handler(
            &h.message_service(),
            ws_event("ws-message", "tracer", Some(&get.to_string()), None),
        )
        .await,
    );
    assert_eq!(reply["type"], "result", "{reply}");
    let again = h.store.load(&key).await.expect("load").expect("stored");
    assert_eq!(again.version, stored.version);
    assert_eq!(
        again.trace.and_then(|t| t.xray_trace_id).as_deref(),
        Some("1-5759e988-bd862e3fe1be46a994272793")
    );
}
