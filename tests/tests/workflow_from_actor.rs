//! An actor method starts a workflow: the start and the method's state change are one
//! DynamoDB transaction, so either both happen or neither does.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use statecast::actor::{Actor, ActorError, Effects};
use statecast::app::application;
use statecast::application::Application;
use statecast::ids::{ActorKey, ConnectionId, TenantId};
use statecast::ports::{ActorStore, ConnectionStore};
use statecast::protocol::ServerMessage;
use statecast::records::{now_millis, ConnectionRecord};
use statecast::workflow::{InstanceStatus, WorkflowSettings};
use statecast_tests::{Harness, DEV_TENANT};

/// Keeps the ids of the orders it placed; `place` starts the example `order` workflow.
struct Checkout;

#[derive(Debug, Default, Serialize, Deserialize)]
struct CheckoutState {
    orders: Vec<String>,
}

impl Actor for Checkout {
    type State = CheckoutState;

    fn actor_type(&self) -> &'static str {
        "checkout"
    }

    fn call(&self, state: &mut CheckoutState, method: &str, _args: Value) -> Result<Value, ActorError> {
        match method {
            "count" => Ok(json!(state.orders.len())),
            other => Err(ActorError::unknown_method(
                "checkout",
                other,
                &["place", "place_elsewhere", "count"],
            )),
        }
    }

    fn call_with_effects(
        &self,
        effects: &mut Effects,
        state: &mut CheckoutState,
        method: &str,
        args: Value,
    ) -> Result<Value, ActorError> {
        let workflow = match method {
            "place" => "order",
            "place_elsewhere" => "no-such-workflow",
            _ => return self.call(state, method, args),
        };
        let id = effects.start_workflow(workflow, json!({"sku": "A-1", "quantity": 1, "amount": args["amount"]}));
        state.orders.push(id.clone());
        Ok(json!({"workflowId": id}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_starts_a_workflow_in_the_same_transaction_as_its_state() {
    let harness = Harness::start_with(application().expect("valid").actor(Checkout)).await;
    let workflows = harness.services().workflow();
    let messages = harness.message_service();
    let without_workflows = harness
        .services_with(
            Application::new().actor(Checkout),
            harness.settings.clone(),
            WorkflowSettings::default(),
        )
        .message();
    let connection = ConnectionId::new("conn-1").expect("id");
    let tenant = TenantId::new(DEV_TENANT).expect("tenant");
    harness
        .store
        .put_connection(&ConnectionRecord {
            connection_id: connection.clone(),
            tenant: tenant.clone(),
            principal: None,
            connected_at: now_millis(),
            expires_at: now_millis() / 1000 + 3600,
        })
        .await
        .expect("connection stored");
    let key = ActorKey::new(tenant.clone(), "checkout", "cart-1").expect("key");

    let reply = messages
        .handle(
            &connection,
            r#"{"action":"call","id":1,"actor":"checkout/cart-1","method":"place","args":{"amount":40}}"#,
            "req-1",
        )
        .await;
    let ServerMessage::Result { value, version, .. } = reply else {
        panic!("a result: {reply:?}");
    };
    assert_eq!(version.0, 1);
    let workflow_id = value["workflowId"].as_str().expect("id").to_owned();
    let stored = harness.store.load(&key).await.expect("read").expect("stored");
    assert_eq!(stored.state, json!({"orders": [workflow_id.clone()]}));
    let instance = workflows
        .instance_of(&tenant, &workflow_id)
        .await
        .expect("the instance exists");
    assert_eq!(instance.status, InstanceStatus::Running);
    assert_eq!(instance.workflow, "order");
    let progress = harness.store.load(&instance.progress).await.expect("read");
    assert!(progress.is_some(), "the progress actor was written with it");

    // A start that cannot happen refuses the whole call: the state is not written either.
    let reply = messages
        .handle(
            &connection,
            r#"{"action":"call","id":2,"actor":"checkout/cart-1","method":"place_elsewhere","args":{"amount":1}}"#,
            "req-2",
        )
        .await;
    let ServerMessage::Error { code, id, .. } = reply else {
        panic!("an error: {reply:?}");
    };
    assert_eq!(code, statecast::protocol::ErrorCode::NotFound);
    assert_eq!(id, Some(statecast::protocol::RequestId::Number(2)));
    let after = harness.store.load(&key).await.expect("read").expect("stored");
    assert_eq!(after.version.0, 1);
    assert_eq!(after.state, stored.state);

    // In an application without that workflow the method is refused, nothing is written.
    let reply = without_workflows
        .handle(
            &connection,
            r#"{"action":"call","id":3,"actor":"checkout/cart-1","method":"place","args":{"amount":2}}"#,
            "req-3",
        )
        .await;
    let ServerMessage::Error { message, .. } = reply else {
        panic!("an error: {reply:?}");
    };
    assert_eq!(message, r#"no workflow "order" is registered"#);
    assert_eq!(
        harness.store.load(&key).await.expect("read").expect("stored").version.0,
        1
    );
}
