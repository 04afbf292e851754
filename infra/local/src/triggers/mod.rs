//! Triggers in local mode, on a port of their own (as the deployed HTTP API is an endpoint
//! of its own): webhooks at `POST /hooks/{trigger}` as HTTP API events, local queues
//! (`POST /queues/{queue}`) feeding `SqsEvent` batches, and schedules on local timers — all
//! through the `functions/trigger` handler.
//!
//! - `http`: the HTTP API emulator; `queue`: queues, redelivery and dead letters;
//!   `schedules`: rate timers and firing by hand.

mod http;
mod queue;
mod schedules;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use statecast_trigger::{Deps, TriggerEvent, TriggerResponse};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use http::{http_event, ROUTE_KEY};
pub use queue::{DeadLetter, LocalQueues, QueueConfig, QueueCounts};

/// HTTP API's payload limit: larger requests never reach the function.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;

/// What the trigger routes share.
#[derive(Clone)]
pub struct TriggerState {
    pub deps: Arc<Deps>,
    pub queues: LocalQueues,
    host: String,
}

impl TriggerState {
    /// Invokes the trigger handler with `event` as Lambda would: JSON decoded into the
    /// function's event type, then the handler.
    pub async fn invoke(&self, event: Value) -> Result<TriggerResponse, lambda_runtime::Error> {
        let event: TriggerEvent = serde_json::from_value(event)?;
        statecast_trigger::handler(&self.deps, LambdaEvent::new(event, Context::default())).await
    }
}

/// The running trigger endpoint.
pub struct TriggerServer {
    /// `http://host:port`: webhooks at `{url}/hooks/{trigger}`, queues at `{url}/queues/{queue}`.
    pub url: String,
    pub queues: LocalQueues,
    /// Schedule triggers with cron expressions: fired by hand only (`POST /schedules/{name}`).
    pub manual_schedules: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl TriggerServer {
    /// Serves `deps` on `listener` until `shutdown`.
    pub fn start(
        listener: tokio::net::TcpListener,
        deps: Deps,
        queue_config: QueueConfig,
        schedule_speedup: u32,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let bound = listener.local_addr()?;
        let state = TriggerState {
            deps: Arc::new(deps),
            queues: LocalQueues::new(queue_config),
            host: bound.to_string(),
        };
        let app = Router::new()
            .route("/hooks/{trigger}", post(http::hook))
            .route("/queues/{queue}", post(queue::send))
            .route("/queues/{queue}/dead-letters", get(queue::dead_letters))
            .route("/schedules/{name}", post(schedules::fire_now))
            .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
            .with_state(state.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        let (mut tasks, manual_schedules) = schedules::spawn_schedules(&state, schedule_speedup, &shutdown);
        let mut stop = shutdown;
        tasks.push(tokio::spawn(async move {
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopping).await;
        }));
        Ok(Self {
            url: format!("http://{bound}"),
            queues: state.queues,
            manual_schedules,
            tasks,
        })
    }

    /// Waits for the server and timers to stop (after shutdown was signalled).
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
