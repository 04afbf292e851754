//! Workflows on the embedded engine: the workflows stream drives `functions/workflow`
//! through local mode's event source mapping, exactly as in local mode and (with real
//! Lambda) in AWS. Actions log every invocation, so each test counts runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use statecast::ports::ActorStore;
use statecast::workflow::model::{Commit, InstanceRecord, StepRecord, Timer, WorkflowWrite};
use statecast::workflow::{
    InstanceStatus, Outcome, RetryPolicy, StepDefinition as Step, WorkflowDefinition, WorkflowRegistry, WorkflowStore,
};
use statecast_tests::workflow_rig::WorkflowRig;

fn dynamo(harness: &statecast_tests::Harness) -> Arc<dyn WorkflowStore> {
    harness.store.clone()
}

fn register(
    definitions: Vec<WorkflowDefinition>,
) -> impl FnOnce(statecast::workflow::ActionRegistry) -> WorkflowRegistry {
    move |actions| {
        let mut registry = WorkflowRegistry::new(actions);
        for definition in definitions {
            registry.register(definition).expect("valid definition");
        }
        registry
    }
}

async fn progress(rig: &WorkflowRig, instance: &InstanceRecord) -> (Value, u64) {
    let record = rig
        .harness
        .store
        .load(&instance.progress)
        .await
        .expect("readable")
        .expect("the progress actor exists");
    (record.state, record.version.0)
}

fn no_retry() -> RetryPolicy {
    RetryPolicy::none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_chain_passes_outputs_along_and_succeeds() {
    let chain = WorkflowDefinition::new("chain")
        .step(Step::new("a", "echo").input(json!({"n": {"$ref": "input.n"}})))
        .step(
            Step::new("b", "echo")
                .after("a")
                .input(json!({"prev": {"$ref": "steps.a.output.input.n"}})),
        )
        .step(
            Step::new("c", "echo")
                .after("b")
                .input(json!({"prev": {"$ref": "steps.b.output.input.prev"}})),
        );
    let rig = WorkflowRig::start(register(vec![chain]), dynamo).await;
    let instance = rig.run("chain", json!({"n": 41})).await;
    assert_eq!(instance.status, InstanceStatus::Succeeded, "{instance:?}");
    let order: Vec<String> = rig.invocations().iter().map(|i| i.step.clone()).collect();
    assert_eq!(order, ["a", "b", "c"]);
    let inputs: Vec<Value> = rig.invocations().iter().map(|i| i.input.clone()).collect();
    assert_eq!(inputs, [json!({"n": 41}), json!({"prev": 41}), json!({"prev": 41})]);
    let keys: Vec<String> = rig.invocations().iter().map(|i| i.key.clone()).collect();
    assert_eq!(keys[0], format!("{}/a/1", instance.workflow_id));
    let (state, _) = progress(&rig, &instance).await;
    assert_eq!(state["status"], "succeeded");
    for step in ["a", "b", "c"] {
        assert_eq!(state["steps"][step]["status"], "succeeded", "{state}");
        assert_eq!(state["steps"][step]["attempts"], 1);
    }
    assert_eq!(
        state["steps"]["c"]["output"],
        json!({"step": "c", "input": {"prev": 41}})
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_branches_join_exactly_once_after_all_of_them() {
    let branches = ["b1", "b2", "b3", "b4", "b5", "b6"];
    let mut definition = WorkflowDefinition::new("fan").step(Step::new("start", "echo"));
    let mut join = Step::new("join", "echo");
    for branch in branches {
        definition = definition.step(Step::new(branch, "sleep").after("start").input(json!({"ms": 20})));
        join = join.after(branch);
    }
    let definition = definition.step(join);
    let rig = WorkflowRig::start(register(vec![definition]), dynamo).await;
    for _ in 0..3 {
        let instance = rig.run("fan", json!({})).await;
        assert_eq!(instance.status, InstanceStatus::Succeeded);
    }
    let runs = rig.runs();
    assert_eq!(runs["join"], 3, "{runs:?}");
    for branch in branches {
        assert_eq!(runs[branch], 3, "{runs:?}");
    }
    // Every join started after each branch of its own instance ended.
    let invocations = rig.invocations();
    for join in invocations.iter().filter(|i| i.step == "join") {
        let id = join.key.split('/').next().expect("workflow id");
        let last_branch = invocations
            .iter()
            .filter(|i| i.key.starts_with(id) && branches.contains(&i.step.as_str()))
            .map(|i| i.ended)
            .max()
            .expect("branches ran");
        assert!(join.started >= last_branch);
    }
    rig.shutdown().await;
}

/// Many writers resolve the same join's dependencies at once, each dependency twice: the
/// counter reaches zero exactly once and the stream shows exactly one runnable image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_counter_becomes_ready_exactly_once_under_concurrency() {
    let harness = statecast_tests::Harness::start().await;
    let store = harness.store.clone();
    let mut stream = harness.workflow_stream().await;
    let dependencies = 16u32;
    let commit = store
        .commit(vec![
            WorkflowWrite::PutStep(StepRecord::new(
                "w-join",
                statecast::workflow::StepKind::Step,
                "join",
                dependencies,
            )),
            WorkflowWrite::PutStep(StepRecord::new(
                "w-join",
                statecast::workflow::StepKind::Step,
                "other",
                1,
            )),
        ])
        .await
        .expect("put");
    assert_eq!(commit, Commit::Done);
    let tasks: Vec<_> = (0..dependencies * 2)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let write = WorkflowWrite::ResolveDependency {
                    workflow_id: "w-join".into(),
                    sk: "step#join".into(),
                    dependency: format!("d{}", i % dependencies),
                    unmet: false,
                };
                loop {
                    match store.commit(vec![write.clone()]).await {
                        Ok(outcome) => return outcome,
                        Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(2)).await,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        if task.await.expect("task") == Commit::Done {
            done += 1;
        }
    }
    assert_eq!(
        done, dependencies,
        "each dependency resolves once; its duplicate is refused"
    );
    let (_, step) = store.instance_and_step("w-join", "step#join").await.expect("read");
    let step = step.expect("join exists");
    assert_eq!(step.remaining, 0);
    assert_eq!(step.resolved.len(), dependencies as usize);
    let records = stream.read_new().await;
    let runnable = records
        .into_iter()
        .filter_map(|r| serde_dynamo::from_item::<_, StepRecord>(r.change.new_image).ok())
        .filter(|s| s.name == "join" && s.is_runnable())
        .count();
    assert_eq!(runnable, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_failure_is_retried_until_it_succeeds() {
    let definition = WorkflowDefinition::new("retry").step(
        Step::new("flaky", "flaky")
            .input(json!({"failures": 2}))
            .retry(RetryPolicy::fixed(3, Duration::from_millis(10))),
    );
    let rig = WorkflowRig::start(register(vec![definition]), dynamo).await;
    let instance = rig.run("retry", json!({})).await;
    assert_eq!(instance.status, InstanceStatus::Succeeded);
    let attempts: Vec<u32> = rig.invocations().iter().map(|i| i.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let keys: Vec<String> = rig.invocations().iter().map(|i| i.key.clone()).collect();
    assert!(
        keys[1].ends_with("/flaky/2") && keys[2].ends_with("/flaky/3"),
        "{keys:?}"
    );
    let (state, _) = progress(&rig, &instance).await;
    assert_eq!(state["steps"]["flaky"]["attempts"], 3);
    assert_eq!(state["steps"]["flaky"]["status"], "succeeded");
    rig.shutdown().await;
}

/// A delay above the inline limit (50 ms in the rig) waits on the durable timer: the step
/// item gets `dueAt`, the sweep releases it, and the attempt starts no earlier than due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_retry_delays_wait_on_the_durable_timer() {
    let definition = WorkflowDefinition::new("timer").step(
        Step::new("flaky", "flaky")
            .input(json!({"failures": 1}))
            .retry(RetryPolicy::fixed(2, Duration::from_millis(400))),
    );
    let rig = WorkflowRig::start(register(vec![definition]), dynamo).await;
    let mut stream = rig.harness.workflow_stream().await;
    let instance = rig.run("timer", json!({})).await;
    assert_eq!(instance.status, InstanceStatus::Succeeded);
    let runs = rig.invocations();
    assert_eq!(runs.len(), 2);
    assert!(runs[1].started.duration_since(runs[0].ended) >= Duration::from_millis(380));
    let timed = stream
        .read_new()
        .await
        .into_iter()
        .filter_map(|r| serde_dynamo::from_item::<_, StepRecord>(r.change.new_image).ok())
        .filter(|s| s.due_at.is_some())
        .count();
    assert!(timed >= 1, "the retry was parked on a timer");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_compensate_completed_steps_in_reverse_order() {
    let definition = WorkflowDefinition::new("saga")
        .step(Step::new("reserve", "effect").compensate_with("undo"))
        .step(Step::new("charge", "effect").after("reserve").compensate_with("undo"))
        .step(Step::new("note", "echo").after("charge"))
        .step(Step::new("ship", "effect").after("note").compensate_with("undo"))
        .step(
            Step::new("deliver", "fail")
                .after("ship")
                .retry(RetryPolicy::fixed(2, Duration::from_millis(5))),
        );
    let rig = WorkflowRig::start(register(vec![definition]), dynamo).await;
    let instance = rig.run("saga", json!({})).await;
    assert_eq!(instance.status, InstanceStatus::Failed);
    let cause = instance.cause.clone().expect("a cause");
    assert!(cause.contains("step deliver failed: always fails"), "{cause}");
    let order: Vec<String> = rig
        .invocations()
        .iter()
        .map(|i| format!("{}:{}", i.action, i.step))
        .collect();
    assert_eq!(
        order,
        [
            "effect:reserve",
            "effect:charge",
            "echo:note",
            "effect:ship",
            "fail:deliver",
            "fail:deliver",
            "undo:ship",
            "undo:charge",
            "undo:reserve"
        ]
    );
    let undo_ship = rig
        .invocations()
        .into_iter()
        .find(|i| i.action == "undo" && i.step == "ship")
        .expect("ship was compensated");
    assert_eq!(undo_ship.input["output"]["step"], "ship");
    assert!(undo_ship.key.ends_with("/ship/compensate/1"));
    let (state, _) = progress(&rig, &instance).await;
    assert_eq!(state["status"], "failed");
    assert_eq!(state["steps"]["deliver"]["status"], "failed");
    assert_eq!(state["steps"]["deliver"]["attempts"], 2);
    assert_eq!(state["steps"]["charge"]["compensation"]["status"], "succeeded");
    assert!(state["steps"]["note"].get("compensation").is_none());
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_times_out_fails_and_a_failure_branch_handles_it() {
    let definition = WorkflowDefinition::new("timeout")
        .step(
            Step::new("slow", "sleep")
                .input(json!({"ms": 2000}))
                .timeout(Duration::from_millis(100))
                .retry(no_retry()),
        )
        .step(Step::new("on_failure", "echo").after_with("slow", &[Outcome::Failed]))
        .step(Step::new("on_success", "echo").after("slow"));
    let rig = WorkflowRig::start(register(vec![definition]), dynamo).await;
    let instance = rig.run("timeout", json!({})).await;
    // The failure was handled by a branch, so the instance succeeds.
    assert_eq!(instance.status, InstanceStatus::Succeeded, "{instance:?}");
    let (state, _) = progress(&rig, &instance).await;
    assert_eq!(state["steps"]["slow"]["status"], "failed");
    assert_eq!(state["steps"]["slow"]["error"], "timed out after 100 ms");
    assert_eq!(state["steps"]["on_failure"]["status"], "succeeded");
    assert_eq!(state["steps"]["on_success"]["status"], "skipped");
    let runs = rig.runs();
    assert!(!runs.contains_key("on_success"), "{runs:?}");
    rig.shutdown().await;
}

/// Replaying every record of the workflows stream (twice) after the runs finished changes
/// nothing: no action runs again, no item or progress version moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_whole_stream_twice_changes_nothing() {
    let saga = WorkflowDefinition::new("saga")
        .step(Step::new("a", "effect").compensate_with("undo"))
        .step(Step::new("b", "effect").compensate_with("undo"))
        .step(Step::new("c", "decline").after("a").after("b"));
    let happy = WorkflowDefinition::new("happy")
        .step(Step::new("a", "effect"))
        .step(
            Step::new("b", "flaky")
                .after("a")
                .input(json!({"failures": 1}))
                .retry(RetryPolicy::fixed(2, Duration::from_millis(5))),
        )
        .step(Step::new("c", "echo").after("a"))
        .step(Step::new("d", "echo").after("b").after("c"));
    let rig = WorkflowRig::start(register(vec![saga, happy]), dynamo).await;
    let mut stream = rig.harness.workflow_stream().await;
    let failed = rig.run("saga", json!({})).await;
    let succeeded = rig.run("happy", json!({})).await;
    assert_eq!(failed.status, InstanceStatus::Failed);
    assert_eq!(succeeded.status, InstanceStatus::Succeeded);
    let before = (rig.invocations().len(), rig.effects());
    let progress_before = (progress(&rig, &failed).await, progress(&rig, &succeeded).await);
    let records = stream.read_new().await;
    assert!(records.len() > 20, "{} records", records.len());
    for _ in 0..2 {
        let mut event = aws_lambda_events::dynamodb::Event::default();
        event.records = records.clone();
        let response = statecast_workflow::stream_handler(&rig.service, event).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert!(rig.esm.wait_idle(Duration::from_secs(30)).await);
    assert_eq!((rig.invocations().len(), rig.effects()), before);
    assert_eq!(
        (progress(&rig, &failed).await, progress(&rig, &succeeded).await),
        progress_before
    );
    let after = rig
        .service
        .instance_of(&rig.tenant, &failed.workflow_id)
        .await
        .expect("read");
    assert_eq!(after, failed);
    rig.shutdown().await;
}

/// Crashes (panics) in the first commit that records `step`'s result, after its action ran:
/// a crash between "action done" and "result recorded".
struct CrashBeforeRecording {
    inner: Arc<statecast::dynamo::DynamoStore>,
    step: String,
    crashed: AtomicBool,
}

#[async_trait]
impl WorkflowStore for CrashBeforeRecording {
    async fn commit(&self, writes: Vec<WorkflowWrite>) -> statecast::Result<Commit> {
        let records_step = writes
            .iter()
            .any(|w| matches!(w, WorkflowWrite::FinishStep { sk, .. } if sk == &format!("step#{}", self.step)));
        if records_step && !self.crashed.swap(true, Ordering::SeqCst) {
            // The invocation dies here; the mapping counts it as a function error and retries.
            panic!("injected crash before the result is recorded");
        }
        self.inner.commit(writes).await
    }
    async fn instance(&self, workflow_id: &str) -> statecast::Result<Option<InstanceRecord>> {
        self.inner.instance(workflow_id).await
    }
    async fn instance_and_step(
        &self,
        workflow_id: &str,
        sk: &str,
    ) -> statecast::Result<(Option<InstanceRecord>, Option<StepRecord>)> {
        self.inner.instance_and_step(workflow_id, sk).await
    }
    async fn due_timers(&self, now: i64, limit: i32) -> statecast::Result<Vec<Timer>> {
        self.inner.due_timers(now, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_action_reruns_it_with_the_same_key_and_one_effect() {
    let definition = WorkflowDefinition::new("pay")
        .step(Step::new("charge", "effect"))
        .step(Step::new("ship", "echo").after("charge"));
    let crash = |harness: &statecast_tests::Harness| -> Arc<dyn WorkflowStore> {
        Arc::new(CrashBeforeRecording {
            inner: harness.store.clone(),
            step: "charge".into(),
            crashed: AtomicBool::new(false),
        })
    };
    let rig = WorkflowRig::start(register(vec![definition]), crash).await;
    let instance = rig.run("pay", json!({})).await;
    assert_eq!(instance.status, InstanceStatus::Succeeded);
    let charges: Vec<String> = rig
        .invocations()
        .iter()
        .filter(|i| i.step == "charge")
        .map(|i| i.key.clone())
        .collect();
    assert_eq!(charges.len(), 2, "the action ran again after the crash");
    assert_eq!(charges[0], charges[1], "with the same idempotency key");
    assert_eq!(rig.effects().len(), 1, "so its effect happened once");
    assert_eq!(rig.runs()["ship"], 1);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_run_and_compensates_what_completed() {
    let definition = WorkflowDefinition::new("long")
        .step(Step::new("a", "effect").compensate_with("undo"))
        .step(Step::new("b", "hold").after("a").compensate_with("undo"))
        .step(Step::new("c", "effect").after("b").compensate_with("undo"));
    let rig = WorkflowRig::start(register(vec![definition]), dynamo).await;
    let started = rig
        .service
        .start(&rig.tenant, "long", &json!({}), Some("cancel-me".into()))
        .await
        .expect("starts");
    let again = rig
        .service
        .start(&rig.tenant, "long", &json!({}), Some("cancel-me".into()))
        .await
        .expect("idempotent start");
    assert!(started.created && !again.created);
    // `b` is running (held at the gate) when the instance is cancelled.
    rig.gate.wait_entered(1).await;
    let status = rig.service.cancel(&rig.tenant, "cancel-me").await.expect("cancels");
    assert_eq!(status, InstanceStatus::Compensating);
    rig.gate.open();
    let instance = rig.wait_final("cancel-me").await;
    assert_eq!(instance.status, InstanceStatus::Cancelled);
    // `b` was running when the instance was cancelled: it finishes after the chain (which
    // only knew `a`) ended, and gets a compensation of its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !rig.runs().contains_key("undo:b") {
        assert!(std::time::Instant::now() < deadline, "{:?}", rig.runs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rig.esm.wait_idle(Duration::from_secs(30)).await);
    let runs = rig.runs();
    assert_eq!(runs.get("c"), None, "{runs:?}");
    assert_eq!(runs["undo:a"], 1, "{runs:?}");
    assert_eq!(runs["undo:b"], 1, "{runs:?}");
    let (state, _) = progress(&rig, &instance).await;
    assert_eq!(state["status"], "cancelled");
    assert_eq!(state["steps"]["b"]["status"], "succeeded");
    assert_eq!(state["steps"]["b"]["compensation"]["status"], "succeeded", "{state}");
    assert_eq!(state["steps"]["c"]["status"], "cancelled");
    let other = statecast::ids::TenantId::new("other").expect("tenant");
    assert!(
        rig.service.cancel(&other, "cancel-me").await.is_err(),
        "another tenant cannot see it"
    );
    rig.shutdown().await;
}
