//! Circuit breakers and rate limits of workflow actions, with their state in the
//! DynamoDB-compatible engine shared by every instance: a breaker seen through a workflow's
//! progress actor over a real WebSocket, one probe among concurrent instances, and a rate
//! limit measured across instances that each have their own SDK client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use statecast::app::application;
use statecast::application::Application;
use statecast::dynamo::DynamoStore;
use statecast::records::now_millis;
use statecast::workflow::{
    ActionContext, ActionError, ActionGuard, BreakerState, Guards, RetryPolicy, StepDefinition, WorkflowDefinition,
    WorkflowStore,
};
use statecast_local::LocalOptions;
use statecast_tests::local::{start_local, store};
use statecast_tests::replica::{Applied, Replica};
use statecast_tests::ws_client::WsClient;
use statecast_tests::Harness;
use tokio::time::Instant;

/// A dependency that fails while `down`, counting the calls that reached it.
#[derive(Default)]
struct Dependency {
    down: AtomicBool,
    calls: AtomicUsize,
}

fn flaky_app(dependency: &Arc<Dependency>) -> Application {
    let dep = dependency.clone();
    let action = move |_: ActionContext| {
        let dep = dep.clone();
        async move {
            dep.calls.fetch_add(1, Ordering::SeqCst);
            match dep.down.load(Ordering::SeqCst) {
                true => Err(ActionError::retryable("dependency down")),
                false => Ok(json!({"ok": true})),
            }
        }
    };
    let workflow = WorkflowDefinition::new("flaky")
        .step(StepDefinition::new("call", "flaky.call").retry(RetryPolicy::fixed(100, Duration::from_millis(50))));
    application()
        .expect("valid")
        .action("flaky.call", action)
        .workflow(workflow)
        .expect("valid workflow")
        .guard(
            "flaky.call",
            ActionGuard::new().breaker(2, Duration::from_secs(30), Duration::from_secs(1)),
        )
        .expect("valid guard")
}

/// Follows the progress actor's frames until `done(state)` holds.
async fn follow(client: &mut WsClient, replica: &mut Replica, done: impl Fn(&Value) -> bool) {
    while !done(&replica.state) {
        let frame = client.frame().await;
        if frame["type"] == "result" {
            continue;
        }
        // The progress actor's first change may reach the fan-out after the subscription.
        assert_ne!(replica.apply(&frame, &json!({})), Applied::Gap, "{frame}");
    }
}

/// After 2 failures the breaker opens: later attempts fail fast (the dependency is not
/// called; the step shows `breaker: open`); after the cool-down one probe runs, succeeds,
/// closes the breaker and the workflow succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opens_fails_fast_half_opens_and_closes_in_a_workflow() {
    let dependency = Arc::new(Dependency::default());
    dependency.down.store(true, Ordering::SeqCst);
    let stack = start_local(LocalOptions {
        application: flaky_app(&dependency),
        ..LocalOptions::default()
    })
    .await;
    let mut client = WsClient::connect(&stack.ws_url).await;
    let start = json!({"action":"workflow.start","id":1,"workflow":"flaky","input":{},"workflowId":"flaky-1"});
    let started = client.request(start, &mut Vec::new()).await;
    assert_eq!(started["value"]["workflowId"], "flaky-1", "{started}");
    let subscribe = json!({"action":"subscribe","id":2,"actor":"workflow/flaky-1"});
    let mut replica = Replica::from_subscribed(&client.request(subscribe, &mut Vec::new()).await);

    follow(&mut client, &mut replica, |s| {
        let step = &s["steps"]["call"];
        step["breaker"] == "open" && step["attempts"].as_u64() >= Some(4)
    })
    .await;
    let step = &replica.state["steps"]["call"];
    assert!(
        step["error"].as_str().is_some_and(|e| e.starts_with("circuit open")),
        "{step}"
    );
    assert_eq!(dependency.calls.load(Ordering::SeqCst), 2, "open: attempts fail fast");

    dependency.down.store(false, Ordering::SeqCst);
    follow(&mut client, &mut replica, |s| s["status"] == "succeeded").await;
    assert_eq!(dependency.calls.load(Ordering::SeqCst), 3, "one probe, which succeeded");
    let breaker = store(&stack)
        .breaker("flaky.call")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(breaker.state, BreakerState::Closed);
    stack.shutdown().await;
}

/// Instances of their own (each its own SDK client) share one breaker: two failures open it
/// for all; after the cool-down exactly one of four concurrent attempts becomes the probe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_probe_among_concurrent_instances_when_a_breaker_half_opens() {
    let harness = Harness::start().await;
    let instances: Vec<Guards> = (0..4).map(|_| Guards::new(instance_store(&harness))).collect();
    let guard = ActionGuard::new().breaker(2, Duration::from_secs(30), Duration::from_millis(200));
    let far = || Instant::now() + Duration::from_secs(5);
    for guards in &instances[..2] {
        guards.admit("pay", &guard, far()).await.expect("closed: admitted");
        guards.record("pay", &guard, true).await;
    }
    for guards in &instances {
        let refused = guards.admit("pay", &guard, far()).await.expect_err("open");
        assert_eq!(refused.breaker, Some(BreakerState::Open));
    }
    // Until the cool-down ends every attempt fails fast; the first round after it has one probe.
    let deadline = Instant::now() + Duration::from_secs(10);
    let admitted = loop {
        assert!(Instant::now() < deadline, "the breaker half-opens");
        let round = futures::future::join_all(instances.iter().map(|g| g.admit("pay", &guard, far()))).await;
        let admitted = round.iter().filter(|r| r.is_ok()).count();
        if admitted > 0 {
            break admitted;
        }
    };
    assert_eq!(admitted, 1, "exactly one probe");
    assert_eq!(
        instances[3].record("pay", &guard, false).await,
        Some(BreakerState::Closed),
        "the probe's success closes it"
    );
    instances[0].admit("pay", &guard, far()).await.expect("closed again");
}

/// A store with an SDK client of its own: what another Lambda instance would have.
fn instance_store(harness: &Harness) -> Arc<dyn WorkflowStore> {
    let client = aws_sdk_dynamodb::Client::new(&harness.sdk);
    Arc::new(DynamoStore::new(client, harness.tables.clone()))
}

/// A rate limit of R attempts per second holds across four concurrent instances: attempts
/// counted per calendar second never exceed R.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_concurrent_instances() {
    const RATE: u32 = 20;
    const PER_INSTANCE: usize = 15;
    let harness = Harness::start().await;
    let guard = ActionGuard::new().rate_limit(RATE);
    let starts = Arc::new(Mutex::new(Vec::new()));
    let began = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (guards, guard, starts) = (Guards::new(instance_store(&harness)), guard.clone(), starts.clone());
            tokio::spawn(async move {
                for _ in 0..PER_INSTANCE {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    guards
                        .admit("send", &guard, deadline)
                        .await
                        .expect("a slot within the deadline");
                    // The attempt starts now.
                    starts.lock().unwrap_or_else(PoisonError::into_inner).push(now_millis());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("instance finished");
    }
    let elapsed = began.elapsed();
    let starts = starts.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut per_second: BTreeMap<i64, u32> = BTreeMap::new();
    for start in &starts {
        *per_second.entry(start.div_euclid(1000)).or_default() += 1;
    }
    println!(
        "{} attempts in {elapsed:?}; per second: {:?}",
        starts.len(),
        per_second.values().collect::<Vec<_>>()
    );
    assert_eq!(starts.len(), 4 * PER_INSTANCE);
    assert!(
        per_second.values().all(|n| *n <= RATE),
        "at most {RATE} per second: {per_second:?}"
    );
    // 60 attempts at 20 per calendar second span three seconds at least: over one second.
    assert!(
        elapsed > Duration::from_secs(1),
        "the limit held them back: {elapsed:?}"
    );
}
