//! Schedules in local mode: each `rate(..)` trigger fires on a local timer (EventBridge's
//! job in AWS; `--schedule-speedup N` makes it N times faster), with the input the template gives its schedule (`{"schedule": name}`);
//! `POST /schedules/{name}` fires any schedule trigger at once, `cron(..)` ones included.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use statecast::trigger::{Schedule, Source};
use statecast_trigger::TriggerResponse;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::TriggerState;
use crate::tick::spawn_every;

/// Starts a timer for every rate schedule, its period divided by `speedup` (1: as deployed);
/// returns them with the names of cron schedules (fired by hand only).
pub fn spawn_schedules(
    state: &TriggerState,
    speedup: u32,
    shutdown: &watch::Receiver<bool>,
) -> (Vec<JoinHandle<()>>, Vec<String>) {
    let mut timers = Vec::new();
    let mut manual = Vec::new();
    for armed in state.deps.service.all() {
        let Source::Schedule { expression } = &armed.trigger.source else {
            continue;
        };
        let name = armed.trigger.name.clone();
        match Schedule::parse(expression).ok().and_then(|s| s.period()) {
            Some(period) => {
                let period = period / speedup.max(1);
                timers.push(spawn_timer(state.clone(), name, period, shutdown.clone()));
            }
            None => manual.push(name),
        }
    }
    (timers, manual)
}

fn spawn_timer(state: TriggerState, name: String, period: Duration, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    spawn_every(period, shutdown, move || {
        let (state, name) = (state.clone(), name.clone());
        async move {
            if let Err(e) = fire(&state, &name).await {
                warn!(schedule = %name, error = %e, "schedule failed");
            }
        }
    })
}

async fn fire(state: &TriggerState, name: &str) -> Result<Value, lambda_runtime::Error> {
    match state.invoke(json!({"schedule": name})).await? {
        TriggerResponse::Scheduled(value) => {
            info!(schedule = %name, "schedule fired");
            Ok(value)
        }
        _ => Err("a schedule got another response".into()),
    }
}

/// `POST /schedules/{name}`.
pub async fn fire_now(State(state): State<TriggerState>, Path(name): Path<String>) -> Response {
    match fire(&state, &name).await {
        Ok(value) => (StatusCode::OK, Json(value)).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"message": e.to_string()}))).into_response(),
    }
}
