//! Workflows in local mode: the `functions/workflow` handler behind the event source mapping
//! emulator on the workflows table's stream, and the durable-timer sweep on a tick (what
//! the template's schedule event does in AWS).

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use statecast::workflow::WorkflowService;
use statecast_workflow::{WorkflowEvent, WorkflowResponse};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::esm::{EsmConfig, StreamHandler};
use crate::tick::spawn_every;

/// The workflow function's timeout: Lambda's maximum, so a step may run up to the longest
/// step timeout a definition allows (14 minutes).
pub const WORKFLOW_FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

/// The workflows stream mapping: `base` (the template's stream settings) with the workflow
/// function's timeout.
pub fn workflow_esm_config(base: &EsmConfig) -> EsmConfig {
    EsmConfig {
        function_timeout: WORKFLOW_FUNCTION_TIMEOUT,
        ..base.clone()
    }
}

/// The workflow function's handler as the mapping invokes it.
pub fn workflow_handler(service: Arc<WorkflowService>) -> StreamHandler {
    Arc::new(move |event| {
        let service = service.clone();
        Box::pin(async move {
            let event = LambdaEvent::new(WorkflowEvent::Stream(event), Context::default());
            match statecast_workflow::handler(&service, event).await? {
                WorkflowResponse::Batch(response) => Ok(response),
                WorkflowResponse::Swept { .. } => Err("a stream batch got a sweep response".into()),
            }
        })
    })
}

/// Invokes the handler with a scheduled event every `interval` until shutdown.
pub fn spawn_timer_sweep(
    service: Arc<WorkflowService>,
    interval: Duration,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    spawn_every(interval, shutdown, move || {
        let service = service.clone();
        async move {
            let scheduled = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event"});
            let event = LambdaEvent::new(WorkflowEvent::Schedule(scheduled), Context::default());
            match statecast_workflow::handler(&service, event).await {
                Ok(WorkflowResponse::Swept { fired }) if fired > 0 => debug!(fired, "timers fired"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "timer sweep failed"),
            }
        }
    })
}
