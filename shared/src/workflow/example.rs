//! The example workflow shipped with the platform (README, local mode): `order`, which
//! reserves stock, charges and ships, releasing and refunding when a later step fails.
//!
//! The actions only compute results (no external system): `payments.charge` declines amounts
//! over 1000 (a terminal failure), so a client can watch a saga compensate.

use std::time::Duration;

use serde_json::{json, Value};

use super::action::{ActionContext, ActionError, ActionResult};
use super::definition::{RetryPolicy, StepDefinition, WorkflowDefinition};
use super::validate::DefinitionError;
use crate::application::Application;

/// The `order` definition: reserve → charge → ship, with release/refund compensations.
pub fn order_workflow() -> WorkflowDefinition {
    let retry = RetryPolicy::exponential(3, Duration::from_millis(100), Duration::from_secs(2));
    WorkflowDefinition::new("order")
        .step(
            StepDefinition::new("reserve", "inventory.reserve")
                .input(json!({"sku": {"$ref": "input.sku"}, "quantity": {"$ref": "input.quantity"}}))
                .retry(retry)
                .compensate_with("inventory.release"),
        )
        .step(
            StepDefinition::new("charge", "payments.charge")
                .after("reserve")
                .input(json!({"amount": {"$ref": "input.amount"}}))
                .retry(retry)
                .timeout(Duration::from_secs(10))
                .compensate_with("payments.refund"),
        )
        .step(
            StepDefinition::new("ship", "shipping.ship")
                .after("charge")
                .input(json!({
                    "reservation": {"$ref": "steps.reserve.output.reservation"},
                    "payment": {"$ref": "steps.charge.output.payment"}
                }))
                .retry(retry),
        )
}

fn token(context: &ActionContext, prefix: &str) -> Value {
    Value::from(format!("{prefix}-{}", context.idempotency_key.replace('/', "-")))
}

async fn reserve(context: ActionContext) -> ActionResult {
    Ok(json!({"reservation": token(&context, "res")}))
}

async fn charge(context: ActionContext) -> ActionResult {
    let amount = context.input.get("amount").and_then(Value::as_f64).unwrap_or(0.0);
    if amount > 1000.0 {
        return Err(ActionError::terminal(format!("card declined for {amount}")));
    }
    Ok(json!({"payment": token(&context, "pay"), "amount": amount}))
}

async fn ship(context: ActionContext) -> ActionResult {
    Ok(json!({"tracking": token(&context, "trk")}))
}

async fn undo(context: ActionContext) -> ActionResult {
    Ok(json!({"undone": context.input.get("output").cloned().unwrap_or(Value::Null)}))
}

/// `order` and its actions added to `app`.
pub fn with_order_workflow(app: Application) -> Result<Application, DefinitionError> {
    app.action("inventory.reserve", reserve)
        .action("inventory.release", undo)
        .action("payments.charge", charge)
        .action("payments.refund", undo)
        .action("shipping.ship", ship)
        .workflow(order_workflow())
}
