//! A workflow engine on the test harness: the `functions/workflow` handler behind local
//! mode's event source mapping on the workflows stream, a fast timer sweep, and actions that
//! log every invocation (step, attempt, idempotency key, start and end) so tests can count
//! runs, check order and keep effects keyed by idempotency key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use statecast::ids::TenantId;
use statecast::workflow::model::InstanceRecord;
use statecast::workflow::{
    ActionContext, ActionError, ActionRegistry, WorkflowRegistry, WorkflowService, WorkflowSettings, WorkflowStore,
};
use statecast_local::esm::{stream_arn, EsmConfig, EsmHandle, EventSourceMapping};
use statecast_local::workflows::{spawn_timer_sweep, workflow_handler};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Harness, DEV_TENANT};

/// One action invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub action: String,
    pub step: String,
    pub attempt: u32,
    pub key: String,
    pub input: Value,
    pub started: Instant,
    pub ended: Instant,
}

/// Everything the test actions did.
#[derive(Debug, Default)]
pub struct ActionLog {
    pub invocations: Vec<Invocation>,
    /// Effects applied, keyed by idempotency key (a second run with the same key adds none).
    pub effects: BTreeSet<String>,
}

pub type SharedLog = Arc<Mutex<ActionLog>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, ActionLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds `hold` actions until the test opens it, so a test can act while a step is known to
/// be running (not merely started and already finished).
#[derive(Debug)]
pub struct Gate {
    entered: watch::Sender<usize>,
    open: watch::Sender<bool>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            entered: watch::channel(0).0,
            open: watch::channel(false).0,
        }
    }
}

impl Gate {
    /// Waits until `n` `hold` actions have entered (and are waiting, unless opened).
    pub async fn wait_entered(&self, n: usize) {
        let mut entered = self.entered.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(30), entered.wait_for(|e| *e >= n)).await;
        assert!(matches!(waited, Ok(Ok(_))), "{n} hold action(s) entered in time");
    }

    /// Lets every `hold` action (waiting or future) finish.
    pub fn open(&self) {
        self.open.send_replace(true);
    }

    async fn pass(&self) {
        let mut open = self.open.subscribe();
        self.entered.send_modify(|e| *e += 1);
        let _ = open.wait_for(|o| *o).await;
    }
}

/// Test actions:
/// - `echo`: returns `{"step", "input"}`;
/// - `effect`: like `echo`, and records an effect under its idempotency key;
/// - `flaky`: fails (retryably) while `attempt <= input.failures`, then echoes;
/// - `fail`: always fails retryably; `decline`: fails terminally;
/// - `sleep`: sleeps `input.ms` then echoes;
/// - `hold`: waits at the [`Gate`] until the test opens it, then echoes;
/// - `undo`: a compensation that echoes.
pub fn test_actions(log: &SharedLog, gate: &Arc<Gate>) -> ActionRegistry {
    let logged = |name: &'static str| {
        let log = log.clone();
        let gate = gate.clone();
        move |ctx: ActionContext| {
            let log = log.clone();
            let gate = gate.clone();
            async move {
                let started = Instant::now();
                if name == "hold" {
                    gate.pass().await;
                }
                let result = behave(name, &ctx, &log).await;
                lock(&log).invocations.push(Invocation {
                    action: name.to_owned(),
                    step: ctx.step.clone(),
                    attempt: ctx.attempt,
                    key: ctx.idempotency_key.clone(),
                    input: ctx.input.clone(),
                    started,
                    ended: Instant::now(),
                });
                result
            }
        }
    };
    ["echo", "effect", "flaky", "fail", "decline", "sleep", "hold", "undo"]
        .into_iter()
        .fold(ActionRegistry::new(), |registry, name| {
            registry.with(name, logged(name))
        })
}

async fn behave(name: &str, ctx: &ActionContext, log: &SharedLog) -> Result<Value, ActionError> {
    let echo = json!({"step": ctx.step, "input": ctx.input});
    match name {
        "effect" => {
            lock(log).effects.insert(ctx.idempotency_key.clone());
            Ok(echo)
        }
        "flaky" => {
            let failures = ctx.input["failures"].as_u64().unwrap_or(0);
            if u64::from(ctx.attempt) <= failures {
                Err(ActionError::retryable(format!("flaky attempt {}", ctx.attempt)))
            } else {
                Ok(echo)
            }
        }
        "fail" => Err(ActionError::retryable("always fails")),
        "decline" => Err(ActionError::terminal("declined")),
        "sleep" => {
            tokio::time::sleep(Duration::from_millis(ctx.input["ms"].as_u64().unwrap_or(0))).await;
            Ok(echo)
        }
        _ => Ok(echo),
    }
}

/// The engine under test.
pub struct WorkflowRig {
    pub harness: Harness,
    pub service: Arc<WorkflowService>,
    pub log: SharedLog,
    pub gate: Arc<Gate>,
    pub esm: EsmHandle,
    pub tenant: TenantId,
    stop: watch::Sender<bool>,
    timers: JoinHandle<()>,
}

impl WorkflowRig {
    /// `workflows` builds the registry from the test actions; `store` may wrap the harness's
    /// store (to inject failures).
    pub async fn start(
        workflows: impl FnOnce(ActionRegistry) -> WorkflowRegistry,
        store: impl FnOnce(&Harness) -> Arc<dyn WorkflowStore>,
    ) -> WorkflowRig {
        let config = EsmConfig {
            poll_interval: Duration::from_millis(5),
            retry_base_delay: Duration::from_millis(20),
            ..EsmConfig::default()
        };
        Self::start_with(workflows, store, config).await
    }

    /// [`Self::start`] with the stream mapping running on `config`.
    pub async fn start_with(
        workflows: impl FnOnce(ActionRegistry) -> WorkflowRegistry,
        store: impl FnOnce(&Harness) -> Arc<dyn WorkflowStore>,
        config: EsmConfig,
    ) -> WorkflowRig {
        let harness = Harness::start().await;
        let log = SharedLog::default();
        let gate = Arc::new(Gate::default());
        let registry = Arc::new(workflows(test_actions(&log, &gate)));
        let settings = WorkflowSettings {
            inline_delay_limit: Duration::from_millis(50),
            ..WorkflowSettings::default()
        };
        let service = Arc::new(WorkflowService::new(store(&harness), registry, settings));
        let arn = stream_arn(&harness.dynamo, &harness.tables.workflows)
            .await
            .expect("the workflows table has a stream");
        let streams = aws_sdk_dynamodbstreams::Client::new(&harness.sdk);
        let esm = EventSourceMapping::start(streams, arn, config, workflow_handler(service.clone()));
        let (stop, stopped) = watch::channel(false);
        let timers = spawn_timer_sweep(service.clone(), Duration::from_millis(25), stopped);
        WorkflowRig {
            harness,
            service,
            log,
            gate,
            esm,
            tenant: TenantId::new(DEV_TENANT).expect("tenant"),
            stop,
            timers,
        }
    }

    /// Starts `workflow` and waits until the instance is succeeded, failed or cancelled.
    pub async fn run(&self, workflow: &str, input: Value) -> InstanceRecord {
        let started = self
            .service
            .start(&self.tenant, workflow, &input, None)
            .await
            .expect("the workflow starts");
        self.wait_final(&started.workflow_id).await
    }

    pub async fn wait_final(&self, workflow_id: &str) -> InstanceRecord {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Read through the harness's own store, so a counting store sees only the engine.
            let instance = self
                .harness
                .store
                .instance(workflow_id)
                .await
                .expect("the instance is readable")
                .expect("the instance exists");
            if instance.status.is_final() {
                // Let the mapping finish the batch that ended it (progress, stray records).
                assert!(self.esm.wait_idle(Duration::from_secs(30)).await, "stream drained");
                return instance;
            }
            assert!(
                Instant::now() < deadline,
                "instance {workflow_id} still {:?}",
                instance.status
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn invocations(&self) -> Vec<Invocation> {
        lock(&self.log).invocations.clone()
    }

    pub fn effects(&self) -> BTreeSet<String> {
        lock(&self.log).effects.clone()
    }

    /// Invocations per step (and per action, for compensations: `undo:<step>`).
    pub fn runs(&self) -> BTreeMap<String, usize> {
        let mut runs = BTreeMap::new();
        for i in self.invocations() {
            let name = if i.action == "undo" {
                format!("undo:{}", i.step)
            } else {
                i.step.clone()
            };
            *runs.entry(name).or_insert(0) += 1;
        }
        runs
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.timers.await;
        self.esm.shutdown().await;
    }
}
