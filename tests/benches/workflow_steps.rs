//! Per-step overhead of workflows on the local stack's engine and stream mapping (default
//! `EsmConfig`, as `cargo run -p statecast-local` runs it): a linear chain of no-op steps,
//! timed from one action's end to the next action's start, and the DynamoDB requests each
//! step costs, counted by an SDK interceptor.
//!
//! `cargo bench -p statecast-tests --bench workflow_steps [-- STEPS RUNS]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use statecast::dynamo::DynamoStore;
use statecast::workflow::{StepDefinition, WorkflowDefinition, WorkflowRegistry, WorkflowStore};
use statecast_local::esm::EsmConfig;
use statecast_tests::request_log::RequestLog;
use statecast_tests::workflow_rig::WorkflowRig;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let steps = args.first().copied().unwrap_or(20);
    let runs = args.get(1).copied().unwrap_or(5);
    let mut chain = WorkflowDefinition::new("chain").step(StepDefinition::new("s0", "echo"));
    for i in 1..steps {
        chain = chain.step(StepDefinition::new(format!("s{i}"), "echo").after(format!("s{}", i - 1)));
    }
    let log = RequestLog::default();
    let counted = log.clone();
    let store = move |h: &statecast_tests::Harness| -> Arc<dyn WorkflowStore> {
        Arc::new(DynamoStore::new(counted.client(&h.sdk), h.tables.clone()))
    };
    let registry = move |actions| WorkflowRegistry::new(actions).with(chain).expect("valid chain");
    let rig = WorkflowRig::start_with(registry, store, EsmConfig::default()).await;
    let mut gaps = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..runs {
        let before = rig.invocations().len();
        let started = std::time::Instant::now();
        let instance = rig.run("chain", json!({})).await;
        totals.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(instance.status.as_str(), "succeeded");
        let run = &rig.invocations()[before..];
        gaps.extend(
            run.windows(2)
                .map(|w| w[1].started.duration_since(w[0].ended).as_secs_f64() * 1000.0),
        );
    }
    // The timer sweep's Query runs on a clock (every 25 ms here), not per step.
    let (sweeps, requests): (Vec<String>, Vec<String>) = log.take().into_iter().partition(|op| op == "Query");
    gaps.sort_by(f64::total_cmp);
    totals.sort_by(f64::total_cmp);
    let mut by_operation: BTreeMap<String, usize> = BTreeMap::new();
    for op in &requests {
        *by_operation.entry(op.clone()).or_default() += 1;
    }
    let step_count = (steps * runs) as f64;
    println!("workflow per-step overhead: {runs} runs of a {steps}-step chain (no-op actions), default EsmConfig");
    println!(
        "  step end -> next step start: median {:.1} ms, p90 {:.1} ms, max {:.1} ms ({} gaps)",
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.9),
        gaps.last().copied().unwrap_or(0.0),
        gaps.len()
    );
    println!(
        "  whole run: median {:.0} ms ({:.1} ms per step)",
        percentile(&totals, 0.5),
        percentile(&totals, 0.5) / steps as f64
    );
    println!(
        "  DynamoDB requests: {} in all, {:.2} per step",
        requests.len(),
        requests.len() as f64 / step_count
    );
    for (operation, count) in by_operation {
        println!(
            "    {operation:<20} {count:>5}  ({:.2} per step)",
            count as f64 / step_count
        );
    }
    println!(
        "  plus {} timer-sweep Queries (one per sweep tick, not per step)",
        sweeps.len()
    );
    rig.shutdown().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
